"""Progress bars whose saved form is their last frame, not their first. Built for lesson 1.

In a notebook, tqdm draws a widget and saves, as the output's text form, the frame it had when it was first
displayed: "0%| | 0/100". That text is what a headless run (papermill) keeps and what a text viewer shows.
`SavedBar` displays its widget under a display id and updates that display when the bar closes, so the
saved text ends at 100 %. tqdm has no option for it. `save_library_bars()` gives transformers' own bars
("Loading weights") the same behaviour, through transformers' public hook `set_tqdm_hook`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm


class SavedBar(notebook_tqdm):
    """tqdm's notebook bar, whose displayed output is updated to its final frame when it closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "display": False})
        self._handle = None
        if not self.disable:
            from IPython.display import display

            self._handle = display(self.container, display_id=True)

    def close(self) -> None:
        """Close the bar, then redraw its saved output (widget and text) in its final state."""
        super().close()
        if getattr(self, "_handle", None) is not None:
            self._handle.update(self.container)
            self._handle = None


def in_notebook() -> bool:
    """Whether tqdm.auto draws notebook widgets here (IPython with ipywidgets), as it decides itself."""
    return issubclass(tqdm, notebook_tqdm)


def progress(iterable: Iterable, desc: str, total: int | None = None, enabled: bool = True) -> Iterator:
    """A progress bar over `iterable`: SavedBar in a notebook, tqdm's text bar elsewhere."""
    bar = SavedBar if in_notebook() else tqdm
    yield from bar(iterable, desc=desc, total=total, disable=not enabled)


def save_library_bars() -> None:
    """Make transformers' own progress bars SavedBars in a notebook (a lesson's setup calls this)."""
    from transformers.utils.logging import set_tqdm_hook

    def hook(factory: Any, args: tuple, kwargs: dict) -> Any:
        return SavedBar(*args, **kwargs) if factory is tqdm and in_notebook() else factory(*args, **kwargs)

    set_tqdm_hook(hook)
