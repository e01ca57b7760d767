"""The course's own errors: one line that names the problem and what to do, not a stack of library frames.

A lesson checks what it can before it calls a library (a model that is not a causal LM, a quantization this
machine cannot run) and raises a CourseError. In a notebook, IPython shows a CourseError as its one line
(`_render_traceback_` is IPython's hook for exceptions that render themselves); elsewhere it is an ordinary
exception with a message.
"""

from __future__ import annotations


class CourseError(Exception):
    """An error whose message says what is wrong and what to do; shown as one line in a notebook."""

    def _render_traceback_(self) -> list[str]:
        """What IPython prints for this exception: its name and message, no frames."""
        return [f"{type(self).__name__}: {self}"]


class ModelChoiceError(CourseError, ValueError):
    """model_name_or_path names no model this lesson can use."""


class QuantizationUnavailable(CourseError, RuntimeError):
    """The quantization asked for cannot run on this machine or with these packages."""
