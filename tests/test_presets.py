"""GPU presets and the model check of `make run MODEL=... PRESET=...` (grader/presets.toml, grader/presets.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.course import Course
from grader.parameters import INJECTED_TAG
from grader.presets import PRESETS_FILE, for_lesson, load_presets
from loracourse.memory import activation_bytes
from loracourse.models import TINY_DIR
from loracourse.twins import twin_config
from tools.gpu_check import expected_int8_bytes

REPO = Path(__file__).resolve().parent.parent
COURSE = Course(REPO, REPO / "build")
LLAMA2 = "meta-llama/Llama-2-7b-hf"
LLAMA2_LORA_PARAMS = 4_194_304  # r = 8 on q_proj and v_proj (lesson 1 counts it)
GIB = 2**30


def int8_training_bytes(batch_size: int, seq_len: int) -> int:
    """Lesson 3's memory table (section 3.5), the Llama-2-7b int8 row: weights with scales, the fp32 copy that
    prepare_model_for_kbit_training makes of the parameters it did not quantize, 16 bytes per LoRA parameter,
    activations at 4 bytes a value with the 8-bit layers' inputs kept."""
    weights = expected_int8_bytes(LLAMA2)
    kept = (weights["footprint"] - int8_linear_params()) // 2  # 2 bytes each in the footprint
    activations = activation_bytes(twin_config(LLAMA2), batch_size, seq_len, 4, True)
    return weights["with_scales"] + 2 * kept + 16 * LLAMA2_LORA_PARAMS + activations


def int8_linear_params() -> int:
    """Llama-2-7b's decoder Linear weights (what becomes int8): 32 layers x (4 x 4096^2 + 3 x 4096 x 11008)."""
    return 32 * (4 * 4096**2 + 3 * 4096 * 11008)


def fits(need_bytes: int, gpu_gib: float, reserve_gib: float = 1.0) -> bool:
    """Lesson 3's fits_on_gpu: the need plus a 1 GiB reserve within the card."""
    return need_bytes / GIB + reserve_gib <= gpu_gib


def test_t4_preset_trains_llama2_in_8bit_within_16_gib():
    """The T4 preset obeys lesson 3's table: its batch fits 16 GiB with the lesson's reserve, and a margin that
    lesson 3's default of 4 x 512 (14.5 GiB, half a GiB to spare on paper) does not leave."""
    t4 = load_presets()["t4"]
    assert t4["load_in_8bit"] is True
    assert not fits(int8_training_bytes(4, 512), 15), "4 x 512 leaves no room on a T4's 15 GiB that CUDA sees"
    for batch, seq in [(t4["batch_size"], t4["seq_len"]), (t4["memory_batch_size"], t4["memory_seq_len"])]:
        need = int8_training_bytes(batch, seq)
        assert fits(need, 15), f"{batch} x {seq}: {need / GIB:.1f} GiB + 1 GiB reserve > 15 GiB"
    assert round(int8_training_bytes(4, 512) / GIB, 1) == 14.5  # the figures grader/presets.toml quotes
    assert round(int8_training_bytes(4, 256) / GIB, 1) == 10.8


def test_a100_preset_fits_80_gib_in_bf16():
    a100 = load_presets()["a100"]
    weights = 2 * 6_738_415_616
    need = (
        weights
        + 16 * LLAMA2_LORA_PARAMS
        + activation_bytes(twin_config(LLAMA2), a100["batch_size"], a100["seq_len"], 2)
    )
    assert a100["load_in_8bit"] is False and fits(need, 80)


@pytest.mark.parametrize("preset", ["t4", "a100"])
def test_each_lesson_gets_only_the_parameters_it_declares(preset):
    values = load_presets()[preset]
    given = {lesson: for_lesson(values, COURSE.source(lesson)) for lesson in COURSE.lessons()}
    assert given["01-lora-theory"] == {"max_steps": values["max_steps"]}
    assert given["02-lora-config"] == {"max_steps": values["max_steps"], "sweep_steps": values["sweep_steps"]}
    assert set(given["03-load-in-8bit"]) == {"max_steps", "memory_batch_size", "memory_seq_len"}


def run_grader(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.run", *args], cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )


def test_make_run_passes_model_and_preset():
    done = subprocess.run(
        ["make", "-n", "run", "LESSON=01-lora-theory", "MODEL=/models/x", "PRESET=t4"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert '--lesson "01-lora-theory" --model "/models/x" --preset "t4"' in done.stdout, done.stdout


def test_a_hub_id_offline_gets_one_line(tmp_path):
    """A model that needs the hub, with no hub: one line that says so and that tiny runs offline; nothing runs."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = run_grader(
        "--lesson", "01-lora-theory", "--model", "nobody/no-such-model", "--build", str(tmp_path), env=env
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "needs the Hugging Face hub" in done.stderr and "MODEL=tiny runs offline" in done.stderr
    assert not (tmp_path / "executed").exists()


def test_an_unknown_preset_gets_one_line(tmp_path):
    done = run_grader("--lesson", "01-lora-theory", "--preset", "h100", "--build", str(tmp_path))
    assert done.returncode == 2 and done.stderr == "run: no preset 'h100' (presets: t4, a100)\n"


@pytest.mark.slow
def test_make_run_with_a_local_folder_and_the_t4_preset(tmp_path):
    """Lesson 1 on a copy of the tiny model in a folder of its own, with the T4 preset: papermill gets the folder
    and the preset's max_steps (lesson 1 declares no other knob of it), and the run earns full marks."""
    folder = tmp_path / "my-model"
    shutil.copytree(TINY_DIR, folder)
    done = run_grader("--lesson", "01-lora-theory", "--model", str(folder), "--preset", "t4", "--build", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    executed = nbformat.read(tmp_path / "executed" / "01-lora-theory" / "01-lora-theory.ipynb", as_version=4)
    injected = next(c for c in executed.cells if INJECTED_TAG in c.metadata.get("tags", [])).source
    assert (
        f'model_name_or_path = "{folder}"' in injected
        and f"max_steps = {load_presets()['t4']['max_steps']}" in injected
    )
    assert "memory_batch_size" not in injected and "load_in_8bit" not in injected
    summary = json.loads((tmp_path / "run-summary.json").read_text())["notebooks"][0]
    assert summary["points"] == summary["max_points"] > 0


def test_presets_file_is_the_one_place():
    assert PRESETS_FILE == REPO / "grader" / "presets.toml"
