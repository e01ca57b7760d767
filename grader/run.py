"""Execute every lesson headless with papermill, time it, autograde it with nbgrader; print a table.

`python -m grader.run [--lesson L] [--model M] [--preset P] [-p NAME VALUE]` (make run [LESSON=L] [MODEL=M]
[PRESET=P]). Each solutions/<lesson>/<lesson>.ipynb runs on its defaults (or a preset of grader/presets.toml, or
the parameters given, as papermill -p sets them) in
the venv's python3 kernel, from build/executed/<lesson>/ (where the executed copy is written, so a
lesson that saves files writes them there). The executed copies are then autograded as they are
(`nbgrader autograde --no-execute`, pseudo-student "solutions", gradebook build/run/gradebook.db),
and build/run-summary.json gets {"notebooks": [{"name", "seconds", "points", "max_points"}],
"total_seconds"} (the sum of the notebooks' seconds). Exit 1 if a notebook fails to execute
(it is then listed with 0 points: its unexecuted test cells would otherwise look passed).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from grader import CELL_TIMEOUT_S, kernel_config
from grader.course import Course, add_course_arguments, course_from_arguments, nbgrader, use_tool_env
from grader.gradebook import cell_grades, total
from grader.presets import PRESETS_FILE, for_lesson, load_presets, model_problem
from grader.release import generate

STUDENT = "solutions"  # the pseudo-student whose submissions are the executed solutions


@dataclass
class Result:
    """One lesson's run: how long it took, the error that stopped it, and its points."""

    name: str
    seconds: float
    error: str = ""
    points: float = 0.0
    max_points: float = 0.0


