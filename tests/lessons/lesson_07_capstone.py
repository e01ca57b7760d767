"""Lesson 7 (the capstone): the most common mistake per exercise, and the claims the lesson makes about its run.

Each function is named after an answer cell's grade_id and holds that exercise's most common plausible mistake
(its docstring says which). `check_claims` checks the numbers the lesson's prose states about its default run on
the tiny model (RECORDED names the notebook variables it reads).
"""

import math

import torch
from peft import LoraConfig, PeftModel
from torch import nn


def steps_for_epochs(
    n_examples: int, epochs: int, per_device_batch_size: int, world_size: int = 1, grad_accum: int = 1
) -> int:
    """Forgets the other processes: the global batch taken as per_device_batch_size x grad_accum."""
    return epochs * math.ceil(n_examples / (per_device_batch_size * grad_accum))


def expected_adapter_bytes(model: nn.Module, lora_config: LoraConfig, bytes_per_param: int = 4) -> int:
    """Counts A only (r x in_features), forgetting B (out_features x r)."""
    targets = lora_config.target_modules
    adapted = [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)
    ]
    return sum(lora_config.r * m.in_features for m in adapted) * bytes_per_param


def merge_difference(peft_model: PeftModel, inputs: dict[str, torch.Tensor]) -> float:
    """Merges with merge_and_unload, which takes the adapters out of the model it was asked to check."""
    with torch.no_grad():
        unmerged = peft_model(**inputs).logits
        merged = peft_model.merge_and_unload()(**inputs).logits
    return (merged - unmerged).abs().max().item()


def exact_match_score(generations: list[str], labels: list[str]) -> float:
    """Compares the raw generation, whose leading space (' positive') never equals the label ('positive')."""
    return sum(g == label for g, label in zip(generations, labels, strict=True)) / len(labels)


def report_table(rows: dict[str, dict[str, float]]) -> str:
    """Leaves out Markdown's separator line |---|, so the table renders as plain text."""
    columns = list(next(iter(rows.values())))
    lines = ["| model | " + " | ".join(columns) + " |"]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)


def check_your_understanding() -> dict[str, int]:
    """Takes the per-device batch for the global one: 16 examples per step on two processes."""
    return {"examples_per_step": 16, "adapter_files": 1, "steps_two_processes": 60}


RECORDED = (
    "one_epoch", "losses", "saved_bytes", "header_bytes", "formula_bytes", "score_base", "score_trained",
    "score_reloaded", "bad_inputs", "merge_diff", "merged_lora_modules", "scores", "score_merged",
    "score_fresh_base", "report_files", "report_intact", "leftovers", "real_error", "trainable_after_load",
    "trainable_after_disable", "merged_trainable", "uniform_nats",
)  # fmt: skip


def check_claims(values: dict) -> None:
    """The lesson's claims about its own run on the tiny model, checked on the executed notebook."""
    v = values
    assert v["one_epoch"] == [16, 8, 4], f"Exercise 1's try-it expects 16 8 4, got {v['one_epoch']}"
    losses = v["losses"]
    assert len(losses) == 12 and losses[-1] < 0.1 * losses[0], f"7.2: 12 logs, the loss falls: {losses}"
    assert 9 < losses[0] < 11 and losses[0] > v["uniform_nats"], f"7.2: starts near 10 nats, above ln(vocab): {losses}"
    # 7.3: formula + header = the file, a header of a few kilobytes
    assert v["formula_bytes"] + v["header_bytes"] == v["saved_bytes"], "7.3: formula + header should be the file"
    assert 1_000 <= v["header_bytes"] < 10_000, f"7.3: a header of a few kilobytes, got {v['header_bytes']}"
    # 7.4: reloaded scores what the trained model scored; the base scores nothing
    assert v["score_reloaded"] == v["score_trained"] >= 0.9, (
        f"7.4: trained {v['score_trained']} and reloaded {v['score_reloaded']} should agree, near 100 %"
    )
    assert v["score_base"] == 0.0 == v["score_fresh_base"], f"7.4/7.6: the base scores 0: {v['score_base']}"
    assert v["trainable_after_load"] == 0 < v["trainable_after_disable"], "7.4: frozen, then trainable again"
    assert v["merged_trainable"] == 0, "row 18: nothing trainable in the merged model"
    assert v["bad_inputs"] == ["NotAnAdapter", "AdapterMismatch", "NotAPeftModel"], v["bad_inputs"]
    # 7.5: rounding level, no LoRA module left
    assert v["merge_diff"] < 1e-4, f"7.5: merge difference below 1e-4, the tests' bound, got {v['merge_diff']}"
    assert v["merged_lora_modules"] == 0, "7.5: no LoRA module after merge_and_unload"
    # 7.6: the two metrics agree for both models; merged = reloaded
    for label, pair in v["scores"].items():
        generated, forced = pair.values()
        assert generated == forced, f"7.6: the metrics should agree for {label}: {pair}"
    assert v["score_merged"] == v["score_reloaded"], "row 17: merged scores what the reloaded adapter scored"
    # 7.7: the report, atomically
    assert set(v["report_files"]) == {"report.md", "loss.png", "metrics.json"}, v["report_files"]
    assert v["report_intact"] is True and v["leftovers"] == [], "7.7: the crash leaves the report and no temp file"
    assert "has no attribute 'merge_and_unload'" in v["real_error"], v["real_error"]
