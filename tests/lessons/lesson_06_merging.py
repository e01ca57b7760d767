"""Lesson 6 (merging): the most common mistake per exercise, and the claims the lesson makes about its run.

Each function is named after an answer cell's grade_id and holds that exercise's most common plausible mistake
(its docstring says which). The grading tests submit them all at once: each exercise must lose its points, its
visible tests alone must already fail, and its test cell must pass again with the course's solution while every
other answer stays wrong. `check_claims` checks the numbers the lesson's prose states about its default run on
the tiny model (RECORDED names the notebook variables it reads).
"""

import torch
from peft import PeftModel
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel


def merged_weight(W0: torch.Tensor, A: torch.Tensor, B: torch.Tensor, lora_alpha: float, r: int) -> torch.Tensor:
    """Forgets the lora_alpha / r scale: W0 + B @ A."""
    return (W0.float() + B.float() @ A.float()).to(W0.dtype)


def merge_and_save(
    base_path: str, adapter_dir: str, out_dir: str, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> PreTrainedModel:
    """Calls merge_and_unload() without assigning its result, so saves and returns the emptied PeftModel."""
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype, device_map=device)
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.merge_and_unload()
    model.save_pretrained(out_dir)
    return model


def update_lost(W_before: torch.Tensor, W_after: torch.Tensor, delta: torch.Tensor) -> float:
    """Divides by the norm of the weight instead of the update's, which makes any loss look negligible."""
    W_before, W_after, delta = W_before.float(), W_after.float(), delta.float()
    return ((W_after - W_before - delta).norm() / W_after.norm()).item()


def combined_delta(adapters: list[tuple[torch.Tensor, torch.Tensor, float]], weights: list[float]) -> torch.Tensor:
    """Combines the factors, not the updates (PEFT's "linear"): (sum sqrt(w s) B) @ (sum sqrt(w s) A)."""
    A = sum((w * s) ** 0.5 * a for (a, _, s), w in zip(adapters, weights, strict=True))
    B = sum((w * s) ** 0.5 * b for (_, b, s), w in zip(adapters, weights, strict=True))
    return B @ A


def lora_extra_fraction(model: nn.Module) -> float:
    """Compares with the adapted layers only, not with every linear layer of the model."""
    lora = base = 0
    for module in model.modules():
        if hasattr(module, "lora_A") and hasattr(module, "base_layer"):
            base += module.base_layer.weight.numel()
            lora += sum(m.weight.numel() for m in module.lora_A.values()) + sum(
                m.weight.numel() for m in module.lora_B.values()
            )
    return lora / base


def check_your_understanding() -> dict[str, float]:
    """Thinks the ranks of a "cat" combination stay as they were: 8 instead of 8 + 8."""
    return {"lora_layers_after_merge_and_unload": 0, "scaling_inside_rescale_half": 1.0, "rank_after_cat": 8}


RECORDED = (
    "losses", "score_trained", "lora_count", "header_bytes", "adapter_bytes", "llama2_count", "reload_error",
    "hand_vs_peft", "lora_layers_left", "merge_error_fp32", "shell_tensors", "precision_rows", "from_disk_error",
    "score_from_disk", "lost_int8", "lost_fp32", "steps_in_update", "lost_sweep", "paths", "unload_error",
    "round_trip_weight", "round_trip_logits", "merged_in_place_error", "base_changed", "adapter_scores",
    "combination_errors", "strength_scores", "merged_trainable", "extra_fraction", "llama2_extra_fraction",
    "latency_ratios", "merge_warnings", "weight_change", "multipliers", "latency_verdict", "live",
)  # fmt: skip


