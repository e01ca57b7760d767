"""Grading parameters: while grading, a lesson's slow steps run short, as `papermill -p` would set them.

A lesson's test cells check functions and shapes, not how far its demo fine-tune got, yet that
fine-tune is most of a lesson's run time (lesson 1: `max_steps` = 120 steps, about a minute on
2 cores). So autograde and check inject a cell after the cell tagged `parameters`, tagged
`injected-parameters` as papermill's is, that overrides the parameters named in nbgrader_config.py
(`InjectGradingParameters.parameters`, per lesson in `lesson_parameters`). Only names the lesson's
parameters cell defines are overridden. `make run` executes the lessons on their defaults; the
grading tests prove that solutions earn full marks with the grading parameters.
"""

from __future__ import annotations

import re

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_code_cell
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict

INJECTED_TAG = "injected-parameters"
ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", re.M)  # `name = ...` or `name: type = ...`


def parameter_names(source: str) -> set[str]:
    """The names a parameters cell assigns."""
    return set(ASSIGNMENT.findall(source))


def inject(nb: NotebookNode, parameters: dict[str, object]) -> dict[str, object]:
    """Insert the overrides of parameters the notebook defines after its `parameters` cell; return them."""
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if index is None:
        return {}
    overrides = {k: v for k, v in parameters.items() if k in parameter_names(nb.cells[index].source)}
    if overrides:
        lines = [f"{name} = {value!r}" for name, value in overrides.items()]
        source = "# Grading parameters, injected by the grader (grader/nbgrader_config.py)\n" + "\n".join(lines)
        nb.cells.insert(index + 1, new_code_cell(source, metadata={"tags": [INJECTED_TAG]}))
    return overrides


class InjectGradingParameters(NbGraderPreprocessor):
    """nbgrader preprocessor (before Execute): inject the grading parameters after `parameters`."""

    parameters = Dict(help="parameter name -> value while grading, for every lesson").tag(config=True)
    lesson_parameters = Dict(help="lesson -> {parameter name -> value}, over `parameters`").tag(config=True)

    def for_lesson(self, lesson: str) -> dict[str, object]:
        """The grading parameters of one lesson."""
        return {**self.parameters, **self.lesson_parameters.get(lesson, {})}

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        """Inject the lesson's grading parameters (the lesson is nbgrader's assignment id)."""
        inject(nb, self.for_lesson(resources.get("nbgrader", {}).get("assignment", "")))
        return nb, resources
