"""Figures of the analysis step: reconstructions, clusters, latent maps, interpolations,
traversals and the comparisons between models. Arrays in, a matplotlib Figure out.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import color, draw_tiles


def plot_reconstructions(originals, reconstructions: dict, title: str = "") -> Figure:
    """Originals (n, H, W) in the top row, each model's reconstructions (n, H, W) below.

    ``reconstructions`` maps a row name (e.g. ``"latent 16"``) to its images.
    """
    rows = [("original", originals), *reconstructions.items()]
    n = len(originals)
    fig, ax = plt.subplots(figsize=(1.3 * n, 1.35 * len(rows) + 0.5))
    images = [img for _, imgs in rows for img in imgs[:n]]
    draw_tiles(ax, images, n, row_labels=[name for name, _ in rows])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_silhouette(scores: dict, chosen: int, title: str = "") -> Figure:
    """Silhouette score per K (``scores`` maps K -> score), the chosen K marked."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ks = sorted(scores)
    ax.plot(ks, [scores[k] for k in ks], "o-", color="#1f77b4")
    ax.plot(
        [chosen],
        [scores[chosen]],
        "o",
        ms=12,
        mfc="none",
        mec="#d62728",
        mew=2,
        label=f"chosen K = {chosen}",
    )
    ax.set_xlabel("number of clusters K")
    ax.set_ylabel("silhouette score")
    ax.set_xticks(ks)
    ax.set_title(title or "K-means silhouette by K")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_cluster_gallery(galleries: list, sizes, title: str = "") -> Figure:
    """One row per cluster: ``galleries[c]`` is (m, H, W), ``sizes[c]`` the cluster's size."""
    ncols = max(len(g) for g in galleries)
    nrows = len(galleries)
    fig, ax = plt.subplots(figsize=(1.25 * ncols + 1.2, 1.3 * nrows + 0.6))
    images = [g[i] if i < len(g) else None for g in galleries for i in range(ncols)]
    draw_tiles(
        ax,
        images,
        ncols,
        row_labels=[f"cluster {c}\n(n={sizes[c]})" for c in range(nrows)],
        edgecolors=[color(c) for c in range(nrows) for _ in range(ncols)],
        row_colors=[color(c) for c in range(nrows)],
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_latent_scatter(
    coords, categories, names, title: str, xlabel: str, ylabel: str, ax=None
) -> Figure:
    """2-D map (n, 2) coloured by integer categories (n,) named by ``names``."""
    standalone = ax is None
    if standalone:
        fig, ax = plt.subplots(figsize=(5.6, 4.8))
    else:
        fig = ax.figure
    for k, name in enumerate(names):
        m = categories == k
        ax.scatter(
            coords[m, 0],
            coords[m, 1],
            s=7,
            alpha=0.75,
            color=color(k),
            label=f"{name} (n={m.sum()})",
            linewidths=0,
        )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, markerscale=2, loc="best", framealpha=0.8)
    if standalone:
        fig.tight_layout()
    return fig


