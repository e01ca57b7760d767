"""Autograde a folder of submissions, each in its own sandbox, in parallel; export a grades CSV and feedback HTML.

`python -m grader.grade DIR [--workers N] [--timeout S] [--cap S] [--no-sandbox]` (make grade SUBMISSIONS=DIR
[WORKERS=N] [TIMEOUT=S] [CAP=S] [UNSAFE=1]). DIR is in nbgrader's layout, DIR/<student>/<lesson>/<lesson>.ipynb,
and is only read. Every run starts from a fresh gradebook (grades are derived from the submissions), then:

1. generate_assignment: the gradebook learns each lesson, hidden tests included;
2. a pool of worker processes executes the submissions (grader.execute: nbgrader's sanitizing, test cells
   restored, grading parameters, a sandboxed kernel per submission, per-cell time limit, restarts after a
   kernel death), one progress line per finished submission;
3. nbgrader autograde --no-execute scores the executed notebooks (only this process writes the gradebook, in
   submission order: the same gradebook, CSV and feedback as a serial run), generate_feedback (hidden tests
   cut out by grader.feedback.HideHiddenTests) and export (grades.csv).

Everything is written under <build>/grading.partial/ and moved to <build>/grading/ only when the run is done:
an interrupted run leaves the previous run's grades and feedback as they were.

A broken submission (not a notebook, a missing notebook) is graded 0 and listed; a folder for a
lesson the course does not have is listed and skipped; neither stops the others being graded.
Exit code: 0 if every submission was graded, 1 if any was listed as not graded, 2 on a usage error
(or when bubblewrap is missing and --no-sandbox was not given).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader import CELL_TIMEOUT_S, sandbox
from grader.course import Course, add_course_arguments, course_from_arguments, db_url, nbgrader, use_tool_env
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
            db_url(dirs.db),
            dirs.release / sub.lesson / f"{sub.lesson}.ipynb",
        )
        for sub in submissions
        if not sub.problem
    ]


class Workers:
    """The worker processes running now (`python -m grader.worker`), so that an interrupted run can stop them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()
        self.stopping = False

    def run(self, job: Job, settings: Settings) -> tuple[Job, Executed]:
        """Execute one submission in a worker process of its own; its result comes back through a file."""
        with tempfile.TemporaryDirectory(prefix="loracourse-worker-") as tmp:
            result = Path(tmp) / "executed.pickle"
            with self.lock:
                if self.stopping:
                    return job, Executed(error="not run: the grading run was interrupted")
                proc = subprocess.Popen([sys.executable, "-m", "grader.worker", str(result)], stdin=subprocess.PIPE)
                self.running.add(proc)
            try:
                proc.communicate(pickle.dumps((job, settings)))
            finally:
                with self.lock:
                    self.running.discard(proc)
            if proc.returncode == 0 and result.exists():
                return job, pickle.loads(result.read_bytes())
            return job, Executed(error=f"the grader's worker process stopped (exit code {proc.returncode})")

    def stop(self) -> None:
        """Kill every running worker; its sandboxed kernel dies with it (bwrap --die-with-parent)."""
        with self.lock:
            self.stopping = True
            for proc in self.running:
                proc.kill()


def execute_all(todo: list[Job], settings: Settings, workers: int) -> dict[tuple[str, str], Executed]:
    """Execute the submissions, `workers` at a time, each in a process of its own; a progress line as each finishes.

    Threads only wait here: each submission runs in a `python -m grader.worker` process (see grader/worker.py for
    why not multiprocessing's Pool). On Ctrl-C (or any error) the running workers are killed and nothing else starts.
    """
    done: dict[tuple[str, str], Executed] = {}
    running = Workers()
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))))
    try:
        futures = [pool.submit(running.run, job, settings) for job in todo]
        for i, future in enumerate(as_completed(futures), 1):
            job, result = future.result()
            done[(job.student, job.lesson)] = result
            what = "; ".join(result.events) or result.error or "ok"
            print(f"  [{i}/{len(todo)}] {job.student}/{job.lesson}: {result.seconds:.1f} s, {what}", flush=True)
    except BaseException:
        running.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return done


def run_nbgrader(course: Course, dirs: GradingDirs, settings: Settings, workers: int, subs: list[Submission]) -> None:
    """generate_assignment, the pool's executions, then autograde --no-execute, generate_feedback and export."""
    print("nbgrader generate_assignment", flush=True)
    release = ["*", "--force", f"--CourseDirectory.release_directory={dirs.release}"]
    nbgrader(course, "generate_assignment", *release, db=dirs.db, log=dirs.log)
    todo = jobs(course, subs, dirs)
    each = f"{settings.threads} thread(s) each"
    print(f"executing {len(todo)} submission(s) with {workers} worker(s), {each}", flush=True)
    executed = execute_all(todo, settings, workers)
    for i, sub in enumerate(subs):
        subs[i] = Submission(sub.student, sub.lesson, sub.problem, executed.get((sub.student, sub.lesson), Executed()))
        if sub.problem:  # nbgrader is given the broken file as it came, and lists it as it always did
            dest = dirs.executed / sub.student / sub.lesson
            shutil.copytree(dirs.submitted / sub.student / sub.lesson, dest, dirs_exist_ok=True)
    folders = [
        f"--CourseDirectory.submitted_directory={dirs.executed}",
        f"--CourseDirectory.autograded_directory={dirs.autograded}",
        f"--CourseDirectory.feedback_directory={dirs.feedback}",
    ]
    # scored as executed by the pool: nothing runs again, no parameters are injected twice
    score = ["--no-execute", "--InjectGradingParameters.enabled=False"]
    for command, args in (
        ("autograde", ["*", "--force", *score, *folders]),
        ("generate_feedback", ["*", "--force", *folders]),
        ("export", [f"--to={dirs.csv}"]),
    ):
        print(f"nbgrader {command}", flush=True)
        nbgrader(course, command, *args, db=dirs.db, log=dirs.log)


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
