"""Autograde a folder of submissions with nbgrader; export a grades CSV and feedback HTML.

`python -m grader.grade DIR` (make grade SUBMISSIONS=DIR). DIR is in nbgrader's layout,
DIR/<student>/<lesson>/<lesson>.ipynb. Every run starts from a fresh gradebook under
build/grading/ (grades are derived from the submissions, nothing is graded by hand), then:
generate_assignment (the gradebook learns each lesson, hidden tests included), autograde (each
submission executed, the test cells restored from solutions/ first), generate_feedback (hidden tests
cut out by grader.feedback.HideHiddenTests) and export (build/grading/grades.csv).

A broken submission (not a notebook, a missing notebook) is graded 0 and listed; a folder for a
lesson the course does not have is listed and skipped; neither stops the others being graded.
Exit code: 0 if every submission was graded, 1 if any was listed as not graded, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.course import Course, add_course_arguments, course_from_arguments, nbgrader
from grader.gradebook import cell_grades, max_points, total

STUDENT_ID = re.compile(r"^[A-Za-z0-9_.@-]+$")  # nbgrader globs and matches paths: keep ids plain


@dataclass(frozen=True)
class Submission:
    """One student's folder for one lesson, and what is wrong with its notebook, if anything."""

    student: str
    lesson: str
    problem: str = ""  # why nbgrader will not be able to grade it ("" if nothing is wrong)


@dataclass(frozen=True)
class GradingDirs:
    """Where one grading run writes: everything under one base folder (<build>/grading/)."""

    base: Path
    db: Path
    submitted: Path
    release: Path
    autograded: Path
    feedback: Path
    csv: Path
    log: Path

    @classmethod
    def under(cls, base: Path) -> GradingDirs:
        """The standard layout under base."""
        return cls(
            base,
            base / "gradebook.db",
            base / "submitted",
            base / "release",
            base / "autograded",
            base / "feedback",
            base / "grades.csv",
            base / "nbgrader.log",
        )


def notebook_problem(path: Path) -> str:
    """Why a submitted file is not a gradable notebook ("" if it is one)."""
    if not path.is_file():
        return f"no {path.name} in the submission"
    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as err:  # any reader or schema error: the file is not a valid notebook
        return f"{path.name} is not a valid notebook ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return ""


