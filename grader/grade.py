"""Autograde a folder of submissions, each in its own sandbox, in parallel; export a grades CSV and feedback HTML.

`python -m grader.grade DIR [--workers N] [--timeout S] [--cap S] [--no-sandbox]` (make grade SUBMISSIONS=DIR
[WORKERS=N] [TIMEOUT=S] [CAP=S] [UNSAFE=1]). DIR is in nbgrader's layout, DIR/<student>/<lesson>/<lesson>.ipynb,
and is only read. Every run starts from a fresh gradebook (grades are derived from the submissions), then:

1. a pool of worker processes starts (one per worker, for the whole run: grader/worker.py) while this process
   runs nbgrader's generate_assignment, lesson by lesson: the gradebook learns each lesson, hidden tests included,
   and a lesson's submissions start as soon as it is recorded;
2. the workers execute the submissions (grader.execute: nbgrader's sanitizing, test cells restored, grading
   parameters, a sandboxed kernel per submission, per-cell time limit, restarts after a kernel death), one
   progress line per finished submission;
3. meanwhile this process scores each executed submission, in submission order, with nbgrader's Autograde (no
   execution) and gives it its feedback page with GenerateFeedback (hidden tests cut out by
   grader.feedback.HideHiddenTests): only this process writes the gradebook, so the gradebook, CSV and feedback
   are those a serial run writes; nbgrader's converters run in this process (grader/converters.py);
4. export: grades.csv, with nbgrader's CSV exporter.

Everything is written under <build>/grading.partial/ and moved to <build>/grading/ only when the run is done:
an interrupted run leaves the previous run's grades and feedback as they were.

A broken submission (not a notebook, a missing notebook) is graded 0 and listed; a folder for a
lesson the course does not have is listed and skipped; neither stops the others being graded.
Exit code: 0 if every submission was graded, 1 if any was listed as not graded, 2 on a usage error
(or when bubblewrap is missing and --no-sandbox was not given).
"""

from __future__ import annotations

import argparse
import copy
import os
import pickle
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
from nbgrader.plugins import CsvExportPlugin
from traitlets.config import Config

from grader import CELL_TIMEOUT_S, sandbox
from grader.converters import ConverterFailed, nbgrader_config, run_converter
from grader.course import REPO_ROOT, Course, add_course_arguments, course_from_arguments, db_url, use_tool_env
from grader.execute import Executed, Job, Settings, cores, threads_per_worker
from grader.gradebook import cell_grades, max_points, total

STUDENT_ID = re.compile(r"^[A-Za-z0-9_.@-]+$")  # nbgrader globs and matches paths: keep ids plain


@dataclass(frozen=True)
class Submission:
    """One student's folder for one lesson, and what is wrong with its notebook, if anything."""

    student: str
    lesson: str
    problem: str = ""  # why nbgrader will not be able to grade it ("" if nothing is wrong)
    executed: Executed = field(default_factory=Executed, compare=False)  # what happened while it ran


@dataclass(frozen=True)
class GradingDirs:
    """Where one grading run writes: everything under one base folder (<build>/grading/)."""

    base: Path
    db: Path
    submitted: Path
    executed: Path
    work: Path
    release: Path
    autograded: Path
    feedback: Path
    csv: Path
    log: Path
    snapshots: Path  # read-only copies of the gradebook, one per lesson, for the workers

    @classmethod
    def under(cls, base: Path) -> GradingDirs:
        """The standard layout under base."""
        return cls(
            base,
            base / "gradebook.db",
            base / "submitted",
            base / "executed",
            base / "work",
            base / "release",
            base / "autograded",
            base / "feedback",
            base / "grades.csv",
            base / "nbgrader.log",
            base / "gradebook-snapshots",
        )


def notebook_problem(path: Path) -> str:
    """Why a submitted file is not a gradable notebook ("" if it is one)."""
    if not path.is_file():
        return f"no {path.name} in the submission"
    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as err:  # any reader or schema error: the file is not a valid notebook
        return f"{path.name} is not a valid notebook ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return ""


