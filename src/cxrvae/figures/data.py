"""Figures of the data step: how the images differ. Arrays in, a matplotlib Figure out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..thresholds import EFFECT_LARGE, EFFECT_MEDIUM
from .common import color, draw_tiles


def plot_mean_std(mean, std) -> Figure:
    """Per-pixel mean and standard deviation images (H, W), each with a colour bar."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, img, name in ((axes[0], mean, "Mean image"), (axes[1], std, "Standard deviation")):
        im = ax.imshow(img, cmap="gray" if name == "Mean image" else "magma")
        ax.set_title(name)
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="normalised intensity")
    fig.suptitle("Where the images agree (mean) and where they differ (std)")
    fig.tight_layout()
    return fig


def plot_intensity_histogram(edges, counts) -> Figure:
    """Histogram of all pixel values: ``edges`` (B + 1,), ``counts`` (B,)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    frac = counts / max(1, counts.sum())
    ax.bar(edges[:-1], frac, width=np.diff(edges), align="edge", color="#4c72b0")
    ax.set_xlabel("normalised pixel intensity")
    ax.set_ylabel("fraction of all pixels")
    ax.set_title("Pixel-intensity histogram (all images)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    return fig


def plot_brightness_contrast(brightness, contrast, labels=None, label_names=None) -> Figure:
    """Distributions of per-image brightness (mean) and contrast (std), split by label if given."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    groups = [(None, np.ones(len(brightness), bool))]
    if labels is not None:
        groups = [(name, labels == k) for k, name in enumerate(label_names)]
    for values, ax, name in (
        (brightness, axes[0], "brightness (image mean)"),
        (contrast, axes[1], "contrast (image std)"),
    ):
        bins = np.linspace(values.min(), values.max() + 1e-9, 40)
        for k, (gname, mask) in enumerate(groups):
            ax.hist(
                values[mask],
                bins=bins,
                alpha=0.55,
                color=color(k),
                density=True,
                label=f"{gname} (n={mask.sum()})" if gname is not None else None,
            )
        ax.set_xlabel(name)
        ax.set_ylabel("density")
        if labels is not None:
            ax.legend(fontsize=8)
    axes[0].set_title("Per-image brightness")
    axes[1].set_title("Per-image contrast")
    fig.tight_layout()
    return fig


def plot_typical_atypical(typical, atypical, typical_scores, atypical_scores) -> Figure:
    """Most typical (top row) and most atypical (bottom row) images (N, H, W) with distances."""
    n = max(len(typical), len(atypical))
    fig, ax = plt.subplots(figsize=(1.5 * n, 3.9))
    images, titles = [], []
    for imgs, scores in ((typical, typical_scores), (atypical, atypical_scores)):
        images += [imgs[i] if i < len(imgs) else None for i in range(n)]
        titles += [f"d = {scores[i]:.1f}" if i < len(imgs) else None for i in range(n)]
    draw_tiles(ax, images, n, titles, ["most typical", "most atypical"])
    fig.suptitle("Distance d from the mean image in pixel-PCA space")
    fig.tight_layout()
    return fig


def plot_effect_sizes(names, effects, first: str, second: str) -> Figure:
    """How two labels differ on each feature: Cohen's d (``second`` minus ``first``) as bars.

    ``names`` (F,) are the features' descriptions, ``effects`` (F,) their d.
    """
    order = np.argsort(np.abs(effects))
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(names) + 1.4))
    vals = np.asarray(effects)[order]
    ax.barh(np.arange(len(vals)), vals, color=[color(1) if v > 0 else color(0) for v in vals])
    ax.set_yticks(np.arange(len(vals)))
    ax.set_yticklabels([names[i] for i in order], fontsize=8)
    for x, style in ((EFFECT_MEDIUM, ":"), (EFFECT_LARGE, "--")):
        ax.axvline(x, color="#999", ls=style, lw=0.8)
        ax.axvline(-x, color="#999", ls=style, lw=0.8)
    ax.axvline(0, color="#444", lw=0.8)
    ax.set_xlabel(
        f"effect size d: {second} minus {first}, in pooled SDs\n"
        f"({EFFECT_MEDIUM:g} medium, {EFFECT_LARGE:g} large)"
    )
    ax.set_title(f"Each feature: {second} against {first}")
    fig.tight_layout()
    return fig


def plot_feature_histograms(values: dict, labels=None, label_names=None) -> Figure:
    """Distributions of a few per-image features (name -> (N,)), by label where given."""
    fig, axes = plt.subplots(1, len(values), figsize=(3.3 * len(values), 3.2), squeeze=False)
    groups = [(None, None)]
    if labels is not None:
        groups = [(name, labels == k) for k, name in enumerate(label_names)]
    for ax, (name, v) in zip(axes[0], values.items()):
        bins = np.linspace(v.min(), v.max() + 1e-9, 30)
        for k, (gname, mask) in enumerate(groups):
            part = v if mask is None else v[mask]
            ax.hist(part, bins=bins, alpha=0.55, color=color(k), density=True, label=gname)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("density")
        if labels is not None:
            ax.legend(fontsize=7)
    fig.suptitle("Positioning and edges: where the body sits, its symmetry, dark edges")
    fig.tight_layout()
    return fig


def plot_duplicate_pairs(first, second, distances, straddling, total: int) -> Figure:
    """Pairs of near-identical images (P, H, W) side by side: one pair per column."""
    n = len(first)
    fig, ax = plt.subplots(figsize=(1.7 * n + 0.4, 4.2))
    where = ["train / test" if s else "same side" for s in straddling]
    titles = [f"RMS {distances[i]:.3f}\n{where[i]}" for i in range(n)] + [None] * n
    draw_tiles(ax, [*first, *second], n, titles, ["image", "its twin"])
    if total == 1:
        title = "1 near-identical pair"
    else:
        shown = "" if n == total else f"; {n} shown"
        title = f"{total} near-identical pairs{shown}, those across the train/test split first"
    fig.suptitle(title)
    fig.tight_layout()
    return fig
