"""Grading end to end: release, autograde, feedback, check and run, for every lesson on disk.

Every lesson of solutions/ is a case, and so is the fixture lesson (tests/fixtures/course), whose
wrong answer passes the visible test and fails the hidden one. One `python -m grader.grade` run per
course grades all the pseudo-students of all its lessons at once (each autograde executes a
notebook, tens of seconds for a real lesson):

    solution   the released copy with every answer cell's solution   -> full marks
    untouched  the released copy as it is                             -> 0 on every test cell
    wrong      solutions, except the answers of tests/wrong_answers.py -> exactly their tests fail
    missing    the released copy cut after its third cell             -> graded 0, cells listed
    broken     a file that is not JSON                                 -> listed as not graded

plus a folder for a lesson the course does not have. Wrong-answer convention: the test cell of the
answer cell `<id>` is `<id>_tests`.
"""

from __future__ import annotations

import copy
import html
import importlib.util
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from grader import CELL_TIMEOUT_S, check
from grader.course import Course
from grader.grade import GradingDirs
from grader.gradebook import CellGrade, cell_grades
from grader.hidden import MIN_QUOTED, PLACEHOLDER, hide_hidden_tests, split_hidden
from grader.parameters import INJECTED_TAG, inject, parameter_names

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "course"
WRONG_ANSWERS_FILE = REPO / "tests" / "wrong_answers.py"
FIXTURE_WRONG_ANSWERS = {
    # integer division: 16 // 8 == 2 passes the visible test, 32 // 64 == 0 fails the hidden one
    "00-fixture": {"lora_scaling": "def lora_scaling(lora_alpha, r):\n    return lora_alpha // r\n"},
}
STUDENTS = ("solution", "untouched", "wrong", "missing", "broken")
NO_SUCH_LESSON = "99-no-such-lesson"
CHECK_BUDGET_S = 30  # what a learner should wait for `make check`; asserted with CI slack below


def lessons(root: Path) -> list[str]:
    """The lessons of a course root."""
    return Course(root, root / "build").lessons()


CASES = [pytest.param(REPO, lesson, id=lesson) for lesson in lessons(REPO)]
CASES += [pytest.param(FIXTURE, "00-fixture", id="fixture")]


def wrong_answers(root: Path) -> dict[str, dict[str, str]] | None:
    """WRONG_ANSWERS of the course (tests/wrong_answers.py for the real one); None if missing."""
    if root == FIXTURE:
        return FIXTURE_WRONG_ANSWERS
    if not WRONG_ANSWERS_FILE.is_file():
        return None
    spec = importlib.util.spec_from_file_location("wrong_answers", WRONG_ANSWERS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG_ANSWERS


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    """A cell's nbgrader metadata ({} if none)."""
    return cell.metadata.get("nbgrader", {})


def answers(nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> source of the answer (solution) cells."""
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if nbgrader_meta(c).get("solution")}


def graded_ids(nb: nbformat.NotebookNode) -> list[str]:
    """grade_ids of the autograded test cells, in order."""
    return [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c).get("grade")]


def fill_answers(released: nbformat.NotebookNode, sources: dict[str, str]) -> nbformat.NotebookNode:
    """The released copy with the given source in each answer cell it names."""
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        cell.source = sources.get(nbgrader_meta(cell).get("grade_id"), cell.source)
    return nb


def hidden_lines(course: Course, lesson: str) -> list[str]:
    """The lesson's hidden-test lines that a page could not show otherwise (stripped).

    Lines too short to recognise, and lines that also occur in the student copy (a visible
    `with torch.no_grad():`), are left out.
    """
    source = nbformat.read(course.source(lesson), as_version=4)
    released = "\n".join(c.source for c in nbformat.read(course.released(lesson), as_version=4).cells)
    lines = [line.strip() for c in source.cells
             for line in split_hidden(c.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")[1]]
    return [line for line in lines if len(line) >= MIN_QUOTED and line not in released]


def write_submissions(course: Course, folder: Path) -> None:
    """Every pseudo-student's submission of every lesson, and one for a lesson that does not exist."""
    wrong = wrong_answers(course.root)
    for lesson in course.lessons():
        released = nbformat.read(course.released(lesson), as_version=4)
        solution = answers(nbformat.read(course.source(lesson), as_version=4))
        cut = copy.deepcopy(released)
        cut.cells = cut.cells[:3]
        notebooks = {"solution": fill_answers(released, solution), "untouched": released, "missing": cut}
        if wrong is not None and lesson in wrong:
            notebooks["wrong"] = fill_answers(released, {**solution, **wrong[lesson]})
        for student, nb in notebooks.items():
            (folder / student / lesson).mkdir(parents=True)
            nbformat.write(nb, folder / student / lesson / f"{lesson}.ipynb")
        (folder / "broken" / lesson).mkdir(parents=True)
        (folder / "broken" / lesson / f"{lesson}.ipynb").write_text('{"cells": [ this is not JSON')
    stray = folder / "solution" / NO_SUCH_LESSON
    stray.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), stray / f"{NO_SUCH_LESSON}.ipynb")


