"""Quantization with bitsandbytes: can this machine run it, how to ask transformers for it, what it stores.

Built in lesson 3. bitsandbytes is optional (Colab and CPU users may lack it), so it is imported inside the
functions that need it, and a quantization this machine cannot run stops a lesson with one line
(QuantizationUnavailable) before transformers would fail with a stack of library frames.

    require_quantization("int8", "cpu")             # nothing, or one line that names the problem and the fix
    model = AutoModelForCausalLM.from_pretrained(path, **load_kwargs("int8", "cpu"))

nonfinite_casts serves the lesson's tests: it catches a NaN cast to int8, which this CPU silently turns into 0.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .errors import QuantizationUnavailable

# What the lessons load models in. "nf4" counts one fp32 absmax per block of 64 weights; "nf4-dq" adds QLoRA's
# double quantization (the absmax values themselves quantized to 8 bits), the recipe of the QLoRA paper.
PRECISIONS = ("fp32", "bf16", "int8", "nf4", "nf4-dq")
QUANTIZED = ("int8", "nf4", "nf4-dq")
T = TypeVar("T")


def _bnb_version() -> str | None:
    """The installed bitsandbytes version, or None."""
    try:
        return importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        return None


def require_quantization(precision: str, device: str) -> None:
    """Nothing if bitsandbytes can run `precision` ("int8", "nf4", "nf4-dq") on `device`, else one clear line.

    Three checks, cheapest first: bitsandbytes installed in a version transformers accepts; a backend for the
    device type; and a probe that quantizes a 64 x 64 tensor there, so that a build which lacks the kernel
    (4-bit on an old CPU build, say) is caught here rather than halfway through loading a model.
    """
    if precision not in QUANTIZED:
        raise ValueError(f"precision={precision!r}: quantized precisions are {', '.join(QUANTIZED)}")
    from transformers.utils.import_utils import BITSANDBYTES_MIN_VERSION, is_bitsandbytes_available

    found = _bnb_version()
    if not is_bitsandbytes_available():
        have = f"found bitsandbytes {found}" if found else "bitsandbytes is not installed"
        raise QuantizationUnavailable(
            f"{precision} needs bitsandbytes >= {BITSANDBYTES_MIN_VERSION} and {have}: "
            f"pip install -U bitsandbytes, then restart the kernel"
        )
    import bitsandbytes as bnb

    kind = torch.device(device).type
    if kind not in getattr(bnb, "supported_torch_devices", {kind}):
        raise QuantizationUnavailable(
            f"bitsandbytes {found} has no backend for {kind}: run this lesson on a CUDA GPU or on the CPU"
        )
    probe = torch.linspace(-1, 1, 64 * 64, device=device).reshape(64, 64).to(torch.float16)
    try:
        if precision == "int8":
            bnb.functional.int8_vectorwise_quant(probe)
        else:
            bnb.functional.quantize_4bit(probe, quant_type="nf4")
    except Exception as err:  # any failure of the kernel means the same thing to the learner
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise QuantizationUnavailable(
            f"bitsandbytes {found} cannot run {precision} on {device} ({reason}): "
            f"pip install -U bitsandbytes, or use a CUDA GPU"
        ) from err


def load_kwargs(precision: str, device: str) -> dict[str, Any]:
    """from_pretrained keyword arguments that load a model in `precision` (one of PRECISIONS) on `device`.

    8-bit (LLM.int8) computes in fp16, so the layers it leaves alone are loaded in fp16 too; 4-bit NF4 follows the
    QLoRA recipe (bf16 compute). A quantized precision is checked with require_quantization first.
    """
    from transformers import BitsAndBytesConfig

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision in ("fp32", "bf16"):
        return {"dtype": torch.float32 if precision == "fp32" else torch.bfloat16, "device_map": device}
    require_quantization(precision, device)
    if precision == "int8":
        return {
            "dtype": torch.float16,
            "device_map": device,
            "quantization_config": BitsAndBytesConfig(load_in_8bit=True),
        }
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",  # the default is "fp4"
        bnb_4bit_use_double_quant=precision == "nf4-dq",
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    return {"dtype": torch.bfloat16, "device_map": device, "quantization_config": config}


def int8_weight_and_scales(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight (out, in), fp32 scale per row (out,)) of a bitsandbytes Linear8bitLt.

    bitsandbytes keeps the scales (its `SCB`) on the weight until the layer's first forward pass, then moves
    them to the layer's matmul state; this reads them wherever they are.
    """
    scales = layer.weight.SCB if getattr(layer.weight, "SCB", None) is not None else layer.state.SCB
    if scales is None:
        raise ValueError("this Linear8bitLt holds no int8 weights yet (it quantizes when moved to a device)")
    return layer.weight.data, scales


class _NonfiniteCasts(TorchDispatchMode):
    """Counts the NaN and infinite values that reach an op returning an integer tensor (a cast to int8, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if any(not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool) for t in outputs):
            for t in tree_flatten((args, kwargs))[0]:
                if isinstance(t, torch.Tensor) and t.dtype.is_floating_point:
                    self.count += int((~torch.isfinite(t)).sum())
        return out


def nonfinite_casts(fn: Callable[..., T], *args: Any) -> tuple[T, int]:
    """fn(*args), and how many NaN or infinite values it converted to an integer dtype on the way.

    Lesson 3's absmax test uses it: converting NaN or inf to int8 is undefined (this CPU gives 0, other hardware
    need not), so a quantizer that divides a row of zeros by its zero scale can look right on one machine only.
    NaN computed and then discarded (torch.where, nan_to_num) is not counted: only what reaches an integer result.
    """
    with _NonfiniteCasts() as mode:
        result = fn(*args)
    return result, mode.count
