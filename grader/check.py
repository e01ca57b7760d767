"""Grade one notebook for a learner, with no database: which tests pass, and the points.

`python -m grader.check NB` (make check NB=...). The lesson is recognised from the notebook's
nbgrader cells: their grade_ids and checksums against those of each lesson in solutions/. Then check does what nbgrader
autograde does, with nbgrader's own code: the lesson's cells as generate_assignment records them
(hidden tests included; never printed), the submission sanitized with OverwriteCells (test and
read-only cells restored), executed by nbgrader's Execute preprocessor with NBGRADER_EXECUTION set
and the same timeout, each graded cell scored by nbgrader.utils.determine_grade. So check and
autograde agree. Failures are explained by the error's name and message only, without traceback
and without any line of a hidden test.

Exit code: 0 when the notebook was graded (whatever its score); 2 for bad input (a missing file,
a file that is not a notebook, a notebook not of this course), with one line on stderr; 1 if the
notebook could not be executed.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the imports below, which take seconds: the time reported is honest

import argparse
import copy
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import MissingEntry
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearOutput, DeduplicateIds, Execute,
                                    NbGraderPreprocessor, OverwriteCells, SaveCells)
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

from grader.course import CONFIG_FILE, Course, add_course_arguments, course_from_arguments, use_tool_env
from grader.hidden import error_summary, redact, split_hidden


Versions = tuple[NotebookNode, NotebookNode]  # a lesson as recorded in the gradebook, and as released


class CheckError(Exception):
    """Bad input: the message is the one line the learner sees."""


@dataclass(frozen=True)
class CellResult:
    """The outcome of one graded cell."""

    grade_id: str
    points: float
    max_points: float
    reason: str = ""  # why points were lost: error name and message, stderr, or a missing cell


def nbgrader_config() -> Config:
    """The course's nbgrader configuration (grader/nbgrader_config.py) as a traitlets Config."""
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()


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


def lesson_versions(course: Course, lesson: str, config: Config) -> Versions:
    """The lesson as generate_assignment records it in the gradebook, and as it releases it.

    Runs nbgrader's own GenerateAssignment preprocessors, in order, without a database: the first
    notebook is taken where SaveCells would store it (hidden tests in), the second at the end.
    """
    nb = nbformat.read(course.source(lesson), as_version=4)
    res, recorded = resources(lesson, course.source(lesson).parent), None
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
    except (AttributeError, KeyError, TypeError, ValueError):  # metadata too broken to checksum: the carried one only
        pass
    return prints - {None}


def matching_cells(nb: NotebookNode, prints: dict[str, set[str]]) -> int:
    """How many cells of nb are cells of the lesson with these fingerprints."""
    return sum(1 for cell in nb.cells if cell_prints(cell) & prints.get(
        cell.metadata.get("nbgrader", {}).get("grade_id"), set()))


def identify_lesson(versions: dict[str, Versions], nb: NotebookNode, path: Path, solutions: Path) -> str:
    """The lesson whose cells the notebook carries (same grade_id, same checksum), or a CheckError."""
    if not any("grade_id" in c.metadata.get("nbgrader", {}) for c in nb.cells):
        raise CheckError(f"{path} is not an exercise notebook of this course: it has no nbgrader cells")
    shared = {lesson: matching_cells(nb, fingerprint(pair)) for lesson, pair in versions.items()}
    best = max(shared, key=lambda lesson: (shared[lesson], lesson == path.stem), default=None)
    if best is None or shared[best] == 0:
        raise CheckError(f"{path} is not a notebook of this course: none of its nbgrader cells is a cell of "
                         f"a lesson in {solutions}")
    if path.stem in shared and path.stem != best:
        raise CheckError(f"{path} is named after lesson {path.stem} but holds the cells of lesson {best}")
    return best


def resources(lesson: str, cwd: Path) -> dict:
    """The resources nbgrader's preprocessors expect (no database: db_url is empty)."""
    meta = {"notebook": lesson, "assignment": lesson, "student": ".", "db_url": ""}
    return {"metadata": {"path": str(cwd)}, "nbgrader": meta, "unique_key": lesson}


def source_cells(nb: NotebookNode) -> dict[str, SimpleNamespace]:
    """What SaveCells would store per grade_id: type, locked, source, checksum, points."""
    cells = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell) or utils.is_task(cell):
            cells[meta["grade_id"]] = SimpleNamespace(
                name=meta["grade_id"], cell_type=cell.cell_type, locked=utils.is_locked(cell),
                source=cell.source, checksum=meta.get("checksum"), graded=utils.is_grade(cell),
                max_score=float(meta.get("points", 0)))
    return cells


def overwrite_cells(nb: NotebookNode, cells: dict[str, SimpleNamespace], res: dict, config: Config) -> NotebookNode:
    """nbgrader's OverwriteCells, reading the lesson's cells from memory instead of a gradebook."""
    def find(grade_id: str, notebook_id: str, assignment_id: str) -> SimpleNamespace:
        if grade_id not in cells:
            raise MissingEntry()
        return cells[grade_id]

    overwrite = OverwriteCells(config=config)
    overwrite.notebook_id = overwrite.assignment_id = res["nbgrader"]["notebook"]
    overwrite.gradebook = SimpleNamespace(find_source_cell=find, find_graded_cell=find)
    return NbGraderPreprocessor.preprocess(overwrite, nb, res)[0]


