"""Lesson 2 (LoraConfig): the most common mistake per exercise, and the claims the lesson makes about its run.

Each function is named after an answer cell's grade_id and holds that exercise's most common plausible mistake
(its docstring says which). The grading tests submit them all at once: each exercise must lose its points, its
visible tests alone must already fail, and its test cell must pass again with the course's solution while every
other answer stays wrong. `check_claims` checks the numbers the lesson's prose states about its default run on
the tiny model (RECORDED names the notebook variables it reads).
"""

from peft import LoraConfig
from torch import nn


def target_regex(layers: list[int], modules: list[str]) -> str:
    """Leaves the layer number open at its end: layers.1 also picks layers.10 and layers.11."""
    numbers, names = "|".join(str(i) for i in layers), "|".join(modules)
    return rf".*\.layers\.({numbers}).*\.({names})"


def alpha_for_rank(r_old: int, alpha_old: float, r_new: int, use_rslora: bool = False) -> float:
    """Scales alpha with the rank ratio even with rsLoRA, where the scale is alpha / sqrt(r)."""
    return alpha_old * r_new / r_old


def count_trainable(
    model: nn.Module,
    target_modules: list[str],
    r: int,
    bias: str = "none",
    modules_to_save: list[str] | None = None,
    use_dora: bool = False,
) -> int:
    """Takes bias='all' for the biases of the adapted layers only, which is what 'lora_only' does."""
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t) for t in target_modules):
            count += r * (module.in_features + module.out_features) + (module.out_features if use_dora else 0)
            if bias != "none" and module.bias is not None:
                count += module.bias.numel()
        if any(name.endswith(m) for m in modules_to_save or []):
            count += sum(p.numel() for p in module.parameters())
    return count


def spec_config() -> LoraConfig:
    """Gives down_proj rank 2 but not alpha 4: its scale becomes 16 / 2 = 8, not 2."""
    return LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules="all-linear",
        rank_pattern={"down_proj": 2},
        lora_dropout=0.1,
        modules_to_save=["lm_head"],
        task_type="CAUSAL_LM",
    )


def scales_after_edit(r: int, lora_alpha: float, new_alpha: float, use_rslora: bool = False) -> tuple[float, float]:
    """The tutorial's belief: the edit takes effect at once, so both scales are new_alpha / r."""
    divisor = r**0.5 if use_rslora else r
    return new_alpha / divisor, new_alpha / divisor


def check_your_understanding() -> dict:
    """Believes that get_peft_model wraps a copy of the model, not the model itself."""
    return {"base_params_trainable": 0, "same_object": False, "lm_head_in_all_linear": False, "bias_all_on_llama2": 0}


RECORDED = (
    "loaded_trainable", "first_trainable", "first_total", "base_still_trainable", "same_logits", "init_changes",
    "dropout_diffs", "bias_params", "dora_at_init", "tutorial_scaling", "tutorial_layers", "losses", "score_before",
    "score_after", "trained_score", "edit_change", "reload_change", "score_edited", "trained_loss", "edited_loss",
    "rescaled_change", "multipliers", "dial_scores", "dial_losses", "set_scale_change", "continued",
    "continued_scores", "final_losses", "scheme_finals", "same_runs", "spreads", "partial_warnings",
)  # fmt: skip


