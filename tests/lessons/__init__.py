"""Per-lesson test modules: tests/lessons/lesson_<NN>_<name>.py for the lesson <NN>-<name>.

A lesson's module is plain Python, linted like the rest. For every answer cell of the lesson it defines a
top-level function (or class) named exactly as the cell's grade_id: the most common plausible mistake for that
exercise, which the grading tests submit and which must lose that exercise's points (and only those). It may
also define:

- HIDDEN_ONLY: grade_ids whose mistake only the hidden tests catch (the fixture's, on purpose). For a real
  lesson this stays empty: the visible tests catch the most common mistake.
- RECORDED and check_claims(values): variables of the executed lesson (its default run on the tiny model) and
  the claims its prose makes about them, checked on that run.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType


def module_name(lesson: str) -> str:
    """'01-lora-theory' -> 'tests.lessons.lesson_01_lora_theory'."""
    return f"{__name__}.lesson_{lesson.replace('-', '_')}"


def load(lesson: str) -> ModuleType | None:
    """The lesson's test module, or None if it has none."""
    try:
        return importlib.import_module(module_name(lesson))
    except ModuleNotFoundError as err:
        if err.name != module_name(lesson):
            raise
        return None


def wrong_answers(module: ModuleType, answer_ids: list[str]) -> dict[str, str]:
    """grade_id -> the source of the module's wrong answer for that answer cell (those it defines)."""
    found = {grade_id: getattr(module, grade_id, None) for grade_id in answer_ids}
    return {grade_id: inspect.getsource(obj) for grade_id, obj in found.items() if obj is not None}
