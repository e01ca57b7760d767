"""Hidden tests kept out of what a learner sees: cut from sources, tracebacks and other outputs.

nbgrader's own feedback prints the restored test cells, hidden tests included, and the traceback of
a failing assert quotes the failing line and its neighbours (jupyter/nbgrader#1363, #917). These
helpers are used by grader.feedback (feedback HTML) and grader.check (the learner's terminal).
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode

PLACEHOLDER = "# (hidden tests: not shown)"
MIN_QUOTED = 8  # hidden lines shorter than this (")", "else:") are too common to redact from outputs


def split_hidden(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """Lines of a cell outside and inside its hidden-test regions; a region becomes one marker line."""
    shown, hidden, inside = [], [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
            shown.append(PLACEHOLDER)
        elif end in line:
            inside = False
        elif inside:
            hidden.append(line)
        else:
            shown.append(line)
    return shown, hidden


def error_summary(ename: str, evalue: str) -> str:
    """What a learner sees of an error: its name and message, no traceback."""
    return f"{ename}: {evalue}" if evalue else ename


def redact(text: str, hidden: list[str]) -> str:
    """Drop the lines of text that quote a hidden line."""
    quoted = [h.strip() for h in hidden if len(h.strip()) >= MIN_QUOTED]
    return "\n".join(line for line in text.split("\n") if not any(q in line for q in quoted))


def hide_outputs(outputs: list[NotebookNode], hidden: list[str]) -> None:
    """Reduce error outputs to name and message, and redact hidden lines from text outputs."""
    for out in outputs:
        if out.output_type == "error":
            out.evalue = redact(out.evalue, hidden)
            out.traceback = [error_summary(out.ename, out.evalue)]
        elif out.output_type == "stream":
            out.text = redact(out.text, hidden)
        elif "text/plain" in out.get("data", {}):
            out.data["text/plain"] = redact(out.data["text/plain"], hidden)


def redact_outputs(outputs: list[NotebookNode], hidden: list[str]) -> None:
    """Drop the output lines that quote a hidden line, tracebacks included (kept otherwise)."""
    for out in outputs:
        if out.output_type == "error":
            out.evalue = redact(out.evalue, hidden)
            out.traceback = [redact(line, hidden) for line in out.traceback]
        elif out.output_type == "stream":
            out.text = redact(out.text, hidden)
        elif "text/plain" in out.get("data", {}):
            out.data["text/plain"] = redact(out.data["text/plain"], hidden)


def hide_hidden_tests(cell: NotebookNode, begin: str, end: str) -> bool:
    """Cut the hidden tests of one code cell out of its source and outputs; True if it had any."""
    if cell.cell_type != "code" or begin not in cell.source:
        return False
    shown, hidden = split_hidden(cell.source, begin, end)
    cell.source = "\n".join(shown)
    hide_outputs(cell.outputs, hidden)
    return True
