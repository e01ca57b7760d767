"""Build the course's offline "tiny" Llama: train a tokenizer and pretrain a small LlamaForCausalLM.

    python -m loracourse.build_tiny [--out DIR]

Reads the corpus in `loracourse/data/` (see `corpus.py`), trains a byte-level BPE tokenizer with
the `tokenizers` library, pretrains a 4-layer Llama on next-token prediction for a fixed number of
steps on the CPU, measures it, and saves model, tokenizer and a model card (README.md) with
`save_pretrained` into `loracourse/assets/tiny-llama/` (the default `--out`). Seeds are fixed, so a
rebuild gives the same model up to CPU floating-point differences (thread counts, kernels).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from tqdm.auto import tqdm
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from .corpus import TEST_ADJECTIVES, TRAIN_ADJECTIVES, read_lines
from .models import TINY_DIR
from .train import exact_match, sentiment_task

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0, 1, 2, 3


@dataclass
class BuildConfig:
    """Every knob of the build: tokenizer, architecture and pretraining."""

    vocab_size: int = 768  # an upper bound: BPE stops once every corpus word is one token
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    block_size: int = 64  # tokens per pretraining sequence
    batch_size: int = 16
    max_steps: int = 250
    lr: float = 3e-3
    warmup_steps: int = 30
    seed: int = 0


def train_tokenizer(lines: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `lines`, which adds <s> in front of every text."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=256,
    )


def tiny_config(tokenizer: PreTrainedTokenizerFast, cfg: BuildConfig) -> LlamaConfig:
    """A Llama-2-style config (as many key/value heads as query heads, untied lm_head)."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def pack(tokenizer: PreTrainedTokenizerFast, lines: list[str], block_size: int) -> torch.Tensor:
    """(N, block_size) token ids: every line as <s> text </s>, concatenated and cut into blocks."""
    ids = [i for enc in tokenizer(lines).input_ids for i in enc + [tokenizer.eos_token_id]]
    n = len(ids) // block_size
    return torch.tensor(ids[: n * block_size]).view(n, block_size)


