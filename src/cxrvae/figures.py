"""Figure functions: numpy arrays in, a matplotlib Figure out. No torch, no files, no show().

The backend is left to the caller (a notebook shows the figures inline); the command line
selects the non-interactive Agg backend, since it only writes files.

Images are (N, H, W) float arrays in [0, 1], shown in grayscale with bone bright.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .files import atomic_write

# Fixed categorical colours (tab10 order) so cluster k has the same colour in every figure.
COLORS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def color(k: int) -> str:
    """Colour of category k (wraps after 10)."""
    return COLORS[int(k) % len(COLORS)]


def save_figure(fig: Figure, path) -> None:
    """Save ``fig`` as PNG at ``path`` (folders created) and close it.

    The PNG is written to a temporary name and renamed, so a crash or a full disk never leaves
    a half-written figure under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _show(ax, img, title=None, fontsize=8):
    ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=fontsize)


# --------------------------------------------------------------------------- data


def plot_image_grid(images, titles=None, ncols: int = 8, title: str = "") -> Figure:
    """Images (N, H, W) in a grid, with optional per-image titles (N,)."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.6 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, images[i], None if titles is None else titles[i])
        else:
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


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
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.9), squeeze=False)
    for row, imgs, scores in ((0, typical, typical_scores), (1, atypical, atypical_scores)):
        for i in range(n):
            ax = axes[row, i]
            if i < len(imgs):
                _show(ax, imgs[i], f"d = {scores[i]:.1f}")
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel("most typical" if row == 0 else "most atypical", fontsize=9)
    fig.suptitle("Distance d from the mean image in pixel-PCA space")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- training


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


# --------------------------------------------------------------------------- latent analysis


def plot_reconstructions(originals, reconstructions: dict, title: str = "") -> Figure:
    """Originals (n, H, W) in the top row, each model's reconstructions (n, H, W) below.

    ``reconstructions`` maps a row name (e.g. ``"latent 16"``) to its images.
    """
    rows = [("original", originals), *reconstructions.items()]
    n = len(originals)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.35 * len(rows) + 0.5), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for i in range(n):
            _show(axes[r, i], imgs[i])
        axes[r, 0].set_ylabel(name, fontsize=9)
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
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.25 * ncols + 1.2, 1.3 * nrows + 0.6), squeeze=False
    )
    for c, imgs in enumerate(galleries):
        for i in range(ncols):
            if i < len(imgs):
                _show(axes[c, i], imgs[i])
                for spine in axes[c, i].spines.values():
                    spine.set_edgecolor(color(c))
                    spine.set_linewidth(2.5)
            else:
                axes[c, i].axis("off")
        axes[c, 0].set_ylabel(f"cluster {c}\n(n={sizes[c]})", fontsize=9, color=color(c))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_latent_scatter(
    coords, categories, names, title: str, xlabel: str, ylabel: str, ax=None
) -> Figure:
    """2-D map (n, 2) coloured by integer categories (n,) named by ``names``."""
    if ax is None:
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
    rows = 3 if features else 2
    fig = plt.figure(figsize=(1.35 * n, 1.5 * 2 + (2.3 if features else 0) + 0.7))
    grid = fig.add_gridspec(rows, n, height_ratios=[1, 1, 1.6][:rows])
    slots = {
        0: (originals[0], f"original\n({end_labels[0]})"),
        1: (reconstructions[0], "its\nreconstruction"),
        n - 2: (reconstructions[1], "its\nreconstruction"),
        n - 1: (originals[1], f"original\n({end_labels[1]})"),
    }
    for i in range(n):
        ax = fig.add_subplot(grid[0, i])
        if i in slots:
            _show(ax, slots[i][0], slots[i][1])
        else:
            ax.axis("off")
        ax = fig.add_subplot(grid[1, i])
        _show(ax, images[i], f"t = {t[i]:.3f}")
    if features:
        ax = fig.add_subplot(grid[2, :])
        for k, (name, values) in enumerate(features.items()):
            ax.plot(t, values, "o-", ms=3, color=color(k), label=name)
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xlabel("t (position along the path)")
        ax.set_ylabel(feature_label, fontsize=9)
        ax.set_xticks(t)
        ax.set_xticklabels([f"{v:.3f}" for v in t], fontsize=7)
        ax.legend(fontsize=7, ncol=len(features), loc="upper center", bbox_to_anchor=(0.5, -0.28))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


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
