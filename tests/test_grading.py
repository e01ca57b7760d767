"""The grading pipeline end to end, on the small fixture course (tests/fixtures/course): every path of it.

Real lessons are executed twice only (test_lessons.py); the paths that need more executions are proven here,
where a lesson runs in seconds. One `python -m grader.grade` run grades all the pseudo-students:

    solution   the released copy with every answer cell's solution   -> full marks
    untouched  the released copy as it is                             -> 0 on every test cell
    wrong      solutions, except one wrong answer (tests/lessons)     -> exactly that test fails
    missing    the released copy cut after its third cell             -> graded 0, cells listed
    broken     a file that is not JSON                                 -> listed as not graded

plus a folder for a lesson the course does not have. The fixture's wrong answer passes the visible test and
fails a hidden one, so that feedback has a hidden assert to hide. `make check` is proven against autograde here.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from grader import CELL_TIMEOUT_S, check, workspace
from grader.course import Course
from grader.grade import GradingDirs
from grader.gradebook import CellGrade, cell_grades
from grader.hidden import PLACEHOLDER, hide_hidden_tests
from grader.parameters import INJECTED_TAG, inject, parameter_names
from tests import lessons as lesson_modules
from tests.pages import hidden_lines, page_text

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "course"
LESSON = "00-fixture"
STUDENTS = ("solution", "untouched", "wrong", "missing", "broken")
NO_SUCH_LESSON = "99-no-such-lesson"
WRONG = "lora_scaling"  # the exercise the fixture's "wrong" student gets wrong


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    """A cell's nbgrader metadata ({} if none)."""
    return cell.metadata.get("nbgrader", {})


def answers(nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> source of the answer (solution) cells."""
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if nbgrader_meta(c).get("solution")}


def fill_answers(released: nbformat.NotebookNode, sources: dict[str, str]) -> nbformat.NotebookNode:
    """The released copy with the given source in each answer cell it names."""
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        cell.source = sources.get(nbgrader_meta(cell).get("grade_id"), cell.source)
    return nb


def fixture_notebooks(course: Course) -> dict[str, nbformat.NotebookNode]:
    """student -> notebook, for every pseudo-student but the broken one."""
    released = nbformat.read(course.released(LESSON), as_version=4)
    solution = answers(nbformat.read(course.source(LESSON), as_version=4))
    wrong = lesson_modules.wrong_answers(lesson_modules.load(LESSON), [WRONG])
    cut = copy.deepcopy(released)
    cut.cells = cut.cells[:3]
    return {
        "solution": fill_answers(released, solution),
        "untouched": released,
        "missing": cut,
        "wrong": fill_answers(released, {**solution, **wrong}),
    }


def write_submissions(course: Course, folder: Path) -> None:
    """Every pseudo-student's submission, and one for a lesson that does not exist."""
    for student, nb in fixture_notebooks(course).items():
        (folder / student / LESSON).mkdir(parents=True)
        nbformat.write(nb, folder / student / LESSON / f"{LESSON}.ipynb")
    (folder / "broken" / LESSON).mkdir(parents=True)
    (folder / "broken" / LESSON / f"{LESSON}.ipynb").write_text('{"cells": [ this is not JSON')
    stray = folder / "solution" / NO_SUCH_LESSON
    stray.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), stray / f"{NO_SUCH_LESSON}.ipynb")


@dataclass
class Graded:
    """The grader.grade run over the fixture's submissions."""

    course: Course
    submissions: Path
    dirs: GradingDirs
    returncode: int
    stdout: str
    stderr: str

    def grades(self, student: str) -> list[CellGrade]:
        """The per-cell grades of one submission (fails if the gradebook has none)."""
        grades = cell_grades(self.dirs.db, LESSON, student)
        assert grades is not None, f"no {student}/{LESSON} in the gradebook:\n{self.stdout}"
        return grades


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    """Write the submissions and run `python -m grader.grade` on them once."""
    tmp = tmp_path_factory.mktemp("grade-fixture")
    course = Course(FIXTURE, tmp / "build")
    write_submissions(course, tmp / "submissions")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.grade",
            str(tmp / "submissions"),
            "--root",
            str(FIXTURE),
            "--build",
            str(course.build),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Graded(
        course,
        tmp / "submissions",
        GradingDirs.under(course.build / "grading"),
        done.returncode,
        done.stdout,
        done.stderr,
    )


# -- the course on disk ------------------------------------------------------------------------------------