def check_claims(values: dict) -> None:
    """The lesson's claims about its own run on the tiny model, checked on the executed notebook."""
    v = values
    # 2.1: everything trainable as loaded; get_peft_model freezes the base; unload gives the same logits back
    assert v["loaded_trainable"] == 831_872, f"2.1: all 831,872 trainable as loaded, got {v['loaded_trainable']}"
    assert (v["first_trainable"], v["first_total"]) == (16_384, 848_256), "2.1: r=8 on q_proj, v_proj counts"
    assert v["base_still_trainable"] == [], f"2.1: no base parameter trains, got {v['base_still_trainable']}"
    assert v["same_logits"] is True, "2.1: after unload the logits are exactly the base model's"
    # 2.4: True and gaussian start exactly at the base, False does not; dropout only in training mode
    true_init, gaussian_init, false_init = v["init_changes"]
    assert true_init == 0.0 and gaussian_init == 0.0 and false_init > 0.1, f"2.4: init changes {v['init_changes']}"
    assert v["dropout_diffs"][0] > 0.01 and v["dropout_diffs"][1] == 0.0, f"2.4: dropout {v['dropout_diffs']}"
    # 2.5: Llama has no biases; DoRA starts at the base up to rounding
    assert v["bias_params"] == 0, f"2.5: the tiny Llama has no bias parameters, got {v['bias_params']}"
    assert v["dora_at_init"] <= 1e-5, f"2.5: DoRA at init should equal the base up to rounding: {v['dora_at_init']}"
    # 2.7: the tutorial's config: scale 2, 8 layers, the fine-tune reaches about 100 %
    assert v["tutorial_scaling"] == 2.0 and v["tutorial_layers"] == 8, "2.7: scaling 16/8 = 2.0 on 8 LoRA layers"
    assert len(v["losses"]) == 80 and v["losses"][-1] < 0.1 * v["losses"][0], f"2.7: the loss falls: {v['losses']}"
    assert v["score_before"] == 0.0 and v["score_after"] >= 0.95, "2.7: held-out exact match 0 % -> about 100 %"
    # 2.8: the edit changes nothing; the reload does (logits, loss), while the labels mostly survive
    assert v["trained_score"] == v["score_after"], "2.8: held_out scores exact match as exact_match does"
    assert v["edit_change"] == 0.0, f"2.8: the config edit changes no logit, got {v['edit_change']}"
    assert v["reload_change"] > 1.0, f"2.8: the reloaded adapter's logits moved, by {v['reload_change']}"
    edited, trained = v["score_edited"], v["trained_score"]
    assert 0.9 <= edited <= trained, f"2.8: 'the exact match stays at or near the trained one': {trained} -> {edited}"
    assert v["edited_loss"] > v["trained_loss"], (
        f"2.8: 'the held-out loss rose': {v['trained_loss']} -> {v['edited_loss']}"
    )
    assert v["rescaled_change"] == 0.0 and v["set_scale_change"] == 0.0, "2.8: x0.5 undoes the edit exactly"
    # 2.8: the dial: x0 is the base (0 %), x1 the trained adapter
    scores = dict(zip(v["multipliers"], v["dial_scores"], strict=True))
    assert scores[0.0] == v["score_before"] and scores[1.0] == v["score_after"], f"2.8: the dial {scores}"
    assert scores[0.0] < scores[0.25] < scores[0.5] <= scores[1.0], f"2.8: the score grows along the dial: {scores}"
    # 2.9: x1 restarts near where the first run stopped and ends below it; the first loss after a jump grows with
    # the jump, far above x1's; jumped runs do not catch up
    x1, x2, x8 = (v["continued"][f"scale x{f}"] for f in (1, 2, 8))
    stopped = v["losses"][-1]
    assert abs(x1[0] - stopped) < 0.25 * (x2[0] - stopped), (
        f"2.9: x1's first loss {x1[0]} 'lands near' the last one before, {stopped}, next to x2's jump to {x2[0]}"
    )
    assert x1[0] < x2[0] < x8[0], f"2.9: first losses after the jump {x1[0]}, {x2[0]}, {x8[0]} should grow"
    assert x1[-1] < stopped, f"2.9: x1's last loss {x1[-1]} 'is below where the first run stopped', {stopped}"
    assert x2[-1] > x1[-1] and x8[-1] > x1[-1], f"2.9: jumped runs end above x1: {x1[-1]}, {x2[-1]}, {x8[-1]}"
    assert v["continued_scores"][2] < v["continued_scores"][0], f"2.9: x8 scores below x1: {v['continued_scores']}"
    # 2.10: identical runs where rank and scale coincide; the trends of each scheme
    assert v["same_runs"] == [True, True], f"2.10: identical curves at equal rank and scale, got {v['same_runs']}"
    ratio, rslora = (v["scheme_finals"][s] for s in ("α/r fixed", "rsLoRA"))
    assert ratio == sorted(ratio, reverse=True), f"2.10: alpha/r fixed, the final loss falls with the rank: {ratio}"
    assert rslora == sorted(rslora, reverse=True), f"2.10: rsLoRA, the final loss falls with the rank: {rslora}"
    spreads = v["spreads"]
    assert spreads["α fixed"] < 1.5 < 3 < min(spreads["α/r fixed"], spreads["rsLoRA"]), (
        f"2.10: alpha fixed ends close together, the other schemes spread far more widely: {spreads}"
    )
    # errata row 12: a name that matches nothing is ignored without a warning
    assert v["partial_warnings"] == [], f"row 12: no warning for ['q_proj', 'query'], got {v['partial_warnings']}"
