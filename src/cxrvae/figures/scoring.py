"""Figures of scoring new images with a trained run: score distributions against the run's test
images, the most atypical images beside their reconstructions and nearest training images, and
the images on the run's maps. Arrays in, a matplotlib Figure out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import show_image

FLAGGED = "#d62728"
SCORED = "#1f77b4"
TRAINING = "#bbbbbb"


def plot_score_distributions(reference: dict, batch: dict, thresholds: dict, xlabel: str) -> Figure:
    """One panel per model (latent size -> (n,) scores): the test images' scores and the scored
    images', as densities, and the flag threshold."""
    dims = list(batch)
    fig, axes = plt.subplots(1, len(dims), figsize=(4.3 * len(dims), 3.6), squeeze=False)
    for ax, k in zip(axes[0], dims):
        both = np.concatenate([reference[k], batch[k]])
        bins = np.linspace(np.percentile(both, 0.5), np.percentile(both, 99.5) + 1e-9, 40)
        ax.hist(
            np.clip(reference[k], bins[0], bins[-1]),
            bins=bins,
            density=True,
            alpha=0.5,
            color=TRAINING,
            label=f"the run's test images (n={len(reference[k])})",
        )
        ax.hist(np.clip(batch[k], bins[0], bins[-1]), bins=bins, density=True, histtype="step",
                lw=2, color=SCORED, label=f"scored images (n={len(batch[k])})")  # fmt: skip
        if np.isfinite(thresholds[k]):  # infinite: too few test images to flag at the rate
            ax.axvline(thresholds[k], color=FLAGGED, ls="--", lw=1.2, label="flag threshold")
        ax.set_title(f"Latent {k}")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.suptitle("How atypical the scored images are, against the run's test images")
    fig.tight_layout()
    return fig


def plot_atypical(images, reconstructions, neighbours, titles, title: str = "") -> Figure:
    """One row per image: the image (H, W) titled by ``titles``, its reconstruction, and its
    nearest training images ``neighbours`` (n, m, h, w), all in [0, 1]."""
    n, m = len(images), neighbours.shape[1] if len(images) else 0
    cols = 2 + m
    fig, axes = plt.subplots(max(n, 1), cols, figsize=(1.45 * cols + 0.4, 1.6 * max(n, 1) + 0.6),
                             squeeze=False)  # fmt: skip
    heads = ["scored image", "reconstruction", *[f"nearest training {j + 1}" for j in range(m)]]
    for r in range(n):
        show_image(axes[r, 0], images[r])
        axes[r, 0].set_ylabel(titles[r], fontsize=7)
        show_image(axes[r, 1], reconstructions[r])
        for j in range(m):
            show_image(axes[r, 2 + j], neighbours[r, j])
    for c in range(cols):
        axes[0, c].set_title(heads[c], fontsize=8)
        if not n:
            axes[0, c].axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_on_maps(train_pca, train_tsne, pca, tsne, flagged, title: str = "") -> Figure:
    """The scored images (n, 2) on the PCA (left) and t-SNE (right) maps of the analysed
    training images (m, 2); flagged images in red."""
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.9))
    for ax, train, new, name in (
        (axes[0], train_pca, pca, "PCA"),
        (axes[1], train_tsne, tsne, "t-SNE"),
    ):
        ax.scatter(train[:, 0], train[:, 1], s=6, color=TRAINING, linewidths=0,
                   label=f"analysed training images (n={len(train)})")  # fmt: skip
        ok = ~np.asarray(flagged, bool)
        ax.scatter(new[ok, 0], new[ok, 1], s=14, color=SCORED, linewidths=0, alpha=0.8,
                   label=f"scored, not flagged (n={int(ok.sum())})")  # fmt: skip
        ax.scatter(new[~ok, 0], new[~ok, 1], s=18, color=FLAGGED, marker="x", linewidths=1.2,
                   label=f"scored, flagged (n={int((~ok).sum())})")  # fmt: skip
        ax.set_title(f"{name} map of the latent means", fontsize=10)
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
        ax.legend(fontsize=7, markerscale=1.5, framealpha=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
