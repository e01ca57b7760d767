"""Sweeps: the same short LoRA fine-tune for several configs on one loaded model. Built in lesson 2.

Each setting wraps the model (get_peft_model), trains its adapters with `train_lora`, scores them on the
held-out examples and takes them out again (unload). The base weights stay frozen throughout, so every run
starts from the same pretrained model and one load serves the whole sweep (on a GPU, loading a 7B model once
matters). Each run seeds torch first, so two settings with the same rank and the same scale are the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import PreTrainedTokenizerBase

from .configs import lora_layers
from .errors import CourseError
from .progress import progress
from .train import Task, exact_match, train_lora


class SweepChoiceError(CourseError, ValueError):
    """The sweep's parameters name no sweep this lesson can run."""


def check_ranks(ranks: object, hidden_size: int) -> list[int]:
    """`ranks` as a list of whole numbers from 1 to `hidden_size`, or one SweepChoiceError that says what to pass."""
    if isinstance(ranks, (list, tuple)) and ranks and all(type(r) is int and 1 <= r <= hidden_size for r in ranks):
        return list(ranks)
    raise SweepChoiceError(
        f"sweep_ranks={ranks!r}: expected a list of ranks from 1 to the hidden size {hidden_size}, such as "
        f"[1, 4, 16, 64] (papermill takes a list with -y 'sweep_ranks: [1, 4, 16, 64]', not with -p)"
    )


@dataclass
class Run:
    """One setting of a sweep: its config's r, lora_alpha and scale, what trained, the losses, the held-out score."""

    label: str
    r: int
    lora_alpha: float
    use_rslora: bool
    scaling: float
    trainable: int
    losses: list[float] = field(repr=False)
    score: float


def run_setting(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    config: LoraConfig,
    label: str,
    max_steps: int,
    lr: float,
    seed: int,
    examples: list[dict[str, str]] | None = None,
    batch_size: int = 16,
) -> Run:
    """Wrap, fine-tune `max_steps` steps, score on `examples` (default task.test), unload: `model` is as it was."""
    torch.manual_seed(seed)  # the adapters' initial A: the same draw for every setting of one rank
    peft_model = get_peft_model(model, config)
    try:
        scaling = next(iter(lora_layers(peft_model).values())).scaling["default"]
        losses = train_lora(
            peft_model,
            tokenizer,
            task,
            max_steps=max_steps,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            show_progress=False,
        )
        score = exact_match(peft_model, tokenizer, task, examples)
        trainable = peft_model.get_nb_trainable_parameters()[0]
    finally:
        peft_model.unload()
    return Run(label, config.r, config.lora_alpha, config.use_rslora, scaling, trainable, losses, score)


def run_sweep(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    configs: dict[str, LoraConfig],
    max_steps: int,
    lr: float,
    seed: int = 0,
    examples: list[dict[str, str]] | None = None,
    batch_size: int = 16,
) -> list[Run]:
    """run_setting for every config (label -> LoraConfig), one progress bar over the settings."""
    return [
        run_setting(model, tokenizer, task, config, label, max_steps, lr, seed, examples, batch_size)
        for label, config in progress(configs.items(), desc="sweep", total=len(configs))
    ]
