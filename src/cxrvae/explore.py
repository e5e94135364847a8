"""The data step of a study: measure how the images differ and draw the exploration figures.

Everything is computed from normalised pixels, streamed in chunks, so a large set is never held
as floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from .data import XrayData
from .figures import (
    plot_brightness_contrast,
    plot_image_grid,
    plot_intensity_histogram,
    plot_mean_std,
    plot_typical_atypical,
    save_figure,
)
from .layout import FIGURES, figures_in
from .results import Exploration
from .seeding import derive_seed

GRID_SIZE = 32  # images in the grid figure
N_TYPICAL = 8  # images in each row of the typical / atypical figure


@dataclass
class ImageStats:
    """What the exploration figures show; every array is computed from normalised pixels.

    Attributes
    ----------
    mean, std : ndarray (H, W) float32
        Per-pixel mean and standard deviation over the set.
    hist_edges : ndarray (B + 1,), hist_counts : ndarray (B,)
        Histogram of all pixel values in [0, 1].
    brightness, contrast : ndarray (N,)
        Mean and standard deviation of each image.
    atypicality : ndarray (N,)
        Distance of each image from the mean in pixel-PCA space.
    n_components : int
        PCA components used for ``atypicality``.
    """

    mean: np.ndarray
    std: np.ndarray
    hist_edges: np.ndarray
    hist_counts: np.ndarray
    brightness: np.ndarray
    contrast: np.ndarray
    atypicality: np.ndarray
    n_components: int


def image_stats(
    data: XrayData,
    seed: int = 0,
    bins: int = 64,
    chunk: int = 512,
    n_components: int = 20,
    max_fit: int = 2000,
) -> ImageStats:
    """Describe how the images differ, streaming over chunks of normalised images."""
    n, (h, w) = len(data), data.images.shape[1:]
    s1, s2 = np.zeros((h, w)), np.zeros((h, w))
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.zeros(bins, dtype=np.int64)
    brightness, contrast = np.empty(n), np.empty(n)
    for start in range(0, n, chunk):
        x = data.normalized(np.arange(start, min(n, start + chunk)))  # (B, H, W)
        s1 += x.sum(0)
        s2 += (x.astype(np.float64) ** 2).sum(0)
        counts += np.histogram(x, bins=edges)[0]
        brightness[start : start + len(x)] = x.mean((1, 2))
        contrast[start : start + len(x)] = x.std((1, 2))
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))

    k = int(min(n_components, n - 1, h * w))
    fit_idx = np.sort(np.random.default_rng(seed).permutation(n)[:max_fit])
    pca = PCA(n_components=k, random_state=seed).fit(data.normalized(fit_idx).reshape(-1, h * w))
    atyp = np.empty(n)
    for start in range(0, n, chunk):
        x = data.normalized(np.arange(start, min(n, start + chunk))).reshape(-1, h * w)
        atyp[start : start + len(x)] = np.linalg.norm(pca.transform(x), axis=1)
    return ImageStats(
        mean.astype(np.float32),
        std.astype(np.float32),
        edges,
        counts,
        brightness,
        contrast,
        atyp,
        k,
    )


def explore_data(data: XrayData, out, seed: int) -> Exploration:
    """Write the exploration figures of ``data`` into the run folder ``out``; return the
    numbers they rest on."""
    stats = image_stats(data, seed=derive_seed(seed, "explore"))
    rng = np.random.default_rng(derive_seed(seed, "grid"))
    pick = np.sort(rng.choice(len(data), size=min(GRID_SIZE, len(data)), replace=False))
    titles = None if data.labels is None else [data.label_names[k] for k in data.labels[pick]]
    grid = plot_image_grid(
        data.normalized(pick), titles, title=f"{len(pick)} random images of {len(data)}"
    )
    save_figure(grid, FIGURES["grid"].file(out))
    save_figure(plot_mean_std(stats.mean, stats.std), FIGURES["mean_std"].file(out))
    save_figure(
        plot_intensity_histogram(stats.hist_edges, stats.hist_counts),
        FIGURES["intensity_histogram"].file(out),
    )
    save_figure(
        plot_brightness_contrast(stats.brightness, stats.contrast, data.labels, data.label_names),
        FIGURES["brightness_contrast"].file(out),
    )
    order = np.argsort(stats.atypicality)
    typ, atyp = order[:N_TYPICAL], order[::-1][:N_TYPICAL]
    save_figure(
        plot_typical_atypical(
            data.normalized(typ),
            data.normalized(atyp),
            stats.atypicality[typ],
            stats.atypicality[atyp],
        ),
        FIGURES["typical_atypical"].file(out),
    )
    return Exploration(
        figures={Path(f.path).name: f.caption for f in figures_in("data").values()},
        brightness_mean=float(stats.brightness.mean()),
        contrast_mean=float(stats.contrast.mean()),
        pca_components=stats.n_components,
    )