def execute(source: Path, out: Path, parameters: dict[str, object] | None = None, progress: bool = True) -> Result:
    """Run a lesson notebook with papermill into out, beside a copy of the lesson's other files; time it.

    `parameters` override the lesson's parameters cell, as `papermill -p NAME VALUE` does.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    shutil.copytree(source.parent, out.parent, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.ipynb", ".*"))
    start, error = time.perf_counter(), ""
    try:
        pm.execute_notebook(
            str(source),
            str(out),
            kernel_name="python3",
            cwd=str(out.parent),
            execution_timeout=CELL_TIMEOUT_S,
            progress_bar=progress,
            parameters=parameters or {},
            config=Config({"KernelManager": kernel_config()}),  # as nbgrader_config.py
        )
    except PapermillExecutionError as err:
        error = f"cell {err.cell_index}: {err.ename}: {str(err.evalue).splitlines()[0] if err.evalue else ''}"
    except Exception as err:  # the kernel died, timed out or could not start: report it, run the rest
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return Result(out.stem, round(time.perf_counter() - start, 2), error)


def autograde(course: Course, results: list[Result], executed: Path, base: Path) -> None:
    """Autograde the executed notebooks that ran to the end, as they are; fill in their points."""
    shutil.rmtree(base, ignore_errors=True)
    ok = [r for r in results if not r.error]
    if not ok:
        return
    for r in ok:
        dest = base / "submitted" / STUDENT / r.name
        dest.mkdir(parents=True)
        shutil.copy(executed / r.name / f"{r.name}.ipynb", dest)
    db, log = base / "gradebook.db", base / "nbgrader.log"
    print(f"\nAutograding {len(ok)} executed notebook(s) (log: {log})", flush=True)
    generate(course, base / "release", db, log)
    nbgrader(
        course,
        "autograde",
        "*",
        "--force",
        "--no-execute",
        f"--student={STUDENT}",
        "--InjectGradingParameters.enabled=False",  # graded as executed, on the defaults
        f"--CourseDirectory.submitted_directory={base / 'submitted'}",
        f"--CourseDirectory.autograded_directory={base / 'autograded'}",
        db=db,
        log=log,
    )
    for r in ok:
        grades = cell_grades(db, r.name, STUDENT)
        r.points, r.max_points = total(grades) if grades is not None else (0.0, 0.0)


def table(results: list[Result]) -> str:
    """The summary table: lesson, seconds, points earned of points possible."""
    lines = [f"{'lesson':<32} {'seconds':>8}  {'points':>15}"]
    for r in results:
        status = f"  FAILED: {r.error}" if r.error else ""
        lines.append(f"{r.name:<32} {r.seconds:8.1f}  {r.points:6.1f} / {r.max_points:<6.1f}{status}".rstrip())
    seconds = sum(r.seconds for r in results)
    points, possible = sum(r.points for r in results), sum(r.max_points for r in results)
    lines.append(f"{'total':<32} {seconds:8.1f}  {points:6.1f} / {possible:.1f}")
    return "\n".join(lines)


def summary(results: list[Result]) -> dict:
    """The content of run-summary.json (exactly these keys)."""
    notebooks = [
        {"name": r.name, "seconds": float(r.seconds), "points": float(r.points), "max_points": float(r.max_points)}
        for r in results
    ]
    return {"notebooks": notebooks, "total_seconds": round(float(sum(r.seconds for r in results)), 2)}


def run(
    course: Course, lessons: list[str], parameters: dict[str, object], preset: dict[str, object] | None = None
) -> list[Result]:
    """Execute and autograde the lessons; write run-summary.json; return the results.

    `preset` (grader/presets.toml) gives each lesson the parameters it declares; `parameters` override it.
    """
    executed, results = course.build / "executed", []
    for i, lesson in enumerate(lessons, 1):
        given = {**for_lesson(preset or {}, course.source(lesson)), **parameters}
        print(f"[{i}/{len(lessons)}] executing {lesson}" + (f" with {given}" if given else ""), flush=True)
        results.append(execute(course.source(lesson), executed / lesson / f"{lesson}.ipynb", given))
        print(
            f"      {results[-1].seconds:.1f} s {'FAILED: ' + results[-1].error if results[-1].error else 'ok'}",
            flush=True,
        )
    autograde(course, results, executed, course.build / "run")
    (course.build / "run-summary.json").write_text(json.dumps(summary(results), indent=2) + "\n")
    print("\n" + table(results) + f"\n\nsummary: {course.build / 'run-summary.json'}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run every lesson; exit 1 if any failed to execute."""
    parser = argparse.ArgumentParser(prog="python -m grader.run", description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", action="append", default=[], help="run this lesson only (repeatable)")
    parser.add_argument("--model", default="", help="model_name_or_path for every lesson: a hub id or a folder")
    parser.add_argument("--preset", default="", help="GPU preset of grader/presets.toml (t4, a100)")
    parser.add_argument("--presets-file", type=Path, default=PRESETS_FILE, help=argparse.SUPPRESS)  # for tests
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a lesson parameter, as papermill -p does (VALUE read as a Python literal)",
    )
    add_course_arguments(parser)
    args = parser.parse_args(argv)
    course = course_from_arguments(args)
    unknown = [lesson for lesson in args.lesson if lesson not in course.lessons()]
    if not course.lessons() or unknown:
        what = f"no lesson {unknown[0]!r}" if unknown else "no lessons"
        print(f"run: {what} in {course.solutions} (lessons: {', '.join(course.lessons()) or 'none'})", file=sys.stderr)
        return 1
    parameters = {name: literal(value) for name, value in args.parameter}
    presets = load_presets(args.presets_file)
    if args.preset and args.preset not in presets:
        print(f"run: no preset {args.preset!r} (presets: {', '.join(presets)})", file=sys.stderr)
        return 2
    if args.model.strip():
        parameters["model_name_or_path"] = args.model.strip()
        problem = model_problem(args.model.strip())
        if problem:
            print(f"run: {problem}", file=sys.stderr)
            return 2
    use_tool_env()  # the kernel sees the venv's bin/ first on PATH, as in an activated shell
    results = run(course, args.lesson or course.lessons(), parameters, presets.get(args.preset))
    return 1 if any(r.error for r in results) else 0


def literal(value: str) -> object:
    """A -p value as papermill reads one: a Python literal (3, 0.5, True) when it is one, else the string."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


if __name__ == "__main__":
    sys.exit(main())
