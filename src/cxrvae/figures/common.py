"""What every figure shares: fixed category colours, how an X-ray is drawn alone and as a
grid of tiles on one axes, and saving a figure (the one function here that writes a file).

Images are (N, H, W) float arrays in [0, 1], shown in grayscale with bone bright.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

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
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)


def show_image(ax, img, title=None, fontsize=8):
    """Draw one image (H, W) in [0, 1] on ``ax`` in grayscale, bone bright, without ticks."""
    ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=fontsize)


_GRAY = plt.get_cmap("gray").with_extremes(bad="white")  # blank tiles and gaps are white


def draw_tiles(
    ax,
    images,
    ncols: int,
    titles=None,
    row_labels=None,
    edgecolors=None,
    row_colors=None,
    fontsize: float = 8,
) -> None:
    """Images (N, H, W) in [0, 1] as a grid of framed tiles on one axes, row by row.

    An entry of ``images`` that is None leaves its tile blank. ``titles`` (N,) go above the
    tiles, ``row_labels`` left of each row (in ``row_colors``); ``edgecolors`` (N,) colour the
    frames (thick), else they are thin and grey. One image on one axes draws and saves several
    times faster than an axes per image, which is most of what a grid costs.
    """
    h, w = np.shape(next(im for im in images if im is not None))
    nrows = -(-len(images) // ncols)
    lines = max((str(t).count("\n") + 1 for t in titles or () if t), default=0)
    gap = max(1, round(0.08 * w))
    head = round(0.22 * h * lines)  # room for the titles above each row
    pitch_y, pitch_x = head + h + gap, w + gap
    corners = {i: (i // ncols * pitch_y + head, i % ncols * pitch_x) for i in range(len(images))}
    canvas = np.full((nrows * pitch_y - gap, ncols * pitch_x - gap), np.nan, np.float32)
    shown = [i for i, img in enumerate(images) if img is not None]
    for i in shown:
        y, x = corners[i]
        canvas[y : y + h, x : x + w] = images[i]
    ax.imshow(canvas, cmap=_GRAY, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    thick = edgecolors is not None
    for i in shown:
        y, x = (v - 0.5 for v in corners[i])  # pixel centres are integers, edges at -0.5
        edge = edgecolors[i] if thick else "#555555"
        ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=edge, lw=2.5 if thick else 0.6))
        if titles is not None and titles[i]:
            ax.text(x + w / 2, y - gap / 2, titles[i], ha="center", va="bottom", fontsize=fontsize)
    for r, label in enumerate(row_labels or ()):
        colour = row_colors[r] if row_colors is not None else "black"
        y = r * pitch_y + head + h / 2
        ax.text(-gap, y, label, ha="right", va="center", fontsize=fontsize + 1, color=colour)


def plot_image_grid(images, titles=None, ncols: int = 8, title: str = "") -> Figure:
    """Images (N, H, W) in a grid, with optional per-image titles (N,)."""
    nrows = int(np.ceil(len(images) / ncols))
    fig, ax = plt.subplots(figsize=(1.5 * ncols, 1.6 * nrows + 0.4))
    draw_tiles(ax, list(images), ncols, titles)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