def plot_interpolation(
    t,
    images,
    originals,
    reconstructions,
    title: str,
    end_labels=("lowest", "highest"),
    features: dict | None = None,
    feature_label: str = "change from t = 0\n(SD across images)",
) -> Figure:
    """An interpolation path and its two endpoint images.

    Parameters
    ----------
    t : (T,) interpolation positions in [0, 1]
    images : (T, H, W) decoded images along the path
    originals, reconstructions : (2, H, W) the endpoint images and their reconstructions
    features : dict name -> (T,), optional; drawn against t in a bottom panel, with the y
        label ``feature_label`` (by default: change from t = 0 in standard deviations)
    """
    n = len(t)
    # the two rows of tiles (titles of two lines above them) fill the width at 3.4 inches high
    fig = plt.figure(figsize=(1.35 * n, 3.4 + (2.3 if features else 0) + 1.0))
    grid = fig.add_gridspec(2 if features else 1, 1, height_ratios=[3.4, 2.3][: 1 + bool(features)])
    slots = {
        0: (originals[0], f"original\n({end_labels[0]})"),
        1: (reconstructions[0], "its\nreconstruction"),
        n - 2: (reconstructions[1], "its\nreconstruction"),
        n - 1: (originals[1], f"original\n({end_labels[1]})"),
    }
    top = [slots.get(i, (None, None)) for i in range(n)]
    draw_tiles(
        fig.add_subplot(grid[0]),
        [img for img, _ in top] + list(images),
        n,
        titles=[name for _, name in top] + [f"t = {v:.3f}" for v in t],
    )
    if features:
        _feature_panel(fig.add_subplot(grid[1]), t, features, feature_label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _feature_panel(ax, t, features: dict, ylabel: str) -> None:
    """Each feature (name -> (T,)) against t, one line each, the legend below."""
    for k, (name, values) in enumerate(features.items()):
        ax.plot(t, values, "o-", ms=3, color=color(k), label=name)
    ax.axhline(0, color="#999", lw=0.8)
    ax.set_xlabel("t (position along the path)")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_xticks(t)
    ax.set_xticklabels([f"{v:.3f}" for v in t], fontsize=7)
    ax.legend(fontsize=7, ncol=len(features), loc="upper center", bbox_to_anchor=(0.5, -0.28))


def plot_maps(pca_coords, tsne_coords, categories, names, title: str, pca_variance=None) -> Figure:
    """PCA (left) and t-SNE (right) maps (n, 2) side by side, coloured by the same categories.

    ``pca_variance`` (>= 2,) puts each component's explained-variance ratio in its axis label.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.9))
    if pca_variance is not None:
        xl, yl = (f"PC{i + 1} ({100 * pca_variance[i]:.1f}% of variance)" for i in range(2))
    else:
        xl, yl = "PC1", "PC2"
    plot_latent_scatter(
        pca_coords, categories, names, "PCA of the latent means", xl, yl, ax=axes[0]
    )
    plot_latent_scatter(
        tsne_coords,
        categories,
        names,
        "t-SNE of the latent means",
        "t-SNE 1",
        "t-SNE 2",
        ax=axes[1],
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_error_distribution(values: dict, xlabel: str, title: str = "") -> Figure:
    """Distribution of a per-image error for each model: ``values`` maps name -> (n,)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    allv = np.concatenate([np.asarray(v, dtype=float) for v in values.values()])
    bins = np.linspace(np.percentile(allv, 0.5), np.percentile(allv, 99.5), 50)
    for i, (name, v) in enumerate(values.items()):
        ax.hist(
            v,
            bins=bins,
            histtype="step",
            lw=1.8,
            color=color(i),
            label=f"{name} (median {np.median(v):.1f})",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test images")
    ax.set_title(title or "Per-image reconstruction error on the test set")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_rate_distortion(rate: dict, distortion: dict, baseline: dict) -> Figure:
    """Rate (KL, nats) against distortion (BCE above the floor, nats) for each model (left),
    and the distortion against the latent size beside a linear baseline's (right).

    ``rate``, ``distortion`` and ``baseline`` map latent size -> number.
    """
    dims = sorted(distortion)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.plot([rate[d] for d in dims], [distortion[d] for d in dims], "-", color="#999", lw=1)
    for i, d in enumerate(dims):
        ax.plot(rate[d], distortion[d], "o", ms=8, color=color(i), label=f"latent {d}")
        ax.annotate(f"latent {d}", (rate[d], distortion[d]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)  # fmt: skip
    ax.set_xlabel("rate: KL(q(z|x) || N(0, I)), nats per image")
    ax.set_ylabel("distortion: BCE above the floor, nats per image")
    ax.set_title("Rate and distortion of each model")
    ax = axes[1]
    ax.plot(dims, [distortion[d] for d in dims], "o-", color=color(0), label="VAE")
    if baseline:
        ax.plot(dims, [baseline[d] for d in dims], "s--", color=color(3),
                label="PCA with as many components (linear)")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims)
    ax.set_xticklabels([str(d) for d in dims])
    ax.set_xlabel("latent size (components)")
    ax.set_ylabel("BCE above the floor, nats per image")
    ax.set_title("Distortion against a linear code of the same size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_traversal(images, row_labels, steps, title: str = "") -> Figure:
    """Decoded images (R, C, H, W): one row per latent dimension, one column per value.

    ``row_labels`` (R,) name the dimensions; ``steps`` (C,) are the values in SD.
    """
    rows, cols = images.shape[:2]
    fig, ax = plt.subplots(figsize=(1.25 * cols + 1.3, 1.3 * rows + 0.7))
    titles = [f"{steps[c]:+g} SD" if r == 0 else None for r in range(rows) for c in range(cols)]
    draw_tiles(ax, list(images.reshape(-1, *images.shape[2:])), cols, titles, list(row_labels))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_path_probability(t, probabilities: dict, label: str, title: str = "") -> Figure:
    """The probe's probability of ``label`` along each interpolation path (name -> (T,))."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, (name, p) in enumerate(probabilities.items()):
        ax.plot(t, p, "o-", ms=3, color=color(i), label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="#999", lw=0.8, ls=":")
    ax.set_xlabel("t (position along the path)")
    ax.set_ylabel(f"probe's probability of {label}")
    ax.set_title(title or f"What a label probe says of each decoded frame: {label}")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def plot_over_seeds(numbers: dict, n_seeds: int) -> Figure:
    """Each number of each latent size over the trainings with other seeds: one panel per
    number, the latent sizes along x, one point per seed and a bar at their mean, so that the
    eye sees whether the sizes separate.

    ``numbers`` maps a number's name -> latent size -> its values (one per seed).
    """
    names = list(numbers)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.9 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        dims = sorted(numbers[name])
        for i, d in enumerate(dims):
            values = np.asarray(numbers[name][d], float)
            x = i + np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [i]
            ax.plot(x, values, "o", ms=5, color=color(i), alpha=0.85)
            ax.plot([i - 0.25, i + 0.25], [values.mean()] * 2, "-", color="#333", lw=1.5)
        ax.set_xticks(range(len(dims)))
        ax.set_xticklabels([f"latent {d}" for d in dims], fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_axis_off()
    fig.suptitle(f"Each model's numbers over {n_seeds} seeds (points; bar: mean)")
    fig.tight_layout()
    return fig


def plot_similarity(matrix, labels, title: str = "") -> Figure:
    """A symmetric similarity matrix (n, n) between models, as a heat map with its values;
    ``labels`` (n,) name the rows and columns."""
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 + 0.55 * n), max(3.8, 1.0 + 0.5 * n)))
    shown = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=90, fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("model (latent size / seed)")
    ax.set_ylabel("model (latent size / seed)")
    if n <= 12:
        for i in range(n):
            for j in range(n):
                shade = "white" if matrix[i][j] < 0.6 else "black"
                ax.text(j, i, f"{matrix[i][j]:.2f}", ha="center", va="center", fontsize=7,
                        color=shade)  # fmt: skip
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
