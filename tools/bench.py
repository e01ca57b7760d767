"""The course's time budgets, measured: `python -m tools.bench` (make bench). Tests assert correctness only.

For every lesson: `make run`'s headless execution (papermill, the lesson's defaults; budget 60 s) and
`make check` of a full-marks copy, timed as the learner waits for it (a fresh process; budget 30 s); the
course's total against 5 minutes. Then the first lesson run alone and side by side with a second copy of
itself (one other job on the same cores), once with the course's torch thread sizing and once with
OMP_NUM_THREADS set to every core (what torch does by default), as ratios to the lone run. Each figure is
printed as measured / budget, and everything goes to build/bench.json with the machine it ran on.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch

from grader.course import REPO_ROOT, Course, use_tool_env
from grader.run import execute

LESSON_BUDGET_S, CHECK_BUDGET_S, COURSE_BUDGET_S = 60.0, 30.0, 300.0


def machine() -> str:
    """CPU model, cores, torch version: what the figures were measured on."""
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{model or platform.machine()}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def full_marks_copy(course: Course, lesson: str, dest: Path) -> Path:
    """The student copy with the solution in every answer cell, as a learner who got everything right has it."""
    solved = {
        c.metadata.nbgrader["grade_id"]: c.source
        for c in nbformat.read(course.source(lesson), 4).cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(nbformat.read(course.released(lesson), 4))
    for cell in nb.cells:
        cell.source = solved.get(cell.metadata.get("nbgrader", {}).get("grade_id"), cell.source)
    path = dest / lesson / f"{lesson}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def timed_check(path: Path) -> tuple[float, str]:
    """Seconds `python -m grader.check path` takes, start to exit, and its total line."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "grader.check", str(path)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    total = next((line for line in done.stdout.splitlines() if line.startswith("Total:")), done.stderr.strip())
    return time.perf_counter() - start, total


def side_by_side(source: Path, out: Path, copies: int, env: dict[str, str]) -> list[float]:
    """Run `copies` papermill executions of source at once; each one's seconds."""
    cmd = [sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3", "--cwd", str(out)]
    start, procs = time.perf_counter(), []
    for i in range(copies):
        procs.append(
            subprocess.Popen(
                [*cmd, str(source), str(out / f"copy{i}.ipynb")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    seconds = []
    for proc in procs:
        proc.wait()
        seconds.append(time.perf_counter() - start)
    return seconds


def row(what: str, seconds: float, budget: float | None, note: str = "") -> str:
    """One line of the table: measured, budget and their ratio."""
    ratio = f"{seconds / budget:5.2f}" if budget else f"{'':>5}"
    limit = f"{budget:6.0f} s" if budget else f"{'':>8}"
    return f"  {what:<44} {seconds:7.1f} s {limit} {ratio}  {note}".rstrip()


def contention(course: Course, lesson: str, tmp: Path) -> dict[str, float]:
    """The lesson alone, then two copies side by side: with the course's threads, and with every core each."""
    env = {**os.environ, "OMP_NUM_THREADS": ""}
    every_core = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    alone = side_by_side(course.source(lesson), tmp, 1, env)[0]
    paired = max(side_by_side(course.source(lesson), tmp, 2, env))
    paired_all = max(side_by_side(course.source(lesson), tmp, 2, every_core))
    return {"alone_s": alone, "two_side_by_side_s": paired, "two_side_by_side_every_core_threads_s": paired_all}


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, write build/bench.json."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench.json")
    args = parser.parse_args(argv)
    use_tool_env()
    course = Course(REPO_ROOT, REPO_ROOT / "build")
    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "lessons": {}}
    print(f"Measured on {report['machine']}\n  {'':<44} {'measured':>9} {'budget':>8} {'ratio':>5}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        for lesson in course.lessons():
            run = execute(course.source(lesson), tmp / "run" / lesson / f"{lesson}.ipynb", progress=False)
            seconds, total = timed_check(full_marks_copy(course, lesson, tmp / "check"))
            report["lessons"][lesson] = {
                "run_s": run.seconds,
                "run_error": run.error,
                "check_s": seconds,
                "check_total": total,
            }
            print(row(f"{lesson}: make run (papermill)", run.seconds, LESSON_BUDGET_S, run.error), flush=True)
            print(row(f"{lesson}: make check", seconds, CHECK_BUDGET_S, total), flush=True)
        course_s = sum(entry["run_s"] for entry in report["lessons"].values())
        report["course_run_s"] = course_s
        print(row("the course: every lesson, make run", course_s, COURSE_BUDGET_S), flush=True)
        first = course.lessons()[0]
        (tmp / "pair").mkdir()
        report["contention"] = {"lesson": first, **contention(course, first, tmp / "pair")}
    c = report["contention"]
    print(f"\n  {first} beside one other job (a second copy of itself), as a ratio to running alone:")
    print(row("alone (papermill CLI)", c["alone_s"], None))
    for key, label in [
        ("two_side_by_side_s", "two at once, the course's threads"),
        ("two_side_by_side_every_core_threads_s", "two at once, every core's threads each"),
    ]:
        print(row(label, c[key], None, f"{c[key] / c['alone_s']:.1f}x the lone run"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nbench: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