def scan(course: Course, folder: Path) -> tuple[list[Submission], list[str]]:
    """Submissions of known lessons under folder, and lines about what was skipped there."""
    found, skipped, lessons = [], [], set(course.lessons())
    for student in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        if not student.is_dir() or not STUDENT_ID.match(student.name):
            skipped.append(f"{student.name}: not a student folder (letters, digits, _ . @ - only); skipped")
            continue
        for lesson in sorted(p for p in student.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if lesson.name not in lessons:
                skipped.append(f"{student.name}/{lesson.name}: no lesson called {lesson.name!r}; skipped")
                continue
            problem = notebook_problem(lesson / f"{lesson.name}.ipynb")
            found.append(Submission(student.name, lesson.name, problem))
            others = sorted(p.name for p in lesson.glob("*.ipynb") if p.name != f"{lesson.name}.ipynb")
            if others:
                skipped.append(f"{student.name}/{lesson.name}: other notebooks {', '.join(others)} not graded")
    return found, skipped


def stage(submissions: list[Submission], folder: Path, dirs: GradingDirs) -> None:
    """Copy the submissions of known lessons into a fresh submitted/ folder nbgrader may read."""
    for sub in submissions:
        shutil.copytree(folder / sub.student / sub.lesson, dirs.submitted / sub.student / sub.lesson)


def pool_settings(course: Course, args: argparse.Namespace) -> Settings:
    """How each submission is executed, from the command line."""
    return Settings(
        cell_timeout=args.timeout,
        submission_cap=args.cap,
        threads=threads_per_worker(args.workers),
        sandboxed=not args.no_sandbox,
    )


def jobs(course: Course, submissions: list[Submission], dirs: GradingDirs) -> list[Job]:
    """One job per gradable submission."""
    return [
        Job(
            sub.student,
            sub.lesson,
            dirs.submitted / sub.student / sub.lesson,
            course.solutions / sub.lesson,
            dirs.work / sub.student / sub.lesson,
            dirs.executed / sub.student / sub.lesson / f"{sub.lesson}.ipynb",
            db_url(dirs.snapshots / f"{sub.lesson}.db"),
            dirs.release / sub.lesson / f"{sub.lesson}.ipynb",
        )
        for sub in submissions
        if not sub.problem
    ]


class Workers:
    """The worker processes (`python -m grader.worker`), one per thread of the pool, so that an interrupted run can
    stop them at once. Each lives for the whole run and executes one submission after another."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()
        self.stopping = threading.Event()

    def start(self) -> subprocess.Popen | None:
        """A new worker process (None once the run is stopping)."""
        with self.lock:
            if self.stopping.is_set():
                return None
            # from the repository, not this process's cwd: nbgrader's converters, running in the main thread,
            # change the cwd while they convert, and `-m grader.worker` is found from the cwd
            proc = subprocess.Popen(
                [sys.executable, "-m", "grader.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO_ROOT
            )
            self.running.add(proc)
            return proc

    def end(self, proc: subprocess.Popen, kill: bool = False) -> None:
        """Let a worker finish (its stdin closed: no more work), or kill it."""
        with self.lock:
            self.running.discard(proc)
        if kill:
            proc.kill()
        else:
            proc.stdin.close()
        proc.wait()

    def ask(self, proc: subprocess.Popen, job: Job, settings: Settings) -> Executed:
        """Have the worker execute one submission; a worker that stops on the way is ended, and the job says so."""
        try:
            proc.stdin.write(pickle.dumps((job, settings)))
            proc.stdin.flush()
            return pickle.load(proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            self.end(proc, kill=True)
            return Executed(error=f"the grader's worker process stopped (exit code {proc.returncode})")

    def serve(self, todo: queue.Queue, released: dict[str, threading.Event], settings: Settings, finished) -> None:
        """One thread of the pool: take the next job, wait until its lesson is released, have a worker run it."""
        proc = self.start()
        try:
            while proc is not None:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                while not released[job.lesson].wait(0.2):
                    if self.stopping.is_set():
                        return
                if proc.poll() is not None:  # the last job took the worker with it: a new one for this job
                    proc = self.start()
                    if proc is None:
                        return
                finished(job, self.ask(proc, job, settings))
        finally:
            if proc is not None and proc.poll() is None:
                self.end(proc, kill=self.stopping.is_set())

    def stop(self) -> None:
        """Kill every worker; its sandboxed kernel dies with it (bwrap --die-with-parent)."""
        with self.lock:
            self.stopping.set()
            for proc in self.running:
                proc.kill()


class Results:
    """What the workers executed, as it comes in: one progress line each, read back in submission order."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.done: dict[tuple[str, str], Executed] = {}
        self.ready = threading.Condition()

    def put(self, job: Job, result: Executed) -> None:
        """Keep a result and print its progress line (called by the pool's threads)."""
        with self.ready:
            self.done[(job.student, job.lesson)] = result
            what = "; ".join(result.events) or result.error or "ok"
            print(
                f"  [{len(self.done)}/{self.count}] {job.student}/{job.lesson}: {result.seconds:.1f} s, {what}",
                flush=True,
            )
            self.ready.notify_all()

    def get(self, key: tuple[str, str], pool: list[Future]) -> Executed:
        """The result for key, once it is in; raise what a thread of the pool raised."""
        with self.ready:
            while key not in self.done:
                for thread in pool:
                    if thread.done() and thread.exception():
                        raise thread.exception()
                if all(thread.done() for thread in pool):
                    return Executed(error="not run: the grader's workers stopped before it")
                self.ready.wait(0.5)
            return self.done[key]


def grading_config(config: Config, course: Course, dirs: GradingDirs) -> Config:
    """A copy of the course's nbgrader config, with every folder and the gradebook of this run (make check's too)."""
    config = copy.deepcopy(config)
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.release_directory = str(dirs.release)
    config.CourseDirectory.submitted_directory = str(dirs.executed)  # what autograde reads: the pool's output
    config.CourseDirectory.autograded_directory = str(dirs.autograded)
    config.CourseDirectory.feedback_directory = str(dirs.feedback)
    config.CourseDirectory.db_url = db_url(dirs.db)
    return config


def scoring_config(config: Config) -> Config:
    """autograde --no-execute: scored as executed by the pool, nothing runs again, no parameters injected twice."""
    config = copy.deepcopy(config)
    for name in ("Execute", "ClearOutput", "InjectGradingParameters"):
        config[name].enabled = False
    return config


def snapshot(db: Path, copy_to: Path) -> None:
    """A consistent copy of the gradebook (sqlite's backup API), for workers to read while this process writes."""
    copy_to.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(copy_to)) as target:
        source.backup(target)