def lr_at(step: int, cfg: BuildConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of `cfg.lr`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain(model: LlamaForCausalLM, blocks: torch.Tensor, cfg: BuildConfig) -> list[float]:
    """Next-token pretraining with AdamW on random blocks; returns per-step losses."""
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    losses = []
    for step in tqdm(range(cfg.max_steps), desc="pretrain"):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = blocks[torch.randint(len(blocks), (cfg.batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def eval_loss(model: LlamaForCausalLM, blocks: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-token cross-entropy (nats) over `blocks`."""
    losses = [model(input_ids=b, labels=b).loss.item() for b in blocks.split(batch_size)]
    sizes = [len(b) for b in blocks.split(batch_size)]
    return sum(loss * size for loss, size in zip(losses, sizes, strict=True)) / sum(sizes)


def unigram_loss(train: torch.Tensor, valid: torch.Tensor) -> float:
    """Cross-entropy (nats) on `valid` of token frequencies counted on `train`, add-one smoothed."""
    counts = Counter(train.flatten().tolist())
    total, vocab = train.numel(), max(train.max().item(), valid.max().item()) + 1
    targets = valid[:, 1:].flatten().tolist()  # the positions the model is scored on
    return -sum(math.log((counts[t] + 1) / (total + vocab)) for t in targets) / len(targets)


def model_card(stats: dict, cfg: BuildConfig) -> str:
    """The README.md saved next to the weights: what it is, how it was made, how good it is."""
    s = stats
    return f"""---
library_name: transformers
pipeline_tag: text-generation
---

# tiny-llama: the course's offline base model

A {s["params"]:,}-parameter `LlamaForCausalLM` pretrained from scratch on the course's templated
English corpus (`loracourse/data/pretrain_train.txt`), built by `python -m loracourse.build_tiny`.
It exists so that the notebooks run offline on a CPU; it knows nothing beyond its corpus.

## Architecture
- hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads \
(num_key_value_heads = {cfg.num_attention_heads}, as in Llama-2), intermediate {cfg.intermediate_size}, \
vocab {s["vocab_size"]}, untied `lm_head`, fp32 safetensors.
- Module names as in Llama: `q_proj k_proj v_proj o_proj gate_proj up_proj down_proj lm_head`.
- Tokenizer: byte-level BPE trained with `tokenizers` on the same corpus (every corpus word is
  one token); `<s>` is added in front of every text, `</s>` ends a document, `<pad>` pads.

## Pretraining
- {cfg.max_steps} steps of AdamW (lr {cfg.lr}, warmup {cfg.warmup_steps}, cosine to lr/10), \
batch {cfg.batch_size} x {cfg.block_size} tokens, seed {cfg.seed}: {s["tokens_seen"]:,} tokens seen, \
about {s["tokens_seen"] / s["corpus_tokens"]:.1f} epochs of the {s["corpus_tokens"]:,}-token corpus.
- Pretraining took {s["pretrain_s"]:.1f} s; the whole build {s["build_s"]:.1f} s, or \
{s["process_s"]:.1f} s of wall clock with Python start-up and imports.
- Machine: {s["machine"]}.

## Quality (measured by the build)
| held-out text (`pretrain_valid.txt`) | loss (nats/token) | perplexity |
|--------------------------------------|-------------------|------------|
| unigram baseline (token frequencies) | {s["unigram_loss"]:.3f} | {math.exp(s["unigram_loss"]):.2f} |
| tiny-llama | {s["valid_loss"]:.3f} | {math.exp(s["valid_loss"]):.2f} |

Lesson 1's sentiment task: "review : the soup was delicious . sentiment :" -> " positive", then
`</s>`. Exact match of the greedy answer, base model without fine-tuning:

| split | adjectives | examples | base exact match |
|-------|------------|----------|------------------|
| `sentiment_train.jsonl` | fine-tuning adjectives | {s["n_train"]} | {s["base_train_em"]:.1%} |
| `sentiment_test.jsonl` (held out) | pretraining-only adjectives | {s["n_test"]} | \
{s["base_test_em"]:.1%} |

Fine-tuning adjectives: {", ".join(TRAIN_ADJECTIVES)}.
Held-out adjectives (in pretraining, never in fine-tuning): {", ".join(TEST_ADJECTIVES)}.

Pretraining reviews are followed by reactions such as "i loved it ." or "i felt negative about
it .", so the base knows each adjective's polarity and the label words; it never saw the
"review : ... sentiment :" format, so it does not answer with a label.
Lesson 1's LoRA fine-tune (r=8, lora_alpha=16, q_proj and v_proj; `loracourse.train.train_lora`
with lr 3e-3, batch 16, 100 steps) lifts held-out exact match to at least 90% (checked on lesson 1's
own run: `tests/lessons/lesson_01_lora_theory.py`). The same LoRA on a randomly initialised Llama of
this shape stays near chance on the held-out split (`tests/test_tiny.py`): what LoRA adapts here is
what pretraining taught.
"""


def process_seconds() -> float:
    """Wall seconds since this Python process started, imports included (Linux; else 0.0)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time in ticks
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), or the platform's machine type."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> str:
    """A short description of the machine the build ran on."""
    return (
        f"{cpu_name()}, {os.cpu_count()} CPU cores, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )


def new_model(tokenizer: PreTrainedTokenizerFast, cfg: BuildConfig) -> LlamaForCausalLM:
    """A randomly initialised tiny Llama (seeded) whose generation config knows bos, eos and pad."""
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(tiny_config(tokenizer, cfg))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model


def measure(
    model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, blocks: torch.Tensor, valid: torch.Tensor
) -> dict:
    """Held-out loss next to the unigram baseline, and the model's exact match on the task."""
    task = sentiment_task()
    return {
        "valid_loss": eval_loss(model, valid),
        "unigram_loss": unigram_loss(blocks, valid),
        "n_train": len(task.train),
        "base_train_em": exact_match(model, tokenizer, task, task.train),
        "n_test": len(task.test),
        "base_test_em": exact_match(model, tokenizer, task),
    }


def build(out: Path, cfg: BuildConfig) -> dict:
    """Train the tokenizer and model, measure them, save everything into `out`; return the stats."""
    start = time.perf_counter()
    lines = read_lines("pretrain_train.txt")
    tokenizer = train_tokenizer(lines, cfg.vocab_size)
    blocks = pack(tokenizer, lines, cfg.block_size)
    valid = pack(tokenizer, read_lines("pretrain_valid.txt"), cfg.block_size)
    model = new_model(tokenizer, cfg)
    pretrain_start = time.perf_counter()
    pretrain(model, blocks, cfg)
    stats = {
        "pretrain_s": time.perf_counter() - pretrain_start,
        "params": model.num_parameters(),
        "vocab_size": len(tokenizer),
        "corpus_tokens": blocks.numel(),
        "tokens_seen": cfg.max_steps * cfg.batch_size * cfg.block_size,
        "machine": machine(),
    }
    stats |= measure(model, tokenizer, blocks, valid)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    stats["build_s"] = time.perf_counter() - start  # from reading the corpus to saving
    stats["process_s"] = process_seconds()  # the same plus Python start-up and imports
    (out / "README.md").write_text(model_card(stats, cfg), encoding="utf-8")
    return stats


def main() -> None:
    """Command line: build the tiny model into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TINY_DIR, help="folder to save into")
    parser.add_argument("--max-steps", type=int, default=BuildConfig.max_steps)
    args = parser.parse_args()
    stats = build(args.out, BuildConfig(max_steps=args.max_steps))
    for key, value in stats.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
