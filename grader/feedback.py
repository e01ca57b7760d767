"""The nbgrader preprocessor that keeps hidden tests out of feedback HTML.

nbgrader_config.py adds `HideHiddenTests` to GenerateFeedback's preprocessors: in every code cell
that holds a hidden-test region, the region is cut from the source (a marker line stays), tracebacks
are reduced to "ErrorName: message", and output lines that quote a hidden line are dropped. Output lines of
every other cell that quote a hidden line are dropped too: a submission's own cell can print what the kernel
ran before it (IPython's `In`, `_ih`), the restored test cells included.
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests

from grader.hidden import hide_hidden_tests, redact_outputs, split_hidden


class HideHiddenTests(ClearHiddenTests):
    """Feedback preprocessor: no hidden-test source, no output that quotes one."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        """Collect every hidden line of the notebook, then hide them cell by cell."""
        self.hidden = [
            line
            for cell in nb.cells
            if cell.cell_type == "code" and self.begin_test_delimeter in cell.source
            for line in split_hidden(cell.source, self.begin_test_delimeter, self.end_test_delimeter)[1]
        ]
        return super().preprocess(nb, resources)

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        """Hide the hidden tests of one cell (delimiters as configured for ClearHiddenTests)."""
        if not hide_hidden_tests(cell, self.begin_test_delimeter, self.end_test_delimeter) and cell.cell_type == "code":
            redact_outputs(cell.outputs, getattr(self, "hidden", []))
        return cell, resources
