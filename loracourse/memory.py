"""Bytes and memory: what bitsandbytes stores beside the weights, what a LoRA training step adds, and plots of both.

Built in lesson 3. The byte count of a model in a given precision is lesson 3's exercise and lives in the
notebook; this module holds what the lesson measures and estimates around it:

- quant_state_bytes: the quantization constants that `get_memory_footprint()` leaves out;
- activation_bytes: the estimate of a LoRA training step's activations (its formula below);
- peak_bytes: the peak memory a step allocates, on a GPU (CUDA's allocator) and on a CPU (see TensorBytes);
- safetensors_header_bytes, file_sizes: what `save_pretrained` wrote;
- plot_layer_errors, plot_model_bytes, plot_training_memory: one figure each.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GB, GIB = 10**9, 2**30

# Nominal memory of the cards the lesson asks about, in GiB (a "16 GB" card holds 16 GiB of memory chips).
GPUS: dict[str, float] = {"T4, 16 GB": 16, "24 GB": 24, "80 GB": 80}  # e.g. RTX 4090, L4, A10G; A100, H100


def quant_state_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes of bitsandbytes' quantization constants, which `get_memory_footprint()` does not count.

    "scales": the fp32 scale of each row of an 8-bit layer (bitsandbytes' SCB) and the absmax of each block of a
    4-bit layer; "other": the 16-value NF4 code of each 4-bit layer and, with double quantization, what it adds
    (the absmax values of the absmax values, their 256-value code, an offset). Shared tensors count once.
    """
    import bitsandbytes as bnb

    from .quant import int8_weight_and_scales

    found: dict[str, dict[int, int]] = {"scales": {}, "other": {}}

    def add(kind: str, tensor: torch.Tensor | None) -> None:
        if isinstance(tensor, torch.Tensor):
            found[kind][tensor.untyped_storage().data_ptr()] = tensor.numel() * tensor.element_size()

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear8bitLt):
            add("scales", int8_weight_and_scales(module)[1])
        elif isinstance(module, bnb.nn.Linear4bit) and module.weight.quant_state is not None:
            state = module.weight.quant_state
            add("scales", state.absmax)
            add("other", state.code)
            if state.nested:
                add("other", state.state2.absmax)
                add("other", state.state2.code)
                add("other", state.offset)
    return {kind: sum(sizes.values()) for kind, sizes in found.items()}


def activation_bytes(
    config, batch_size: int, seq_len: int, bytes_per_value: int, int8_inputs_kept: bool = False
) -> int:
    """Estimated activation memory of one LoRA training step of a Llama-family model, gradient checkpointing on.

    Per token, with L layers, hidden size h, intermediate size i, vocabulary V and s bytes per activation value:

        s * L * h                  each decoder layer's input, which checkpointing keeps for the recomputation
      + s * L * (3h + i)           only for bitsandbytes 8-bit layers with use_reentrant=False: their matmul keeps
                                   its input on the autograd context (q/k/v share one, o_proj, gate/up, down_proj)
      + max(12 V, s * (7h + 6i))   the larger of two moments: the loss (fp32 logits, log-probabilities and their
                                   gradient, 3 x 4 bytes per vocabulary entry) and one layer recomputed in backward

    Assumes attention by SDPA or FlashAttention (no seq_len x seq_len matrix kept), the loss on every position,
    LoRA on a few projections. The 7h + 6i was counted on Llama-shaped models (lesson 3 measures it).
    """
    layers, h, i, vocab = config.num_hidden_layers, config.hidden_size, config.intermediate_size, config.vocab_size
    s = bytes_per_value
    per_token = s * layers * h + max(12 * vocab, s * (7 * h + 6 * i))
    if int8_inputs_kept:
        per_token += s * layers * (3 * h + i)
    return batch_size * seq_len * per_token


