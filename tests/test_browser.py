"""The course in a real browser: JupyterLab as `make lab` starts it, driven in headless Chromium by Playwright.

A learner's JupyterLab (grader.lab, on a temporary copy of lesson 1, never work/) on a port that is taken on
purpose, so that the test also reads which port JupyterLab took instead. The browser opens lesson 1, checks the
page a learner sees first (math typeset, no pop-up), answers Exercise 1, runs every cell one by one as a learner
does (Shift+Enter), saves, and checks what ran: errors only where an unanswered exercise is called, the plots as
images, tqdm's bar as a widget. Then nbgrader's Validate button: Exercise 1 passes, the six others fail.
An instructor's JupyterLab (grader.lab --instructor) serves the formgrader, which must list the lessons.
Screenshots go to build/browser/. Chromium is Debian's (/usr/bin/chromium, installed by .ci/run); Playwright
comes from PyPI and drives it by path (no `playwright install`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.course import REPO_ROOT, Course

pytestmark = pytest.mark.slow

LESSON = "01-lora-theory"
FILLED = "lora_scaling"  # the exercise the test answers; the others stay unanswered
SHOTS = REPO_ROOT / "build" / "browser"
# The flags a root user's headless Chromium needs here: no sandbox as root, and no calls home on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 90  # JupyterLab's start on 2 busy cores (about 5 s alone)
CELL_S = 180  # the slowest cell: the fine-tune, on a busy machine
# bitsandbytes' line on CPUs with AVX512-BF16 (README, "Known library noise"): the only stderr a lesson may show.
KNOWN_NOISE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def chromium_path() -> str:
    """Debian's Chromium; where it is missing the test skips (fails in CI, whose .ci/run installs it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no chromium on PATH (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class Lab:
    """One JupyterLab started by grader.lab in a subprocess: its address, token and log; stopped by stop()."""

    def __init__(self, args: list[str], home: Path, root: Path):
        self.root = root  # the folder it serves
        self.token = secrets.token_hex(16)
        env = dict(os.environ)
        for var, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTERLAB_SETTINGS_DIR", "user-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ]:
            env[var] = str(home / sub)  # nothing from the user's own Jupyter folders
        cmd = [sys.executable, "-m", "grader.lab", "--no-browser", *args, f"--IdentityProvider.token={self.token}"]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._wait_for_port()}"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _wait_for_port(self) -> int:
        """The port from the address JupyterLab prints once it serves."""
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in self.lines:
                if found := re.search(r"http://127\.0\.0\.1:(\d+)/lab", line):
                    return int(found.group(1))
            time.sleep(0.2)
        raise AssertionError("JupyterLab did not start:\n" + "\n".join(self.lines[-30:]))

    def page(self, path: str) -> str:
        """The address of a page of this server, with its token."""
        return f"{self.url}/{path}{'&' if '?' in path else '?'}token={self.token}"

    def stop(self) -> None:
        """Terminate, then kill if it does not stop within 20 s."""
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium, driven by Playwright."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page, 1400 x 900, as on a laptop."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    """A port something already listens on, as when a learner has another JupyterLab open."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def learner_lab(tmp_path_factory, taken_port) -> Iterator[Lab]:
    """`make lab`'s JupyterLab on a temporary copy of lesson 1, asked for a port that is taken."""
    tmp = tmp_path_factory.mktemp("lab")
    shutil.copytree(Course(REPO_ROOT, REPO_ROOT / "build").released(LESSON).parent, tmp / "work" / LESSON)
    lab = Lab(
        ["--dir", str(tmp / "work"), "--build", str(tmp / "build"), "--port", str(taken_port)],
        tmp / "home",
        tmp / "work",
    )
    try:
        yield lab
    finally:
        lab.stop()


def test_make_lab_says_which_port_it_took(learner_lab, taken_port):
    """When the port is taken, the learner is told so, and JupyterLab serves on another one that it prints."""
    assert f"Port {taken_port} is taken" in "\n".join(learner_lab.lines)
    assert not learner_lab.url.endswith(f":{taken_port}")