def release_lessons(course: Course, config: Config, dirs: GradingDirs, released: dict[str, threading.Event]) -> None:
    """generate_assignment, lesson by lesson: each lesson's submissions may start as soon as it is recorded.

    The workers read the lesson (test cells to restore) from a snapshot of the gradebook taken then, never from the
    gradebook itself: this process writes it (scores) while they execute, and sqlite lets a writer wait at most a
    few seconds for readers before it gives up ("database is locked").
    """
    for lesson in course.lessons():
        try:
            run_converter(GenerateAssignment, config, lesson, ".", dirs.log, force=True, create_assignment=True)
            snapshot(dirs.db, dirs.snapshots / f"{lesson}.db")
        except ConverterFailed as err:  # its submissions cannot be restored: each will say so
            print(f"  {lesson}: {err}", flush=True)
        finally:
            released[lesson].set()


def score(sub: Submission, dirs: GradingDirs, config: Config, scoring: Config) -> None:
    """Autograde (no execution) then generate_feedback for one executed submission; failures go to the log."""
    if not (dirs.executed / sub.student / sub.lesson).is_dir():
        return
    try:
        run_converter(Autograde, scoring, sub.lesson, sub.student, dirs.log, force=True, create_student=True)
        run_converter(GenerateFeedback, config, sub.lesson, sub.student, dirs.log, force=True)
    except ConverterFailed:  # the report line says "autograde failed (see the log)"
        pass


