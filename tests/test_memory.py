"""loracourse.memory and loracourse.quant (built in lesson 3): byte accounting, peak tracker, quantization check."""

from __future__ import annotations

import types

import pytest
import torch
from matplotlib.figure import Figure
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, LlamaConfig

from loracourse import memory, quant
from loracourse.errors import CourseError, QuantizationUnavailable
from loracourse.models import TINY_DIR

bnb = pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def tiny_int8():
    return AutoModelForCausalLM.from_pretrained(TINY_DIR, **quant.load_kwargs("int8", "cpu"))


# -- activation_bytes -----------------------------------------------------------------------------------------


def test_activation_bytes_follows_its_formula():
    config = types.SimpleNamespace(num_hidden_layers=2, hidden_size=10, intermediate_size=30, vocab_size=100)
    # per token: s*L*h = 4*2*10 = 80; max(12*V = 1200, s*(7h+6i) = 4*250 = 1000) = 1200; int8: s*L*(3h+i) = 480
    assert memory.activation_bytes(config, 3, 5, 4) == 15 * (80 + 1200)
    assert memory.activation_bytes(config, 3, 5, 4, int8_inputs_kept=True) == 15 * (80 + 1200 + 480)
    small_vocab = types.SimpleNamespace(num_hidden_layers=2, hidden_size=10, intermediate_size=30, vocab_size=10)
    assert memory.activation_bytes(small_vocab, 1, 1, 2) == 2 * 2 * 10 + 2 * 250  # the layer term wins


# -- the peak tracker -----------------------------------------------------------------------------------------


def test_tensor_bytes_counts_allocations_and_frees():
    with memory.TensorBytes() as tracker:
        a = torch.ones(1000, 1000)  # 4 MB
        b = a * 2  # 8 MB live
        del a  # 4 MB
        c = torch.ones(500, 1000)  # 6 MB
        view = b[:10]  # a view: no new memory
        b.mul_(3)  # in place: no new memory
    assert tracker.peak == 8_000_000
    assert tracker.current == 6_000_000
    del b, c, view


def test_tensor_bytes_ignores_tensors_that_existed_before():
    weight = torch.ones(256, 256)
    with memory.TensorBytes() as tracker:
        transposed = weight.t()  # a view of an existing tensor
        out = torch.ones(4, 256) @ transposed  # 4 KB of input, 4 KB of output
    assert tracker.peak == 2 * 4 * 256 * 4
    del out


def test_peak_bytes_measures_a_backward_pass_on_cpu():
    x = torch.ones(64, 128, requires_grad=True)
    w = torch.ones(128, 128)
    peak = memory.peak_bytes(lambda: (x @ w).relu().sum().backward(), "cpu")
    assert peak >= x.numel() * 4  # at least x's gradient and the product
    assert x.grad is not None


# -- what bitsandbytes stores ---------------------------------------------------------------------------------


def test_quant_state_bytes_of_the_tiny_model(tiny_int8):
    rows = sum(m.out_features for m in tiny_int8.modules() if isinstance(m, bnb.nn.Linear8bitLt))
    assert memory.quant_state_bytes(tiny_int8) == {"scales": 4 * rows, "other": 0}
    nf4 = AutoModelForCausalLM.from_pretrained(TINY_DIR, **quant.load_kwargs("nf4", "cpu"))
    weights = sum(m.weight.numel() * 2 for m in nf4.modules() if isinstance(m, bnb.nn.Linear4bit))
    assert memory.quant_state_bytes(nf4)["scales"] == 4 * weights // 64  # one fp32 absmax per block of 64


def test_int8_weight_and_scales_before_and_after_the_first_forward(tiny_int8):
    layer = tiny_int8.model.layers[0].self_attn.q_proj
    weight, scales = quant.int8_weight_and_scales(layer)
    weight, scales = weight.clone(), scales.clone()
    assert weight.dtype == torch.int8 and scales.shape == (layer.out_features,)
    with torch.no_grad():
        layer(torch.ones(1, layer.in_features, dtype=torch.float16))  # bitsandbytes moves SCB to its state here
    after_weight, after_scales = quant.int8_weight_and_scales(layer)
    assert torch.equal(after_weight, weight) and torch.equal(after_scales, scales)


def test_int8_weight_and_scales_of_an_unquantized_layer():
    with pytest.raises(ValueError, match="no int8 weights"):
        quant.int8_weight_and_scales(bnb.nn.Linear8bitLt(4, 4, has_fp16_weights=False))


# -- casts of NaN to int8 (lesson 3's absmax test) ------------------------------------------------------------


def _divides_by_zero(w: torch.Tensor) -> torch.Tensor:
    return torch.round(127 * w / w.abs().amax(dim=1, keepdim=True)).to(torch.int8)  # 0 / 0 on a row of zeros


def _guards_the_zero_row(w: torch.Tensor) -> torch.Tensor:
    scales = w.abs().amax(dim=1, keepdim=True)
    return torch.round(torch.where(scales > 0, 127 * w / scales, 0.0)).to(torch.int8)  # NaN computed, discarded


