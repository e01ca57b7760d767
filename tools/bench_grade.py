"""Parallel grading, measured: `python -m tools.bench_grade [--students N] [--workers W]` (make bench-grade).

A class of N students per lesson, each submitting the full-marks copy of every real lesson, is graded twice
from the same submissions folder: first by plain nbgrader, serially (generate_assignment, autograde,
generate_feedback, export: one nbgrader call each, with the course's nbgrader_config.py), then by
`python -m grader.grade` (sandboxed, W workers). Both are timed start to end; the ratio of the two times is
printed, with the machine, and written to build/bench-grade.json. Both runs must give every submission
full marks, and make grade's report must not say that the library guard put anything back, or the figure is not
printed as a result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.course import REPO_ROOT, Course, nbgrader, use_tool_env
from grader.execute import cores
from tools.bench import full_marks_copy, machine


def write_class(course: Course, students: int, folder: Path) -> int:
    """students x lessons full-marks submissions under folder; returns how many."""
    for i in range(students):
        for lesson in course.lessons():
            full_marks_copy(course, lesson, folder / f"student{i:02d}")
    return students * len(course.lessons())


def plain_nbgrader(course: Course, submissions: Path, base: Path) -> float:
    """Seconds plain nbgrader takes to grade the class serially, as the course graded before the pool."""
    db, log = base / "gradebook.db", base / "nbgrader.log"
    folders = [
        f"--CourseDirectory.submitted_directory={submissions}",
        f"--CourseDirectory.autograded_directory={base / 'autograded'}",
        f"--CourseDirectory.feedback_directory={base / 'feedback'}",
    ]
    start = time.perf_counter()
    nbgrader(
        course, "generate_assignment", "*", "--force", f"--CourseDirectory.release_directory={base}/r", db=db, log=log
    )
    nbgrader(course, "autograde", "*", "--force", *folders, db=db, log=log)
    nbgrader(course, "generate_feedback", "*", "--force", *folders, db=db, log=log)
    nbgrader(course, "export", f"--to={base / 'grades.csv'}", db=db, log=log)
    return time.perf_counter() - start


def course_grader(submissions: Path, build: Path, workers: int) -> tuple[float, str]:
    """Seconds `python -m grader.grade` takes on the class, and its output."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "grader.grade", str(submissions), "--build", str(build), "--workers", str(workers)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, done.stdout + done.stderr


def full_marks(csv: Path) -> bool:
    """Did every submission in grades.csv earn its lesson's maximum?"""
    rows = [line.split(",") for line in csv.read_text().splitlines()[1:]] if csv.is_file() else []
    header = csv.read_text().splitlines()[0].split(",") if csv.is_file() else []
    if not rows or "score" not in header:
        return False
    score, best = header.index("score"), header.index("max_score")
    return all(float(r[score]) == float(r[best]) > 0 for r in rows)


def main(argv: list[str] | None = None) -> int:
    """Grade the class both ways; print the ratio."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench_grade", description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4, help="students per lesson (default 4)")
    parser.add_argument("--workers", type=int, default=cores())
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench-grade.json")
    args = parser.parse_args(argv)
    use_tool_env()
    course = Course(REPO_ROOT, REPO_ROOT / "build")
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        tmp = Path(tmp)
        count = write_class(course, args.students, tmp / "submissions")
        print(f"Measured on {machine()}: {count} submissions ({args.students} per lesson)", flush=True)
        serial = plain_nbgrader(course, tmp / "submissions", tmp / "plain")
        print(f"  plain nbgrader, serial:          {serial:7.1f} s", flush=True)
        parallel, output = course_grader(tmp / "submissions", tmp / "course", args.workers)
        print(f"  make grade, {args.workers} worker(s), sandboxed: {parallel:7.1f} s", flush=True)
        ok = full_marks(tmp / "plain" / "grades.csv") and full_marks(tmp / "course" / "grading" / "grades.csv")
        # a full-marks class changes no library: a line saying the guard put something back is a false alarm
        ok = ok and "put back what the notebook changed" not in output
    ratio = serial / parallel
    report = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "submissions": count, "workers": args.workers}
    report |= {"plain_nbgrader_serial_s": serial, "make_grade_s": parallel, "ratio": ratio, "full_marks": ok}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    if not ok:
        print(
            f"bench-grade: a run did not give full marks, or put a library back; no figure.\n{output[-3000:]}",
            file=sys.stderr,
        )
        return 1
    print(f"  ratio: {ratio:.2f}x (plain nbgrader's time / make grade's)\nbench-grade: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
