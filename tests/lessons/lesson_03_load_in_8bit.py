"""Lesson 3 (the 8-bit load): the most common mistake per exercise, and the claims the lesson makes about its run.

Each function is named after an answer cell's grade_id and holds that exercise's most common plausible mistake
(its docstring says which). The grading tests submit them all at once: each exercise must lose its points, its
visible tests alone must already fail, and its test cell must pass again with the course's solution while every
other answer stays wrong. `check_claims` checks the numbers the lesson's prose states about its default run on
the tiny model (RECORDED names the notebook variables it reads).
"""

import math

import torch
from torch import nn


def absmax_quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Divides by the row scales without a column axis, so they broadcast along the columns (silent when square)."""
    w = weight.detach().float()
    scales = w.abs().amax(dim=1)
    return torch.round(127 * w / scales).to(torch.int8), scales


def absmax_dequantize(q: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Forgets the 1/127: multiplies the int8 values by their row's scale directly."""
    return q.float() * scales.float().unsqueeze(1)


def model_bytes(model: nn.Module, precision: str) -> int:
    """Counts every parameter as quantized (1 byte in int8, half a byte in nf4): no scales, nothing kept 16-bit."""
    total = sum(p.numel() for p in model.parameters())
    return int(total * {"fp32": 4, "bf16": 2, "int8": 1, "nf4": 0.5}[precision])


def lora_training_bytes(weight_bytes: int, lora_params: int, activation_bytes: int) -> dict[str, int]:
    """Gives AdamW one fp32 moment per parameter instead of two (4 bytes of optimizer state, not 8)."""
    parts = {
        "weights": weight_bytes,
        "adapter": 4 * lora_params,
        "gradients": 4 * lora_params,
        "optimizer": 4 * lora_params,
        "activations": activation_bytes,
    }
    return {**parts, "total": sum(parts.values())}


def fits_on_gpu(need_bytes: int, gpu_gib: float, reserve_gib: float = 1.0) -> bool:
    """Takes the card's and the reserve's GiB for GB: 10**9 bytes instead of 2**30."""
    return need_bytes + reserve_gib * 1e9 <= gpu_gib * 1e9


def adapter_file_bytes(model: nn.Module, r: int, target_modules: list[str], bytes_per_param: int = 4) -> int:
    """Counts the full update ΔW (out x in) of each adapted layer instead of its factors A (r x in) and B (out x r)."""
    adapted = [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(name == t or name.endswith("." + t) for t in target_modules)
    ]
    return sum(m.in_features * m.out_features for m in adapted) * bytes_per_param


def check_your_understanding() -> dict[str, float]:
    """Thinks an 8-bit load halves the element count, as a 4-bit load does."""
    return {"numel_ratio_int8_vs_bf16": 0.5, "bytes_per_row_int8": 4100, "prepare_extra_bytes": 2}


RECORDED = (
    "tutorial_error", "n_int8_layers", "lm_head_class", "skip_classes", "quantized_share", "numel_reference",
    "numel_int8", "q_mismatches", "scale_difference", "error_range", "outliers", "outlier_layers",
    "threshold_errors", "top_token_agreement", "measured", "tiny_buffers", "bytes_check", "twin_bytes", "demo_peak",
    "step_memory", "step_ratios", "kept_params", "lora_counts", "training", "fits", "score_before", "before", "after",
    "footprint_added", "kept", "losses", "uniform_loss", "adapter_files", "tensor_bytes", "header_bytes", "file_bytes",
    "llama2_adapter", "adapter_mb", "score_after",
)  # fmt: skip

GIB = 2**30
LLAMA2 = "meta-llama/Llama-2-7b-hf"


