"""What a LoraConfig does to a model, read from the wrapped model itself. Built in lesson 2.

A LoraConfig is only a description; `get_peft_model` turns it into LoRA layers. These helpers read the result:
which modules became LoRA layers, with their r and scaling (`lora_layers`), and which parameters train, by kind
(`trainable_parts`). `try_config` wraps a model, reads it and takes the LoRA layers out again (PEFT's `unload`),
so that one loaded model serves many configs: on a GPU, loading a 7B model once instead of once per config matters.
`toy_llama` builds a small random Llama in milliseconds, for tests and quick checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from .errors import ModelChoiceError

LLAMA_LAYOUT = ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.down_proj")


def require_llama_layout(path: str) -> str:
    """`path` if its model names its layers as Llama does (model.layers.0.self_attn.q_proj ...), else one clear error.

    Builds the architecture on the meta device from config.json alone (no weights), before anything is loaded.
    """
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    names = {name for name, _ in skeleton.named_modules()}
    if not all(name in names for name in LLAMA_LAYOUT):
        raise ModelChoiceError(
            f"{path} ({type(skeleton).__name__}) has no {LLAMA_LAYOUT[0]}: this lesson reads Llama's module names. "
            f"Use 'tiny' (the default) or a Llama-family model (Llama, Mistral, Qwen2); lesson 4 covers other families."
        )
    return path


def toy_llama(
    num_hidden_layers: int = 2,
    hidden_size: int = 16,
    intermediate_size: int = 32,
    num_key_value_heads: int = 1,
    vocab_size: int = 40,
    bias: bool = False,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A small random LlamaForCausalLM with Llama's module names (2 heads of hidden_size // 2; `bias`: Qwen-like)."""
    config = LlamaConfig(
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        num_key_value_heads=num_key_value_heads,  # 1 < 2 heads: k_proj and v_proj narrower than q_proj (GQA)
        vocab_size=vocab_size,
        attention_bias=bias,
        mlp_bias=bias,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):  # the toy's weights come from `seed`; the caller's RNG is untouched
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def base_of(model: nn.Module) -> nn.Module:
    """The model inside a PeftModel (the one you passed to get_peft_model); any other module as it is."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def lora_layers(model: nn.Module) -> dict[str, LoraLayer]:
    """The LoRA layers of a wrapped model, by their name in the base model ("model.layers.0.self_attn.q_proj")."""
    return {name: module for name, module in base_of(model).named_modules() if isinstance(module, LoraLayer)}


def kind_of(parameter_name: str) -> str:
    """Which kind of trainable parameter a name of a wrapped model's parameter is."""
    if ".lora_A." in parameter_name or ".lora_B." in parameter_name:
        return "LoRA A, B"
    if ".lora_magnitude_vector." in parameter_name:
        return "DoRA magnitudes"
    if ".modules_to_save." in parameter_name:
        return "full copies"
    if parameter_name.endswith("bias"):
        return "biases"
    return "other"


def trainable_parts(model: nn.Module) -> dict[str, int]:
    """Numbers that train (requires_grad), summed by kind: LoRA A, B; DoRA magnitudes; full copies; biases; other."""
    parts: dict[str, int] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            parts[kind_of(name)] = parts.get(kind_of(name), 0) + param.numel()
    return parts


@dataclass
class ConfigReport:
    """What one config did to a model: PEFT's class, the counts, the LoRA layers' ranks and scalings."""

    label: str
    peft_class: str
    trainable: int
    total: int
    layers: list[str] = field(repr=False)
    ranks: list[int]
    scalings: list[float]
    parts: dict[str, int]


def try_config(model: nn.Module, config: LoraConfig, label: str = "") -> ConfigReport:
    """Wrap `model` with `config`, read what changed, then unload: `model` is left as it was (its weights frozen)."""
    peft_model = get_peft_model(model, config)
    try:
        layers = lora_layers(peft_model)
        trainable, total = peft_model.get_nb_trainable_parameters()
        return ConfigReport(
            label=label,
            peft_class=type(peft_model).__name__,
            trainable=trainable,
            total=total,
            layers=list(layers),
            ranks=sorted({layer.r["default"] for layer in layers.values()}),
            scalings=sorted({layer.scaling["default"] for layer in layers.values()}),
            parts=trainable_parts(peft_model),
        )
    finally:
        peft_model.unload()  # returns the same model object, LoRA layers and full copies removed


def format_number(value: float) -> str:
    """4 -> '4', 2.0 -> '2', 0.125 -> '0.125', 5.656854 -> '5.66'."""
    return f"{value:g}" if float(value) == round(float(value), 3) else f"{value:.3g}"


def show_configs(model: nn.Module, configs: dict[str, LoraConfig]) -> list[ConfigReport]:
    """try_config on each config; print one row per config (counts, LoRA layers, r, scaling, what else trains)."""
    reports = [try_config(model, config, label) for label, config in configs.items()]
    width = max(len(label) for label in configs) + 2
    print(f"{'config':<{width}}{'trainable':>10}{'change':>10}{'LoRA layers':>13}  {'r':<9}{'scaling':<12}also trains")
    for report in reports:
        change = report.trainable - reports[0].trainable
        extra = ", ".join(f"{kind} {n:,}" for kind, n in report.parts.items() if kind != "LoRA A, B") or "-"
        ranks = ", ".join(map(str, report.ranks)) or "-"
        scalings = ", ".join(format_number(s) for s in report.scalings) or "-"
        print(
            f"{report.label:<{width}}{report.trainable:>10,}{change:>+10,}{len(report.layers):>13}  "
            f"{ranks:<9}{scalings:<12}{extra}"
        )
    return reports
