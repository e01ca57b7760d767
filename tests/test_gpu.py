"""GPU tests: what a GPU user runs. Skipped on machines without CUDA (CI has none); the device check runs them."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_tiny_model_trains_with_lora_in_8bit_on_cuda():
    from tools.gpu_check import tiny_in_8bit

    result = tiny_in_8bit()
    assert result["linear8bit_layers"] == 4 * 7  # every decoder Linear, not lm_head
    assert result["loss_last"] < result["loss_first"]