@dataclass
class Graded:
    """One grader.grade run over a course's submissions."""

    course: Course
    submissions: Path
    dirs: GradingDirs
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def grades(self, lesson: str, student: str) -> list[CellGrade]:
        """The per-cell grades of one submission (fails if the gradebook has none)."""
        grades = cell_grades(self.dirs.db, lesson, student)
        assert grades is not None, f"no {student}/{lesson} in the gradebook:\n{self.stdout}"
        return grades


def grade_course(root: Path, tmp: Path) -> Graded:
    """Write the submissions and run `python -m grader.grade` on them, into tmp."""
    course = Course(root, tmp / "build")
    write_submissions(course, tmp / "submissions")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "grader.grade", str(tmp / "submissions"), "--root", str(root), "--build",
         str(course.build)], cwd=REPO, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    print(f"grader.grade on {root.name}: {seconds:.0f} s\n{done.stdout}")
    return Graded(course, tmp / "submissions", GradingDirs.under(course.build / "grading"),
                  done.returncode, done.stdout, done.stderr, seconds)


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Graded(root): the one grading run of that course root, made on first use."""
    runs: dict[Path, Graded] = {}

    def get(root: Path) -> Graded:
        if root not in runs:
            runs[root] = grade_course(root, tmp_path_factory.mktemp(f"grade-{root.name}"))
        return runs[root]

    return get


def page_text(path: Path) -> str:
    """The visible text of an HTML page: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


# -- the course on disk ------------------------------------------------------------------------------


def test_course_has_lessons():
    """solutions/ holds at least one lesson as <lesson>/<lesson>.ipynb."""
    assert lessons(REPO), "no lesson found in solutions/ (expected solutions/<lesson>/<lesson>.ipynb)"


@pytest.mark.parametrize("root, lesson", CASES)
def test_solutions_are_stored_without_outputs(root, lesson):
    """Every code cell of the source notebook has no outputs and no execution count."""
    nb = nbformat.read(Course(root, root).source(lesson), as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} of {lesson} carry outputs: clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("root", [REPO, FIXTURE], ids=["course", "fixture"])
