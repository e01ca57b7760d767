"""Grading parameters: while grading, a lesson's slow steps run short, exactly as `papermill -p` would set them.

A lesson's test cells check functions and shapes, not how far its demo fine-tune got, yet that fine-tune is
most of a lesson's run time. So autograde and check inject, after the cell tagged `parameters`, the cell
papermill itself writes (papermill.parameterize.parameterize_notebook: tagged `injected-parameters`,
values written by papermill's Python translator). Only the parameters that a lesson's parameters cell
defines are injected, as papermill's own inspection reads them. The values live in nbgrader_config.py
(`InjectGradingParameters.parameters`, per lesson in `lesson_parameters`); `make run` uses the defaults.
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from papermill.parameterize import parameterize_notebook
from papermill.translators import PythonTranslator
from traitlets import Dict

INJECTED_TAG = "injected-parameters"  # papermill's tag for the cell it injects


def parameter_names(nb: NotebookNode) -> set[str]:
    """The names the notebook's `parameters` cell defines, as papermill's inspection reads them."""
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    return {p.name for p in PythonTranslator.inspect(cell)} if cell is not None else set()


def inject(nb: NotebookNode, parameters: dict[str, object]) -> dict[str, object]:
    """Inject the parameters the notebook defines with papermill (in place); return those injected."""
    overrides = {name: value for name, value in parameters.items() if name in parameter_names(nb)}
    if not overrides:
        return {}
    # parameterize_notebook expects what papermill's own loader adds: tags on every cell, papermill metadata
    untagged = [cell for cell in nb.cells if "tags" not in cell.metadata]
    for cell in untagged:
        cell.metadata["tags"] = []
    nb.metadata.setdefault("papermill", {})
    nb.cells = parameterize_notebook(
        nb,
        overrides,
        comment="Grading parameters (grader/nbgrader_config.py)",
        kernel_name="python3",
        language="python",
    ).cells
    for cell in untagged:
        del cell.metadata["tags"]
    for cell in nb.cells:  # papermill gives the cell a random id: a fixed one keeps two gradings of a notebook equal
        if INJECTED_TAG in cell.metadata.get("tags", []):
            cell["id"] = INJECTED_TAG
    return overrides


class InjectGradingParameters(NbGraderPreprocessor):
    """nbgrader preprocessor (before Execute): inject the lesson's grading parameters after `parameters`."""

    parameters = Dict(help="parameter name -> value while grading, for every lesson").tag(config=True)
    lesson_parameters = Dict(help="lesson -> {parameter name -> value}, over `parameters`").tag(config=True)

    def for_lesson(self, lesson: str) -> dict[str, object]:
        """The grading parameters of one lesson."""
        return {**self.parameters, **self.lesson_parameters.get(lesson, {})}

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        """Inject the lesson's grading parameters (the lesson is nbgrader's assignment id)."""
        inject(nb, self.for_lesson(resources.get("nbgrader", {}).get("assignment", "")))
        return nb, resources
