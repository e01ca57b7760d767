"""Twins of real models: their exact architectures, built on the meta device (no weights, no memory).

A twin has every module and every parameter shape of the real checkpoint, so parameter counts,
byte counts and LoRA accounting on it are exact, and building one takes a second on a laptop.
The configs below are copied from each model's config.json on the hub.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, PreTrainedConfig, Qwen2Config

# Totals published for the real checkpoints (what model.num_parameters() gives).
PUBLISHED_TOTALS: dict[str, int] = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "meta-llama/Meta-Llama-3-8B": 8_030_261_248,
    "mistralai/Mistral-7B-v0.1": 7_241_732_096,
    "Qwen/Qwen2.5-7B": 7_615_616_512,
}


def twin_config(hub_id: str) -> PreTrainedConfig:
    """The architecture of `hub_id` (one of PUBLISHED_TOTALS) as a transformers config."""
    if hub_id == "meta-llama/Llama-2-7b-hf":
        return LlamaConfig(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32000,
            max_position_embeddings=4096,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        )
    if hub_id == "meta-llama/Meta-Llama-3-8B":
        return LlamaConfig(
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=128256,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        )
    if hub_id == "mistralai/Mistral-7B-v0.1":
        return MistralConfig(
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=32000,
            max_position_embeddings=32768,
            sliding_window=4096,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        )
    if hub_id == "Qwen/Qwen2.5-7B":
        return Qwen2Config(
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            vocab_size=152064,
            max_position_embeddings=131072,
            rms_norm_eps=1e-6,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        )
    raise ValueError(f"no twin for {hub_id!r}; known: {', '.join(PUBLISHED_TOTALS)}")


def build_twin(hub_id: str = "meta-llama/Llama-2-7b-hf", dtype: torch.dtype = torch.bfloat16) -> torch.nn.Module:
    """The model class of `hub_id` with its exact shapes, on the meta device. Built in lesson 1."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(twin_config(hub_id), dtype=dtype)
