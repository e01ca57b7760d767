"""Reproduce an error, read it, measure a training step: what lesson 5 (error recovery) runs around its exercises.

Built in lesson 5. Nothing here answers an exercise; it holds the plumbing a lesson needs to show real errors
without stopping the notebook:

- show_error: run a call, catch what it raises, print the exception's class and the library's own message, and
  (optionally) its frames, marked "yours" or "library", which is how a traceback is read;
- raised, shorten: the exception a call raises (quietly), and a message cut at a word for one line;
- answer_of: run a learner's answer for one test case, turning an exception into that case's assertion message;
- library_messages: collect what transformers logs and what Python warns during a block, to print it in the cell
  (so no red stderr, and the text is still the library's);
- random_batch, train_steps, step_peak_bytes: a training step on random tokens, a few steps with a given
  optimizer, and the peak memory of one step (loracourse.memory.peak_bytes underneath);
- plot_step_memory: one bar per setting against a memory budget.
"""

from __future__ import annotations

import logging
import sys
import sysconfig
import textwrap
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from .memory import peak_bytes
from .progress import progress
from .train import Task, batch_indices, collate, to_device

MIB = 2**20

# The original tutorial's from_pretrained keywords (transformers 4), kept here so a lesson can run its line as it
# was written. Two of them changed in transformers 5: load_in_8bit was removed, torch_dtype was renamed dtype.
TUTORIAL_LOAD_KWARGS = {"device_map": "auto", "torch_dtype": torch.bfloat16, "load_in_8bit": True}

_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")} | {sys.prefix}
)


@dataclass(frozen=True)
class Frame:
    """One frame of a traceback: where it ran, and whether it is the learner's code or a library's."""

    filename: str
    lineno: int
    name: str
    line: str
    yours: bool


def is_library_file(filename: str) -> bool:
    """True for installed packages and Python's standard library (site-packages, the stdlib folder, <frozen ...>)."""
    return "site-packages" in filename or filename.startswith(_LIBRARY_DIRS) or filename.startswith("<frozen")


def frames_of(err: BaseException) -> list[Frame]:
    """The frames of `err`'s traceback, outermost first (the call you made) to innermost (where it raised)."""
    return [
        Frame(f.filename, f.lineno or 0, f.name, (f.line or "").strip(), not is_library_file(f.filename))
        for f in traceback.extract_tb(err.__traceback__)
    ]


def short_path(filename: str) -> str:
    """A frame's file as a reader wants it: 'peft/tuners/tuners_utils.py' rather than the full path."""
    for marker in ("site-packages/", "loracourse/"):
        if marker in filename:
            return ("loracourse/" if marker == "loracourse/" else "") + filename.split(marker, 1)[1]
    return "your cell" if "ipykernel" in filename or filename.startswith("<ipython") else filename


def show_error(call: Callable[[], object], frames: bool = False) -> BaseException | None:
    """Run `call`; print 'Class: message' of what it raised (or that it raised nothing); return the exception.

    With frames=True, first the compact traceback, one line per frame: ">" marks your code, "." a library's.
    The frame of show_error itself is left out: the first frame shown is the call you made.
    """
    try:
        call()
    except Exception as err:  # the lesson shows any error, then the notebook runs on
        if frames:
            for frame in frames_of(err)[1:]:
                mark = ">" if frame.yours else "."
                print(f"{mark} {short_path(frame.filename)}:{frame.lineno} in {frame.name}: {frame.line[:70]}")
        kind = type(err)
        module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
        print(f"{module}{kind.__name__}: {err}")
        return err
    print("no error")
    return None


def raised(call: Callable[[], object]) -> BaseException:
    """The exception `call` raises, without printing it; AssertionError when it raises nothing."""
    try:
        call()
    except Exception as err:
        return err
    raise AssertionError("the call was expected to raise and raised nothing")


def shorten(text: object, width: int = 100) -> str:
    """`text` on one line, cut at a word with ' ...' when longer than `width` characters."""
    return textwrap.shorten(str(text), width, placeholder=" ...")


def answer_of(case: str, call: Callable[[], object], hint: str = "") -> object:
    """What `call` (a learner's answer on one test case) returns; if it raises, an AssertionError naming the case.

    A test reads the answer through this so that an exception names the case it came from and a likely cause
    (`hint`), instead of ending the test with a bare library error.
    """
    try:
        return call()
    except Exception as err:  # the learner's error, reported as this case's failure
        raise AssertionError(f"{case}: your function raised {type(err).__name__}: {shorten(err)}{hint}") from None


@contextmanager
def library_messages() -> Iterator[list[str]]:
    """Collect what transformers logs and Python warns inside the block, instead of printing it to stderr.

    transformers logs through its own handler (`transformers.utils.logging`); this swaps it for one that keeps
    the messages, and records warnings with warnings.catch_warnings. Print the list after the block.
    """
    from transformers.utils import logging as hf_logging

    collected: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(f"[transformers log] {record.getMessage()}")

    handler = _Keep()
    hf_logging.disable_default_handler()
    hf_logging.add_handler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield collected
    finally:
        hf_logging.remove_handler(handler)
        hf_logging.enable_default_handler()
    collected.extend(f"[{w.category.__name__}] {w.message}" for w in caught)


def random_batch(vocab_size: int, batch_size: int, seq_len: int, seed: int, device: str) -> dict[str, torch.Tensor]:
    """A (batch_size, seq_len) batch of random token ids, labels = input_ids: for measuring, not for learning."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=generator).to(device)
    return {"input_ids": ids, "labels": ids}


def training_step(model: nn.Module, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> float:
    """One step: forward, backward, optimizer step, gradients freed; the loss."""
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def step_peak_bytes(model: nn.Module, batch: dict[str, torch.Tensor], device: str) -> int:
    """Peak bytes one training step allocates beyond what existed before: activations, gradients, AdamW's state.

    The weights already exist, so they are not in it (add model.get_memory_footprint()). The optimizer is made
    here, so its state (two tensors per trainable parameter) is created, and counted, during the step.
    """
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    model.train()
    peak = peak_bytes(lambda: training_step(model, batch, optimizer), device)
    model.eval()
    return peak


def train_steps(
    model: nn.Module,
    tokenizer,
    task: Task,
    optimizer: torch.optim.Optimizer,
    max_steps: int,
    batch_size: int = 16,
    seed: int = 0,
    desc: str = "train",
) -> list[float]:
    """`max_steps` steps on task.train with the optimizer you built (train_lora builds its own); the losses."""
    model.train()
    losses = []
    for indices in progress(batch_indices(len(task.train), batch_size, max_steps, seed), desc=desc):
        batch = to_device(collate(tokenizer, task, [task.train[i] for i in indices]), model)
        losses.append(training_step(model, batch, optimizer))
    model.eval()
    return losses


def plot_step_memory(rows: dict[str, int], budget: int, title: str = "One LoRA training step") -> Figure:
    """Horizontal bars: bytes per setting (in MiB), red where over the budget, and a dashed line at the budget."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    colors = ["#c44e52" if value > budget else "#3b75af" for value in rows.values()]
    bars = ax.barh(list(rows), [value / MIB for value in rows.values()], color=colors)
    ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.axvline(budget / MIB, color="black", ls="--", lw=1)
    ax.invert_yaxis()
    ax.set(
        xlabel="weights + peak of one step (MiB, 2²⁰ bytes)", title=f"{title}\nbudget {budget / MIB:.1f} MiB (dashed)"
    )
    fig.tight_layout()
    return fig
