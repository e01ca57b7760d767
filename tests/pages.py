"""What the grading tests read back: feedback pages as text, and a lesson's hidden-test lines."""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat

from grader.course import Course
from grader.hidden import MIN_QUOTED, split_hidden


def page_text(path: Path) -> str:
    """The visible text of an HTML page: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def hidden_lines(course: Course, lesson: str) -> list[str]:
    """The lesson's hidden-test lines that a page could not show otherwise (stripped).

    Lines too short to recognise, and lines that also occur in the student copy (a visible
    `with torch.no_grad():`), are left out.
    """
    source = nbformat.read(course.source(lesson), as_version=4)
    released = "\n".join(c.source for c in nbformat.read(course.released(lesson), as_version=4).cells)
    lines = [
        line.strip()
        for c in source.cells
        for line in split_hidden(c.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")[1]
    ]
    return [line for line in lines if len(line) >= MIN_QUOTED and line not in released]
