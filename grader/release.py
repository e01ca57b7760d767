"""Regenerate notebooks/ (the student copies) from solutions/ with nbgrader generate_assignment.

`python -m grader.release` (make release). nbgrader's output is deterministic (same source, same
bytes), so tests/test_grading.py releases into a temporary folder and compares it with notebooks/.
The gradebook generate_assignment needs is a throwaway one: releasing changes no grading state.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from grader.colab import add_badges
from grader.course import Course, add_course_arguments, course_from_arguments, nbgrader


def generate(course: Course, dest: Path, db: Path, log: Path, lesson: str = "*") -> list[str]:
    """Write the student copy of every lesson (or of one) under dest/<lesson>/ and record it in db.

    One nbgrader call for all lessons (each call costs seconds of start-up); returns the lessons
    whose student copy is missing afterwards (nbgrader removes what it failed to generate).
    """
    nbgrader(
        course, "generate_assignment", lesson, "--force", f"--CourseDirectory.release_directory={dest}", db=db, log=log
    )
    lessons = course.lessons() if lesson == "*" else [lesson]
    return [name for name in lessons if not (dest / name / f"{name}.ipynb").is_file()]


def release(course: Course, dest: Path, lesson: str = "*") -> list[str]:
    """Release every lesson of the course (or one) into dest; return the lessons that failed."""
    log = course.build / "release.log"
    log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        failed = generate(course, dest, Path(tmp) / "gradebook.db", log, lesson)
    add_badges(course, dest, course.lessons() if lesson == "*" else [lesson])  # grader/colab.py
    for name in course.lessons() if lesson == "*" else [lesson]:
        print(f"  {name:<32} {'FAILED (see ' + str(log) + ')' if name in failed else 'ok'}", flush=True)
    return failed


def stale_folders(course: Course, dest: Path) -> list[str]:
    """Lesson folders in dest that no lesson of solutions/ produces any more."""
    if not dest.is_dir():
        return []
    return sorted(p.name for p in dest.iterdir() if p.is_dir() and p.name not in course.lessons())


def main(argv: list[str] | None = None) -> int:
    """Release every lesson into notebooks/; exit 1 if any failed."""
    parser = argparse.ArgumentParser(prog="python -m grader.release", description=__doc__.splitlines()[0])
    add_course_arguments(parser)
    parser.add_argument("--dest", type=Path, default=None, help="release folder (default: <root>/notebooks)")
    parser.add_argument("--lesson", default="*", help="release this lesson only (default: every lesson)")
    args = parser.parse_args(argv)
    course = course_from_arguments(args)
    dest = (args.dest or course.notebooks).resolve()
    if not course.lessons() or args.lesson not in ("*", *course.lessons()):
        what = f"no lesson {args.lesson!r}" if course.lessons() else "no lessons"
        print(f"release: {what} in {course.solutions} (expected <lesson>/<lesson>.ipynb)", file=sys.stderr)
        return 1
    count = len(course.lessons()) if args.lesson == "*" else 1
    print(f"Releasing {count} lesson(s) from {course.solutions} into {dest}", flush=True)
    failed = release(course, dest, args.lesson)
    for name in stale_folders(course, dest):
        print(f"  warning: {dest / name} has no source in solutions/ any more; remove it by hand", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
