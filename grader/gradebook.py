"""Read scores back from an nbgrader gradebook (sqlite), cell by cell."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader import COURSE_ID
from grader.course import db_url, use_tool_env


@dataclass(frozen=True)
class CellGrade:
    """The grade of one graded cell of one submission."""

    grade_id: str
    score: float
    max_score: float
    missing: bool  # the cell was not in the submitted notebook, so nbgrader never scored it


def _gradebook(db: Path):
    """An open nbgrader Gradebook on db (import deferred: nbgrader takes seconds to import)."""
    use_tool_env()  # nbgrader runs `alembic` by name when it creates a gradebook
    from nbgrader.api import Gradebook

    return Gradebook(db_url(db), COURSE_ID)


def cell_grades(db: Path, lesson: str, student: str, notebook: str | None = None) -> list[CellGrade] | None:
    """Grades of every graded cell of a student's notebook (default <lesson>), in source cell order.

    None if the gradebook holds no such submission (nbgrader found no notebook to grade).
    """
    from nbgrader.api import MissingEntry

    with _gradebook(db) as gb:
        try:
            nb = gb.find_submission_notebook(notebook or lesson, lesson, student)
        except MissingEntry:
            return None
        order = [cell.name for cell in nb.notebook.source_cells]  # saved in notebook order
        return [
            CellGrade(g.name, float(g.score), float(g.max_score), g.auto_score is None and g.manual_score is None)
            for g in sorted(nb.grades, key=lambda g: order.index(g.name) if g.name in order else len(order))
        ]


def max_points(db: Path, lesson: str) -> float:
    """Points possible in a lesson."""
    with _gradebook(db) as gb:
        return float(gb.find_assignment(lesson).max_score)


def total(grades: list[CellGrade]) -> tuple[float, float]:
    """Points earned and points possible."""
    return sum(g.score for g in grades), sum(g.max_score for g in grades)
