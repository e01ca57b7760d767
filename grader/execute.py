"""Execute one submission in its sandbox, so that a failure costs only its own points.

The one execution path of `make grade` and `make check`: `run_job` sanitizes the submitted notebook
with nbgrader's own preprocessors (test cells restored from the gradebook), injects the grading parameters,
then runs it cell by cell in a sandboxed kernel (grader/sandbox.py) with `GradingClient`, nbclient's
NotebookClient with four additions that nbclient does not offer:

- a kernel that dies is restarted, the cells before the one that killed it are run again (their outputs are
  kept from the first run; cells that killed the kernel or ran past their limit are not run again), and
  grading goes on with the next cell: answers before and after the crash keep their points;
- a cell that does not stop when interrupted after its time limit is handled as a dead kernel;
- a cell's outputs are cut at `max_output_bytes` while they arrive (nbgrader's LimitOutput runs afterwards,
  on a notebook already in memory);
- the library guard (grader/guard.py), sent into the kernel before the first cell and called silently (Jupyter's
  user_expressions, no trace in the notebook) before each cell: it records the libraries before the learner's
  cells and puts back what they changed before each test cell;

and a per-submission time cap: once spent, the cells left are not run and their test cells get an error.
nbclient's interrupt_on_timeout does the per-cell limit. Afterwards, what a test cell wrote to stderr becomes
a display output (still shown in feedback): nbgrader's determine_grade scores any stderr stream as a failure,
and a test cell is scored here by whether its tests raised. The executed notebook is then scored by nbgrader's
Autograde, in-process, without executing it again (grader/converters.py), which writes the gradebook.
"""

from __future__ import annotations

import ast
import asyncio
import atexit
import copy
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async
from nbformat.notebooknode import NotebookNode
from nbgrader import utils

from grader import sandbox
from grader.restore import restore

MAX_RESTARTS = 3  # kernel deaths one submission may cause before the rest of it is not run
DEFAULT_CAP_FACTOR = 4  # the per-submission cap, in cell timeouts, when none is given
STDERR_NOTE = "[written to stderr; not counted against the test]\n"
GUARD_SOURCE = (Path(__file__).resolve().parent / "guard.py").read_text()


@dataclass(frozen=True)
class Settings:
    """How one submission is executed."""

    cell_timeout: int = 300  # seconds per cell
    submission_cap: int = 0  # seconds per submission (0: DEFAULT_CAP_FACTOR cell timeouts)
    threads: int = 1  # torch threads in the kernel
    sandboxed: bool = True
    guard: bool = True  # grader/guard.py puts the libraries back before each test cell (off only to test it)
    max_output_bytes: int = 1_000_000  # per cell
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)

    @property
    def cap(self) -> int:
        """Seconds one submission may run, all cells together."""
        return self.submission_cap or DEFAULT_CAP_FACTOR * self.cell_timeout