class TensorBytes(TorchDispatchMode):
    """Current and peak bytes of the CPU tensors that PyTorch ops create while this mode is active.

    Written by hand because PyTorch measures peaks on CUDA only (torch.cuda.max_memory_allocated): tracemalloc
    sees Python's allocator, not torch's, and the profiler's memory timeline is deprecated. Every op's output
    passes through __torch_dispatch__ (backward ops too); a storage is counted once, unless it belongs to one of
    the op's inputs (a view, an in-place op), and uncounted when Python frees it (weakref.finalize).
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = self.peak = 0
        self._live: dict[int, int] = {}

    def _free(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if _on_cpu(t)}
        for tensor in tree_flatten(out)[0]:
            if not _on_cpu(tensor):
                continue
            storage = tensor.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if size and key not in self._live and key not in inputs:
                self._live[key] = size
                self.current += size
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._free, key)
        return out


def _on_cpu(obj: object) -> bool:
    return isinstance(obj, torch.Tensor) and obj.device.type == "cpu"


def peak_bytes(step: Callable[[], object], device: str) -> int:
    """Peak bytes of the tensors that `step()` allocates beyond those that existed before (CUDA or CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start
    with TensorBytes() as tracker:
        step()
    return tracker.peak


def safetensors_header_bytes(path: str | Path) -> int:
    """Bytes of a .safetensors file that are not tensor data: the 8-byte length, then the JSON header.

    The format (huggingface/safetensors) starts with the header's length as a little-endian u64; the safetensors
    package reads tensors and metadata but reports no header size, hence these two lines.
    """
    with open(path, "rb") as f:
        return 8 + struct.unpack("<Q", f.read(8))[0]


def file_sizes(folder: str | Path) -> dict[str, int]:
    """name -> bytes of each file in `folder`, sorted by name."""
    return {p.name: p.stat().st_size for p in sorted(Path(folder).iterdir()) if p.is_file()}


def plot_layer_errors(errors: dict[str, float], title: str = "Int8 round trip, per layer") -> Figure:
    """Bar chart of a relative error (a fraction) per layer name, in %."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(len(errors)), [100 * e for e in errors.values()], color="#3b75af")
    ax.set_xticks(range(len(errors)), list(errors), rotation=90, fontsize=6)
    ax.set(ylabel="‖W − dequantized‖ / ‖W‖ (%)", title=title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_model_bytes(table: dict[str, dict[str, int]], title: str = "Weights in memory, by precision") -> Figure:
    """Grouped bars: for each model (outer key), the bytes in each precision (inner key), in GB."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    precisions = list(next(iter(table.values())))
    width = 0.8 / len(precisions)
    for k, precision in enumerate(precisions):
        xs = [m + (k - (len(precisions) - 1) / 2) * width for m in range(len(table))]
        bars = ax.bar(xs, [row[precision] / GB for row in table.values()], width, label=precision)
        ax.bar_label(bars, fmt="%.1f", fontsize=6)
    ax.set_xticks(range(len(table)), [name.split("/")[-1] for name in table], fontsize=8)
    ax.set(ylabel="GB (10⁹ bytes)", title=title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_training_memory(
    rows: dict[str, dict[str, int]], gpus: dict[str, float], reserve_gib: float, title: str = "LoRA training memory"
) -> Figure:
    """Horizontal stacked bars (GiB) of each row's parts, plus the reserve; a vertical line at each card's size."""
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(rows) + 1.6))
    labels = list(rows)
    left = [0.0] * len(rows)
    parts = [p for p in next(iter(rows.values())) if p != "total"]
    for part in parts:
        widths = [row[part] / GIB for row in rows.values()]
        ax.barh(labels, widths, left=left, label=part)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.barh(labels, [reserve_gib] * len(rows), left=left, color="#dddddd", label=f"reserve ({reserve_gib:g} GiB)")
    for name, gib in gpus.items():
        ax.axvline(gib, color="black", lw=0.8, ls="--")
        ax.text(gib, -0.7, name, fontsize=7, ha="center", va="bottom")  # above the first bar (y is inverted below)
    ax.set_ylim(len(rows) - 0.5, -1.2)  # rows top to bottom, room for the cards' names
    ax.set(xlabel="GiB (2³⁰ bytes)", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
