"""The notebooks' setup step: seeds, CPU threads, device, versions. Nothing happens on import."""

from __future__ import annotations

import importlib.metadata
import os

import torch
from transformers import set_seed

from .progress import save_library_bars


def cpu_threads() -> int:
    """Torch threads for a lesson: OMP_NUM_THREADS if set, else half the CPU cores this process may use.

    Measured on 2 cores (lesson 1's 100 LoRA steps): 2.2 s alone with torch's default of 2 threads, but
    26.7 s each when two such jobs share the cores (their threads spin-wait for each other); with
    1 thread each, 3.2 s alone and 3.0 s each side by side. Half the cores keeps a lesson fast alone
    and leaves room for one other job (a second lesson, make check, a browser).
    """
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // 2)


def pick_device() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def versions(packages: tuple[str, ...] = ("torch", "transformers", "peft", "bitsandbytes")) -> str:
    """'torch 2.13.0 · transformers ...': the installed versions of the course's core packages."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return " · ".join(found)


def setup(seed: int) -> str:
    """Seed Python, NumPy and torch (transformers.set_seed), size torch's threads, save progress bars at their
    last frame (loracourse.progress), report; return the device."""
    set_seed(seed)
    torch.set_num_threads(cpu_threads())
    save_library_bars()
    device = pick_device()
    n = torch.get_num_threads()
    threads = f"no GPU found: {n} CPU thread{'s' if n > 1 else ''}"
    where = torch.cuda.get_device_name(0) if device == "cuda" else threads
    grading = " · graded by nbgrader" if os.environ.get("NBGRADER_EXECUTION") else ""
    print(f"{versions()}\ndevice: {device} ({where}) · seed {seed}{grading}")
    return device