def test_notebooks_equal_what_release_generates(root, tmp_path):
    """notebooks/ is byte for byte what `python -m grader.release` generates from solutions/."""
    dest = tmp_path / "notebooks"
    done = subprocess.run([sys.executable, "-m", "grader.release", "--root", str(root), "--build",
                           str(tmp_path / "build"), "--dest", str(dest)], cwd=REPO, capture_output=True, text=True)
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
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="",
                                           traceback=[f"----> 3 {secret}", "AssertionError: "]),
                    nbformat.v4.new_output("stream", name="stderr", text=f"warn\n  {secret}\n")]
    assert hide_hidden_tests(cell, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    text = json.dumps(cell)
    assert secret not in text and "HIDDEN TESTS" not in cell.source and PLACEHOLDER in cell.source
    assert cell.outputs[0].traceback == ["AssertionError"] and cell.outputs[1].text == "warn\n"


def test_grading_parameters_override_only_defined_names():
    """The injected cell follows the parameters cell and sets only the names that cell defines."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("seed: int = 0\nmax_steps: int = 120  # steps", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1")])
    assert parameter_names(nb.cells[0].source) == {"seed", "max_steps"}
    assert inject(nb, {"max_steps": 5, "lr": 0.1}) == {"max_steps": 5}
    assert nb.cells[1].metadata.tags == [INJECTED_TAG] and nb.cells[1].source.endswith("max_steps = 5")
    assert inject(nbformat.v4.new_notebook(), {"max_steps": 5}) == {}


# -- autograde ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("root, lesson", CASES)
def test_solutions_earn_full_marks(graded, root, lesson):
    """The solution, submitted in the released copy, earns every point of every test cell."""
    grades = graded(root).grades(lesson, "solution")
    assert grades and sum(g.max_score for g in grades) > 0
    lost = [f"{g.grade_id} {g.score}/{g.max_score}" for g in grades if g.score != g.max_score]
    assert not lost, f"the solution of {lesson} loses points: {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("root, lesson", CASES)
def test_untouched_release_earns_zero(graded, root, lesson):
    """The released copy submitted as it is earns 0 on every autograded cell."""
    earned = [f"{g.grade_id} {g.score}" for g in graded(root).grades(lesson, "untouched") if g.score != 0]
    assert not earned, f"an untouched {lesson} earns points: {earned}"


@pytest.mark.slow
@pytest.mark.parametrize("root, lesson", CASES)
def test_wrong_answers_lose_exactly_their_points(graded, root, lesson):
    """Each wrong answer makes its `<id>_tests` cell score 0; every other test cell keeps its points."""
    wrong = wrong_answers(root)
    if wrong is None:
        pytest.fail(f"{WRONG_ANSWERS_FILE} is missing: it must define WRONG_ANSWERS[lesson][answer grade_id] "
                    f"= the source of a plausible wrong answer")
    if lesson not in wrong:
        pytest.fail(f"tests/wrong_answers.py has no wrong answers for lesson {lesson}")
    source = nbformat.read(graded(root).course.source(lesson), as_version=4)
    unknown = [a for a in wrong[lesson] if a not in answers(source) or f"{a}_tests" not in graded_ids(source)]
    assert not unknown, f"{unknown}: not answer cells of {lesson} with a `<id>_tests` test cell"
    targeted = {f"{a}_tests" for a in wrong[lesson]}
    grades = graded(root).grades(lesson, "wrong")
    kept = [g.grade_id for g in grades if g.grade_id in targeted and g.score != 0]
    lost = [g.grade_id for g in grades if g.grade_id not in targeted and g.score != g.max_score]
    assert not kept, f"wrong answers still earn points in {kept}"
    assert not lost, f"correct answers lose points in {lost} (a test depends on another exercise?)"


@pytest.mark.slow
@pytest.mark.parametrize("root", [REPO, FIXTURE], ids=["course", "fixture"])
def test_broken_submissions_do_not_stop_the_others(graded, root):
    """Not-a-notebook and unknown-lesson folders are listed; every other submission is graded."""
    run = graded(root)
    assert run.returncode == 1, f"expected exit 1 (something not graded):\n{run.stdout}\n{run.stderr}"
    assert f"solution/{NO_SUCH_LESSON}: no lesson called" in run.stdout
    rows = list(csv_rows(run.dirs.csv))
    for lesson in run.course.lessons():
        assert re.search(rf"^broken\s+{re.escape(lesson)}\s.*NOT GRADED: .*not a valid notebook", run.stdout, re.M)
        students = {r["student_id"]: r for r in rows if r["assignment"] == lesson}
        assert set(STUDENTS) - {"wrong"} <= set(students), f"missing from grades.csv: {students.keys()}"
        assert float(students["broken"]["score"]) == 0
        assert float(students["solution"]["score"]) == float(students["solution"]["max_score"]) > 0
        assert (run.dirs.autograded / "solution" / lesson / f"{lesson}.ipynb").is_file()


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of nbgrader's grades CSV."""
    import csv

    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
@pytest.mark.parametrize("root, lesson", CASES)
def test_notebook_missing_cells_is_graded_zero_and_listed(graded, root, lesson):
    """A notebook cut short is graded: its missing test cells score 0 and are named in the report."""
    run = graded(root)
    grades = run.grades(lesson, "missing")
    assert all(g.score == 0 and g.missing for g in grades)
    assert re.search(rf"^missing\s+{re.escape(lesson)}\s.*missing from the notebook", run.stdout, re.M)


@pytest.mark.slow
@pytest.mark.parametrize("root, lesson", CASES)
def test_feedback_never_shows_hidden_tests(graded, root, lesson):
    """No feedback page quotes a hidden-test line, in sources or tracebacks; the marker shows instead."""
    run = graded(root)
    hidden = hidden_lines(run.course, lesson)
    for student in ("solution", "untouched", "wrong", "missing"):
        page = run.dirs.feedback / student / lesson / f"{lesson}.html"
        if student == "wrong" and not page.exists() and wrong_answers(root) is None:
            continue
        text = page_text(page)
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}'s feedback for {lesson} shows hidden tests: {leaked}"
        assert student == "missing" or not hidden or PLACEHOLDER in text