def solution(grade_id: str) -> str:
    """The course's answer to one exercise, as a learner would type it (the solution markers left out)."""
    nb = json.loads((REPO_ROOT / "solutions" / LESSON / f"{LESSON}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    return "".join(
        line for line in cell["source"] if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    )


def student_cells() -> list[dict]:
    """The cells of lesson 1's student copy, in the order the browser shows them."""
    return json.loads(Course(REPO_ROOT, REPO_ROOT / "build").released(LESSON).read_text())["cells"]


def grade_id(cell: dict) -> str:
    """nbgrader's name of a cell ("" for a cell it does not track)."""
    return cell["metadata"].get("nbgrader", {}).get("grade_id", "")


def shoot(page, name: str) -> None:
    """A screenshot of the page under build/browser/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def open_lesson(page, lab: Lab) -> None:
    """Open lesson 1 and wait until its kernel is idle and its math is typeset."""
    page.goto(lab.page(f"lab/tree/{LESSON}/{LESSON}.ipynb"))
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.wait_for_selector(".jp-RenderedMarkdown mjx-container", timeout=30_000)


def run_every_cell(page, cells: list[dict]) -> None:
    """Shift+Enter from the first cell to the last, each code cell awaited, as a learner runs a lesson.

    Not Run All: JupyterLab asks the kernel to stop at the first error, here the first unanswered exercise.
    """
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    notebook.locator(".jp-Cell").first.click()
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the active cell and selects the next
    for index, cell in enumerate(cells):
        page.keyboard.press("Control+Enter" if index == len(cells) - 1 else "Shift+Enter")
        if cell["cell_type"] == "code":
            prompt = notebook.locator(".jp-Cell").nth(index).locator(".jp-InputPrompt")
            page.wait_for_function(
                "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=CELL_S * 1000
            )


def test_lesson_1_runs_in_jupyterlab_and_validates(page, learner_lab):
    """Lesson 1 as a learner meets it: opened, Exercise 1 answered, every cell run, saved, validated."""
    cells = student_cells()
    answers = [grade_id(c) for c in cells if c["metadata"].get("nbgrader", {}).get("solution")]
    open_lesson(page, learner_lab)
    page.wait_for_timeout(3000)  # JupyterLab's pop-ups (news, updates) come a moment after the page
    shoot(page, "lesson-1-opened.png")
    table = page.locator(".jp-NotebookPanel:visible .jp-RenderedMarkdown table").first
    table.scroll_into_view_if_needed()
    shoot(page, "lesson-1-table.png")  # a markdown table, as rendered
    assert page.locator(".Toastify__toast").count() == 0, page.locator(".Toastify__toast").all_inner_texts()

    # Exercise 1, typed into its answer cell (the editor keeps the text as given: no auto-indent on insert).
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(
        next(i for i, c in enumerate(cells) if grade_id(c) == FILLED)
    )
    editor.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(solution(FILLED))
    page.keyboard.press("Escape")

    start = time.perf_counter()
    run_every_cell(page, cells)
    print(f"lesson 1 ran in the browser in {time.perf_counter() - start:.1f} s")
    page.keyboard.press("Control+S")
    page.wait_for_selector(".lm-TabBar-tab.jp-mod-dirty", state="detached")  # saved to disk
    saved = json.loads((learner_lab.root / LESSON / f"{LESSON}.ipynb").read_text())["cells"]
    check_errors(saved, answers)
    check_figures(page, saved)
    check_progress_bars(page, saved)
    page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(figure_cells(saved)[0]).scroll_into_view_if_needed()
    shoot(page, "lesson-1-ran.png")

    check_validate(page, saved, answers)
    shoot(page, "lesson-1-validated.png")
    assert page.locator(".Toastify__toast").count() == 0, page.locator(".Toastify__toast").all_inner_texts()


def outputs(cell: dict, output_type: str) -> list[dict]:
    """A saved cell's outputs of one type (error, stream, display_data)."""
    return [o for o in cell.get("outputs", []) if o["output_type"] == output_type]


def check_errors(saved: list[dict], answers: list[str]) -> None:
    """Errors only where an unanswered exercise is called: NotImplementedError, between its answer and its test cell.

    Every unanswered exercise's test cell fails; the answered one's cells show none; nothing else writes to stderr
    but the one line the README lists as known library noise.
    """
    position = {grade_id(c): i for i, c in enumerate(saved)}
    spans = {name: range(position[name], position[f"{name}_tests"] + 1) for name in answers}
    errors = {i: o["ename"] for i, c in enumerate(saved) for o in outputs(c, "error")}
    expected = {i for name in answers if name != FILLED for i in spans[name]}
    assert set(errors) <= expected and set(errors.values()) == {"NotImplementedError"}, errors
    assert all(position[f"{name}_tests"] in errors for name in answers if name != FILLED), errors
    assert not set(errors) & set(spans[FILLED]), errors
    stderr = ["".join(o["text"]) for c in saved for o in outputs(c, "stream") if o["name"] == "stderr"]
    assert all(KNOWN_NOISE in text for text in stderr), stderr


def figure_cells(saved: list[dict]) -> list[int]:
    """The code cells that draw a figure with the course's plot helpers."""
    return [
        i for i, c in enumerate(saved) if c["cell_type"] == "code" and re.search(r"\bplot_\w+\(", "".join(c["source"]))
    ]


def check_figures(page, saved: list[dict]) -> None:
    """Each plotting cell shows its figure as an image the browser decoded."""
    cells = page.locator(".jp-NotebookPanel:visible .jp-Cell")
    for index in figure_cells(saved):
        assert any("image/png" in o["data"] for o in outputs(saved[index], "display_data")), saved[index]["source"]
        image = cells.nth(index).locator(".jp-OutputArea-output img")
        image.scroll_into_view_if_needed()
        assert image.evaluate("img => img.complete && img.naturalWidth") > 100, f"cell {index}: no figure shown"


def check_progress_bars(page, saved: list[dict]) -> None:
    """The fine-tune's tqdm bar is an ipywidgets progress bar, drawn full, not text on stderr."""
    train = next(
        i for i, c in enumerate(saved) if "train_lora(" in "".join(c["source"]) and "import" not in "".join(c["source"])
    )
    bar = page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(train).locator(".widget-hprogress .progress-bar")
    assert bar.count() == 1, "no progress bar widget under the fine-tune"
    assert bar.evaluate("el => el.style.width") == "100%"


def check_validate(page, saved: list[dict], answers: list[str]) -> None:
    """nbgrader's Validate button: the six unanswered exercises' tests fail, the answered one's is not listed."""
    page.locator(".jp-NotebookPanel:visible .jp-Toolbar").get_by_text("Validate", exact=True).click()
    message = page.locator(".jp-Dialog #validation-message")  # nbgrader's dialog, once its validator has run
    message.wait_for(timeout=CELL_S * 1000)
    text = message.inner_text()
    docstring = {
        grade_id(c): "".join(c["source"]).splitlines()[0].strip('"') for c in saved if grade_id(c).endswith("_tests")
    }
    unanswered = [name for name in answers if name != FILLED]
    assert text.count("The following cell failed:") == len(unanswered), text[:2000]
    assert all(docstring[f"{name}_tests"] in text for name in unanswered), text[:2000]
    assert docstring[f"{FILLED}_tests"] not in text, text[:2000]


@pytest.fixture(scope="module")
def instructor_lab(tmp_path_factory) -> Iterator[Lab]:
    """`make lab-instructor`'s JupyterLab, with a build folder of its own: no grade run, so the lessons only."""
    tmp = tmp_path_factory.mktemp("instructor")
    lab = Lab(["--instructor", "--build", str(tmp / "build"), "--port", "0"], tmp / "home", REPO_ROOT)
    try:
        yield lab
    finally:
        lab.stop()


def test_formgrader_lists_the_lessons(page, instructor_lab):
    """nbgrader's formgrader finds the course: Manage Assignments lists every lesson of solutions/."""
    page.goto(instructor_lab.page("formgrader"))
    rows = page.locator("table tr")
    lessons = Course(REPO_ROOT, REPO_ROOT / "build").lessons()
    for lesson in lessons:
        rows.filter(has_text=lesson).first.wait_for(timeout=60_000)
    assert rows.count() >= len(lessons)
    shoot(page, "formgrader.png")


def test_instructor_gradebook_is_the_last_grade_run(tmp_path):
    """The formgrader shows build/grading's gradebook when `make grade` made one, else a fresh one of its own."""
    from grader.lab import gradebook

    assert gradebook(tmp_path) == tmp_path / "lab" / "gradebook.db"
    (tmp_path / "grading").mkdir()
    (tmp_path / "grading" / "gradebook.db").write_bytes(b"")
    assert gradebook(tmp_path) == tmp_path / "grading" / "gradebook.db"