@dataclass
class Executed:
    """What happened while one submission ran: events in plain words, seconds, and a fatal error if any."""

    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An error output, as a kernel would write it."""
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradingClient(NotebookClient):
    """NotebookClient that cuts each cell's outputs at max_output_bytes while they arrive."""

    def __init__(self, nb: NotebookNode, max_output_bytes: int, **kw) -> None:
        super().__init__(nb, **kw)
        self.max_output_bytes = max_output_bytes
        self.output_bytes: dict[int, int] = {}
        self.cut_cells: set[int] = set()

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output handling, then the cut: outputs past the budget are dropped, with one note."""
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return out
        size = len(str(out))  # the output as text: close enough to its bytes in the notebook
        used = self.output_bytes.get(cell_index, 0)
        self.output_bytes[cell_index] = used + size
        if used + size > self.max_output_bytes:
            if outs and outs[-1] is out:
                outs.pop()
                if out.output_type == "stream" and used < self.max_output_bytes:
                    out.text = out.text[: self.max_output_bytes - used]
                    outs.append(out)
            if cell_index not in self.cut_cells:
                self.cut_cells.add(cell_index)
                note = f"\n[output cut: more than {self.max_output_bytes:,} bytes]\n"
                outs.append(nbformat.v4.new_output("stream", name="stdout", text=note))
        return out


def kernel_manager(settings: Settings, work: Path, runtime: Path) -> AsyncKernelManager:
    """A kernel manager whose kernel runs sandboxed in work/, talking over IPC sockets in runtime/."""
    kernel_argv = (
        sandbox.argv(work, runtime, settings.threads, settings.limits)
        if settings.sandboxed
        else sandbox.unsandboxed_argv()
    )
    kernels = sandbox.write_kernelspec(runtime / "kernels", kernel_argv)
    km = AsyncKernelManager(
        kernel_name=sandbox.KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False),
        transport="ipc",
        ip=str(runtime / "ipc"),
    )
    km.connection_file = str(runtime / "connection.json")
    return km


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograded test cell (nbgrader: grade, not solution)."""
    return utils.is_grade(cell) and not utils.is_solution(cell) and cell.cell_type == "code"


def timed_out(cell: NotebookNode) -> bool:
    """Did nbclient interrupt this cell at its time limit?"""
    return any(o.output_type == "error" and o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))


def note_timeout(cell: NotebookNode, cell_index: int, execute_reply: dict) -> None:
    """nbclient's on_cell_executed hook: a cell interrupted at its limit says so (the kernel's error is a bare
    KeyboardInterrupt); nbclient passes the reply it made up from error_on_timeout."""
    content = execute_reply.get("content", {})
    if content.get("ename") == "CellTimeoutError":
        kept = [o for o in cell.outputs if not (o.output_type == "error" and o.get("ename") == "KeyboardInterrupt")]
        cell.outputs = [*kept, error_output("CellTimeoutError", content["evalue"])]


def editable(cell: NotebookNode) -> bool:
    """A code cell whose source the learner may have written (nbgrader restores locked and test cells)."""
    return cell.cell_type == "code" and not utils.is_locked(cell)


def parsed(cell: NotebookNode) -> ast.Module | None:
    """A cell's source as Python (None for a cell IPython's magics or a syntax error keep from parsing)."""
    try:
        return ast.parse(cell.source)
    except (SyntaxError, ValueError):
        return None


def lesson_imports(nb: NotebookNode) -> list[str]:
    """The modules the lesson's own cells (locked and test cells) import: the guard records them before any answer."""
    names: list[str] = []
    for cell in nb.cells:
        tree = parsed(cell) if cell.cell_type == "code" and not editable(cell) else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return sorted(set(names))


def names_read(cell: NotebookNode) -> list[str]:
    """The names a test cell reads: among them, the globals that restore() checks."""
    tree = parsed(cell)
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} if tree else set())


def guard_install_code(variable: str, imports: list[str]) -> str:
    """Code that runs grader/guard.py in a namespace of its own (with a copy of the built-ins taken now) and keeps
    its Guard in the notebook's globals under `variable`, leaving no other name behind."""
    return (
        "def _loracourse_guard():\n"
        "    namespace = {'__name__': 'loracourse_guard', '__builtins__': dict(vars(__import__('builtins')))}\n"
        f"    exec(compile({GUARD_SOURCE!r}, 'grader/guard.py', 'exec'), namespace)\n"
        f"    return namespace['install']({imports!r})\n"
        f"{variable} = _loracourse_guard()\n"
        "del _loracourse_guard\n"
    )


class GuardFailed(Exception):
    """The guard could not be installed or called (the message says why)."""