@pytest.mark.slow
def test_autograde_runs_with_the_grading_parameters(graded):
    """Autograde injects max_steps = 5 after the parameters cell (the fixture's default is 3)."""
    run = graded(FIXTURE)
    nb = nbformat.read(run.dirs.autograded / "solution" / "00-fixture" / "00-fixture.ipynb", as_version=4)
    injected = [c for c in nb.cells if INJECTED_TAG in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "max_steps = 5" in injected[0].source
    assert "slept 5 steps" in nb.cells[-1].outputs[0].text


@pytest.mark.slow
def test_feedback_test_would_see_a_leak(graded):
    """The fixture's wrong answer fails a hidden assert, whose traceback quotes it before feedback."""
    run = graded(FIXTURE)
    nb = nbformat.read(run.dirs.autograded / "wrong" / "00-fixture" / "00-fixture.ipynb", as_version=4)
    tracebacks = "\n".join(line for c in nb.cells if c.cell_type == "code" for o in c.outputs
                           for line in o.get("traceback", []))
    assert any(line in re.sub(r"\x1b\[[0-9;]*m", "", tracebacks) for line in hidden_lines(run.course, "00-fixture"))
    assert "AssertionError" in page_text(run.dirs.feedback / "wrong" / "00-fixture" / "00-fixture.html")


@pytest.mark.slow
@pytest.mark.parametrize("root, lesson", CASES)
def test_solution_test_cells_write_no_stderr(graded, root, lesson):
    """No test cell of a solution writes to stderr under autograde (nbgrader would score it 0)."""
    path = graded(root).dirs.autograded / "solution" / lesson / f"{lesson}.ipynb"
    nb = nbformat.read(path, as_version=4)
    noisy = {nbgrader_meta(c)["grade_id"]: o.text.strip().splitlines()[:3] for c in nb.cells
             if nbgrader_meta(c).get("grade") for o in c.outputs if o.get("name") == "stderr"}
    assert not noisy, f"test cells of {lesson} write to stderr (silence it in the lesson's setup): {noisy}"


# -- check -------------------------------------------------------------------------------------------

CHECK_LINE = re.compile(r"^\s+(\S+)\s+(passed|FAILED)\s+([\d.]+) / ([\d.]+)", re.M)


@pytest.mark.slow
@pytest.mark.parametrize("root, lesson", CASES)
def test_check_agrees_with_autograde(graded, root, lesson):
    """grader.check prints pass/fail per test cell with autograde's points, within the time budget."""
    run = graded(root)
    student = "wrong" if (run.submissions / "wrong" / lesson).is_dir() else "solution"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader.check", str(run.submissions / student / lesson /
                           f"{lesson}.ipynb"), "--root", str(root)], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(f"grader.check {student}/{lesson}: {seconds:.1f} s (budget {CHECK_BUDGET_S} s)\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr
    printed = {m[0]: (m[1], float(m[2]), float(m[3])) for m in CHECK_LINE.findall(done.stdout)}
    expected = {g.grade_id: ("passed" if g.score == g.max_score else "FAILED", g.score, g.max_score)
                for g in run.grades(lesson, student)}
    assert printed == expected
    assert re.search(r"^Total: [\d.]+ / [\d.]+ points", done.stdout, re.M)
    assert not [line for line in hidden_lines(run.course, lesson) if line in done.stdout + done.stderr]
    assert seconds < 3 * CHECK_BUDGET_S, f"check took {seconds:.0f} s"


def two_lesson_course(tmp: Path) -> Path:
    """A course with the fixture lesson and a near copy of it (one test cell differs)."""
    nb = nbformat.read(FIXTURE / "solutions" / "00-fixture" / "00-fixture.ipynb", as_version=4)
    for lesson in ("00-fixture", "01-copy"):
        (tmp / "solutions" / lesson).mkdir(parents=True)
        nbformat.write(nb, tmp / "solutions" / lesson / f"{lesson}.ipynb")
        nb = copy.deepcopy(nb)
        nb.cells[6].source += "\nassert count_lora_params(1, 1, 1) == 2"
    return tmp


def bad_inputs(tmp: Path) -> dict[str, tuple[Path, Path, str]]:
    """name -> (notebook path, course root, what the one line must say)."""
    (tmp / "text.ipynb").write_text("print('hello')\n")
    (tmp / "json.ipynb").write_text('{"not": "a notebook"}')
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), tmp / "plain.ipynb")
    foreign = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("assert 1", metadata={"nbgrader": {
        "grade": True, "grade_id": "q1_tests", "locked": True, "points": 1, "schema_version": 3,
        "solution": False, "task": False}})])
    nbformat.write(foreign, tmp / "foreign.ipynb")
    released = FIXTURE / "notebooks" / "00-fixture" / "00-fixture.ipynb"
    (tmp / "01-copy.ipynb").write_bytes(released.read_bytes())
    return {
        "missing file": (tmp / "nope.ipynb", FIXTURE, "no such file"),
        "a folder": (tmp, FIXTURE, "not a file"),
        "not JSON": (tmp / "text.ipynb", FIXTURE, "not a Jupyter notebook"),
        "JSON, not a notebook": (tmp / "json.ipynb", FIXTURE, "not a Jupyter notebook"),
        "no nbgrader cells": (tmp / "plain.ipynb", FIXTURE, "not an exercise notebook of this course"),
        "another course": (tmp / "foreign.ipynb", FIXTURE, "not a notebook of this course"),
        "same grade_ids, other cells": (released, REPO, "not a notebook of this course"),
        "another lesson": (tmp / "01-copy.ipynb", two_lesson_course(tmp / "two"),
                           "holds the cells of lesson 00-fixture"),
    }