@pytest.mark.parametrize("root", [REPO, FIXTURE], ids=["course", "fixture"])
def test_solutions_are_stored_without_outputs(root):
    """Every code cell of every source notebook has no outputs and no execution count."""
    course = Course(root, root)
    for lesson in course.lessons():
        nb = nbformat.read(course.source(lesson), as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"cells {dirty} of {lesson} carry outputs: clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("root", [REPO, FIXTURE], ids=["course", "fixture"])
def test_notebooks_equal_what_release_generates(root, tmp_path):
    """notebooks/ is byte for byte what `python -m grader.release` generates from solutions/."""
    dest = tmp_path / "notebooks"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.release",
            "--root",
            str(root),
            "--build",
            str(tmp_path / "build"),
            "--dest",
            str(dest),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    committed = Course(root, root).notebooks
    files = lambda top: sorted(p.relative_to(top) for p in top.rglob("*") if p.is_file())  # noqa: E731
    assert files(committed) == files(dest), "notebooks/ has other files than a release: run `make release`"
    stale = [str(f) for f in files(dest) if (committed / f).read_bytes() != (dest / f).read_bytes()]
    assert not stale, f"stale student copies {stale}: run `make release`"


def test_nbgrader_config():
    """The nbgrader config: course folders, a timeout for real cells, the hiding feedback preprocessor."""
    config = check.nbgrader_config()
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "notebooks"
    assert Path(config.CourseDirectory.root) == REPO
    assert config.Execute.timeout == CELL_TIMEOUT_S >= 300
    assert "grader.feedback.HideHiddenTests" in config.GenerateFeedback.preprocessors
    assert "build/grading" in config.CourseDirectory.db_url


def test_hide_hidden_tests_cuts_source_and_tracebacks():
    """A test cell's hidden region and a traceback quoting it are both gone; the error name stays."""
    secret = "assert lora_scaling(32, 64) == 0.5"
    cell = nbformat.v4.new_code_cell(f"assert True\n### BEGIN HIDDEN TESTS\n{secret}\n### END HIDDEN TESTS")
    cell.outputs = [
        nbformat.v4.new_output(
            "error", ename="AssertionError", evalue="", traceback=[f"----> 3 {secret}", "AssertionError: "]
        ),
        nbformat.v4.new_output("stream", name="stderr", text=f"warn\n  {secret}\n"),
    ]
    assert hide_hidden_tests(cell, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    text = json.dumps(cell)
    assert secret not in text and "HIDDEN TESTS" not in cell.source and PLACEHOLDER in cell.source
    assert cell.outputs[0].traceback == ["AssertionError"] and cell.outputs[1].text == "warn\n"


def test_grading_parameters_are_papermills_cell_for_defined_names_only():
    """The injected cell is papermill's (tag, translator) and sets only the names the parameters cell defines."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "seed: int = 0  # the seed\nmax_steps: int = 120  # steps", metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_code_cell("x = 1"),
        ]
    )
    assert parameter_names(nb) == {"seed", "max_steps"}
    assert inject(nb, {"max_steps": 5, "lr": 0.1}) == {"max_steps": 5}
    assert nb.cells[1].metadata.tags == [INJECTED_TAG] and "max_steps = 5" in nb.cells[1].source
    assert "tags" not in nb.cells[2].metadata, "cells that had no tags keep none"
    assert inject(nbformat.v4.new_notebook(), {"max_steps": 5}) == {}


# -- autograde ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_solution_earns_full_marks(graded):
    grades = graded.grades("solution")
    assert grades and all(g.score == g.max_score > 0 for g in grades), grades


@pytest.mark.slow
def test_untouched_release_earns_zero(graded):
    """The released copy submitted as it is earns 0 on every autograded cell."""
    assert all(g.score == 0 for g in graded.grades("untouched"))


@pytest.mark.slow
def test_wrong_answer_loses_exactly_its_points(graded):
    """The wrong answer makes its `<id>_tests` cell score 0; the other test cell keeps its points."""
    scores = {g.grade_id: (g.score, g.max_score) for g in graded.grades("wrong")}
    assert scores.pop(f"{WRONG}_tests")[0] == 0
    assert all(score == max_score for score, max_score in scores.values()), scores


@pytest.mark.slow
def test_broken_submissions_do_not_stop_the_others(graded):
    """Not-a-notebook and unknown-lesson folders are listed; every other submission is graded."""
    assert graded.returncode == 1, f"expected exit 1 (something not graded):\n{graded.stdout}\n{graded.stderr}"
    assert f"solution/{NO_SUCH_LESSON}: no lesson called" in graded.stdout
    assert re.search(rf"^broken\s+{LESSON}\s.*NOT GRADED: .*not a valid notebook", graded.stdout, re.M)
    with graded.dirs.csv.open() as fh:
        students = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == LESSON}
    assert set(STUDENTS) <= set(students), f"missing from grades.csv: {students.keys()}"
    assert float(students["broken"]["score"]) == 0
    assert float(students["solution"]["score"]) == float(students["solution"]["max_score"]) > 0


@pytest.mark.slow
def test_report_times_each_graded_submission(graded):
    """Each executed row gives the seconds its execution took (the fixture's cells sleep 3 s); broken has none."""
    seconds = dict(re.findall(rf"^(\w+)\s+{LESSON}\s+[\d.]+ / [\d.]+\s+([\d.]+)", graded.stdout, re.M))
    assert set(seconds) == set(STUDENTS) - {"broken"}, graded.stdout
    assert float(seconds["solution"]) >= 3.0


@pytest.mark.slow
def test_notebook_missing_cells_is_graded_zero_and_listed(graded):
    """A notebook cut short is graded: its missing cells are put back from the release, score 0, and are named."""
    assert all(g.score == 0 and not g.missing for g in graded.grades("missing"))
    line = re.search(rf"^missing\s+{LESSON}\s.*", graded.stdout, re.M)[0]
    assert "missing from the notebook, restored from the release: intro_count, count_lora_params," in line
    assert "no answer found for: count_lora_params, lora_scaling" in line


@pytest.mark.slow
def test_feedback_never_shows_hidden_tests(graded):
    """No feedback page quotes a hidden-test line, in sources or tracebacks; the marker shows instead."""
    hidden = hidden_lines(graded.course, LESSON)
    for student in ("solution", "untouched", "wrong", "missing"):
        text = page_text(graded.dirs.feedback / student / LESSON / f"{LESSON}.html")
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}'s feedback shows hidden tests: {leaked}"
        assert student == "missing" or PLACEHOLDER in text


@pytest.mark.slow
def test_feedback_test_would_see_a_leak(graded):
    """The wrong answer fails a hidden assert, whose traceback quotes it before feedback hides it."""
    nb = nbformat.read(graded.dirs.autograded / "wrong" / LESSON / f"{LESSON}.ipynb", as_version=4)
    tracebacks = "\n".join(
        line for c in nb.cells if c.cell_type == "code" for o in c.outputs for line in o.get("traceback", [])
    )
    assert any(line in re.sub(r"\x1b\[[0-9;]*m", "", tracebacks) for line in hidden_lines(graded.course, LESSON))
    assert "AssertionError" in page_text(graded.dirs.feedback / "wrong" / LESSON / f"{LESSON}.html")


@pytest.mark.slow
def test_autograde_runs_with_the_grading_parameters(graded):
    """Autograde injects max_steps = 5 after the parameters cell (the fixture's default is 3)."""
    nb = nbformat.read(graded.dirs.autograded / "solution" / LESSON / f"{LESSON}.ipynb", as_version=4)
    injected = [c for c in nb.cells if INJECTED_TAG in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "max_steps = 5" in injected[0].source
    assert "slept 5 steps" in nb.cells[-1].outputs[0].text


# -- check -------------------------------------------------------------------------------------------------

CHECK_LINE = re.compile(r"^  (\S+)\s+(passed|FAILED)\s+([\d.]+) / ([\d.]+)", re.M)


def run_check(*args: str) -> subprocess.CompletedProcess:
    """`python -m grader.check ARGS` on the fixture course."""
    return subprocess.run(
        [sys.executable, "-m", "grader.check", *args, "--root", str(FIXTURE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("student", ["solution", "untouched", "wrong", "missing"])
def test_check_agrees_with_autograde(graded, student):
    """grader.check prints pass/fail per test cell with autograde's points, and no hidden test."""
    done = run_check(str(graded.submissions / student / LESSON / f"{LESSON}.ipynb"))
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    printed = {m[0]: (m[1], float(m[2]), float(m[3])) for m in CHECK_LINE.findall(done.stdout)}
    expected = {
        g.grade_id: ("passed" if g.score == g.max_score else "FAILED", g.score, g.max_score)
        for g in graded.grades(student)
    }
    assert printed == expected
    assert re.search(r"^Total: [\d.]+ / [\d.]+ points", done.stdout, re.M)
    assert not [line for line in hidden_lines(graded.course, LESSON) if line in done.stdout]
    if student == "missing":
        assert "missing from the notebook, restored from the release" in done.stdout
    if student in ("untouched", "missing"):
        assert done.stdout.count("not answered yet") == len(expected), done.stdout


@pytest.mark.slow
def test_check_prints_what_was_expected_and_what_the_notebook_gave(graded):
    """A failing assert's message reaches the learner whole: the case, the expected value and theirs."""
    done = run_check(str(graded.submissions / "wrong" / LESSON / f"{LESSON}.ipynb"))
    line = next(line for line in done.stdout.splitlines() if line.startswith(f"  {WRONG}_tests"))
    assert line.endswith("AssertionError: lora_alpha=32, r=64: expected 0.5, got 0"), line


@pytest.mark.slow
def test_checks_at_the_same_moment_keep_to_their_own_kernels(graded):
    """Three checks started together each grade their own notebook, with nothing on stderr.

    With one socket path for every kernel, kernels started at the same moment bound the same files: clients
    read each other's messages ("Invalid Signature") and a kernel could abort in zmq as it shut down.
    """
    students = ("solution", "wrong", "solution")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "grader.check", str(graded.submissions / s / LESSON / f"{LESSON}.ipynb")]
            + ["--root", str(FIXTURE)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in students
    ]
    done = [run.communicate(timeout=600) for run in runs]
    for student, run, (out, err) in zip(students, runs, done, strict=True):
        assert run.returncode == 0 and err == "", out + err
        scores = {g.grade_id: g.score for g in graded.grades(student)}
        assert f"Total: {sum(scores.values())} / " in out, out


@pytest.mark.slow
def test_check_without_a_notebook_grades_the_workspace(graded, tmp_path):
    """`make check` alone grades every lesson in work/ (the learner's copies that `make lab` makes)."""
    work = tmp_path / "work"
    assert workspace.main(["--root", str(FIXTURE), "--workspace", str(work)]) == 0
    mine = work / LESSON / f"{LESSON}.ipynb"
    nbformat.write(fixture_notebooks(graded.course)["solution"], mine)
    done = run_check("--workspace", str(work))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Checking {mine}" in done.stdout and "Total: 5.0 / 5.0 points" in done.stdout


def test_workspace_copies_once_and_never_overwrites(tmp_path, capsys):
    """make lab's copies: made when missing, kept when present, with a word when the course's is newer."""
    work = tmp_path / "work"
    assert workspace.main(["--root", str(FIXTURE), "--workspace", str(work)]) == 0
    mine = work / LESSON / f"{LESSON}.ipynb"
    assert mine.read_bytes() == (FIXTURE / "notebooks" / LESSON / f"{LESSON}.ipynb").read_bytes()
    mine.write_text(mine.read_text().replace("Fixture lesson", "Fixture lesson, with my notes"))
    workspace.main(["--root", str(FIXTURE), "--workspace", str(work)])
    assert "with my notes" in mine.read_text()
    assert "already has your copy" in capsys.readouterr().out


def two_lesson_course(tmp: Path) -> Path:
    """A course with the fixture lesson and a near copy of it (one test cell differs)."""
    nb = nbformat.read(FIXTURE / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    for lesson in (LESSON, "01-copy"):
        (tmp / "solutions" / lesson).mkdir(parents=True)
        nbformat.write(nb, tmp / "solutions" / lesson / f"{lesson}.ipynb")
        nb = copy.deepcopy(nb)
        nb.cells[6].source += "\nassert count_lora_params(1, 1, 1) == 2, 'one more'"
    return tmp


def bad_inputs(tmp: Path) -> dict[str, tuple[list[str], Path, str]]:
    """name -> (check's arguments, course root, what the one line must say)."""
    (tmp / "text.ipynb").write_text("print('hello')\n")
    (tmp / "json.ipynb").write_text('{"not": "a notebook"}')
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), tmp / "plain.ipynb")
    foreign = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "assert 1",
                metadata={
                    "nbgrader": {
                        "grade": True,
                        "grade_id": "q1_tests",
                        "locked": True,
                        "points": 1,
                        "schema_version": 3,
                        "solution": False,
                        "task": False,
                    }
                },
            )
        ]
    )
    nbformat.write(foreign, tmp / "foreign.ipynb")
    released = FIXTURE / "notebooks" / LESSON / f"{LESSON}.ipynb"
    (tmp / "01-copy.ipynb").write_bytes(released.read_bytes())
    empty = ["--workspace", str(tmp / "no-work")]
    return {
        "missing file": ([str(tmp / "nope.ipynb")], FIXTURE, "no such file"),
        "a folder": ([str(tmp)], FIXTURE, "not a file"),
        "not JSON": ([str(tmp / "text.ipynb")], FIXTURE, "not a Jupyter notebook"),
        "JSON, not a notebook": ([str(tmp / "json.ipynb")], FIXTURE, "not a Jupyter notebook"),
        "no nbgrader cells": ([str(tmp / "plain.ipynb")], FIXTURE, "not an exercise notebook of this course"),
        "another course": ([str(tmp / "foreign.ipynb")], FIXTURE, "not a notebook of this course"),
        "same grade_ids, other cells": ([str(released)], REPO, "not a notebook of this course"),
        "another lesson": (
            [str(tmp / "01-copy.ipynb")],
            two_lesson_course(tmp / "two"),
            "holds the cells of lesson 00-fixture",
        ),
        "empty workspace, no notebook": (empty, FIXTURE, "run `make lab`"),
        "empty NB=": (["", *empty], FIXTURE, "run `make lab`"),
    }


BAD = [
    "missing file",
    "a folder",
    "not JSON",
    "JSON, not a notebook",
    "no nbgrader cells",
    "another course",
    "same grade_ids, other cells",
    "another lesson",
    "empty workspace, no notebook",
    "empty NB=",
]


@pytest.mark.parametrize("name", BAD)
def test_check_bad_input_gives_one_line(name, tmp_path, capsys):
    """Bad input: exit 2, one line on stderr that says what is wrong, nothing on stdout, no traceback."""
    args, root, says = bad_inputs(tmp_path)[name]
    assert check.main([*args, "--root", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and says in err and "Traceback" not in err, err


def test_check_command_line_bad_input():
    """The same through the command line make check runs: one line that says what is wrong, exit 2."""
    done = run_check("/no/such/notebook.ipynb")
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert "no such file" in done.stderr and "Traceback" not in done.stderr


# -- run ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_writes_the_summary(tmp_path):
    """grader.run executes and autogrades every lesson and writes run-summary.json, exact schema."""
    done = subprocess.run(
        [sys.executable, "-m", "grader.run", "--root", str(FIXTURE), "--build", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "run-summary.json").read_text())
    assert set(summary) == {"notebooks", "total_seconds"} and isinstance(summary["total_seconds"], float)
    for entry in summary["notebooks"]:
        assert set(entry) == {"name", "seconds", "points", "max_points"}
        assert isinstance(entry["name"], str)
        assert all(isinstance(entry[k], float) for k in ("seconds", "points", "max_points"))
    assert [e["name"] for e in summary["notebooks"]] == [LESSON]
    assert summary["notebooks"][0]["points"] == summary["notebooks"][0]["max_points"] == 5.0
    assert (tmp_path / "executed" / LESSON / f"{LESSON}.ipynb").is_file()
    assert re.search(rf"^{LESSON}\s+[\d.]+\s+5\.0 / 5\.0", done.stdout, re.M)
    assert "without encryption" not in done.stdout + done.stderr, "kernels talk over local sockets, not plain TCP"


@pytest.mark.slow
def test_grading_kernels_use_local_sockets(graded):
    """No kernel the grader starts warns that it runs over unencrypted TCP (nbgrader's log holds their output)."""
    assert "Kernel is running over TCP" not in graded.dirs.log.read_text()


@pytest.mark.slow
def test_parallel_run_writes_what_a_serial_run_writes(graded, tmp_path):
    """The same submissions graded with one worker: the same grades.csv and feedback pages, byte for byte."""
    serial = tmp_path / "build"
    done = subprocess.run(
        [sys.executable, "-m", "grader.grade", str(graded.submissions), "--root", str(FIXTURE)]
        + ["--build", str(serial), "--workers", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == graded.returncode, done.stdout + done.stderr
    one = GradingDirs.under(serial / "grading")
    assert one.csv.read_bytes() == graded.dirs.csv.read_bytes()
    pages = lambda dirs: {p.relative_to(dirs.feedback): p.read_bytes() for p in dirs.feedback.rglob("*.html")}  # noqa: E731
    assert pages(one) == pages(graded.dirs) and pages(one)


def test_a_worker_starts_whatever_the_current_folder(tmp_path, monkeypatch):
    """nbgrader's converters chdir into the course root while they run in make grade's main thread; a worker started
    at that moment must still find `grader.worker` (it once exited with ModuleNotFoundError and lost its jobs)."""
    from grader.grade import Workers

    monkeypatch.chdir(tmp_path)
    workers = Workers()
    proc = workers.start()
    workers.end(proc)  # stdin closed: a worker that started exits 0 once it has nothing to do
    assert proc.returncode == 0, proc.returncode
