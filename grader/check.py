"""Grade a learner's notebook on their own machine, exactly as `make grade` would, and say why points were lost.

`python -m grader.check [NB ...]` (make check [NB=...]). Without a notebook it checks every lesson in the
learner's workspace (work/, made by `make lab`). The lesson is recognised from the notebook's nbgrader cells
(grade_ids and checksums against each lesson in solutions/). Then nbgrader's own converters do the grading,
in this process, in a throwaway course folder with a throwaway gradebook: GenerateAssignment records the lesson
(hidden tests included; never printed), grader.execute sanitizes the notebook (test cells restored) and executes
it with the grading parameters in the sandbox, and Autograde scores it as executed: the path `make grade` takes,
with the same nbgrader_config.py, so every nbgrader setting means the same in both. Points come from the
gradebook. A failure is explained by the error's name and its whole message (which names the case, what was
expected and what the notebook gave), without traceback and without any line of a hidden test.

Exit code: 0 when every notebook was graded (whatever its score); 2 for bad input (a missing file, a file that
is not a notebook, a notebook not of this course, an empty workspace), with one line on stderr; 1 if a notebook
could not be graded.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the imports below, which take seconds: the time reported is honest

import argparse
import copy
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.preprocessors import ClearHiddenTests, SaveCells
from traitlets.config import Config

from grader import CELL_TIMEOUT_S, sandbox
from grader.converters import nbgrader_config, run_converter
from grader.course import Course, add_course_arguments, course_from_arguments, use_tool_env
from grader.execute import Job, Settings, run_job, threads_per_worker
from grader.grade import GradingDirs, grading_config, scoring_config
from grader.gradebook import cell_grades
from grader.hidden import error_summary, redact, split_hidden
from grader.workspace import WORKSPACE, workspace_notebooks

Versions = tuple[NotebookNode, NotebookNode]  # a lesson as recorded in the gradebook, and as released
LEARNER = "learner"  # the student id of the throwaway gradebook
MESSAGE_LINES = 8  # a failure's message is shown up to this many lines,
LINE_CHARS = 600  # each up to this many characters: an assert's message ends with what the notebook gave


class CheckError(Exception):
    """Bad input: the message is the one line the learner sees."""


@dataclass(frozen=True)
class CellResult:
    """The outcome of one graded cell."""

    grade_id: str
    points: float
    max_points: float
    reason: str = ""  # why points were lost: error name and message, stderr, or a missing cell


def read_notebook(path: Path) -> NotebookNode:
    """The notebook at path, or a CheckError saying why there is none."""
    if not path.exists():
        raise CheckError(f"{path}: no such file")
    if not path.is_file():
        raise CheckError(f"{path} is not a file (give the path of a .ipynb notebook)")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # JSON, encoding or schema errors all mean: not a notebook
        raise CheckError(f"{path} is not a Jupyter notebook ({type(err).__name__})") from None
    return nb


# -- which lesson is this? ---------------------------------------------------------------------------------


def lesson_versions(course: Course, lesson: str, config: Config) -> Versions:
    """The lesson as generate_assignment records it in the gradebook, and as it releases it.

    Runs nbgrader's own GenerateAssignment preprocessors, in order, in memory: the first notebook is taken
    where SaveCells would store it (hidden tests in), the second at the end. Only checksums are read.
    """
    nb = nbformat.read(course.source(lesson), as_version=4)
    meta = {"notebook": lesson, "assignment": lesson, "student": ".", "db_url": ""}
    res, recorded = {"metadata": {"path": str(course.source(lesson).parent)}, "nbgrader": meta}, None
    for cls in GenerateAssignment.class_traits()["preprocessors"].default():
        if cls is SaveCells:
            recorded = copy.deepcopy(nb)
            continue
        nb, res = cls(config=config).preprocess(nb, res)
    return recorded, nb


def fingerprint(versions: Versions) -> dict[str, set[str]]:
    """grade_id -> the checksums its cell has in the recorded and in the released version."""
    prints: dict[str, set[str]] = {}
    for nb in versions:
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("checksum"):
                prints.setdefault(meta["grade_id"], set()).add(meta["checksum"])
    return prints


def cell_prints(cell: NotebookNode) -> set[str]:
    """The checksums a submitted cell can be recognised by: the one it carries, the one it has."""
    meta = cell.metadata.get("nbgrader", {})
    if "grade_id" not in meta:
        return set()
    prints = {meta.get("checksum")}
    try:
        prints.add(utils.compute_checksum(cell))
    except (AttributeError, KeyError, TypeError, ValueError):  # metadata too broken to checksum: the carried one
        pass
    return prints - {None}


def matching_cells(nb: NotebookNode, prints: dict[str, set[str]]) -> int:
    """How many cells of nb are cells of the lesson with these fingerprints."""
    return sum(
        1
        for cell in nb.cells
        if cell_prints(cell) & prints.get(cell.metadata.get("nbgrader", {}).get("grade_id"), set())
    )


def identify_lesson(course: Course, nb: NotebookNode, path: Path, config: Config) -> str:
    """The lesson whose cells the notebook carries (same grade_id, same checksum), or a CheckError."""
    if not any("grade_id" in c.metadata.get("nbgrader", {}) for c in nb.cells):
        if path.stem in course.lessons():  # every exercise cell deleted: graded as autograde would, all missing
            return path.stem
        raise CheckError(f"{path} is not an exercise notebook of this course: it has no nbgrader cells")
    shared = {
        lesson: matching_cells(nb, fingerprint(lesson_versions(course, lesson, config))) for lesson in course.lessons()
    }
    best = max(shared, key=lambda lesson: (shared[lesson], lesson == path.stem), default=None)
    if best is None or shared[best] == 0:
        raise CheckError(
            f"{path} is not a notebook of this course: none of its nbgrader cells is a cell of "
            f"a lesson in {course.solutions}"
        )
    if path.stem in shared and path.stem != best:
        raise CheckError(f"{path} is named after lesson {path.stem} but holds the cells of lesson {best}")
    return best


# -- grading with nbgrader's converters --------------------------------------------------------------------


def autograde(course: Course, lesson: str, nb: NotebookNode, tmp: Path, config: Config) -> Path:
    """Record the lesson, execute nb as LEARNER's submission the way `make grade` does, score it; return the
    gradebook's path."""
    dirs = GradingDirs.under(tmp)  # make grade's layout and config, in a throwaway folder
    config = grading_config(config, course, dirs)
    submitted = dirs.submitted / LEARNER / lesson
    submitted.mkdir(parents=True)
    nbformat.write(nb, submitted / f"{lesson}.ipynb")
    run_converter(GenerateAssignment, config, lesson, LEARNER, force=True, create_assignment=True)
    executed = dirs.executed / LEARNER / lesson / f"{lesson}.ipynb"
    release = dirs.release / lesson / f"{lesson}.ipynb"
    source = course.source(lesson).parent
    job = Job(LEARNER, lesson, submitted, source, dirs.work, executed, config.CourseDirectory.db_url, release)
    for event in run_job(job, check_settings(), config).events:
        print(f"  note: {event}", flush=True)
    run_converter(Autograde, scoring_config(config), lesson, LEARNER, force=True, create_student=True)
    return dirs.db