BAD = ["missing file", "a folder", "not JSON", "JSON, not a notebook", "no nbgrader cells", "another course",
       "same grade_ids, other cells", "another lesson"]


@pytest.mark.parametrize("name", BAD)
def test_check_bad_input_gives_one_line(name, tmp_path, capsys):
    """Bad input: exit 2, one line on stderr that says what is wrong, nothing on stdout, no traceback."""
    path, root, says = bad_inputs(tmp_path)[name]
    assert check.main([str(path), "--root", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and says in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv, says", [(["/no/such/notebook.ipynb"], "no such file"), ([""], "give a notebook")],
                         ids=["missing", "empty NB"])
def test_check_command_line_bad_input(argv, says):
    """The same through the command line make check runs: one line that says what is wrong, exit 2."""
    done = subprocess.run([sys.executable, "-m", "grader.check", *argv], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


# -- run -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_writes_the_summary(tmp_path):
    """grader.run executes and autogrades every lesson and writes run-summary.json, exact schema."""
    done = subprocess.run([sys.executable, "-m", "grader.run", "--root", str(FIXTURE), "--build", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "run-summary.json").read_text())
    assert set(summary) == {"notebooks", "total_seconds"} and isinstance(summary["total_seconds"], float)
    for entry in summary["notebooks"]:
        assert set(entry) == {"name", "seconds", "points", "max_points"}
        assert isinstance(entry["name"], str)
        assert all(isinstance(entry[k], float) for k in ("seconds", "points", "max_points"))
    assert [e["name"] for e in summary["notebooks"]] == ["00-fixture"]
    assert summary["notebooks"][0]["points"] == summary["notebooks"][0]["max_points"] == 5.0
    assert (tmp_path / "executed" / "00-fixture" / "00-fixture.ipynb").is_file()
    assert re.search(r"^00-fixture\s+[\d.]+\s+5\.0 / 5\.0", done.stdout, re.M)
