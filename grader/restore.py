"""Put back what the release says a submitted notebook must contain, before nbgrader sanitizes it.

nbgrader finds a notebook's graded cells by their nbgrader metadata alone. Colab, VS Code and copy-paste strip,
rewrite or duplicate it (jupyter/nbgrader#1398, #424), and a deleted test cell is simply missing; nbgrader's own
`OverwriteCells.add_missing_cells` fails when the cell before the missing one is missing too. `restore` matches
each nbgrader cell of the released notebook to a submitted cell, in this order of trust:

1. a cell with the same grade_id (the first one: a duplicated grade_id keeps one cell, the others become plain);
2. a cell with the same cell id (Jupyter's `id`, which Colab and VS Code keep);
3. a cell without nbgrader metadata whose source is the released source (a test cell, a locked cell), or, for
   an answer cell, whose code defines the exercise's function (`def <grade_id>(`).

A matched cell gets the released metadata back; a released cell that matches nothing is put back after the cell
matched to the one before it in the release (at the end if none is), answer cells with the release's stub, so
their tests fail. nbgrader's OverwriteCells then restores every test cell's source from the gradebook.
"""

from __future__ import annotations

import copy
import re

from nbformat.notebooknode import NotebookNode


def nbgrader_id(cell: NotebookNode) -> str | None:
    """The cell's nbgrader grade_id, or None."""
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def defines(cell: NotebookNode, name: str) -> bool:
    """Does the cell's code define a function called name?"""
    return cell.cell_type == "code" and re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", cell.source, re.M) is not None


def find(cells: list[NotebookNode], wanted: NotebookNode, taken: set[int]) -> int | None:
    """The index of the submitted cell that stands for the released cell `wanted`, by the order of trust above."""
    grade_id, solution = nbgrader_id(wanted), wanted.metadata.nbgrader.get("solution", False)
    free = [i for i in range(len(cells)) if i not in taken]
    tests = (
        lambda c: nbgrader_id(c) == grade_id,
        lambda c: wanted.get("id") is not None and c.get("id") == wanted.get("id") and not nbgrader_id(c),
        lambda c: not nbgrader_id(c) and c.source.strip() == wanted.source.strip(),
        lambda c: solution and not nbgrader_id(c) and defines(c, grade_id),
    )
    return next((i for test in tests for i in free if test(cells[i])), None)


def restore(nb: NotebookNode, released: NotebookNode) -> list[str]:
    """Match, re-label and put back the released nbgrader cells in nb (in place); return what was done."""
    wanted = [c for c in released.cells if nbgrader_id(c)]
    taken: dict[int, NotebookNode] = {}  # submitted index -> released cell
    relabelled = []
    for cell in wanted:
        index = find(nb.cells, cell, set(taken))
        if index is not None:
            taken[index] = cell
            if nbgrader_id(nb.cells[index]) != nbgrader_id(cell):
                relabelled.append(nbgrader_id(cell))
    for i, cell in enumerate(nb.cells):  # duplicates and unknown ids: plain cells
        if i not in taken and "nbgrader" in cell.metadata:
            del cell.metadata["nbgrader"]
    for i, cell in taken.items():
        nb.cells[i].metadata["nbgrader"] = copy.deepcopy(cell.metadata.nbgrader)
        nb.cells[i].cell_type = cell.cell_type
        if cell.cell_type == "code":
            nb.cells[i].setdefault("outputs", [])
            nb.cells[i].setdefault("execution_count", None)
        else:
            nb.cells[i].pop("outputs", None)
            nb.cells[i].pop("execution_count", None)
    missing = put_back(nb, wanted, {id(c): i for i, c in taken.items()})
    notes = []
    if relabelled:
        notes.append(f"nbgrader metadata restored from the release on: {', '.join(relabelled)}")
    if missing:
        notes.append(f"cells missing from the notebook, restored from the release: {', '.join(missing)}")
    unanswered = [nbgrader_id(c) for c in wanted if c.metadata.nbgrader.get("solution") and nbgrader_id(c) in missing]
    if unanswered:
        notes.append(f"no answer found for: {', '.join(unanswered)}")
    return notes


def put_back(nb: NotebookNode, wanted: list[NotebookNode], matched: dict[int, int]) -> list[str]:
    """Insert the released cells that matched nothing, each after the cell that stands for its predecessor."""
    cells = list(nb.cells)
    anchors = {id(cell): cells[i] for cell in wanted if (i := matched.get(id(cell))) is not None}
    missing, previous = [], None
    for cell in wanted:
        if id(cell) in anchors:
            previous = anchors[id(cell)]
            continue
        new = copy.deepcopy(cell)
        new["id"] = f"restored-{nbgrader_id(cell)}"[:64]  # the released id may be on another cell of nb
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        position = next(i for i, c in enumerate(cells) if c is previous) + 1 if previous is not None else len(cells)
        cells.insert(position, new)
        missing.append(nbgrader_id(cell))
        previous = new
    nb.cells = cells
    return missing
