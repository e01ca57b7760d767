"""Fine-tune and score a causal LM on a prompt -> answer task. Built in lesson 1; every lesson brings its own Task.

A Task says how an example becomes a prompt and which field is the answer. Lesson 1's sentiment task:

    {"review": "the soup was delicious .", "label": "positive"}
    prompt  "review : the soup was delicious . sentiment :"      answer  " positive" + eos

The loss and the score look at the answer tokens only (the prompt's labels are IGNORE).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from .corpus import DATA_DIR
from .progress import progress

IGNORE = -100  # label value that the loss (and exact match) skips: transformers' convention


def read_jsonl(path: Path) -> list[dict[str, str]]:
    """The rows of a JSON-lines file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class Task:
    """Examples, how one becomes a prompt (a format string over its fields), and which field is the answer."""

    name: str
    prompt: str  # e.g. "review : {review} sentiment :"
    answer_field: str  # the example field the model must produce, e.g. "label"
    train: list[dict[str, str]] = field(repr=False)
    test: list[dict[str, str]] = field(repr=False)

    def format(self, example: dict[str, str]) -> tuple[str, str]:
        """(prompt, answer) of one example; the answer starts with a space, as it follows the prompt."""
        return self.prompt.format(**example), " " + example[self.answer_field]

    @classmethod
    def from_jsonl(cls, name: str, prompt: str, answer_field: str, train: Path, test: Path) -> Task:
        """A task whose splits are JSON-lines files (a lesson's own data)."""
        return cls(name, prompt, answer_field, read_jsonl(train), read_jsonl(test))


def sentiment_task() -> Task:
    """Lesson 1's task: a review's polarity; the test split uses adjectives never seen in fine-tuning."""
    return Task.from_jsonl(
        "sentiment",
        "review : {review} sentiment :",
        "label",
        DATA_DIR / "sentiment_train.jsonl",
        DATA_DIR / "sentiment_test.jsonl",
    )


def encode(tokenizer: PreTrainedTokenizerBase, task: Task, example: dict[str, str]) -> dict[str, list[int]]:
    """input_ids = prompt + answer + eos; labels copy the answer and eos, IGNORE elsewhere."""
    prompt, answer = task.format(example)
    prompt_ids = tokenizer(prompt).input_ids  # starts with bos where the tokenizer adds one
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def with_pad_token(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """The tokenizer, padding with eos where it has no pad token (Llama-2's has none): the usual fix."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def collate(tokenizer: PreTrainedTokenizerBase, task: Task, examples: list[dict[str, str]]) -> dict[str, torch.Tensor]:
    """A right-padded batch (B, T): input_ids, attention_mask, and labels padded with IGNORE."""
    collator = DataCollatorForSeq2Seq(with_pad_token(tokenizer), label_pad_token_id=IGNORE, return_tensors="pt")
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "right"  # answers are read left to right
    try:
        return dict(collator([encode(tokenizer, task, ex) for ex in examples]))
    finally:
        tokenizer.padding_side = padding_side


def to_device(batch: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The batch's tensors moved to the device of the model's parameters."""
    device = next(model.parameters()).device
    return {key: value.to(device) for key, value in batch.items()}


def batch_indices(n: int, batch_size: int, max_steps: int, seed: int) -> list[list[int]]:
    """`max_steps` batches of example indices: shuffled epochs, reproducible from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while len(order) < max_steps * batch_size:
        order += torch.randperm(n, generator=generator).tolist()
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(max_steps)]


def train_lora(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    max_steps: int = 100,
    lr: float = 3e-3,
    batch_size: int = 16,
    seed: int = 0,
    show_progress: bool = True,
) -> list[float]:
    """AdamW on the parameters that require grad (the adapters), on task.train; per-step losses. Built in lesson 1."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    steps = batch_indices(len(task.train), batch_size, max_steps, seed)
    for indices in progress(steps, desc="fine-tune", enabled=show_progress):
        batch = to_device(collate(tokenizer, task, [task.train[i] for i in indices]), model)
        loss = model(**batch).loss  # mean cross-entropy over the answer tokens
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def answer_correct(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B,) bool: every answer token is the argmax of the logits one position earlier."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    predicted, target = logits[:, :-1].argmax(-1), batch["labels"][:, 1:]  # (B, T-1) each
    return ((predicted == target) | (target == IGNORE)).all(dim=1)


def exact_match(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    examples: list[dict[str, str]] | None = None,
    batch_size: int = 100,
) -> float:
    """Share of examples (default: task.test) whose greedy answer, then eos, is exactly right. Built in lesson 1."""
    examples = task.test if examples is None else examples
    was_training = model.training
    model.eval()
    batches = (
        to_device(collate(tokenizer, task, examples[i : i + batch_size]), model)
        for i in range(0, len(examples), batch_size)
    )
    correct = sum(answer_correct(model, batch).sum().item() for batch in batches)
    model.train(was_training)
    return correct / len(examples)


@torch.no_grad()
def predict(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, task: Task, example: dict[str, str], max_new_tokens: int = 4
) -> str:
    """The model's greedy answer to one example's prompt, as text (generation stops at eos)."""
    prompt, _ = task.format(example)
    inputs = to_device(tokenizer(prompt, return_tensors="pt"), model)
    output = model.generate(
        **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=with_pad_token(tokenizer).pad_token_id
    )
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
