"""Lesson 4 (the target_modules gotcha): the most common mistake per exercise, and the claims the lesson makes.

Each function is named after an answer cell's grade_id and holds that exercise's most common plausible mistake
(its docstring says which). The grading tests submit them all at once: each exercise must lose its points, its
visible tests alone must already fail, and its test cell must pass again with the course's solution while every
other answer stays wrong. `check_claims` checks the numbers the lesson's prose states about its default run on
the tiny model (RECORDED names the notebook variables it reads).
"""

import math
import re

from torch import nn


def candidate_targets(model: nn.Module) -> list[str]:
    """Looks for nn.Linear only, so GPT-2's Conv1D layers (c_attn, c_proj, c_fc) are missing."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)})


def will_wrap(names: list[str], target_modules: list[str] | str) -> list[str]:
    """Matches a list entry as a plain suffix (no '.' before it) and a string with re.search, not the whole name."""
    if isinstance(target_modules, str):
        return [name for name in names if re.search(target_modules, name)]
    return [name for name in names if any(name.endswith(t) for t in target_modules)]


def attention_targets(model_type: str) -> list[str]:
    """Uses the bare short names, so BERT's 'dense' and GPT-2's 'c_proj' also pick MLP (and pooler) layers."""
    return {
        "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "bert": ["query", "key", "value", "dense"],
        "gpt2": ["c_attn", "c_proj"],
        "gpt_neox": ["query_key_value", "dense"],
        "phi3": ["qkv_proj", "o_proj"],
    }[model_type]


def adapters_without_gradient(model: nn.Module, adapter_name: str = "default") -> list[str]:
    """Checks lora_A only, whose gradient is zero at the first step: every healthy layer is reported."""
    return [
        name
        for name, module in model.named_modules()
        if hasattr(module, "lora_A")
        and adapter_name in module.lora_A
        and (module.lora_A[adapter_name].weight.grad is None or not module.lora_A[adapter_name].weight.grad.any())
    ]


def check_your_understanding() -> dict:
    """The tutorial's belief: a wrong name next to a right one means those layers do not train at all (0)."""
    return {
        "caught_by_except_valueerror": True,
        "lora_layers_for_q_proj_query": 0,
        "max_grad_A_first_step": 0.0,
        "gpt2_fan_in_fan_out": True,
    }


RECORDED = (
    "n_layers", "no_match_errors", "no_default_error", "silent_counts", "silent_warnings", "fan_warnings",
    "conv_shapes", "fixed_warnings", "all_linear", "first_grads", "second_grads", "stuck", "ranks", "budget_counts",
    "base_loss", "uniform_loss", "learned", "mean_losses", "results", "between_configs", "within_seeds", "ordered",
)  # fmt: skip


def check_claims(values: dict) -> None:
    """The lesson's claims about its own run on the tiny model, checked on the executed notebook."""
    v = values
    layers = v["n_layers"]
    assert layers == 4, f"the tiny model has 4 decoder layers, got {layers}"
    # 4.2 (a): no name matches -> NoMatchingPeftModuleError with PEFT's message; Phi-3 has no default
    first, second = v["no_match_errors"]
    assert first.startswith("NoMatchingPeftModuleError: Target modules {'query'} not found in the base model"), first
    assert second.startswith("NoMatchingPeftModuleError: Target modules {"), second
    assert "Please specify `target_modules`" in v["no_default_error"], v["no_default_error"]
    # 4.2 (b): some match -> half the layers, no warning
    assert v["silent_counts"][0] == 2 * layers and v["silent_counts"][2] == layers, v["silent_counts"]
    assert v["silent_counts"][1] == 2 * v["silent_counts"][3], f"half the adapters: {v['silent_counts']}"
    assert v["silent_warnings"] == [], f"4.2 says no warning: {v['silent_warnings']}"
    # GPT-2: one warning (the config is changed after the first layer), shapes, and no warning when set
    assert len(v["fan_warnings"]) == 1 and "Setting fan_in_fan_out to True" in v["fan_warnings"][0], v["fan_warnings"]
    assert v["conv_shapes"] == [[64, 192], [64, 192], [192, 64]], v["conv_shapes"]
    assert v["fixed_warnings"] == [], v["fixed_warnings"]
    # 4.3: all-linear leaves out lm_head but keeps BERT's pooler.dense
    assert len(v["all_linear"]["this lesson's model"]) == 7 * layers, v["all_linear"]["this lesson's model"]
    assert "pooler.dense" in v["all_linear"]["BERT (minilm)"], "4.3: BertModel's pooler gets LoRA with all-linear"
    assert not any(name.endswith("lm_head") for names in v["all_linear"].values() for name in names)
    # 4.3: first step, every A's gradient exactly zero and every B's not; after one step, every A has one
    assert len(v["first_grads"]) == 7 * layers, len(v["first_grads"])
    assert all(a == 0.0 and b > 0.0 for a, b in v["first_grads"].values()), v["first_grads"]
    assert min(v["second_grads"].values()) > 0, v["second_grads"]
    assert len(v["stuck"]) == layers and all(name.endswith("q_proj") for name in v["stuck"]), v["stuck"]
    # 4.4: the same budget; every config learns; the differences are small against training, q, v highest
    assert v["ranks"] == {"q, v": 8, "q, k, v, o": 4, "all-linear": 2}, v["ranks"]
    counts = list(v["budget_counts"].values())
    assert max(counts) <= 1.1 * min(counts), f"about the same budget: {counts}"
    means = v["mean_losses"]
    assert abs(v["uniform_loss"] - math.log(685)) < 1e-9, f"uniform guessing over 685 tokens: {v['uniform_loss']}"
    assert v["base_loss"] > v["uniform_loss"], "4.4 says the base model does worse than uniform guessing"
    assert v["learned"] is True and all(mean < v["uniform_loss"] / 2 for mean in means.values()), means
    assert all(mean < 0.2 * v["base_loss"] for mean in means.values()), f"far below the base: {means}"
    assert v["between_configs"] < v["base_loss"] - max(means.values()), "configs differ less than training moved"
    assert v["within_seeds"] > 0, "the seeds of one config differ"
    assert v["ordered"][-1] == "q, v", f"4.4 says q, v alone had the highest mean held-out loss: {means}"
    assert all(math.isfinite(run["heldout_loss"]) for runs in v["results"].values() for run in runs)
