"""Figure functions: numpy arrays in, a matplotlib Figure out. No torch, no files, no show().

Images are (N, H, W) float arrays in [0, 1], shown in grayscale with bone bright.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no display is assumed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# Fixed categorical colours (tab10 order) so cluster k has the same colour in every figure.
COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]


def color(k: int) -> str:
    """Colour of category k (wraps after 10)."""
    return COLORS[int(k) % len(COLORS)]


def save_figure(fig: Figure, path) -> None:
    """Save ``fig`` as PNG at ``path`` (folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.6 * nrows + 0.4),
                             squeeze=False)
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
    for values, ax, name in ((brightness, axes[0], "brightness (image mean)"),
                             (contrast, axes[1], "contrast (image std)")):
        bins = np.linspace(values.min(), values.max() + 1e-9, 40)
        for k, (gname, mask) in enumerate(groups):
            ax.hist(values[mask], bins=bins, alpha=0.55, color=color(k), density=True,
                    label=f"{gname} (n={mask.sum()})" if gname is not None else None)
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
    for ax, key, name in zip(axes, ("loss", "bce", "kl"),
                             ("Total loss (BCE + KL)", "Reconstruction (BCE)", "KL divergence")):
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
        tail = np.concatenate([c[len(c) // 8:] for c in curves])
        lo, hi = tail.min(), tail.max()
        pad = 0.1 * (hi - lo) + 1e-9
        ax.set_ylim(lo - pad, hi + 4 * pad)


def plot_history_comparison(histories: dict) -> Figure:
    """Test curves of every model: ``histories`` maps latent size -> history dict."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, name in zip(axes, ("loss", "bce", "kl"),
                             ("Test loss (BCE + KL)", "Test reconstruction (BCE)", "Test KL")):
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
