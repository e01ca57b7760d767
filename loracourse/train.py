"""Small training and evaluation helpers for the sentiment task: format, batch, fine-tune, score.

A task example is {"review": "the soup was delicious .", "label": "positive"}. The model reads
the prompt "review : the soup was delicious . sentiment :" and should answer " positive" and
then stop (end-of-sequence). The loss and the score look at the answer tokens only.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from .corpus import read_examples

PROMPT = "review : {review} sentiment :"
IGNORE = -100  # label value that the loss (and exact match) skips


def load_examples(split: str) -> list[dict[str, str]]:
    """The sentiment task's examples: "train" (train adjectives) or "test" (held-out adjectives)."""
    return read_examples(split)


def format_example(example: dict[str, str]) -> tuple[str, str]:
    """(prompt, answer) for one task example. Built in lesson 1."""
    return PROMPT.format(review=example["review"]), " " + example["label"]


def encode_example(tokenizer: PreTrainedTokenizerBase,
                   example: dict[str, str]) -> dict[str, list[int]]:
    """input_ids = prompt + answer + eos; labels copy the answer and eos, IGNORE elsewhere."""
    prompt, answer = format_example(example)
    prompt_ids = tokenizer(prompt).input_ids  # starts with bos
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    return {"input_ids": prompt_ids + answer_ids,
            "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The padding token, or end-of-sequence where a tokenizer has none (Llama-2's, for one)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def collate(tokenizer: PreTrainedTokenizerBase,
            examples: list[dict[str, str]]) -> dict[str, torch.Tensor]:
    """Encode and right-pad examples into a batch: input_ids, attention_mask, labels (B, T)."""
    rows = [encode_example(tokenizer, ex) for ex in examples]
    width = max(len(r["input_ids"]) for r in rows)
    pad = lambda seq, value: seq + [value] * (width - len(seq))  # noqa: E731
    return {
        "input_ids": torch.tensor([pad(r["input_ids"], pad_id(tokenizer)) for r in rows]),
        "attention_mask": torch.tensor([pad([1] * len(r["input_ids"]), 0) for r in rows]),
        "labels": torch.tensor([pad(r["labels"], IGNORE) for r in rows]),
    }


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
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(max_steps)]


def train_lora(model: nn.Module, tokenizer: PreTrainedTokenizerBase,
               examples: list[dict[str, str]], max_steps: int = 100, lr: float = 3e-3,
               batch_size: int = 16, seed: int = 0, progress: bool = True) -> list[float]:
    """AdamW on the trainable (LoRA) parameters; returns per-step losses. Built in lesson 1."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for indices in tqdm(batch_indices(len(examples), batch_size, max_steps, seed),
                        desc="fine-tune", disable=not progress):
        batch = to_device(collate(tokenizer, [examples[i] for i in indices]), model)
        loss = model(**batch).loss  # mean cross-entropy over answer tokens only
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


def exact_match(model: nn.Module, tokenizer: PreTrainedTokenizerBase,
                examples: list[dict[str, str]], batch_size: int = 100) -> float:
    """Share of examples whose greedy answer (label, then eos) is right. Built in lesson 1."""
    was_training = model.training
    model.eval()
    batches = (to_device(collate(tokenizer, examples[i:i + batch_size]), model)
               for i in range(0, len(examples), batch_size))
    correct = sum(answer_correct(model, batch).sum().item() for batch in batches)
    model.train(was_training)
    return correct / len(examples)


@torch.no_grad()
def predict(model: nn.Module, tokenizer: PreTrainedTokenizerBase, review: str,
            max_new_tokens: int = 4) -> str:
    """The model's greedy answer to one review, as text (generation stops at eos)."""
    prompt = PROMPT.format(review=review)
    inputs = to_device(tokenizer(prompt, return_tensors="pt"), model)
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                            pad_token_id=pad_id(tokenizer))
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
