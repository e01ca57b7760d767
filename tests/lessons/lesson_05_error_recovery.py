"""Lesson 5 (error recovery): the most common mistake per exercise, and the claims the lesson makes about its run.

Each function is named after an answer cell's grade_id and holds that exercise's most common plausible mistake
(its docstring says which). The grading tests submit them all at once: each exercise must lose its points, its
visible tests alone must already fail, and its test cell must pass again with the course's solution while every
other answer stays wrong. `check_claims` checks the numbers the lesson's prose states about its default run on
the tiny model (RECORDED names the notebook variables it reads).
"""

import math

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase


def classify_error(err: BaseException) -> str:
    """Believes the tutorial's 'ValueError: target_modules not found': every ValueError is a target_modules error."""
    message = str(err)
    if isinstance(err, ValueError):
        return "target_modules"
    if isinstance(err, TypeError) and "unexpected keyword argument" in message:
        return "removed_keyword"
    if isinstance(err, AttributeError):
        return "wrong_object"
    if isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in message:
        return "out_of_memory"
    if isinstance(err, RuntimeError) and "does not require grad" in message:
        return "nothing_trainable"
    return "unknown"


def unmatched_targets(model: nn.Module, target_modules: list[str]) -> list[str]:
    """Matches by substring (`t in name`), so 'proj' counts as matched although PEFT finds nothing for it."""
    names = [name for name, _ in model.named_modules()]
    return [t for t in target_modules if not any(t in name for name in names)]


def largest_batch_within(measure, budget: int, candidates: list[int]) -> int:
    """Extrapolates from batch 1 (budget // measure(1)), as if the whole step grew with the batch."""
    return budget // measure(1)


def flat_loss_cause(model: nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """Checks requires_grad and the learning rate, never which parameters the optimizer holds."""
    if not any(p.requires_grad for p in model.parameters()):
        return "nothing trainable"
    if all(group["lr"] < 1e-5 for group in optimizer.param_groups):
        return "learning rate too small"
    return "fine"


def add_pad_token(tokenizer: PreTrainedTokenizerBase, model: nn.Module) -> PreTrainedTokenizerBase:
    """Copies the usual fix (with_pad_token): checks only for a missing pad token, keeps one the model cannot embed."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_your_understanding() -> dict:
    """Believes the tutorial's 'zero learning signal': a partial match trains nothing."""
    return {"no_match_is_value_error": True, "partial_match_trainable": 0, "early_optimizer_change": 0.0}


RECORDED = (
    "partial_trainable", "intended_trainable", "baseline_bytes", "budget_bytes", "memory_rows", "fitting_fixes",
    "largest_fitting", "measured", "curves", "weight_change", "max_steps", "saved_files", "merged_is_base",
    "lora_left", "uniform_loss",
)  # fmt: skip

MIB = 2**20


def check_claims(values: dict) -> None:
    """The lesson's claims about its own run on the tiny model, checked on the executed notebook."""
    v = values
    # 5.2: a partial match trains half of what was meant, and says nothing
    assert v["partial_trainable"] * 2 == v["intended_trainable"] == 16_384, (
        f"5.2 says half: {v['partial_trainable']} of {v['intended_trainable']}"
    )
    # 5.4: the PEFT model saved its adapter
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(v["saved_files"]), v["saved_files"]
    # 5.4: merge_and_unload works in place: it returns the wrapped base object and leaves no LoRA tensor
    assert v["merged_is_base"] is True, "5.4: merge_and_unload() returns the base object the PEFT model wrapped"
    assert v["lora_left"] == 0, f"5.4: no LoRA tensor is left after merging, found {v['lora_left']}"
    # 5.5: the first setting is over the budget; half the batch, half the length, checkpointing (furthest) and the
    # fp16 base fit; the 8-bit base does not and needs more than the fp16 base; rank 1 saves a fraction of a MiB
    rows, budget = v["memory_rows"], v["budget_bytes"]
    first, half_batch, half_seq, checkpointing, fp16, int8, rank1 = rows.values()
    assert first == v["baseline_bytes"] > budget, f"5.5: the first setting must exceed the budget: {rows}, {budget}"
    assert max(half_batch, half_seq, checkpointing, fp16) <= budget, f"5.5: these four fit: {rows}"
    assert checkpointing == min(rows.values()), f"5.5: checkpointing goes furthest: {rows}"
    assert int8 > budget and int8 > fp16, f"5.5: the 8-bit base is over, and above the fp16 base: {rows}"
    assert rank1 > budget, f"5.5: rank 1 stays over the budget: {rows}"
    assert 0 <= first - rank1 < MIB, f"5.5: rank 1 saves a fraction of a MiB, saved {(first - rank1) / MIB:.2f}"
    assert len(v["fitting_fixes"]) == 4, f"the errata cell lists the four settings that fit: {v['fitting_fixes']}"
    # Exercise 3's try-it: 4 is the largest batch that fits, and the measured sizes grow with the batch
    assert v["largest_fitting"] == 4, f"Exercise 3's try-it expects 4, got {v['largest_fitting']}"
    sizes = [v["measured"][k] for k in sorted(v["measured"], key=int)]
    assert sizes == sorted(sizes), f"the step's memory grows with the batch: {v['measured']}"
    # 5.6: the healthy run learns; the other two wander where they started; exact zero for the optimizer-first run
    curves, change = v["curves"], v["weight_change"]
    assert all(len(c) == v["max_steps"] for c in curves.values()), "each run takes max_steps steps"
    assert curves["healthy"][0] > v["uniform_loss"], f"5.6: the first loss is above ln(vocab): {curves['healthy'][0]}"
    assert curves["healthy"][-1] < 0.2 * curves["healthy"][0], f"healthy run: {curves['healthy'][::10]}"
    for name in ("optimizer first", "learning rate 1e-6"):
        assert curves[name][-1] > 0.9 * curves[name][0], f"5.6: {name} should not fall: {curves[name][::10]}"
    assert change["optimizer first"] == 0.0, f"5.6: lora_B of the optimizer-first run moved {change}"
    slow, steps = change["learning rate 1e-6"], v["max_steps"]
    assert 0 < slow <= 1.5e-6 * steps, f"5.6: with lr 1e-6 lora_B moves about lr per step: {slow} in {steps} steps"
    assert change["healthy"] > 1000 * slow, f"5.6: thousands of times less than the healthy run: {change}"
    assert math.isfinite(change["healthy"])
