"""nbgrader's converters, run in this process (as nbgrader's own NbGraderAPI runs them), with the course's config.

`make grade` and `make check` score one submission at a time while others still execute: starting the `nbgrader`
command for each would cost about 2 s of imports every time. `run_converter` is nbgrader's `utils.capture_log`
with two differences: Ctrl-C is not swallowed (capture_log's bare `except:` catches KeyboardInterrupt, so an
interrupted run would go on), and the log can be appended to a file, as the `nbgrader` command's would be.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from grader.course import CONFIG_FILE


class ConverterFailed(RuntimeError):
    """An nbgrader converter did not complete; the message is the last line of its log."""


def nbgrader_config() -> Config:
    """The course's nbgrader configuration (grader/nbgrader_config.py) as a traitlets Config."""
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()


def run_converter(
    converter: type, config: Config, lesson: str, student: str, log: Path | None = None, **settings: object
) -> None:
    """Run one nbgrader converter (GenerateAssignment, Autograde, GenerateFeedback) on one lesson and student.

    Its log goes to `log` (appended) if given; raise ConverterFailed if nbgrader reports a failure.
    """
    coursedir = CourseDirectory(config=config, assignment_id=lesson, student_id=student)
    app = converter(coursedir=coursedir, config=config)
    for name, value in settings.items():
        setattr(app, name, value)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    app.log.addHandler(handler)
    start, failure = time.perf_counter(), ""
    try:
        # the SAWarnings nbgrader 0.9.6's gradebook raises under SQLAlchemy 2 ("... not in session, add operation
        # ... will not proceed") go to the log too, not to the terminal
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            app.start()
    except Exception as err:  # nbgrader's NbGraderException and anything else: the converter failed
        failure = f"{type(err).__name__}: {err}"
    finally:
        app.log.removeHandler(handler)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"\n$ nbgrader {converter.__name__} {lesson} --student {student}\n{buffer.getvalue()}")
            fh.writelines(f"[WARNING] {w.category.__name__}: {w.message}\n" for w in caught)
            status = f"failed ({failure.splitlines()[0]})" if failure else "done"
            fh.write(f"[grader] {converter.__name__}: {status}, {time.perf_counter() - start:.1f} s\n")
    if failure:
        lines = (buffer.getvalue().strip() or failure).splitlines()
        raise ConverterFailed(f"nbgrader {converter.__name__} failed: {lines[-1]}")
