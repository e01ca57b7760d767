"""make gpu-check where there is no GPU (CI): one line, "skipped", exit 0; and the exact figure it measures against."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tools.gpu_check import expected_int8_bytes

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the check runs for real")
def test_gpu_check_without_cuda_skips_in_one_line(tmp_path):
    out = tmp_path / "gpu-check.json"
    done = subprocess.run(
        [sys.executable, "-m", "tools.gpu_check", "--out", str(out)], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.count("\n") == 1 and "skipped" in done.stdout
    assert not out.exists(), "no figures are written without a GPU"


def test_expected_int8_bytes_of_llama2_7b():
    """Decoder Linears as int8 (32 x (4 x 4096^2 + 3 x 4096 x 11008) weights, one fp32 scale per output row:
    32 x (4 x 4096 + 2 x 11008 + 4096) rows), the other 262,410,240 parameters 16-bit."""
    int8 = 32 * (4 * 4096**2 + 3 * 4096 * 11008)
    rows = 32 * (4 * 4096 + 2 * 11008 + 4096)
    other = 6_738_415_616 - int8
    assert other == 262_410_240
    assert expected_int8_bytes() == {"footprint": int8 + 2 * other, "with_scales": int8 + 4 * rows + 2 * other}
    assert expected_int8_bytes()["footprint"] == 7_000_825_856  # the figure the README quotes
