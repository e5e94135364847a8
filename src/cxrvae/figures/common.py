"""What every figure shares: fixed category colours, how an X-ray is drawn, an image grid, and
saving a figure (the one function here that writes a file).

Images are (N, H, W) float arrays in [0, 1], shown in grayscale with bone bright.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..atomic import atomic_write

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


def show_image(ax, img, title=None, fontsize=8):
    """Draw one image (H, W) in [0, 1] on ``ax`` in grayscale, bone bright, without ticks."""
    ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=fontsize)


def plot_image_grid(images, titles=None, ncols: int = 8, title: str = "") -> Figure:
    """Images (N, H, W) in a grid, with optional per-image titles (N,)."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.6 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_image(ax, images[i], None if titles is None else titles[i])
        else:
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
