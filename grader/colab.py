"""The "Open in Colab" badge: at the top of every student notebook (make release) and in the README's lesson table.

The badge opens notebooks/<lesson>/<lesson>.ipynb of the published repository in Colab. Its address is built
from the one publishing setting, [tool.loracourse] repository and branch in pyproject.toml (grader.setup_cell
reads the same); while no repository is set, release adds no badge (a link to a guessed address would be worse).
The badge is a cell of its own, without nbgrader metadata, so grading ignores it.

    python -m grader.colab     # the README badge of every lesson, for the lesson table
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from grader.course import REPO_ROOT, Course
from grader.setup_cell import publish_settings

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_TAG = "colab-badge"  # the badge cell's tag, so that a second release replaces it


def colab_url(lesson: str, root: Path = REPO_ROOT) -> str:
    """Colab's address of a lesson's student notebook in the published repository, or "" while none is set."""
    settings = publish_settings(root)
    if not settings["repository"]:
        return ""
    path = f"notebooks/{lesson}/{lesson}.ipynb"
    return f"https://colab.research.google.com/github/{settings['repository']}/blob/{settings['branch']}/{path}"


def badge(lesson: str, root: Path = REPO_ROOT) -> str:
    """The badge in markdown, or "" while no repository is set."""
    url = colab_url(lesson, root)
    return f"[![Open In Colab]({BADGE_IMAGE})]({url})" if url else ""


def add_badge(path: Path, lesson: str, root: Path = REPO_ROOT) -> bool:
    """Put the badge cell first in a released notebook (replacing an older one); False while none is set."""
    text = badge(lesson, root)
    if not text:
        return False
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if BADGE_TAG not in c.metadata.get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(text, metadata={"tags": [BADGE_TAG]})
    cell.id = BADGE_TAG  # a fixed id: release stays byte for byte repeatable
    nb.cells.insert(0, cell)
    nbformat.write(nb, path)
    return True


def add_badges(course: Course, dest: Path, lessons: list[str]) -> None:
    """Badge every released lesson in dest; say once when no repository is set."""
    added = [lesson for lesson in lessons if (dest / lesson / f"{lesson}.ipynb").is_file()]
    if not all([add_badge(dest / lesson / f"{lesson}.ipynb", lesson, course.root) for lesson in added]):
        print("  no Colab badge: [tool.loracourse] repository is not set in pyproject.toml (README, Colab)")


def main() -> int:
    """Print each lesson's README badge."""
    for lesson in Course(REPO_ROOT, REPO_ROOT / "build").lessons():
        print(f"{lesson}: {badge(lesson) or '(no repository set in pyproject.toml)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
