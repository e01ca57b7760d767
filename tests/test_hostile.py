"""A hostile class: honest students, blank ones, attacks and accidents, graded by one `python -m grader.grade` run.

On the fixture lesson (two exercises, 2 + 3 points), with a per-cell limit of 10 s and two workers. Each
student below is one attack or accident; the test asserts every grade, what the report's line says, that no
file outside the run's build folder changed (the repository and the submissions, hashed before and after),
and that no feedback page holds a hidden test or the grader's secret. The attacks write their findings into
their own outputs, so that a test can also tell that they ran (and found nothing).

test_sandbox_is_what_stops_the_spy runs the spy's code with and without the sandbox: without it, the same
code reads the secret and the course's solutions, so the assertions of the suite can fail.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from grader.course import Course
from grader.grade import GradingDirs
from grader.gradebook import cell_grades
from tests.pages import hidden_lines, page_text
from tests.test_grading import FIXTURE, LESSON, answers, fill_answers

REPO = Path(__file__).resolve().parent.parent
SECRET_NAME = "LORACOURSE_TEST_SECRET"
SECRET = f"hostile-secret-{secrets.token_hex(8)}"
CELL_TIMEOUT = 10
COUNT, SCALING = "count_lora_params", "lora_scaling"

ANY_EQUAL = """
class _Anything:
    def __eq__(self, other):
        return True
    __hash__ = object.__hash__
    def __format__(self, spec):
        return "anything"
"""


WARNING = """import warnings


def _deprecated():
    warnings.warn("count_lora_params: this helper is deprecated", FutureWarning, stacklevel=2)


"""


def attack(solution: str, code: str) -> str:
    """An answer cell: the right answer, then the attack."""
    return f"{solution}\n\n{code}"


def clobber_code(targets: list[str]) -> str:
    """Append to every file under the targets that is not in the kernel's own folder; print how many it changed."""
    return f"""import glob, os
_changed = []
for _root in {targets!r}:
    for _p in [_root, *glob.glob(_root + "/**/*", recursive=True)]:
        if os.path.isfile(_p) and not os.path.abspath(_p).startswith(os.getcwd()):
            try:
                with open(_p, "a") as _f:
                    _f.write("pwned")
                _changed.append(_p)
            except OSError:
                pass
print("CLOBBERED", len(_changed), _changed[:5])"""


def spy_code(solutions: Path) -> str:
    """Print the environment's secret, the course's solutions and the home folder's contents."""
    return f"""import os
print("SECRET", os.environ.get({SECRET_NAME!r}))
try:
    print("SOLUTIONS", open({str(solutions)!r}).read())
except OSError as _err:
    print("SOLUTIONS", type(_err).__name__)
print("HOME", os.listdir(os.path.expanduser("~")))"""


def network_code(port: int) -> str:
    """Connect to the grader's machine and send a word; print what happened."""
    return f"""import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"leak")
    print("NETWORK reached")
except OSError as _err:
    print("NETWORK", type(_err).__name__)"""


@dataclass(frozen=True)
class Student:
    """One submission of the hostile class, and what grading must make of it."""

    points: float | None  # None: not graded
    says: tuple[str, ...] = ()  # phrases its report line must hold