def check_claims(values: dict) -> None:
    """The lesson's claims about its own run on the tiny model, checked on the executed notebook."""
    v = values
    # 6.1: trained well; the adapter file is the formula plus the header; reloading is exact
    assert v["score_trained"] >= 0.9, f"6.1: the trained adapter should score about 100 %, got {v['score_trained']}"
    assert v["adapter_bytes"] == 4 * v["lora_count"] + v["header_bytes"], "6.1: adapter file = 4 x count + header"
    assert v["llama2_count"] == 4_194_304, f"6.1: Llama-2-7b twin count {v['llama2_count']}"
    assert v["reload_error"] == 0.0, f"6.1: reloaded adapter should be exact, differs by {v['reload_error']}"
    # 6.2: by hand = PEFT; merge is float rounding in fp32; the unassigned shell saves no tensor
    assert 0.05 < v["weight_change"] < 0.2, f"6.2: the Try it says about a tenth, got {v['weight_change']}"
    assert v["hand_vs_peft"] <= 1e-6, f"6.2: merged_weight vs PEFT's merge: {v['hand_vs_peft']}"
    assert v["lora_layers_left"] == 0, f"6.2: LoRA layers left after merge_and_unload: {v['lora_layers_left']}"
    assert v["merge_error_fp32"] <= 1e-4, f"6.2: fp32 merge should be rounding only, got {v['merge_error_fp32']}"
    assert v["shell_tensors"] == 0, f"6.2: the emptied PeftModel's adapter file holds {v['shell_tensors']} tensors"
    fp32, bf16 = v["precision_rows"]["fp32"], v["precision_rows"]["bf16"]
    assert max(fp32) <= 1e-4 and fp32[1] == 0.0, f"6.2: fp32 row should be rounding only, got {fp32}"
    assert bf16[0] > 100 * fp32[0] and bf16[1] > 100 * max(fp32[0], 1e-7), f"6.2: bf16 rounds visibly: {bf16}"
    assert bf16[0] > 0.3 * bf16[1] and bf16[2] >= bf16[1], f"6.2: the bf16 merge moves the logits about as much: {bf16}"
    # 6.3: the shipped model is the trained one
    assert v["from_disk_error"] <= 1e-4, f"6.3: shipped vs trained {v['from_disk_error']}"
    assert v["score_from_disk"] == v["score_trained"], "6.3: shipped and trained score alike"
    # 6.4: one warning per layer; about one percent lost; the sweep; the table
    assert v["merge_warnings"] and all(n == 8 and "8-bit" in m for m, n in v["merge_warnings"].items()), (
        f"6.4: one 8-bit warning per adapted layer (8), got {v['merge_warnings']}"
    )
    lost = list(v["lost_int8"].values())
    assert all(0.003 < x < 0.03 for x in lost), f"6.4: about one percent of each update lost, got {lost}"
    assert v["lost_fp32"] < 1e-5, f"6.4: the fp32 merge loses a negligible fraction, got {v['lost_fp32']}"
    sizes, swept = v["steps_in_update"], v["lost_sweep"]
    assert sizes == sorted(sizes) and swept == sorted(swept, reverse=True), f"6.4: monotone sweep {sizes} {swept}"
    assert sizes[0] < 0.5 and swept[0] > 0.5 and swept[-1] < 0.03, f"6.4: below half a step most is lost: {swept}"
    errors = {path: error for path, (error, _) in v["paths"].items()}
    full = [errors[p] for p in ("adapter reloaded, unmerged", "merged in fp32", "merged, saved, reloaded (6.3)")]
    int8 = [errors[p] for p in errors if "8-bit" in p]
    assert max(full) <= 1e-4 and min(int8) > 1000 * max(max(full), 1e-7), f"6.4: fp32 vs 8-bit rows: {errors}"
    assert max(int8) < 2 * min(int8), f"6.4: the 8-bit rows differ by about as much as each other: {int8}"
    scores = {path: score for path, (_, score) in v["paths"].items() if score is not None}
    merged_8, after_8 = scores["merged into the 8-bit base"], scores["merged in fp32, then loaded in 8-bit"]
    assert abs(merged_8 - after_8) <= 0.03, f"6.4: the two merged 8-bit paths score alike: {merged_8}, {after_8}"
    # 6.5: unload exact; round trip up to rounding; adapters switch; cat exact, linear not; the dial
    assert v["unload_error"] == 0.0, f"6.5: unload gives the base exactly, got {v['unload_error']}"
    assert v["round_trip_weight"] < 1e-6 and v["round_trip_logits"] < 1e-4, "6.5: round trip up to rounding"
    assert v["merged_in_place_error"] < 1e-4, f"6.5: merge_adapter {v['merged_in_place_error']}"
    assert v["base_changed"] == 0.0, f"6.5/6.6: the base never trains, changed by {v['base_changed']}"
    s = v["adapter_scores"]
    assert s["sentiment"] >= 0.9 and s["opposite"] == 0.0 and s["none (disable_adapter)"] == 0.0, f"6.5: {s}"
    assert v["combination_errors"]["both_cat"] < 1e-5 < 0.1 < v["combination_errors"]["both_linear"], (
        f"6.5: cat equals the sum of updates, linear does not: {v['combination_errors']}"
    )
    sentiment, opposite = v["strength_scores"]["sentiment"], v["strength_scores"]["opposite"]
    assert v["multipliers"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25], f"6.5: the full sweep: {v['multipliers']}"
    assert sentiment[0] == opposite[0] == 0.0, f"6.5: multiplier 0 is the base: {sentiment[0]}, {opposite[0]}"
    assert sentiment[4] == s["sentiment"] and opposite[4] == 0.0, "6.5: multiplier 1 is the adapter as trained"
    assert max(opposite) < max(sentiment), f"6.5: the opposite adapter never scores as well: {opposite} {sentiment}"
    # 6.6 and 6.7
    assert v["merged_trainable"] == 0, f"6.6: merged model parameters requiring grad: {v['merged_trainable']}"
    assert 0.01 < v["extra_fraction"] < 0.05, f"6.7: a few percent for tiny, got {v['extra_fraction']}"
    assert 0.0005 < v["llama2_extra_fraction"] < 0.001, f"6.7: hundredths of a percent: {v['llama2_extra_fraction']}"
    ratios = v["latency_ratios"]  # noisy on a shared machine (0.9x to 1.3x seen): only loose claims
    assert 0.5 < ratios["merged"] < 2.0, f"6.7: merged runs like the base, up to noise: {ratios}"
    gap = ratios["unmerged adapter"] / ratios["merged"]
    expected_start = "the unmerged adapter was" if gap > 1.1 else "the merged model was" if gap < 0.9 else "the two"
    assert v["latency_verdict"].startswith(expected_start), f"6.7: verdict {v['latency_verdict']!r} vs gap {gap}"
    # memory: at most three copies of the model at the end (the parameters cell says so)
    assert 1 <= len(v["live"]) <= 3, f"the lesson should hold at most three models at the end: {v['live']}"
