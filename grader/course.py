"""Where a course's lessons live, and how the grader calls nbgrader and reads its gradebook.

A lesson is a folder `solutions/<lesson>/` holding the nbgrader source `<lesson>.ipynb`; its student
copy is `notebooks/<lesson>/<lesson>.ipynb`. Every nbgrader call goes through `nbgrader()`, which
passes grader/nbgrader_config.py and the folders explicitly, so that the same code grades the real
course (the repository) and the test fixtures (any root, any build folder).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = Path(__file__).resolve().parent / "nbgrader_config.py"


@dataclass(frozen=True)
class Course:
    """A course root (with solutions/ and notebooks/) and the build folder the grader writes to."""

    root: Path
    build: Path

    @property
    def solutions(self) -> Path:
        """The nbgrader source folder: one sub-folder per lesson."""
        return self.root / "solutions"

    @property
    def notebooks(self) -> Path:
        """The release folder: the student copies."""
        return self.root / "notebooks"

    def lessons(self) -> list[str]:
        """Names of the lessons on disk: folders of solutions/ that hold <name>/<name>.ipynb."""
        if not self.solutions.is_dir():
            return []
        return sorted(p.name for p in self.solutions.iterdir() if (p / f"{p.name}.ipynb").is_file())

    def source(self, lesson: str) -> Path:
        """The nbgrader source notebook of a lesson."""
        return self.solutions / lesson / f"{lesson}.ipynb"

    def released(self, lesson: str) -> Path:
        """The student copy of a lesson."""
        return self.notebooks / lesson / f"{lesson}.ipynb"


def add_course_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --root and --build, which tests use to grade a fixture course into a temporary folder."""
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="course root (default: the repository)")
    parser.add_argument("--build", type=Path, default=None, help="build folder (default: <root>/build)")


def course_from_arguments(args: argparse.Namespace) -> Course:
    """The Course that --root and --build name, with absolute paths."""
    root = args.root.resolve()
    return Course(root=root, build=(args.build or root / "build").resolve())


def tool_env() -> dict[str, str]:
    """This process's environment with the venv's bin/ first on PATH, as in an activated venv.

    nbgrader runs `alembic` by name and the Makefile does not activate the venv; kernels started
    with this environment see what a learner's kernel in the activated venv sees, nothing more.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def use_tool_env() -> None:
    """Put tool_env() into this process too (in-process Gradebook reads also call alembic)."""
    os.environ.update(tool_env())


def db_url(db: Path) -> str:
    """The SQLAlchemy URL of a sqlite gradebook file."""
    return f"sqlite:///{db.resolve()}"


def nbgrader(
    course: Course, command: str, *args: str, db: Path, log: Path, progress: Callable[[str], None] | None = None
) -> int:
    """Run `nbgrader <command> <args>` on the course with our config; return its exit code.

    Its log is appended to `log`; `progress`, if given, sees each log line as it comes.
    """
    cmd = [
        sys.executable,
        "-m",
        "nbgrader",
        command,
        *args,
        f"--JupyterApp.config_file={CONFIG_FILE.with_suffix('')}",
        f"--CourseDirectory.root={course.root}",
        f"--CourseDirectory.db_url={db_url(db)}",
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (
        log.open("a") as fh,
        subprocess.Popen(
            cmd, cwd=course.root, env=tool_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as proc,
    ):
        fh.write(f"\n$ {' '.join(cmd)}\n")
        for line in proc.stdout:
            fh.write(line)
            if progress:
                progress(line.rstrip("\n"))
    with log.open("a") as fh:
        fh.write(f"[grader] nbgrader {command}: exit code {proc.returncode}, {time.perf_counter() - start:.1f} s\n")
    return proc.returncode