def sanitize(nb: NotebookNode, source: NotebookNode, res: dict, config: Config) -> NotebookNode:
    """autograde's sanitize step: clear outputs, dedupe ids, the source kernelspec, restored cells."""
    for cls in (ClearOutput, DeduplicateIds):
        nb, res = cls(config=config).preprocess(nb, res)
    nb.metadata["kernelspec"] = source.metadata.get("kernelspec", {"name": "python3", "language": "python"})
    nb = overwrite_cells(nb, source_cells(source), res, config)
    return CheckCellMetadata(config=config).preprocess(nb, res)[0]


def before_execute(config: Config) -> list[type]:
    """The preprocessors the config puts before Execute in autograde (the grading parameters)."""
    configured = config.Autograde.get("autograde_preprocessors") or \
        Autograde.class_traits()["autograde_preprocessors"].default()
    classes = [import_item(pp) if isinstance(pp, str) else pp for pp in configured]
    return classes[:classes.index(Execute)] if Execute in classes else []


def execute(nb: NotebookNode, res: dict, config: Config) -> NotebookNode:
    """autograde's execution: what comes before Execute, then Execute, NBGRADER_EXECUTION=autograde."""
    for cls in before_execute(config):
        nb, res = cls(config=config).preprocess(nb, res)
    with utils.setenv(NBGRADER_EXECUTION="autograde"):
        return Execute(config=config).preprocess(nb, res)[0]


def failure_reason(cell: NotebookNode, hidden: list[str]) -> str:
    """Why a graded cell lost points, in one line, with nothing from its hidden tests."""
    for out in cell.outputs:
        if out.output_type == "error":
            return redact(error_summary(out.ename, out.evalue), hidden).split("\n")[0][:200]
        if out.output_type == "stream" and out.name == "stderr":
            first = redact(out.text, hidden).strip().split("\n")[0][:120]
            return f"wrote to stderr, which nbgrader scores 0: {first}"
    return "partial credit"


def hidden_delimiters(config: Config) -> tuple[str, str]:
    """The hidden-test delimiters, as configured for nbgrader's ClearHiddenTests."""
    clear = ClearHiddenTests(config=config)
    return clear.begin_test_delimeter, clear.end_test_delimeter


def score(nb: NotebookNode, cells: dict[str, SimpleNamespace], config: Config) -> list[CellResult]:
    """Each graded cell's points by nbgrader.utils.determine_grade; missing graded cells get 0."""
    begin, end = hidden_delimiters(config)
    results = []
    for cell in filter(utils.is_grade, nb.cells):
        points, max_points = utils.determine_grade(cell)
        points = points or 0.0  # None: a cell only a person can grade (none in this course)
        reason = "" if points == max_points else failure_reason(cell, split_hidden(cell.source, begin, end)[1])
        results.append(CellResult(cell.metadata.nbgrader["grade_id"], points, max_points, reason))
    seen = {r.grade_id for r in results}
    missing = [c for c in cells.values() if c.graded and c.name not in seen]
    return results + [CellResult(c.name, 0.0, c.max_score, "missing from the notebook") for c in missing]


def check(course: Course, path: Path) -> list[CellResult]:
    """Grade the notebook at path as autograde would; print progress; return per-cell results."""
    nb = read_notebook(path)
    config = nbgrader_config()
    versions = {lesson: lesson_versions(course, lesson, config) for lesson in course.lessons()}
    lesson = identify_lesson(versions, nb, path, course.solutions)
    source = versions[lesson][0]
    print(f"Checking {path} (lesson {lesson}): executing it as the autograder does...", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"check-{lesson}-") as tmp:
        copy_lesson_files(course, lesson, Path(tmp))
        res = resources(lesson, Path(tmp))
        nb = execute(sanitize(nb, source, res, config), res, config)
    return score(nb, source_cells(source), config)


def copy_lesson_files(course: Course, lesson: str, dest: Path) -> None:
    """The lesson's other files (data, images), as autograde copies them next to the notebook."""
    folder = course.source(lesson).parent
    for item in folder.iterdir():
        if item.suffix != ".ipynb" and not item.name.startswith("."):
            copier = shutil.copytree if item.is_dir() else shutil.copy
            copier(item, dest / item.name)


def report(results: list[CellResult], seconds: float) -> str:
    """One line per graded cell, then the total."""
    lines = []
    for r in results:
        status = "passed" if r.points == r.max_points else "FAILED"
        reason = f"  {r.reason}" if r.reason else ""
        lines.append(f"  {r.grade_id:<36} {status:<7} {r.points:5.1f} / {r.max_points:<5.1f}{reason}".rstrip())
    earned, possible = sum(r.points for r in results), sum(r.max_points for r in results)
    lines.append(f"Total: {earned:.1f} / {possible:.1f} points ({seconds:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Check one notebook; bad input gives one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m grader.check", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default="", help="the notebook to check")
    add_course_arguments(parser)
    args = parser.parse_args(argv)
    if not args.notebook.strip():  # a str, not a Path: Path("") is "." and would pass as a folder
        print("check: give a notebook, e.g. make check NB=notebooks/<lesson>/<lesson>.ipynb", file=sys.stderr)
        return 2
    args.notebook = Path(args.notebook)
    use_tool_env()
    try:
        results = check(course_from_arguments(args), args.notebook)
    except CheckError as err:
        print(f"check: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the kernel could not start, the lesson source is broken, ...: one line
        print(f"check: could not grade {args.notebook}: {type(err).__name__}: {err}".split("\n")[0],
              file=sys.stderr)
        return 1
    print(report(results, time.perf_counter() - STARTED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