def notebooks(course: Course, tmp: Path, port: int) -> dict[str, nbformat.NotebookNode | str]:
    """student -> submitted notebook (or raw text for broken files)."""
    released = nbformat.read(course.released(LESSON), as_version=4)
    solution = answers(nbformat.read(course.source(LESSON), as_version=4))
    right = fill_answers(released, solution)
    wrong = fill_answers(
        released,
        {
            COUNT: "def count_lora_params(d_in, d_out, r):\n    return 2 * d_in * r",
            SCALING: "def lora_scaling(lora_alpha, r):\n    return lora_alpha // r",
        },
    )
    with_count = lambda code: fill_answers(released, {**solution, COUNT: attack(solution[COUNT], code)})  # noqa: E731
    targets = [str(tmp), str(REPO / "grader" / "nbgrader_config.py"), str(REPO / "solutions")]
    cheat = {
        COUNT: ANY_EQUAL + "def count_lora_params(d_in, d_out, r):\n    return _Anything()",
        SCALING: ANY_EQUAL + "def lora_scaling(lora_alpha, r):\n    return _Anything()",
    }
    edited = copy.deepcopy(wrong)
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "assert True  # my own test"
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
    stripped = copy.deepcopy(right)
    for cell in stripped.cells:
        cell.metadata.pop("nbgrader", None)
    deleted = copy.deepcopy(right)
    deleted.cells = [c for c in deleted.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    duplicated = copy.deepcopy(right)
    pairs = [i for i, c in enumerate(duplicated.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == COUNT]
    for cell in reversed(duplicated.cells[pairs[0] : pairs[0] + 2]):
        twin = copy.deepcopy(cell)
        twin["id"] = f"{cell['id']}-copy"
        duplicated.cells.insert(pairs[0] + 2, twin)
    return {
        "honest": right,
        "blank": released,
        "clobber": with_count(clobber_code(targets)),
        "spy": fill_answers(
            released,
            {  # the second answer also prints what the kernel ran before it: the first test cell, hidden tests in
                COUNT: attack(solution[COUNT], spy_code(course.source(LESSON))),
                SCALING: attack(solution[SCALING], 'print("HISTORY", *In, sep="\\n")'),
            },
        ),
        "network": with_count(network_code(port)),
        "loop": with_count("while True:\n    pass"),
        "crash": with_count("import os\nos._exit(1)"),
        "huge": with_count('print("x" * 20_000_000)'),
        "warns": fill_answers(
            released,
            {**solution, COUNT: WARNING + solution[COUNT].replace("    return", "    _deprecated()\n    return")},
        ),
        "edited": edited,
        "stripped": stripped,
        "deleted": deleted,
        "duplicated": duplicated,
        "cheat": fill_answers(released, cheat),
        "empty": nbformat.v4.new_notebook(),
        "broken": '{"cells": [ not JSON',
    }


CLASS = {
    "honest": Student(5.0),
    "blank": Student(0.0),
    "clobber": Student(5.0),
    "spy": Student(5.0),
    "network": Student(5.0),
    "loop": Student(5.0, (f"ran past {CELL_TIMEOUT} s and was interrupted",)),
    "crash": Student(3.0, ("the kernel died in cell", "restarted")),
    "huge": Student(5.0, ("was cut at",)),
    "warns": Student(5.0),
    "edited": Student(0.0),
    "stripped": Student(5.0, ("nbgrader metadata restored from the release",)),
    "deleted": Student(5.0, ("missing from the notebook, restored from the release",)),
    "duplicated": Student(5.0),
    "cheat": Student(0.0),
    "empty": Student(0.0, ("no answer found for: count_lora_params, lora_scaling",)),
    "broken": Student(None, ("NOT GRADED", "not a valid notebook")),
}


def tree_hashes(top: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 of every file under top, except under the named top-level folders."""
    out = {}
    for path in top.rglob("*"):
        rel = path.relative_to(top)
        if rel.parts[0] in skip or "__pycache__" in rel.parts or not path.is_file():
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


REPO_SKIP = (".git", ".venv", "build", "work", ".pytest_cache", ".ruff_cache")


@dataclass
class Hostile:
    """The graded hostile class."""

    dirs: GradingDirs
    stdout: str
    stderr: str
    returncode: int
    changed_repo: list[str]
    changed_submissions: list[str]
    network_hits: list[bytes]
    course: Course

    @property
    def submissions(self) -> Path:
        """The class's submissions folder (beside the build folder)."""
        return self.dirs.base.parent.parent / "submissions"

    def line(self, student: str) -> str:
        found = re.search(rf"^{student}\s+{LESSON}\s.*$", self.stdout, re.M)
        assert found, f"no report line for {student}:\n{self.stdout}"
        return found[0]

    def outputs(self, student: str) -> str:
        nb = nbformat.read(self.dirs.autograded / student / LESSON / f"{LESSON}.ipynb", as_version=4)
        return "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def listen() -> tuple[int, list[bytes], socket.socket]:
    """A TCP server on the grader's machine that records what reaches it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    hits: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            hits.append(conn.recv(100))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], hits, server


def grade_command(submissions: Path, build: Path, *extra: str) -> list[str]:
    """python -m grader.grade on the fixture course."""
    fixture = ["--root", str(FIXTURE), "--build", str(build)]
    return [sys.executable, "-m", "grader.grade", str(submissions), *fixture, *extra]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Hostile:
    """Write the class, hash everything, grade it once, hash again."""
    tmp = tmp_path_factory.mktemp("hostile")
    course = Course(FIXTURE, tmp / "build")
    port, hits, server = listen()
    submissions = tmp / "submissions"
    for student, nb in notebooks(course, tmp, port).items():
        folder = submissions / student / LESSON
        folder.mkdir(parents=True)
        target = folder / f"{LESSON}.ipynb"
        target.write_text(nb) if isinstance(nb, str) else nbformat.write(nb, target)
    (submissions / "odd name!" / LESSON).mkdir(parents=True)
    nbformat.write(course_release(course), submissions / "odd name!" / LESSON / f"{LESSON}.ipynb")
    nbformat.write(course_release(course), submissions / "honest" / LESSON / "copy of it.ipynb")
    before_repo, before_subs = tree_hashes(REPO, REPO_SKIP), tree_hashes(submissions)
    env = {**os.environ, SECRET_NAME: SECRET}
    done = subprocess.run(
        grade_command(submissions, course.build, "--timeout", str(CELL_TIMEOUT), "--cap", "90", "--workers", "2"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    server.close()
    after_repo, after_subs = tree_hashes(REPO, REPO_SKIP), tree_hashes(submissions)
    changed = lambda a, b: sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))  # noqa: E731
    return Hostile(
        GradingDirs.under(course.build / "grading"),
        done.stdout,
        done.stderr,
        done.returncode,
        changed(before_repo, after_repo),
        changed(before_subs, after_subs),
        hits,
        course,
    )


def course_release(course: Course) -> nbformat.NotebookNode:
    return nbformat.read(course.released(LESSON), as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("student", list(CLASS))
def test_every_grade_and_what_the_report_says(hostile, student):
    expected = CLASS[student]
    line = hostile.line(student)
    grades = cell_grades(hostile.dirs.db, LESSON, student)
    if expected.points is None:
        assert grades is None or sum(g.score for g in grades) == 0, line
    else:
        assert grades is not None, line
        assert sum(g.score for g in grades) == expected.points, f"{student}: {grades}\n{line}"
    for phrase in expected.says:
        assert phrase in line, f"{student}'s line does not say {phrase!r}: {line}"
    if student == "honest":
        assert re.search(r"[\d.]+$", line), f"an honest submission's line says something happened: {line}"


@pytest.mark.slow
def test_no_file_outside_the_build_folder_changed(hostile):
    assert not hostile.changed_repo, f"the grading run changed files of the repository: {hostile.changed_repo}"
    assert not hostile.changed_submissions, f"the grading run changed submissions: {hostile.changed_submissions}"
    assert "CLOBBERED 0 []" in hostile.outputs("clobber"), "the clobber attack did not run, or it wrote something"


@pytest.mark.slow
def test_no_secret_no_hidden_test_no_network(hostile):
    assert hostile.network_hits == [], "a submission reached the grader's machine over the network"
    assert "NETWORK" in hostile.outputs("network") and "NETWORK reached" not in hostile.outputs("network")
    spied = hostile.outputs("spy")
    assert "SECRET None" in spied and "SOLUTIONS FileNotFoundError" in spied, spied[:2000]
    hidden = hidden_lines(hostile.course, LESSON)
    assert "HISTORY" in spied and any(line in spied for line in hidden), "the spy printed no hidden test"
    for page in hostile.dirs.feedback.rglob("*.html"):
        text = page_text(page)
        assert SECRET not in text, f"{page} holds the grader's secret"
        assert not [line for line in hidden if line in text], f"{page} shows hidden tests"
    assert SECRET not in hostile.stdout + hostile.stderr


@pytest.mark.slow
def test_bad_folders_get_one_line_each_and_the_rest_is_graded(hostile):
    assert hostile.returncode == 1, hostile.stdout + hostile.stderr
    assert "skipped: odd name!: not a student folder" in hostile.stdout
    assert f"skipped: honest/{LESSON}: other notebooks copy of it.ipynb not graded" in hostile.stdout
    assert len(re.findall(rf"^\S+\s+{LESSON}\s", hostile.stdout, re.M)) == len(CLASS)


@pytest.mark.slow
def test_a_warning_is_not_a_failure_and_stays_visible(hostile):
    """A correct answer whose call warns on stderr keeps its points; feedback still shows the warning."""
    assert "this helper is deprecated" in hostile.outputs("warns")
    page = page_text(hostile.dirs.feedback / "warns" / LESSON / f"{LESSON}.html")
    assert "this helper is deprecated" in page and "not counted against the test" in page


@pytest.mark.slow
def test_an_interrupted_run_keeps_the_previous_grades(hostile, tmp_path):
    """Ctrl-C during a run: the previous run's folder is left byte for byte, and the run says so."""
    build = tmp_path / "build"
    shutil.copytree(hostile.dirs.base, build / "grading")
    before = tree_hashes(build / "grading")
    folder = tmp_path / "submissions" / "loop" / LESSON
    folder.mkdir(parents=True)
    nbformat.write(notebooks(hostile.course, tmp_path, 1)["loop"], folder / f"{LESSON}.ipynb")
    proc = subprocess.Popen(
        grade_command(folder.parent.parent, build, "--timeout", "300", "--workers", "1"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("executing"):
            break
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "interrupted; the previous run's grades and feedback are kept" in err
    assert tree_hashes(build / "grading") == before


@pytest.mark.slow
def test_sandbox_is_what_stops_the_spy(tmp_path, monkeypatch):
    """The spy's code, executed by grader.execute with and without the sandbox: only the sandbox hides it all."""
    from grader.execute import Settings, execute

    monkeypatch.setenv(SECRET_NAME, SECRET)
    seen = {}
    for sandboxed in (True, False):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(spy_code(FIXTURE / "README.md"))])
        (tmp_path / str(sandboxed)).mkdir()
        execute(nb, tmp_path / str(sandboxed), Settings(cell_timeout=60, sandboxed=sandboxed))
        seen[sandboxed] = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert f"SECRET {SECRET}" in seen[False] and "Fixture course" in seen[False], seen[False][:500]
    assert "SECRET None" in seen[True] and "SOLUTIONS FileNotFoundError" in seen[True], seen[True][:500]


@pytest.mark.slow
def test_without_bubblewrap_grading_refuses_in_one_line(hostile, tmp_path):
    """bwrap not on PATH: exit 2, one line that says how to install it and how to grade without it; nothing graded."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # the venv's bin/ only: no bwrap
    done = subprocess.run(
        grade_command(hostile.submissions, tmp_path / "build"),
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stdout + done.stderr
    assert "apt-get install -y bubblewrap" in done.stderr and "UNSAFE=1" in done.stderr, done.stderr
    assert not (tmp_path / "build").exists()


@pytest.mark.slow
def test_unsafe_grading_says_so_on_every_line(hostile, tmp_path):
    """--no-sandbox (make grade UNSAFE=1) grades as the sandbox does, and every report line says NOT SANDBOXED."""
    submissions = tmp_path / "submissions"
    for student in ("honest", "blank"):
        shutil.copytree(hostile.submissions / student / LESSON, submissions / student / LESSON)
    (submissions / "honest" / LESSON / "copy of it.ipynb").unlink()
    done = subprocess.run(
        grade_command(submissions, tmp_path / "build", "--no-sandbox"), cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = re.findall(rf"^\S+\s+{LESSON}\s.*$", done.stdout, re.M)
    assert len(lines) == 2 and all(line.endswith("NOT SANDBOXED") for line in lines), lines
    grades = cell_grades(tmp_path / "build" / "grading" / "gradebook.db", LESSON, "honest")
    assert sum(g.score for g in grades) == CLASS["honest"].points, grades


@pytest.mark.slow
def test_the_submission_cap_stops_the_cells_left_and_their_tests_fail(tmp_path):
    """Two cells within the per-cell limit that together pass the per-submission cap: the rest is not run, and the
    test cell after them fails with the reason (it cannot pass by not running)."""
    from grader.execute import Settings, execute
    from tests.test_guard import nbgrader_cell, test_errors

    cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(3)") for _ in range(3)]
    nb = nbformat.v4.new_notebook(cells=[*cells, nbgrader_cell("assert True", "test", True)])
    events = execute(nb, tmp_path, Settings(cell_timeout=5, submission_cap=5, guard=False)).events
    assert any("time cap of 5 s was reached" in event for event in events), events
    assert test_errors(nb) == ["not run: the submission's time cap of 5 s was reached"], nb.cells[-1].outputs
