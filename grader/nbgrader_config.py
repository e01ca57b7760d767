"""nbgrader configuration of the course: where things live, how long cells may run, safe feedback.

nbgrader reads this file when called as `nbgrader ... --config=grader/nbgrader_config.py`; the grader
modules always pass it (and override the folders when they grade into another build directory).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the course root: the repository
sys.path.insert(0, str(ROOT))  # so that nbgrader can import grader.feedback from any cwd
from nbgrader.converters import Autograde  # noqa: E402

from grader import CELL_TIMEOUT_S, COURSE_ID, kernel_config  # noqa: E402

BUILD = ROOT / "build" / "grading"

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = COURSE_ID
c.CourseDirectory.source_directory = "solutions"  # the nbgrader source of each lesson
c.CourseDirectory.release_directory = "notebooks"  # the student copies, generated and committed
c.CourseDirectory.submitted_directory = str(BUILD / "submitted")  # `make grade` passes its own
c.CourseDirectory.autograded_directory = str(BUILD / "autograded")
c.CourseDirectory.feedback_directory = str(BUILD / "feedback")
c.CourseDirectory.db_url = f"sqlite:///{BUILD / 'gradebook.db'}"

# Lessons load models and train for a few steps: nbgrader's 30 s per cell is too short.
c.Execute.timeout = CELL_TIMEOUT_S
c.Execute.kernel_name = "python3"
# Kernels over local sockets, not unencrypted TCP (grader/__init__.py): the Execute preprocessor's kernel
# manager reads this.
c.KernelManager.update(kernel_config())

# While grading (autograde and grader.check), each lesson's demo fine-tune runs a few steps only: the
# tests check functions, not training, and the full run is most of a lesson's time (see
# grader/parameters.py). The injected cell comes right before execution.
# By dotted name, as nbgrader accepts them: the formgrader shows this config as JSON, which classes are not.
c.Autograde.autograde_preprocessors = [
    "grader.parameters.InjectGradingParameters",
    *(f"{cls.__module__}.{cls.__name__}" for cls in Autograde.class_traits()["autograde_preprocessors"].default()),
]
c.InjectGradingParameters.parameters = {"max_steps": 5}
c.InjectGradingParameters.lesson_parameters = {}  # e.g. {"03-qlora": {"max_steps": 20}}

# Feedback never shows hidden tests: their source is cut, and tracebacks of test cells that hold
# hidden tests are reduced to the error's name and message (jupyter/nbgrader#1363, #917).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "grader.feedback.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