def check_settings() -> Settings:
    """make grade's settings for one notebook: the sandbox where bubblewrap works (a learner's own notebook on
    their own machine runs without it otherwise, with a word), every core's threads."""
    problem = sandbox.bwrap_works()
    if problem:
        print(f"note: checking without a sandbox ({problem})", flush=True)
    return Settings(cell_timeout=CELL_TIMEOUT_S, threads=threads_per_worker(1), sandboxed=not problem)


def failure_reason(cell: NotebookNode | None, hidden: list[str]) -> str:
    """Why a graded cell lost points: the error's name and message, with nothing from its hidden tests."""
    if cell is None:
        return "missing from the notebook"
    for out in cell.outputs:
        if out.output_type == "error" and out.ename == "NotImplementedError" and not out.evalue.strip():
            return "not answered yet: the exercise's answer cell still raises NotImplementedError"
        if out.output_type == "error":
            message = redact(error_summary(out.ename, out.evalue), hidden).strip().split("\n")
            return "\n".join(line[:LINE_CHARS] for line in message[:MESSAGE_LINES])
    return "partial credit"


def results(db: Path, graded: NotebookNode, lesson: str, config: Config) -> list[CellResult]:
    """Each graded cell's points from the gradebook, and the reason for any point lost."""
    clear = ClearHiddenTests(config=config)
    cells = {c.metadata.nbgrader["grade_id"]: c for c in graded.cells if utils.is_grade(c)}
    out = []
    for grade in cell_grades(db, lesson, LEARNER) or []:  # in the lesson's order
        cell = None if grade.missing else cells.get(grade.grade_id)
        hidden = split_hidden(cell.source, clear.begin_test_delimeter, clear.end_test_delimeter)[1] if cell else []
        reason = "" if grade.score == grade.max_score else failure_reason(cell, hidden)
        out.append(CellResult(grade.grade_id, grade.score, grade.max_score, reason))
    return out


