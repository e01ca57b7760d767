"""Lesson 7's training step as a script: one process, then two under torchrun (gloo on the CPU); atomic reports.

The two runs train the same global batch (16 on one process, 8 per process on two), so they see the same examples
per step; the test checks that both exit 0, that the two-process run saved its adapter once (the Trainer saves on
the main process only), that both scored the same held-out split, and that their held-out scores agree within
HELDOUT_TOLERANCE. Each process gets one torch thread (OMP_NUM_THREADS=1), so the two do not fight over 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loracourse.capstone import atomic_write, write_report

ROOT = Path(__file__).resolve().parents[1]
STEPS = 30  # enough for the tiny model to reach its plateau (lesson 7 trains 60)
HELDOUT_TOLERANCE = 0.1  # 10 of the 100 held-out examples: "within noise" for two runs of 30 steps


def run_script(out: Path, processes: int) -> subprocess.CompletedProcess:
    """python -m loracourse.capstone, or the same under torchrun with `processes` processes."""
    batch = str(16 // processes)  # the same global batch of 16
    flags = ["-m", "loracourse.capstone", "--output", str(out), "--max-steps", str(STEPS), "--batch-size", batch]
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, *launcher, *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, tuple[subprocess.CompletedProcess, Path]]:
    """The script run once on one process and once on two."""
    out = {}
    for processes in (1, 2):
        folder = tmp_path_factory.mktemp(f"capstone-{processes}")
        out[processes] = (run_script(folder / "adapter", processes), folder / "adapter")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_script_exits_cleanly_and_saves_the_adapter_once(runs, processes):
    done, folder = runs[processes]
    assert done.returncode == 0, done.stderr[-3000:]
    written = sorted(p.name for p in folder.rglob("*") if p.name.startswith("adapter_"))
    assert written == ["adapter_config.json", "adapter_model.safetensors"], written
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["world_size"] == processes and metrics["global_batch"] == 16, metrics


@pytest.mark.slow
def test_two_processes_score_the_same_split_within_noise(runs):
    one, two = (json.loads((runs[n][1] / "metrics.json").read_text()) for n in (1, 2))
    assert one["heldout_fingerprint"] == two["heldout_fingerprint"] and one["heldout_size"] == two["heldout_size"]
    assert abs(one["exact_match"] - two["exact_match"]) <= HELDOUT_TOLERANCE, (one["exact_match"], two["exact_match"])
    assert one["exact_match"] > 0.0, f"better than the base, which scores 0: {one['exact_match']}"


def test_a_crash_midway_leaves_the_previous_report(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("the previous report\n")
    with pytest.raises(RuntimeError), atomic_write(report) as f:
        f.write("half of a new rep")
        raise RuntimeError("crash")
    assert report.read_text() == "the previous report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"], "no temporary file left behind"


def test_a_completed_write_replaces_the_report(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2], [2, 1])
    sizes = write_report(tmp_path / "r", "| model | score |\n|---|---|\n| lora | 1.000 |\n", fig, {"score": 1.0})
    plt.close(fig)
    assert set(sizes) == {"report.md", "loss.png", "metrics.json"} and all(sizes.values())
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == {"score": 1.0}
