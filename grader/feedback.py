"""The nbgrader preprocessor that keeps hidden tests out of feedback HTML.

nbgrader_config.py adds `HideHiddenTests` to GenerateFeedback's preprocessors: in every code cell
that holds a hidden-test region, the region is cut from the source (a marker line stays), tracebacks
are reduced to "ErrorName: message", and output lines that quote a hidden line are dropped.
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests

from grader.hidden import hide_hidden_tests


class HideHiddenTests(ClearHiddenTests):
    """Feedback preprocessor: no hidden-test source, no traceback that quotes one."""

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        """Hide the hidden tests of one cell (delimiters as configured for ClearHiddenTests)."""
        hide_hidden_tests(cell, self.begin_test_delimeter, self.end_test_delimeter)
        return cell, resources
