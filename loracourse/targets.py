"""Module names across model families, and what a choice of target_modules costs and buys. Built in lesson 4.

LoRA's `target_modules` are module *names*, and every family names its layers differently: Llama `q_proj`,
BERT `query`, GPT-2 a fused `c_attn` (a transformers `Conv1D`, weight stored as (in, out)), GPT-NeoX a fused
`query_key_value`, Phi-3 a fused `qkv_proj`. `tiny_family` builds small random models of those families from their
config classes (offline, milliseconds): only their names and layouts matter here, their weights are noise.
`show_layout` prints one block of a model; `peft_default_targets` reads PEFT's own table; `fine_tune_and_score`
runs one short fine-tune of a config and scores it on held-out examples, then takes the adapter out again;
`require_llama_names` stops with one line (NotLlamaLayout) on a model without the Llama names sections 4.2-4.4 use;
`plot_comparison` draws the scores.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from peft import LoraConfig, get_peft_model
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.pytorch_utils import Conv1D

from .errors import CourseError
from .train import IGNORE, Task, collate, to_device, train_lora

FAMILIES = ("bert", "gpt2", "gpt_neox", "phi3")  # the families tiny_family builds, by their config's model_type
TOKEN_IDS = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}  # inside the small vocabulary


def tiny_family(family: str, hidden: int = 64, layers: int = 2, seed: int = 0) -> PreTrainedModel:
    """A small random model of `family` (bert, gpt2, gpt_neox, phi3), built from its transformers config class."""
    if family == "bert":  # BertModel, as AutoModel loads all-MiniLM-L6-v2: an encoder with a pooler
        config = BertConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                            num_attention_heads=2, vocab_size=100, pad_token_id=0)  # fmt: skip
        model_class = BertModel
    elif family == "gpt2":
        config = GPT2Config(n_embd=hidden, n_layer=layers, n_head=2, n_positions=64, vocab_size=100, **TOKEN_IDS)
        model_class = GPT2LMHeadModel
    elif family == "gpt_neox":
        config = GPTNeoXConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                               num_attention_heads=2, vocab_size=100, **TOKEN_IDS)  # fmt: skip
        model_class = GPTNeoXForCausalLM
    elif family == "phi3":
        config = Phi3Config(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                            num_attention_heads=2, num_key_value_heads=2, vocab_size=100, **TOKEN_IDS)  # fmt: skip
        model_class = Phi3ForCausalLM
    else:
        raise ValueError(f"no tiny model for family {family!r}; known: {', '.join(FAMILIES)}")
    with torch.random.fork_rng(devices=[]):  # random weights from `seed`; the caller's RNG is untouched
        torch.manual_seed(seed)
        return model_class(config).eval()


def is_linear(module: nn.Module) -> bool:
    """Whether PEFT's LoRA can wrap `module` as a linear layer: torch's nn.Linear or transformers' Conv1D."""
    return isinstance(module, (nn.Linear, Conv1D))


def show_layout(model: nn.Module, block: str = ".0.") -> None:
    """Print the linear layers (nn.Linear, Conv1D) of the first block (names containing `block`) and the output
    layer: full name, class, weight shape, in -> out features."""
    print(f"{type(model).__name__} ({model.config.model_type}):")
    linears = [(name, module) for name, module in model.named_modules() if is_linear(module)]
    for name, module in linears:
        if block in name or name == linears[-1][0]:
            d_in, d_out = (module.nx, module.nf) if isinstance(module, Conv1D) else module.weight.shape[::-1]
            shape = tuple(module.weight.shape)
            print(f"  {name:<44}{type(module).__name__:<8} weight {shape!s:<12} {d_in} -> {d_out}")


def peft_default_targets(model_type: str) -> str:
    """PEFT's own default target_modules for a model_type (what target_modules=None picks), as text."""
    found = PEFT_DEFAULTS.get(model_type)
    return "none: target_modules must be given" if found is None else str(found)


