"""Lesson 1 (LoRA theory): the most common mistake per exercise, and the claims the lesson makes about its run.

Each function is named after an answer cell's grade_id and holds that exercise's most common plausible mistake
(its docstring says which). The grading tests submit them all at once: each exercise must lose its points, its
visible tests alone must already fail, and its test cell must pass again with the course's solution while every
other answer stays wrong. `check_claims` checks the numbers the lesson's prose states about its default run on
the tiny model (RECORDED names the notebook variables it reads).
"""

import math

import torch
from torch import nn


def lora_scaling(lora_alpha: float, r: int, use_rslora: bool = False) -> float:
    """Forgets rsLoRA's square root: lora_alpha / r whether use_rslora is set or not."""
    return lora_alpha / r


def lora_forward(
    x: torch.Tensor, W0: torch.Tensor, A: torch.Tensor, B: torch.Tensor, lora_alpha: float, r: int
) -> torch.Tensor:
    """Forgets the lora_alpha / r scale on the LoRA branch: h = W0 x + B A x."""
    return x @ W0.T + (x @ A.T) @ B.T


def count_lora_params(d_in: int, d_out: int, r: int) -> int:
    """The paper's square-matrix count 2 * d * r, wrong when d_in != d_out."""
    return 2 * d_in * r


def lora_params_for(config, r: int, target_modules: list[str]) -> int:
    """Ignores grouped-query attention: k_proj and v_proj taken as hidden_size -> hidden_size."""
    hidden, inter = config.hidden_size, config.intermediate_size
    shapes = {"q_proj": (hidden, hidden), "k_proj": (hidden, hidden), "v_proj": (hidden, hidden),
              "o_proj": (hidden, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
              "down_proj": (inter, hidden)}  # fmt: skip
    return config.num_hidden_layers * sum(count_lora_params(*shapes[name], r) for name in target_modules)


def trainable_and_total(model: nn.Module) -> tuple[int, int]:
    """Takes the frozen parameters for the total, so the trainable ones are missing from it."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params if not p.requires_grad)


def effective_rank(matrix: torch.Tensor, rtol: float = 1e-4) -> int:
    """Compares the singular values with rtol itself (an absolute threshold), not with rtol * the largest."""
    s = torch.linalg.svdvals(matrix.detach().float())
    return int((s > rtol).sum())


def check_your_understanding() -> dict[str, float]:
    """Takes rsLoRA's scale for lora_alpha / r: 4 / 16 = 0.25 instead of sqrt(4 / 16) = 0.5."""
    return {"alpha_16_to_32": 2.0, "rank_4_to_16_rslora": 0.25, "logit_change_at_init": 0.0}


RECORDED = (
    "peft_at_init", "hand_at_init", "hand_vs_peft", "uniform_loss", "answer_losses", "expected_probs", "losses",
    "score_before", "score_after", "delta_check", "sigma_ratios", "delta_ranks", "w0_ranks", "trainable", "total",
    "reduction", "formula_errors",
)  # fmt: skip


def check_claims(values: dict) -> None:
    """The lesson's claims about its own run on the tiny model, checked on the executed notebook."""
    v = values
    # 1.4: B = 0 changes nothing, exactly; ours equals PEFT's up to float rounding at most
    assert v["peft_at_init"] == 0.0, (
        f"1.4: PEFT's model at B = 0 should equal the base exactly, differs by {v['peft_at_init']}"
    )
    assert v["hand_at_init"] == 0.0, (
        f"1.4 (a): ours at B = 0 should equal the base exactly, differs by {v['hand_at_init']}"
    )
    assert v["hand_vs_peft"] <= 1e-5, (
        f"1.4 (b): ours should equal PEFT's up to rounding, differs by {v['hand_vs_peft']}"
    )
    # 1.7: the base scores nothing; it is confidently wrong, so it pays more than ln V on each answer token
    assert v["score_before"] == 0.0, f"1.7 says the base gets no answer exactly right, it scored {v['score_before']}"
    assert len(v["answer_losses"]) == 2, f"1.7 names two answer tokens (' positive', eos), got {v['answer_losses']}"
    assert all(loss > v["uniform_loss"] for loss in v["answer_losses"]), (
        f"1.7: each answer token should cost more than ln V = {v['uniform_loss']:.2f}, got {v['answer_losses']}"
    )
    assert all(p > 0.5 for p in v["expected_probs"]), f"1.7: 'most of its probability' elsewhere: {v['expected_probs']}"
    assert math.isclose(v["uniform_loss"], math.log(685)), (
        f"ln V of the tiny model's 685 tokens, got {v['uniform_loss']}"
    )
    # 1.7: the first loss is above ln V, the loss falls, the held-out score goes to about 100 %
    losses = v["losses"]
    assert len(losses) == 100 and losses[0] > v["uniform_loss"], f"1.7: first loss above ln V, got {losses[:1]}"
    assert losses[-1] < 0.1 * losses[0], f"1.7: the loss falls, from {losses[0]:.3f} to {losses[-1]:.3f}"
    assert v["score_after"] >= 0.9, (
        f"1.7: held-out exact match after LoRA should be about 100 %, got {v['score_after']}"
    )
    # 1.8: get_delta_weight is (alpha / r) B A; r large singular values, the next one zero up to rounding
    assert v["delta_check"] <= 1e-6, f"1.8: get_delta_weight should equal (α/r)·B@A, differs by {v['delta_check']}"
    top, next_one = v["sigma_ratios"]
    assert top > 1e-3 > 1e-5 > next_one, f"1.8: σ_r / σ_1 = {top} should be large, σ_r+1 / σ_1 = {next_one} ~ 0"
    assert v["delta_ranks"] == [8] * 8, f"Exercise 6's try-it expects rank 8 for all eight ΔW, got {v['delta_ranks']}"
    assert all(rank in (127, 128) for rank in v["w0_ranks"]), f"... and 127 or 128 for every W0, got {v['w0_ranks']}"
    # errata rows 1, 11, 2 and 13
    assert (v["trainable"], v["total"]) == (4_194_304, 6_742_609_920), (
        f"Llama-2-7b counts: {v['trainable'], v['total']}"
    )
    assert round(v["reduction"]) == 1607, f"rows 1 and 11: about 1,607x fewer, got {v['reduction']:.1f}"
    tutorial, alpha_alone, ours = v["formula_errors"]
    assert tutorial > 0.1 and alpha_alone > 0.1 and ours < 1e-5, f"rows 2 and 13: errors {v['formula_errors']}"
