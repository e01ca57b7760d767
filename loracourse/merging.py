"""Adapters after training: load one with a clear line on bad input, compare outputs, time forward passes. Lesson 6.

    model = load_adapter(base, "adapter/")          # PeftModel.from_pretrained, after checking the folder and shapes
    model = load_adapter(model, "other/", "other")  # a second adapter on the same base (PeftModel.load_adapter)
    require_peft_model(model, "merge_and_unload")   # one line instead of an AttributeError on a plain model
    max_abs_difference(model_a, model_b, batch)     # the largest |logit difference|, as a float
    median_forward_seconds({"base": m0, ...}, batch, repeats=20)

No exercise answer lives here: merging itself (by hand and with PEFT) is the lesson's.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from .errors import CourseError

ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"  # peft/utils/constants.py


class NotAnAdapter(CourseError, ValueError):
    """A folder given as an adapter holds no PEFT adapter."""


class AdapterMismatch(CourseError, ValueError):
    """An adapter whose modules or shapes do not fit the base model it is loaded onto."""


class NotAPeftModel(CourseError, TypeError):
    """A PEFT method (merge_and_unload, unload, ...) asked of a model that carries no adapter."""


def is_peft_model(model: object) -> bool:
    """Whether `model` is a PeftModel (imported lazily: importing this module needs no PEFT)."""
    from peft import PeftModel

    return isinstance(model, PeftModel)


def require_peft_model(model: object, what: str = "merge_and_unload") -> None:
    """Nothing if `model` is a PeftModel, else one line saying why `what` cannot run on it and what to do."""
    if is_peft_model(model):
        return
    raise NotAPeftModel(
        f"{what}() is a PEFT method and {type(model).__name__} is not a PeftModel: there is no adapter to "
        f"{what.split('_')[0]}. Load one first (PeftModel.from_pretrained(model, adapter_folder)); "
        f"if this model came out of merge_and_unload(), it is merged already."
    )


def _describe(folder: Path) -> str:
    """What a folder holds, in a few words, for an error message."""
    names = sorted(p.name for p in folder.iterdir())[:6]
    if "config.json" in names and any(n.endswith(".safetensors") or n.endswith(".bin") for n in names):
        return f"a full model ({', '.join(names)}): load it with AutoModelForCausalLM.from_pretrained"
    return f"{', '.join(names) or 'nothing'}"


def _adapter_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """name -> shape of each tensor in the adapter file, read from its header (no tensor is loaded)."""
    from safetensors import safe_open

    with safe_open(folder / ADAPTER_WEIGHTS, framework="pt") as f:
        return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}


def check_adapter_fits(base: nn.Module, adapter_dir: str | Path) -> None:
    """Nothing if `adapter_dir` holds a PEFT adapter whose LoRA matrices fit `base`'s layers, else one clear line.

    PEFT would fail too, but later and at length: a ValueError for a folder without adapter_config.json, a
    RuntimeError listing every size mismatch of the state dict for an adapter trained on another base.
    """
    folder = Path(adapter_dir).expanduser()
    if not folder.is_dir():
        raise NotAnAdapter(f"{adapter_dir} is not a folder: give the folder that save_pretrained wrote the adapter to")
    if not (folder / ADAPTER_CONFIG).is_file() or not (folder / ADAPTER_WEIGHTS).is_file():
        raise NotAnAdapter(
            f"{adapter_dir} holds no PEFT adapter (no {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}); it holds "
            f"{_describe(folder)}"
        )
    trained_on = json.loads((folder / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    plain = base.get_base_model() if is_peft_model(base) else base
    modules = dict(plain.named_modules())
    for key, shape in _adapter_shapes(
        folder
    ).items():  # e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
        if ".lora_A." not in key and ".lora_B." not in key:
            continue
        name = key.removeprefix("base_model.model.").split(".lora_")[0]
        layer = modules.get(name)
        if layer is None:
            raise AdapterMismatch(
                f"the adapter in {adapter_dir} adapts {name}, which this {type(plain).__name__} does not have: it was "
                f"trained on another base ({trained_on}). Load it onto that model."
            )
        layer = getattr(layer, "base_layer", layer)
        expected = layer.in_features if ".lora_A." in key else layer.out_features
        found = shape[1] if ".lora_A." in key else shape[0]
        if found != expected:
            side = "inputs" if ".lora_A." in key else "outputs"
            raise AdapterMismatch(
                f"the adapter in {adapter_dir} was trained on another base ({trained_on}): its {name} has {found} "
                f"{side}, this model's has {expected}. Load it onto the model it was trained on."
            )


def load_adapter(base: nn.Module, adapter_dir: str | Path, adapter_name: str = "default", **kwargs) -> nn.Module:
    """The adapter saved in `adapter_dir` put on `base`, checked first (check_adapter_fits).

    On a plain model: PeftModel.from_pretrained(base, adapter_dir, adapter_name, **kwargs), frozen unless
    is_trainable=True. On a PeftModel: one more adapter beside those it has (PeftModel.load_adapter).
    """
    from peft import PeftModel

    check_adapter_fits(base, adapter_dir)
    if is_peft_model(base):
        base.load_adapter(str(adapter_dir), adapter_name=adapter_name, **kwargs)
        return base
    return PeftModel.from_pretrained(base, str(adapter_dir), adapter_name=adapter_name, **kwargs)


@torch.no_grad()
def logits_of(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's logits on a batch (input_ids, attention_mask), in fp32 on the CPU."""
    device = next(model.parameters()).device
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    return out.logits.float().cpu()