class Run:
    """One notebook executed cell by cell, with restarts after kernel deaths."""

    def __init__(self, nb: NotebookNode, client: GradingClient, settings: Settings) -> None:
        self.nb, self.client, self.settings = nb, client, settings
        self.deadline = time.monotonic() + settings.cap
        self.skip: set[int] = set()  # cells not to run again after a restart: they killed the kernel or timed out
        self.events: list[str] = []
        self.restarts = 0
        self.guard = f"_loracourse_guard_{secrets.token_hex(8)}"  # the Guard's name in the kernel's globals
        self.guard_broken = not settings.guard

    async def hidden(self, expression: str, code: str = "") -> object:
        """Run code, then evaluate expression, in the kernel without a trace in the notebook (silent, no history:
        Jupyter's user_expressions); return the expression's value (a Python literal)."""
        msg_id = self.client.kc.execute(code, silent=True, store_history=False, user_expressions={"v": expression})
        content = (await self.client.async_wait_for_reply(msg_id))["content"]
        value = content.get("user_expressions", {}).get("v", content)
        if content.get("status") != "ok" or value.get("status") != "ok":
            raise GuardFailed(f"{value.get('ename', 'error')}: {str(value.get('evalue', ''))[:200]}")
        return ast.literal_eval(value["data"]["text/plain"])

    async def install_guard(self) -> None:
        """Send grader/guard.py into the kernel: it records the libraries before any answer runs."""
        code = guard_install_code(self.guard, lesson_imports(self.nb))
        await self.guarded(f"{self.guard}.watch()", code)

    async def guarded(self, expression: str, code: str = "", index: int | None = None) -> object:
        """Call the guard; if it fails (an answer deleted or broke it), the report says so once, and grading goes
        on without it."""
        if self.guard_broken:
            return []
        try:
            return await self.hidden(expression, code)
        except (GuardFailed, ValueError, SyntaxError, KeyError, TypeError) as err:
            self.guard_broken = True
            where = f" before cell {index}" if index is not None else ""
            self.events.append(f"the grader could not check the libraries{where} ({err}); later tests ran unchecked")
            return []

    async def before(self, index: int) -> None:
        """Before a cell the learner may have written: record new modules; before a test cell: put back what the
        notebook changed, and say so."""
        cell = self.nb.cells[index]
        if is_test_cell(cell):
            back = await self.guarded(f"{self.guard}.restore({names_read(cell)!r})", index=index)
            if back:
                shown = ", ".join(back[:6]) + (f" and {len(back) - 6} more" if len(back) > 6 else "")
                self.events.append(
                    f"before the test in cell {index}, the grader put back what the notebook changed: {shown}"
                )
        elif editable(cell):
            await self.guarded(f"{self.guard}.watch()", index=index)

    def set_timeout(self) -> bool:
        """Give the next cell the per-cell limit, or what is left of the cap; False when nothing is left."""
        left = int(self.deadline - time.monotonic())
        self.client.timeout = max(1, min(self.settings.cell_timeout, left))
        self.client.error_on_timeout = {
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran past its limit of {self.client.timeout} s and was interrupted",
            "traceback": [f"CellTimeoutError: the cell ran past its limit of {self.client.timeout} s"],
        }
        return left > 0

    async def restart(self) -> None:
        """A fresh kernel, with the cells before the crash run again (outputs of the first run kept)."""
        self.restarts += 1
        km = self.client.km
        if await km.is_alive():
            await km.shutdown_kernel(now=True)
        self.client.kc.stop_channels()
        self.client.kc = None
        await km.start_kernel(**self.start_kwargs)
        await self.client.async_start_new_kernel_client()
        self.guard_broken = not self.settings.guard
        await self.install_guard()

    async def replay(self, upto: int) -> None:
        """Run cells [0, upto) again in the new kernel, except those in skip; keep the first run's outputs."""
        for index in range(upto):
            if index in self.skip or self.nb.cells[index].cell_type != "code" or not self.set_timeout():
                continue
            original = self.nb.cells[index]
            await self.before(index)
            await self.client.async_execute_cell(copy.deepcopy(original), index)
            self.nb.cells[index] = original

    async def cell(self, index: int) -> None:
        """Run one cell; on a dead or unresponsive kernel, note it on the cell, restart and replay."""
        cell = self.nb.cells[index]
        if not self.set_timeout():
            self.stop(index, f"the submission's time cap of {self.settings.cap} s was reached")
            return
        try:
            await self.before(index)
            await self.client.async_execute_cell(cell, index, execution_count=index + 1)
            if timed_out(cell):
                self.skip.add(index)
                self.events.append(f"cell {index} ran past {self.client.timeout} s and was interrupted")
            return
        except DeadKernelError:
            why = "the kernel died while running this cell (it was restarted for the cells after it)"
            self.events.append(f"the kernel died in cell {index}; restarted")
        except CellTimeoutError:
            why = "the cell ran past its limit and did not stop when interrupted; the kernel was restarted"
            self.events.append(f"cell {index} did not stop when interrupted; kernel restarted")
        cell.outputs.append(error_output("KernelDied", why))
        self.skip.add(index)
        if self.restarts >= MAX_RESTARTS:
            self.stop(index + 1, f"the kernel died {self.restarts + 1} times")
            return
        await self.restart()
        try:
            await self.replay(index)
        except (DeadKernelError, CellTimeoutError):
            self.stop(index + 1, "the kernel died again while re-running the cells before the crash")

    def stop(self, start: int, why: str) -> None:
        """Leave cells [start:] unrun; each test cell among them gets an error, so that it cannot pass."""
        self.events.append(f"{why}: cells from {start} on were not run")
        for cell in self.nb.cells[start:]:
            if cell.cell_type == "code":
                cell.outputs = [error_output("NotRun", f"not run: {why}")] if is_test_cell(cell) else []
        self.stopped = True

    async def run(self, **start_kwargs) -> None:
        """Execute every cell."""
        self.start_kwargs, self.stopped = start_kwargs, False
        async with self.client.async_setup_kernel(cleanup_kc=True, **start_kwargs):
            await self.client.async_wait_for_reply(await ensure_async(self.client.kc.kernel_info()))
            await self.install_guard()
            for index in range(len(self.nb.cells)):
                if self.stopped:
                    break
                if self.nb.cells[index].cell_type == "code":
                    await self.cell(index)
        for index in sorted(self.client.cut_cells):
            self.events.append(f"the output of cell {index} was cut at {self.settings.max_output_bytes:,} bytes")