@pytest.mark.parametrize(
    "fn, expected",
    [
        (_divides_by_zero, 2),
        (lambda w: _divides_by_zero(w).float(), 2),  # the NaN reached int8 on the way
        (lambda w: torch.round(127 * w / w.abs().amax(dim=1, keepdim=True)).char(), 2),
        (_guards_the_zero_row, 0),
        (lambda w: torch.nan_to_num(127 * w / w.abs().amax(dim=1, keepdim=True)).round().to(torch.int8), 0),
        (lambda w: (w / w.abs().amax(dim=1, keepdim=True)).isnan(), 0),  # a bool result is no cast
    ],
    ids=["to(int8)", "through int8", "char()", "where", "nan_to_num", "isnan"],
)
def test_nonfinite_casts_counts_what_reaches_an_integer_dtype(fn, expected):
    weight = torch.tensor([[0.0, 0.0], [3.0, -1.5]])
    result, casts = quant.nonfinite_casts(fn, weight)
    assert casts == expected
    assert torch.equal(result, fn(weight))  # the function's own result, unchanged


# -- the quantization check -----------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", quant.QUANTIZED)
def test_require_quantization_passes_on_this_cpu(precision):
    quant.require_quantization(precision, "cpu")


def test_require_quantization_without_bitsandbytes(monkeypatch):
    monkeypatch.setattr("transformers.utils.import_utils.is_bitsandbytes_available", lambda: False)
    with pytest.raises(QuantizationUnavailable) as caught:
        quant.require_quantization("int8", "cpu")
    message = str(caught.value)
    assert "pip install -U bitsandbytes" in message and "\n" not in message
    assert isinstance(caught.value, CourseError)


def test_require_quantization_on_a_device_without_a_backend(monkeypatch):
    monkeypatch.setattr(bnb, "supported_torch_devices", {"cuda"})
    with pytest.raises(QuantizationUnavailable, match="no backend for cpu"):
        quant.require_quantization("nf4", "cpu")


def test_require_quantization_when_the_kernel_is_missing(monkeypatch):
    def missing(*args, **kwargs):
        raise NotImplementedError("no kernel for quantize_4bit on this device\nmore frames")

    monkeypatch.setattr(bnb.functional, "quantize_4bit", missing)
    with pytest.raises(QuantizationUnavailable) as caught:
        quant.require_quantization("nf4", "cpu")
    assert "cannot run nf4 on cpu (no kernel for quantize_4bit on this device)" in str(caught.value)
    assert "\n" not in str(caught.value)
    quant.require_quantization("int8", "cpu")  # 8-bit does not need that kernel


def test_require_quantization_rejects_unknown_precisions():
    with pytest.raises(ValueError, match="quantized precisions"):
        quant.require_quantization("fp32", "cpu")


def test_load_kwargs():
    assert quant.load_kwargs("fp32", "cpu") == {"dtype": torch.float32, "device_map": "cpu"}
    int8 = quant.load_kwargs("int8", "cpu")
    assert int8["dtype"] == torch.float16 and int8["quantization_config"].load_in_8bit
    nf4, nf4_dq = quant.load_kwargs("nf4", "cpu")["quantization_config"], quant.load_kwargs("nf4-dq", "cpu")
    assert nf4.bnb_4bit_quant_type == "nf4" and not nf4.bnb_4bit_use_double_quant
    assert nf4_dq["quantization_config"].bnb_4bit_use_double_quant
    with pytest.raises(ValueError, match="use one of"):
        quant.load_kwargs("int4", "cpu")


# -- files and plots ------------------------------------------------------------------------------------------


def test_safetensors_header_and_file_sizes(tmp_path):
    tensors = {"a": torch.zeros(3, 5), "b": torch.zeros(7, dtype=torch.float16)}
    save_file(tensors, tmp_path / "x.safetensors")
    (tmp_path / "note.txt").write_text("hello")
    sizes = memory.file_sizes(tmp_path)
    assert list(sizes) == ["note.txt", "x.safetensors"] and sizes["note.txt"] == 5
    tensor_bytes = 3 * 5 * 4 + 7 * 2
    assert memory.safetensors_header_bytes(tmp_path / "x.safetensors") + tensor_bytes == sizes["x.safetensors"]


def test_plots_return_figures():
    rows = {"a · bf16": {"weights": 2 * memory.GIB, "activations": memory.GIB}}
    assert isinstance(memory.plot_training_memory(rows, memory.GPUS, 1.0), Figure)
    assert isinstance(memory.plot_model_bytes({"org/a": {"fp32": 4, "bf16": 2}}), Figure)
    assert isinstance(memory.plot_layer_errors({"layers.0.q_proj": 0.006}), Figure)


def test_activation_bytes_within_a_few_percent_of_a_measured_step():
    """The estimate against the tracker on a small random Llama (bf16 LoRA, checkpointing on)."""
    from peft import LoraConfig, get_peft_model

    config = LlamaConfig(
        hidden_size=64, intermediate_size=128, vocab_size=300, num_hidden_layers=2, num_attention_heads=4
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.config.use_cache = False
    model.requires_grad_(False).gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).train()
    ids = torch.randint(0, 300, (2, 64), generator=torch.Generator().manual_seed(0))
    peak = memory.peak_bytes(lambda: lora(input_ids=ids, labels=ids).loss.backward(), "cpu")
    trainable = lora.get_nb_trainable_parameters()[0]
    estimate = memory.activation_bytes(config, 2, 64, 2) + 4 * trainable  # no optimizer step: gradients only
    assert 0.85 <= peak / estimate <= 1.2, (peak, estimate)


def test_model_layer_is_linear_subclass():
    """model_bytes (lesson 3's exercise) relies on bitsandbytes' layers being nn.Linear subclasses."""
    assert issubclass(bnb.nn.Linear8bitLt, nn.Linear) and issubclass(bnb.nn.Linear4bit, nn.Linear)
