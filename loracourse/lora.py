"""LoRA written by hand, with PEFT's names (lora_A, lora_B, r, lora_alpha, scaling). Built in lesson 1.

    h = W0 x + (lora_alpha / r) * B A x        W0: (d, k) frozen,  A: (r, k),  B: (d, r)

B starts at zero, so at initialisation the layer computes exactly what the base layer computes.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lora_scaling(lora_alpha: float, r: int, use_rslora: bool = False) -> float:
    """The factor on the LoRA branch: lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA."""
    return lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update (B A), scaled by `scaling`."""

    def __init__(self, base_layer: nn.Linear, r: int = 8, lora_alpha: float = 8, use_rslora: bool = False):
        super().__init__()
        self.base_layer = base_layer.requires_grad_(False)  # W0: (d, k), frozen
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)  # A: (r, k)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)  # B: (d, r)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # PEFT's default for A
        nn.init.zeros_(self.lora_B.weight)  # B = 0: start from the base
        self.scaling = lora_scaling(lora_alpha, r, use_rslora)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., k) -> (..., d)
        result = self.base_layer(x)
        lora_x = x.to(self.lora_A.weight.dtype)  # PEFT keeps adapters in fp32 over a bf16 base
        return (result + self.lora_B(self.lora_A(lora_x)) * self.scaling).to(result.dtype)  # add, then round

    def delta_weight(self) -> torch.Tensor:
        """The update this layer adds to W0: scaling * B @ A, shape (d, k)."""
        return self.scaling * self.lora_B.weight @ self.lora_A.weight

    @classmethod
    def from_peft(cls, peft_layer: nn.Module, adapter_name: str = "default") -> LoRALinear:
        """A LoRALinear holding the same W0, A, B and scaling as a PEFT `lora.Linear` layer."""
        A, B = peft_layer.lora_A[adapter_name].weight, peft_layer.lora_B[adapter_name].weight
        layer = cls(peft_layer.base_layer, r=A.shape[0])
        layer.lora_A.to(A.device, A.dtype).weight.data.copy_(A.data)  # same device and dtype as PEFT's
        layer.lora_B.to(B.device, B.dtype).weight.data.copy_(B.data)
        layer.scaling = peft_layer.scaling[adapter_name]
        return layer
