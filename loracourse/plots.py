"""Small plotting helpers: one figure per call, labelled axes, returned to the caller."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def plot_loss(losses: Sequence[float], title: str = "LoRA fine-tuning") -> Figure:
    """Training loss per step (answer tokens only)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(losses) + 1), losses, lw=1.2)
    ax.set(xlabel="step", ylabel="cross-entropy loss (nats/token)", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_losses(curves: dict[str, Sequence[float]], title: str = "LoRA fine-tuning") -> Figure:
    """Several training-loss curves in one figure, one per label (a sweep), log scale."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, losses in curves.items():
        ax.semilogy(range(1, len(losses) + 1), losses, lw=1.2, label=label)
    ax.set(xlabel="step", ylabel="cross-entropy loss (nats/token)", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_singular_values(matrices: dict[str, torch.Tensor], rank: int | None = None) -> Figure:
    """Singular values (largest first, log scale) of each matrix; a dashed line at `rank`."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, matrix in matrices.items():
        s = torch.linalg.svdvals(matrix.detach().float()).cpu()  # on the matrix's device: a GPU is faster
        ax.semilogy(range(1, len(s) + 1), s.clamp_min(1e-12), marker=".", lw=1, label=label)
    if rank is not None:
        ax.axvline(rank + 0.5, ls="--", c="grey", lw=1, label=f"r = {rank}")
    ax.set(xlabel="index i", ylabel="singular value σ_i", title="How many directions does each matrix use?")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_before_after(scores: dict[str, float], title: str = "Held-out exact match") -> Figure:
    """Bar chart of scores in [0, 1], one bar per model."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    bars = ax.bar(list(scores), [100 * v for v in scores.values()], color=["#999999", "#3b75af"][: len(scores)])
    ax.bar_label(bars, fmt="%.0f%%")
    ax.set(ylabel="exact match (%)", ylim=(0, 105), title=title)
    fig.tight_layout()
    return fig


def plot_sweep(panels: dict[str, dict[str, Sequence[float]]], title: str = "LoRA sweep") -> Figure:
    """One panel per scheme (outer key), one loss curve per setting (inner key), log scale, shared y. Lesson 2."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items(), strict=True):
        for label, losses in curves.items():
            ax.semilogy(range(1, len(losses) + 1), losses, lw=1.2, label=label)
        ax.set(xlabel="step", title=panel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("cross-entropy loss (nats/token)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_continued(
    first: Sequence[float], continued: dict[str, Sequence[float]], title: str = "Training on after a change"
) -> Figure:
    """A first run's loss curve, then one curve per way of training on from its end, a dashed line between. Lesson 2."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.semilogy(range(1, len(first) + 1), first, lw=1.2, c="grey", label="first run")
    for label, losses in continued.items():
        ax.semilogy(range(len(first) + 1, len(first) + len(losses) + 1), losses, lw=1.2, label=label)
    ax.axvline(len(first) + 0.5, ls="--", c="grey", lw=1)
    ax.set(xlabel="step", ylabel="cross-entropy loss (nats/token)", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