def export(config: Config, dirs: GradingDirs) -> None:
    """nbgrader export: grades.csv from the gradebook, with nbgrader's own CSV exporter."""
    plugin = CsvExportPlugin(config=config)
    plugin.to = str(dirs.csv)
    with Gradebook(db_url(dirs.db), config.CourseDirectory.course_id) as gb:
        plugin.export(gb)


def run_nbgrader(course: Course, dirs: GradingDirs, settings: Settings, workers: int, subs: list[Submission]) -> None:
    """generate_assignment while the pool's workers start, the pool's executions, and, in this process, each
    submission scored and given its feedback as soon as it and those before it are executed; then export.

    Only this process writes the gradebook, in submission order: the same gradebook, CSV and feedback as a serial
    run. On Ctrl-C (or any error) the workers are killed and nothing else starts.
    """
    config = grading_config(nbgrader_config(), course, dirs)
    scoring = scoring_config(config)
    todo = jobs(course, subs, dirs)
    pending: queue.Queue[Job] = queue.Queue()
    for job in todo:
        pending.put(job)
    released = {lesson: threading.Event() for lesson in course.lessons()}
    running, results = Workers(), Results(len(todo))
    count = max(1, min(workers, len(todo)))
    print(f"executing {len(todo)} submission(s) with {count} worker(s), {settings.threads} thread(s) each", flush=True)
    pool = ThreadPoolExecutor(max_workers=count)
    try:
        threads = [pool.submit(running.serve, pending, released, settings, results.put) for _ in range(count)]
        print("nbgrader generate_assignment", flush=True)
        release_lessons(course, config, dirs, released)
        for i, sub in enumerate(subs):
            if sub.problem:  # nbgrader is given the broken file as it came, and lists it as it always did
                shutil.copytree(dirs.submitted / sub.student / sub.lesson, dirs.executed / sub.student / sub.lesson)
            else:
                subs[i] = sub = replace(sub, executed=results.get((sub.student, sub.lesson), threads))
            score(sub, dirs, config, scoring)
        print("nbgrader export", flush=True)
        export(config, dirs)
    except BaseException:
        running.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


def outcome(sub: Submission, dirs: GradingDirs, sandboxed: bool) -> tuple[str, bool]:
    """The report line of one submission (score, time, what happened, what was wrong), and whether it was graded."""
    grades = cell_grades(dirs.db, sub.lesson, sub.student)
    earned, possible = total(grades) if grades is not None else (0.0, max_points(dirs.db, sub.lesson))
    took = f"{sub.executed.seconds:7.1f}" if not sub.problem else f"{'-':>7}"
    line = f"{sub.student:<20} {sub.lesson:<28} {earned:6.1f} / {possible:<6.1f} {took}"
    notes = list(sub.executed.events)
    ok = (dirs.autograded / sub.student / sub.lesson / f"{sub.lesson}.ipynb").is_file()
    if not ok:
        why = sub.problem or sub.executed.error or f"autograde failed (see {dirs.log})"
        notes.append(f"NOT GRADED: {why}; 0 points")
    missing = [g.grade_id for g in grades or [] if g.missing]
    if ok and missing:
        notes.append(f"graded cells missing from the notebook (0 points): {', '.join(missing)}")
    if not sandboxed:
        notes.append("NOT SANDBOXED")
    return f"{line}  {'; '.join(notes)}".rstrip(), ok


def stale_lessons(course: Course, dirs: GradingDirs) -> list[str]:
    """Lessons whose student copy in notebooks/ is not what solutions/ releases now."""
    fresh = {lesson: dirs.release / lesson / f"{lesson}.ipynb" for lesson in course.lessons()}
    return [
        lesson
        for lesson, path in fresh.items()
        if path.is_file()
        and (not course.released(lesson).is_file() or course.released(lesson).read_bytes() != path.read_bytes())
    ]