async def shut_down(km: AsyncKernelManager) -> None:
    """Stop a kernel that may or may not be running."""
    try:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
    except Exception:  # it is gone already: nothing to stop
        pass


def move_stderr_to_display(nb: NotebookNode) -> None:
    """In test cells, stderr becomes a display output (shown in feedback, not scored): tests score by raising."""
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        for i, out in enumerate(cell.outputs):
            if out.output_type == "stream" and out.name == "stderr":
                cell.outputs[i] = nbformat.v4.new_output("display_data", data={"text/plain": STDERR_NOTE + out.text})


def prepare(nb: NotebookNode) -> None:
    """Clear every output and the tags nbclient would act on (a tag must not skip a test cell)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        tags = cell.metadata.get("tags")
        if tags:
            cell.metadata.tags = [t for t in tags if t not in ("skip-execution", "raises-exception")]


def execute(nb: NotebookNode, work: Path, settings: Settings) -> Executed:
    """Execute nb (in place) in a sandboxed kernel whose working folder is work/; return what happened."""
    prepare(nb)
    start, done = time.perf_counter(), Executed()
    # Unix socket paths are limited to about 100 bytes: the runtime folder is short, under the system's tmp.
    runtime = Path(tempfile.mkdtemp(prefix="lc-"))
    try:
        client = GradingClient(
            nb,
            settings.max_output_bytes,
            km=kernel_manager(settings, work, runtime),
            allow_errors=True,
            interrupt_on_timeout=True,
            raise_on_iopub_timeout=False,
            skip_cells_with_tag=f"never-{secrets.token_hex(8)}",
            startup_timeout=120,
            on_cell_executed=note_timeout,
            # nothing of the kernel is needed once its last cell has run: a graceful shutdown waited about 1.8 s
            # for it to tear torch down (measured on lesson 7), per submission
            shutdown_kernel="immediate",
        )
        run = Run(nb, client, settings)
        try:
            # the kernel's own banner and logs go nowhere: what a cell prints reaches its outputs over IOPub
            asyncio.run(run.run(cwd=str(work), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        except Exception as err:  # the kernel could not start, or nbclient failed: the submission is not graded
            done.error = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            run.stop(0, f"the notebook could not be executed ({done.error})")
            atexit.unregister(client._cleanup_kernel)  # nbclient's own cleanup, registered before the failure
            asyncio.run(shut_down(client.km))
        done.events = run.events
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    move_stderr_to_display(nb)
    done.seconds = time.perf_counter() - start
    return done


def cores() -> int:
    """The CPU cores this process may use (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads per kernel, so that workers do not fight over the cores.

    Measured on 2 cores (lesson 1's 100 LoRA steps): 3.9 s alone with torch's default of 2 threads, 49 s each when
    two such jobs share the cores, 5.4 s each with 1 thread each (4.7 s alone with 1 thread).
    """
    return max(1, cores() // max(1, workers))


# -- one submission, start to end: what a worker of the pool runs -----------------------------------------


@dataclass(frozen=True)
class Job:
    """One submission to execute: where it is, where its sandbox works, where the executed notebook goes."""

    student: str
    lesson: str
    submitted: Path  # the staged copy of <student>/<lesson>/ (never the instructor's submissions folder)
    source: Path  # solutions/<lesson>/: the lesson's other files are copied from here, as nbgrader does
    work: Path  # the kernel's working folder (the only course folder it can write)
    executed: Path  # where the executed notebook is written
    db_url: str  # the gradebook nbgrader's OverwriteCells restores test cells from (read only here)
    release: Path  # the released notebook (generate_assignment's output): which cells it must contain


def sanitize(nb: NotebookNode, job: Job, config) -> tuple[NotebookNode, list[str]]:
    """Cells restored from the release (grader/restore.py), nbgrader's own sanitizing
    (Autograde.sanitize_preprocessors), then the lesson's grading parameters; returns what restore did."""
    from nbgrader.converters import Autograde

    from grader.parameters import InjectGradingParameters

    resources = {
        "nbgrader": {"notebook": job.lesson, "assignment": job.lesson, "student": job.student, "db_url": job.db_url}
    }
    notes = restore(nb, nbformat.read(job.release, as_version=4))
    for cls in Autograde.class_traits()["sanitize_preprocessors"].default():
        nb, resources = cls(config=config).preprocess(nb, resources)
    nb, _ = InjectGradingParameters(config=config).preprocess(nb, resources)
    return nb, notes


def working_copy(job: Job) -> None:
    """The kernel's folder: the submission's files, then the lesson's own files over them (as autograde does)."""
    shutil.rmtree(job.work, ignore_errors=True)
    shutil.copytree(job.submitted, job.work)
    shutil.copytree(job.source, job.work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.ipynb", ".*"))


def run_job(job: Job, settings: Settings, config) -> Executed:
    """Sanitize, execute and save one submission; the executed notebook is always written (0 if it failed)."""
    nb = nbformat.read(job.submitted / f"{job.lesson}.ipynb", as_version=4)
    try:
        nb, notes = sanitize(nb, job, config)
    except Exception as err:  # nbgrader refused the notebook's metadata: no answer of it can be trusted
        done = Executed(error=f"nbgrader could not sanitize it ({type(err).__name__}: {str(err)[:160]})")
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [error_output("NotRun", done.error)]
        done.events.append(done.error)
    else:
        working_copy(job)
        done = execute(nb, job.work, settings)
        done.events[:0] = notes
    job.executed.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, job.executed)
    return done