def check(course: Course, path: Path) -> list[CellResult]:
    """Grade the notebook at path as `make grade` would; print progress; return per-cell results."""
    nb = read_notebook(path)
    config = nbgrader_config()
    lesson = identify_lesson(course, nb, path, config)
    print(f"Checking {path} (lesson {lesson}): grading it as the autograder does...", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"check-{lesson}-") as tmp:
        db = autograde(course, lesson, nb, Path(tmp), config)
        graded = nbformat.read(
            GradingDirs.under(Path(tmp)).autograded / LEARNER / lesson / f"{lesson}.ipynb", as_version=4
        )
        return results(db, graded, lesson, config)


def report(results: list[CellResult], seconds: float) -> str:
    """One line per graded cell (a failure's message indented below it), then the total."""
    lines = []
    for r in results:
        status = "passed" if r.points == r.max_points else "FAILED"
        first, *rest = r.reason.split("\n") if r.reason else [""]
        lines.append(f"  {r.grade_id:<36} {status:<7} {r.points:5.1f} / {r.max_points:<5.1f}  {first}".rstrip())
        lines += [f"  {'':<36} | {line}" for line in rest]
    earned, possible = sum(r.points for r in results), sum(r.max_points for r in results)
    lines.append(f"Total: {earned:.1f} / {possible:.1f} points ({seconds:.0f} s)")
    return "\n".join(lines)


def notebooks_to_check(argv_notebooks: list[str], workspace: Path) -> list[Path]:
    """The notebooks named, or the workspace's; a CheckError when there is nothing to check."""
    named = [name for name in argv_notebooks if name.strip()]  # make check NB= passes an empty string
    if named:
        return [Path(name) for name in named]
    found = workspace_notebooks(workspace)
    if not found:
        raise CheckError(
            f"nothing to check: {workspace}/ has no lesson yet (run `make lab` to make your copies) "
            f"and no notebook was given (make check NB=path/to/notebook.ipynb)"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Check the notebooks; bad input gives one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m grader.check", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=[], help="notebooks to check (default: those in work/)")
    parser.add_argument("--workspace", type=Path, default=WORKSPACE, help="the learner's folder (default: work/)")
    add_course_arguments(parser)
    args = parser.parse_args(argv)
    course = course_from_arguments(args)
    use_tool_env()
    status = 0
    try:
        paths = notebooks_to_check(args.notebooks, args.workspace)
        for path in paths:
            start = time.perf_counter() if path != paths[0] else STARTED
            print(report(check(course, path), time.perf_counter() - start), flush=True)
    except CheckError as err:
        print(f"check: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the kernel could not start, the lesson source is broken, ...: one line
        print(f"check: could not grade: {type(err).__name__}: {err}".split("\n")[0], file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