def fresh_staging(course: Course) -> GradingDirs:
    """An empty <build>/grading.partial/; a word if an interrupted run left one behind."""
    dirs = GradingDirs.under(course.build / "grading.partial")
    if dirs.base.exists():
        print(f"note: a previous grading run was interrupted; its partial folder {dirs.base} is removed", flush=True)
        shutil.rmtree(dirs.base)
    return dirs


def publish(staging: GradingDirs, final: Path) -> GradingDirs:
    """Move the finished run into place (renames only: at no moment is a half-written run in final/)."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging.base, final)
    shutil.rmtree(old, ignore_errors=True)
    return GradingDirs.under(final)


def grade(course: Course, folder: Path, settings: Settings, workers: int) -> int:
    """Grade every submission under folder; print the report; return the exit code."""
    final = course.build / "grading"
    submissions, skipped = scan(course, folder)
    for line in skipped:
        print(f"skipped: {line}", flush=True)
    if not submissions:
        print(f"grade: no submission of a lesson of this course in {folder}", file=sys.stderr)
        return 1
    dirs = fresh_staging(course)
    try:
        stage(submissions, folder, dirs)
        run_nbgrader(course, dirs, settings, workers, submissions)
    except BaseException as err:
        kept = "the previous run's grades and feedback are kept" if final.exists() else "no grades were written"
        print(f"\ngrade: interrupted; {kept} in {final}", file=sys.stderr)
        if isinstance(err, KeyboardInterrupt):
            return 130
        raise
    lines = [outcome(sub, dirs, settings.sandboxed) for sub in submissions]
    stale = stale_lessons(course, dirs)
    dirs = publish(dirs, final)
    print(f"\n{'student':<20} {'lesson':<28} {'points':>15} {'seconds':>7}")
    for line, _ in lines:
        print(line)
    for line in skipped:
        print(f"skipped: {line}")
    for lesson in stale:
        print(
            f"warning: notebooks/{lesson} is not what solutions/{lesson} releases now (run make release); "
            f"graded against solutions/"
        )
    print(f"\ngrades: {dirs.csv}\nfeedback: {dirs.feedback}/<student>/<lesson>/<lesson>.html\nlog: {dirs.log}")
    return 0 if all(ok for _, ok in lines) and not skipped else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and grade."""
    parser = argparse.ArgumentParser(prog="python -m grader.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder of <student>/<lesson>/<lesson>.ipynb")
    parser.add_argument("--workers", type=int, default=cores(), help="parallel submissions (default: cores)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds one cell may run")
    parser.add_argument("--cap", type=int, default=0, help="seconds one submission may run (default: 4 timeouts)")
    parser.add_argument("--no-sandbox", action="store_true", help="grade without bubblewrap (every line says so)")
    add_course_arguments(parser)
    args = parser.parse_args(argv)
    course = course_from_arguments(args)
    if not args.submissions.is_dir():
        print(
            f"grade: {args.submissions} is not a folder of submissions (<student>/<lesson>/<lesson>.ipynb)",
            file=sys.stderr,
        )
        return 2
    if not course.lessons():
        print(f"grade: no lessons in {course.solutions}", file=sys.stderr)
        return 2
    if args.workers < 1 or args.timeout < 1 or args.cap < 0:
        print("grade: WORKERS and TIMEOUT must be at least 1, CAP at least 0", file=sys.stderr)
        return 2
    problem = "" if args.no_sandbox else sandbox.bwrap_works()
    if problem:
        print(f"grade: {problem}; or grade without a sandbox: make grade UNSAFE=1 (--no-sandbox)", file=sys.stderr)
        return 2
    use_tool_env()
    return grade(course, args.submissions.resolve(), pool_settings(course, args), args.workers)


if __name__ == "__main__":
    sys.exit(main())