def check_claims(values: dict) -> None:
    """The lesson's claims about its own run on the tiny model, checked on the executed notebook."""
    v = values
    # 3.1: the tutorial's keyword raises a TypeError that names the model's constructor
    assert "unexpected keyword argument 'load_in_8bit'" in v["tutorial_error"], v["tutorial_error"]
    assert "LlamaForCausalLM.__init__" in v["tutorial_error"], (
        f"3.1 says the error names __init__: {v['tutorial_error']}"
    )
    # 3.2: 28 Linear8bitLt, lm_head kept; a skip list without lm_head quantizes it; numel unchanged
    assert v["n_int8_layers"] == 28 and v["lm_head_class"] == "Linear", (v["n_int8_layers"], v["lm_head_class"])
    assert v["skip_classes"] == ["Linear8bitLt", "Linear"], f"3.2 llm_int8_skip_modules: {v['skip_classes']}"
    assert v["numel_reference"] == v["numel_int8"], "3.2: the sum of numel is the same in 8-bit"
    assert v["quantized_share"] < 0.85, (
        f"3.2: the embeddings are a large share of the tiny model: {v['quantized_share']}"
    )
    # 3.3: by hand equals bitsandbytes; the error is a fraction of a percent; outliers only in down_proj
    assert v["q_mismatches"] == 0 and v["scale_difference"] == 0, "3.3: absmax by hand matches bitsandbytes exactly"
    assert 0 < v["error_range"][0] <= v["error_range"][1] < 0.01, f"3.3: a fraction of a percent: {v['error_range']}"
    assert None not in v["outliers"].values(), "3.3: the outlier columns by hand differ from bitsandbytes'"
    assert v["outlier_layers"] and all(n.endswith("mlp.down_proj") for n in v["outlier_layers"]), v["outlier_layers"]
    layer_default, layer_all_int8, logits_default, logits_all_int8 = v["threshold_errors"].values()
    assert layer_default < 0.65 * layer_all_int8, (
        f"3.3: the threshold roughly halves the layer's error: {v['threshold_errors']}"
    )
    assert logits_default < logits_all_int8, (
        f"3.3: a lower mean logit error with the threshold: {v['threshold_errors']}"
    )
    agree_default, agree_all_int8 = v["top_token_agreement"]  # the prose says neither is always the higher one
    assert min(agree_default, agree_all_int8) > 0.97 and abs(agree_default - agree_all_int8) < 0.01, (
        f"3.3: about the same top-token agreement, at nearly every position: {v['top_token_agreement']}"
    )
    # 3.4: the measured table as the prose reads it, and the exercise equal to the measurement
    m = v["measured"]
    assert len({row[0] for row in m.values()}) == 1, f"3.4: num_parameters() is the same in every precision: {m}"
    assert m["fp32"][1] == m["bf16"][1] == m["int8"][1] > m["nf4"][1] == m["nf4-dq"][1], f"3.4: sum of numel: {m}"
    assert abs(2 * m["bf16"][2] - m["fp32"][2]) < 1_000, f"3.4: the footprint halves from fp32 to bf16: {m}"
    assert m["int8"][3] > 0 and m["nf4"][3] > 0, f"3.4: the scales are not in the footprint: {m}"
    int8_params_bytes = (m["int8"][0] - v["kept"]) + 2 * v["kept"]  # 1 byte per int8 weight, 2 per kept parameter
    for precision, params_bytes in (
        ("fp32", 4 * m["fp32"][0]),
        ("bf16", 2 * m["bf16"][0]),
        ("int8", int8_params_bytes),
    ):
        buffers = m[precision][2] - params_bytes
        assert buffers == v["tiny_buffers"] > 0, f"3.4: each footprint is parameters plus buffers: {m}, {buffers}"
    constants_nf4, constants_dq = m["nf4"][3] + m["nf4"][4], m["nf4-dq"][3] + m["nf4-dq"][4]
    assert 0.9 * constants_nf4 <= constants_dq <= constants_nf4, f"3.4: double quantization saves almost nothing: {m}"
    assert all(yours == theirs for yours, theirs in v["bytes_check"].values()), f"3.4 try-it: {v['bytes_check']}"
    expected = {"fp32": 26_953_662_464, "bf16": 13_476_831_232, "int8": 7_006_265_344, "nf4": 4_167_573_504}
    assert v["twin_bytes"][LLAMA2] == expected, f"3.4: Llama-2-7b bytes {v['twin_bytes'][LLAMA2]}"
    # 3.5 try-it: the adapter's training state is half a percent of the total, the adapter alone an eighth of one
    lora_state, total = 16 * 4_194_304, expected["bf16"] + 16 * 4_194_304
    assert 0.0045 < lora_state / total < 0.0055 and 0.00115 < lora_state / 4 / total < 0.0013, lora_state / total
    assert v["demo_peak"] == 2 * 1000 * 4, f"3.5: two tensors of 1,000 fp32 values: {v['demo_peak']}"
    # 3.5: the estimate within a few percent; int8 keeps its inputs; the table as the prose reads it
    ratios = v["step_ratios"]
    assert all(0.95 <= r <= 1.08 for r in ratios[:3]), f"3.5: bf16, int8, nf4 within a few percent: {ratios}"
    assert ratios[3] > 1.08 and ratios[3] == max(ratios), (
        f"3.5: with reentrant checkpointing the estimate falls short by more than a few percent: {ratios}"
    )
    steps = v["step_memory"]
    int8_peak, nf4_peak, reentrant_peak = (steps[k][0] for k in list(steps)[1:])
    assert int8_peak > 1.6 * nf4_peak, f"3.5: int8 needs nearly twice the NF4 step's memory: {steps}"
    assert abs(reentrant_peak - nf4_peak) < abs(int8_peak - nf4_peak) / 2, f"3.5: reentrant falls back: {steps}"
    assert v["lora_counts"][LLAMA2] == 4_194_304 and v["kept_params"][LLAMA2] == 262_410_240, v["lora_counts"]
    training, fits = v["training"], v["fits"]
    for label, parts in training.items():
        lora_state = parts["adapter"] + parts["gradients"] + parts["optimizer"]
        assert lora_state < GIB / 4, f"3.5: the adapter's training state is well under a GiB: {label} {parts}"
        assert fits[label][2], f"3.5: every row fits on an 80 GB card: {label}"
        if label.endswith("nf4"):
            assert fits[label][0], f"3.5: every 7-8B model fits on a T4 in NF4: {label}"
    names = ("Llama-2-7b-hf", "Mistral-7B-v0.1", "Meta-Llama-3-8B", "Qwen2.5-7B")
    int8, bf16, nf4 = ({n: training[f"{n} · {p}"] for n in names} for p in ("int8", "bf16", "nf4"))
    gap = {n: int8[n]["total"] - bf16[n]["total"] for n in names}
    saved = {n: bf16[n]["weights"] - int8[n]["weights"] for n in names}
    assert all(g > 0 for g in gap.values()), f"3.5: for all four, the int8 row needs more than the bf16 row: {gap}"
    assert min(gap[n] for n in names[2:]) > max(gap[n] for n in names[:2]), f"3.5: widest for Llama-3, Qwen: {gap}"
    assert max(saved[n] for n in names[2:]) < min(saved[n] for n in names[:2]), f"3.5: 8-bit saves less: {saved}"
    for n in names:  # what tips the balance back: activations scale with the batch (default 4)...
        one_sequence = {
            p: row[n]["total"] - row[n]["activations"] * 3 / 4 for p, row in (("int8", int8), ("bf16", bf16))
        }
        assert one_sequence["int8"] < one_sequence["bf16"], f"3.5: a smaller batch tips it back for {n}: {one_sequence}"
        # ... reentrant checkpointing leaves the int8 step NF4's activations (same s = 4, no kept inputs)
        reentrant = int8[n]["total"] - int8[n]["activations"] + nf4[n]["activations"]
        assert reentrant < bf16[n]["total"], f"3.5: reentrant checkpointing tips it back for {n}: {reentrant}"
        assert nf4[n]["total"] < bf16[n]["total"], f"3.5: 4-bit tips it back for {n}"
    assert not fits["Meta-Llama-3-8B · bf16"][0] and not fits["Qwen2.5-7B · bf16"][0], "3.5: no T4 for them in bf16"
    assert training["Llama-2-7b-hf · bf16"]["weights"] > 0.7 * 16 * GIB, "3.5: bf16 weights fill most of a T4"
    # 3.6: prepare_model_for_kbit_training, parameter by parameter
    assert v["score_before"] == 0.0, f"3.6: the 8-bit base scores nothing: {v['score_before']}"
    before, after = v["before"], v["after"]
    assert after["model.embed_tokens.weight"] == "float32, grad False" and before["model.embed_tokens.weight"] == (
        "float16, grad True"
    ), (before, after)
    assert after["model.layers.0.self_attn.q_proj.weight"] == "int8, grad False", after
    assert after["parameters that require grad"] == "0" and before["parameters that require grad"] != "0", after
    assert (before["gradient checkpointing"], after["gradient checkpointing"]) == ("False", "True"), after
    assert before["embedding output requires grad"] == after["embedding output requires grad"] == "True", after
    assert v["footprint_added"] == 2 * v["kept"], (
        f"3.6: 2 bytes per kept parameter: {v['footprint_added']}, {v['kept']}"
    )
    losses = v["losses"]
    assert len(losses) == 60 and losses[-1] < 0.05 * losses[0], f"3.6: the loss falls: {losses[0]} -> {losses[-1]}"
    assert math.isclose(v["uniform_loss"], math.log(685)) and losses[0] > v["uniform_loss"], (
        f"3.6: the first loss is above ln V: {losses[0]} vs {v['uniform_loss']}"
    )
    # 3.7: the adapter file
    assert set(v["adapter_files"]) == {"README.md", "adapter_config.json", "adapter_model.safetensors"}
    assert v["tensor_bytes"] == 65_536 and v["tensor_bytes"] + v["header_bytes"] == v["file_bytes"], v["adapter_files"]
    assert v["llama2_adapter"] == [16_777_216, 8_388_608, 79_953_920], v["llama2_adapter"]
    assert math.isclose(v["adapter_mb"], 16.8, abs_tol=0.05), f"errata row 4: about 16.8 MB, got {v['adapter_mb']}"
    assert v["score_after"] >= 0.9, f"3.7: about all of the held-out answers right after training: {v['score_after']}"