def rank_for_budget(model: nn.Module, target_modules: list[str] | str, budget: int) -> int:
    """The rank r at which LoRA on `target_modules` trains closest to `budget` parameters (counted by PEFT)."""
    peft_model = get_peft_model(model, LoraConfig(r=1, target_modules=target_modules))
    try:
        per_rank = peft_model.get_nb_trainable_parameters()[0]  # the count is r times the count at r = 1
    finally:
        peft_model.unload()
    return max(1, round(budget / per_rank))


@torch.no_grad()
def heldout_scores(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, task: Task, batch_size: int = 50
) -> tuple[float, float]:
    """(cross-entropy per answer token in nats, exact match) on task.test, from one forward pass per batch.

    The exact match is loracourse.train.exact_match's (every answer token, then eos, is the argmax); computing both
    from the same logits halves the cost of scoring, which section 4.4 does once per fine-tune.
    """
    model.eval()
    total, tokens, correct = 0.0, 0, 0
    for i in range(0, len(task.test), batch_size):
        batch = to_device(collate(tokenizer, task, task.test[i : i + batch_size]), model)
        output = model(**batch)
        predicted, target = output.logits[:, :-1].argmax(-1), batch["labels"][:, 1:]  # (B, T-1) each
        n = (target != IGNORE).sum().item()  # answer tokens: the loss is their mean
        total, tokens = total + output.loss.item() * n, tokens + n
        correct += ((predicted == target) | (target == IGNORE)).all(dim=1).sum().item()
    return total / tokens, correct / len(task.test)


def heldout_loss(model: nn.Module, tokenizer: PreTrainedTokenizerBase, task: Task) -> float:
    """Cross-entropy per answer token on task.test (nats), averaged over every answer token."""
    return heldout_scores(model, tokenizer, task)[0]


def fine_tune_and_score(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    config: LoraConfig,
    max_steps: int,
    lr: float,
    seed: int,
) -> dict[str, float]:
    """Wrap `model` with `config`, fine-tune, score on task.test, then unload (the base is left untouched)."""
    torch.manual_seed(seed)  # the adapters' initial A comes from here
    peft_model = get_peft_model(model, config)
    try:
        losses = train_lora(peft_model, tokenizer, task, max_steps=max_steps, lr=lr, seed=seed, show_progress=False)
        loss, score = heldout_scores(peft_model, tokenizer, task)
        trainable = peft_model.get_nb_trainable_parameters()[0]
        return {"trainable": trainable, "train_loss": losses[-1], "heldout_loss": loss, "exact_match": score}
    finally:
        peft_model.unload()


def plot_comparison(results: dict[str, list[dict[str, float]]], baseline: float) -> Figure:
    """Held-out loss per config (one dot per seed, a bar at their mean), the base model's as a dashed line."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, runs in enumerate(results.values()):
        losses = [run["heldout_loss"] for run in runs]
        ax.bar(i, sum(losses) / len(losses), color="#3b75af", alpha=0.5)
        ax.scatter([i] * len(losses), losses, color="#1f3f5f", zorder=3, s=18)
    ax.axhline(baseline, ls="--", c="grey", lw=1, label=f"base model: {baseline:.2f}")
    ax.set_xticks(range(len(results)), list(results), fontsize=8)
    ax.set(ylabel="held-out loss (nats/token)", title="Same budget, different modules (dots: seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


LLAMA_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class NotLlamaLayout(CourseError, ValueError):
    """Sections 4.2 (b) to 4.4 name Llama's layers; the lesson's model does not have them."""


def require_llama_names(model: nn.Module) -> None:
    """Stop with one line when `model` lacks the Llama layer names that sections 4.2 (b) to 4.4 target."""
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if is_linear(module)}
    missing = [name for name in LLAMA_NAMES if name not in names]
    if missing:
        raise NotLlamaLayout(
            f"the rest of this lesson targets Llama's layers by name, and this {model.config.model_type} model has no "
            f"{', '.join(missing)} (its names: {', '.join(sorted(names))}): set model_name_or_path to 'tiny' or a "
            "Llama-family model (Llama, Mistral, Qwen2) to run sections 4.2 (b) to 4.4"
        )
