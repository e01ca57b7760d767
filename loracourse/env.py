"""The notebooks' setup step: seeds, device, versions. Nothing happens on import."""

from __future__ import annotations

import importlib.metadata
import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and GPU) so a rerun gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
    """Seed everything, report versions and the device, and return the device to use."""
    seed_everything(seed)
    device = pick_device()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "no GPU found: running on the CPU"
    grading = " · graded by nbgrader" if os.environ.get("NBGRADER_EXECUTION") else ""
    print(f"{versions()}\ndevice: {device} ({gpu}) · seed {seed}{grading}")
    return device
