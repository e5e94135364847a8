"""Figures of the training step: loss curves per epoch. Arrays in, a matplotlib Figure out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import color


def plot_history(history: dict, title: str = "") -> Figure:
    """Train and test curves of total loss, BCE and KL per epoch.

    ``history`` maps column names (``epoch``, ``train_loss``, ``test_bce``...) to arrays.
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    epoch = np.asarray(history["epoch"])
    for ax, key, name in zip(
        axes,
        ("loss", "bce", "kl"),
        ("Total loss (BCE + KL)", "Reconstruction (BCE)", "KL divergence"),
    ):
        ax.plot(epoch, history[f"train_{key}"], label="train", color="#1f77b4")
        ax.plot(epoch, history[f"test_{key}"], label="test", color="#d62728")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.legend(fontsize=8)
        _zoom(ax, history[f"train_{key}"], history[f"test_{key}"])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _zoom(ax, *curves):
    """Clip the y-range to the later epochs so the first epochs' large losses do not hide them."""
    curves = [np.asarray(c, dtype=float) for c in curves]
    if min(len(c) for c in curves) >= 8:
        tail = np.concatenate([c[len(c) // 8 :] for c in curves])
        lo, hi = tail.min(), tail.max()
        pad = 0.1 * (hi - lo) + 1e-9
        ax.set_ylim(lo - pad, hi + 4 * pad)


def plot_history_comparison(histories: dict) -> Figure:
    """Test curves of every model: ``histories`` maps latent size -> history dict."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, name in zip(
        axes,
        ("loss", "bce", "kl"),
        ("Test loss (BCE + KL)", "Test reconstruction (BCE)", "Test KL"),
    ):
        allv = []
        for i, (k, h) in enumerate(histories.items()):
            ax.plot(h["epoch"], h[f"test_{key}"], label=f"latent {k}", color=color(i))
            allv.append(h[f"test_{key}"])
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.legend(fontsize=8)
        _zoom(ax, *allv)
    fig.suptitle("Test curves of all models")
    fig.tight_layout()
    return fig