def scan(course: Course, folder: Path) -> tuple[list[Submission], list[str]]:
    """Submissions of known lessons under folder, and lines about what was skipped there."""
    found, skipped, lessons = [], [], set(course.lessons())
    for student in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        if not student.is_dir() or not STUDENT_ID.match(student.name):
            skipped.append(f"{student.name}: not a student folder (letters, digits, _ . @ - only); skipped")
            continue
        for lesson in sorted(p for p in student.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if lesson.name not in lessons:
                skipped.append(f"{student.name}/{lesson.name}: no lesson called {lesson.name!r}; skipped")
                continue
            problem = notebook_problem(lesson / f"{lesson.name}.ipynb")
            found.append(Submission(student.name, lesson.name, problem))
    return found, skipped


def stage(submissions: list[Submission], folder: Path, dirs: GradingDirs) -> None:
    """Copy the submissions of known lessons into a fresh submitted/ folder nbgrader may read."""
    for sub in submissions:
        shutil.copytree(folder / sub.student / sub.lesson, dirs.submitted / sub.student / sub.lesson)


class Progress:
    """Echo nbgrader's "Autograding <notebook>" log lines as short progress lines, and time each submission.

    A submission's time runs from nbgrader's "Sanitizing" line for it to the next one (or the end of
    autograde): executing the notebook is nearly all of it.
    """

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = {}  # (student, lesson) -> seconds
        self._current: tuple[tuple[str, str], float] | None = None

    def __call__(self, line: str) -> None:
        """Handle one line of nbgrader's log."""
        if "] Sanitizing " in line:
            self.stop()
            parts = Path(line.split("] Sanitizing ", 1)[1]).parts
            self._current = ((parts[-3], parts[-2]), time.perf_counter())
        elif "] Autograding " in line:
            parts = Path(line.split("] Autograding ", 1)[1]).parts
            print(f"  autograding {parts[-3]}/{parts[-2]}", flush=True)

    def stop(self) -> None:
        """The submission being graded is done."""
        if self._current is not None:
            key, start = self._current
            self.seconds[key] = time.perf_counter() - start
            self._current = None


def run_nbgrader(course: Course, dirs: GradingDirs) -> dict[tuple[str, str], float]:
    """generate_assignment, autograde, generate_feedback and export: one nbgrader call each.

    Returns the seconds autograde spent on each (student, lesson).
    """
    folders = [
        f"--CourseDirectory.submitted_directory={dirs.submitted}",
        f"--CourseDirectory.autograded_directory={dirs.autograded}",
        f"--CourseDirectory.feedback_directory={dirs.feedback}",
    ]
    steps = [
        ("generate_assignment", ["*", "--force", f"--CourseDirectory.release_directory={dirs.release}"]),
        ("autograde", ["*", "--force", *folders]),
        ("generate_feedback", ["*", "--force", *folders]),
        ("export", [f"--to={dirs.csv}"]),
    ]
    progress = Progress()
    for command, args in steps:
        print(f"nbgrader {command}", flush=True)
        nbgrader(course, command, *args, db=dirs.db, log=dirs.log, progress=progress)
        progress.stop()
    return progress.seconds


def outcome(sub: Submission, dirs: GradingDirs, seconds: float | None) -> tuple[str, bool]:
    """The report line of one submission (score, time, what was wrong), and whether it was graded."""
    grades = cell_grades(dirs.db, sub.lesson, sub.student)
    earned, possible = total(grades) if grades is not None else (0.0, max_points(dirs.db, sub.lesson))
    took = f"{seconds:7.1f}" if seconds is not None else f"{'-':>7}"
    line = f"{sub.student:<20} {sub.lesson:<28} {earned:6.1f} / {possible:<6.1f} {took}"
    if not (dirs.autograded / sub.student / sub.lesson / f"{sub.lesson}.ipynb").is_file():
        return f"{line}  NOT GRADED: {sub.problem or f'autograde failed (see {dirs.log})'}; 0 points", False
    missing = [g.grade_id for g in grades or [] if g.missing]
    if missing:
        return f"{line}  graded cells missing from the notebook (0 points): {', '.join(missing)}", True
    return line.rstrip(), True


def stale_lessons(course: Course, dirs: GradingDirs) -> list[str]:
    """Lessons whose student copy in notebooks/ is not what solutions/ releases now."""
    fresh = {lesson: dirs.release / lesson / f"{lesson}.ipynb" for lesson in course.lessons()}
    return [
        lesson
        for lesson, path in fresh.items()
        if path.is_file()
        and (not course.released(lesson).is_file() or course.released(lesson).read_bytes() != path.read_bytes())
    ]


def grade(course: Course, folder: Path) -> int:
    """Grade every submission under folder; print the report; return the exit code."""
    dirs = GradingDirs.under(course.build / "grading")
    shutil.rmtree(dirs.base, ignore_errors=True)
    submissions, skipped = scan(course, folder)
    if not submissions:
        print(f"grade: no submission of a lesson of this course in {folder}", file=sys.stderr)
        return 1
    stage(submissions, folder, dirs)
    seconds = run_nbgrader(course, dirs)
    print(f"\n{'student':<20} {'lesson':<28} {'points':>15} {'seconds':>7}")
    graded = []
    for sub in submissions:
        line, ok = outcome(sub, dirs, seconds.get((sub.student, sub.lesson)))
        print(line)
        graded.append(ok)
    for line in skipped:
        print(f"skipped: {line}")
    for lesson in stale_lessons(course, dirs):
        print(
            f"warning: notebooks/{lesson} is not what solutions/{lesson} releases now (run make release); "
            f"graded against solutions/"
        )
    print(f"\ngrades: {dirs.csv}\nfeedback: {dirs.feedback}/<student>/<lesson>/<lesson>.html\nlog: {dirs.log}")
    return 0 if all(graded) and not skipped else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and grade."""
    parser = argparse.ArgumentParser(prog="python -m grader.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder of <student>/<lesson>/<lesson>.ipynb")
    add_course_arguments(parser)
    args = parser.parse_args(argv)
    course = course_from_arguments(args)
    if not args.submissions.is_dir():
        print(
            f"grade: {args.submissions} is not a folder of submissions (<student>/<lesson>/<lesson>.ipynb)",
            file=sys.stderr,
        )
        return 2
    if not course.lessons():
        print(f"grade: no lessons in {course.solutions}", file=sys.stderr)
        return 2
    return grade(course, args.submissions.resolve())


if __name__ == "__main__":
    sys.exit(main())