def max_abs_difference(a: nn.Module | torch.Tensor, b: nn.Module | torch.Tensor, batch: dict | None = None) -> float:
    """max |a - b| over every logit of `batch` (models), or over two tensors; a Python float."""
    a = logits_of(a, batch) if isinstance(a, nn.Module) else a.detach().float().cpu()
    b = logits_of(b, batch) if isinstance(b, nn.Module) else b.detach().float().cpu()
    return (a - b).abs().max().item()


def _synchronize(model: nn.Module) -> None:
    """Wait for the GPU's queued work, so that a timer measures it (a no-op on a CPU)."""
    if next(model.parameters()).device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def median_forward_seconds(
    models: dict[str, nn.Module], batch: dict[str, torch.Tensor], repeats: int = 20, warmup: int = 2
) -> dict[str, float]:
    """Median seconds of one forward pass of each model on `batch`, the models timed in turn in each round.

    Interleaving (base, then the next model, ... then the next round) lets a busy machine slow every model alike,
    and the median ignores the rounds that another job interrupted. torch.utils.benchmark times one statement at a
    time, so it would measure the models minutes apart on a shared machine: hence this loop.
    """
    inputs = {}
    for name, model in models.items():
        device = next(model.parameters()).device
        inputs[name] = {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}
        model.eval()
    times: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(warmup + repeats):
        for name, model in models.items():
            _synchronize(model)
            start = time.perf_counter()
            model(**inputs[name])
            _synchronize(model)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def plot_strength(multipliers: Sequence[float], curves: dict[str, Sequence[float]], xlabel: str) -> Figure:
    """One line per label over the adapter's strength multiplier (a fraction: 0 = base, 1 = as trained)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, values in curves.items():
        ax.plot(multipliers, [100 * v for v in values], marker="o", lw=1.2, label=label)
    ax.set(xlabel=xlabel, ylabel="share of held-out examples (%)", ylim=(-5, 105), title="Adapter strength")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_update_survival(ratios: Sequence[float], lost: Sequence[float]) -> Figure:
    """Share of a LoRA update lost when merged into an int8 base, against the update's size in int8 steps (log x)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.semilogx(ratios, [100 * v for v in lost], marker="o", lw=1.2)
    ax.axvline(0.5, ls="--", c="grey", lw=1, label="half an int8 step")
    ax.set(
        xlabel="typical |ΔW| / int8 step of its row (median)",
        ylabel="‖merged − intended‖ / ‖ΔW‖ (%)",
        title="How much of ΔW a merge into int8 loses",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_latency(seconds: dict[str, float], title: str = "Forward pass, median") -> Figure:
    """Bars of each model's median forward time in ms, labelled with its ratio to the first."""
    fig, ax = plt.subplots(figsize=(5, 3))
    first = next(iter(seconds.values()))
    bars = ax.bar(list(seconds), [1000 * s for s in seconds.values()], color="#3b75af")
    ax.bar_label(bars, labels=[f"{s / first:.2f}x" for s in seconds.values()])
    ax.set(ylabel="ms per forward pass", title=title)
    fig.tight_layout()
    return fig


def live_models(namespace: dict) -> dict[str, int]:
    """Variable name -> bytes of weights, for each distinct model that a variable of `namespace` still holds.

    A model counts once however many names point to it or into it (a PeftModel and the model it wraps, `merged` and
    the emptied PeftModel it came out of): weights are told apart by their storage. Models on the meta device hold
    no weights and are left out. Pass globals() from a notebook; gc alone would also find the objects a variable no
    longer names but Python has not collected yet.
    """
    from transformers import PreTrainedModel

    seen: set[int] = set()
    sizes: dict[str, int] = {}
    for name, obj in namespace.items():
        if name.startswith("_") or not isinstance(obj, nn.Module):
            continue
        if not isinstance(obj, PreTrainedModel) and not is_peft_model(obj):
            continue
        size = 0
        for tensor in [*obj.parameters(), *obj.buffers()]:
            if tensor.device.type == "meta":
                continue
            key = tensor.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                size += tensor.untyped_storage().nbytes()
        if size:
            sizes[name] = size
    return sizes
