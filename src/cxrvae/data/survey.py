"""The data step of a study: measure how the images differ and draw the exploration figures.

Everything is computed from normalised pixels, streamed in chunks, so a large set is never held
as floats: exposure, contrast and the other :mod:`cxrvae.data.features` with their spread and, with
labels, how the labels differ on them; dark edges; the most atypical images; and pixel-identical
and near-identical images, with how many pairs straddle the train/test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from sklearn.decomposition import PCA

from ..figures.common import plot_image_grid, save_figure
from ..figures.data import (
    plot_brightness_contrast,
    plot_duplicate_pairs,
    plot_effect_sizes,
    plot_feature_histograms,
    plot_intensity_histogram,
    plot_mean_std,
    plot_typical_atypical,
)
from ..outputs import FIGURES
from ..results import Duplicates, Exploration, FeatureSpread
from ..seeding import derive_seed
from . import features as ft
from .xray import XrayData

GRID_SIZE = 32  # images in the grid figure
N_TYPICAL = 8  # images in each row of the typical / atypical figure
CHUNK = 512  # images normalised at a time
NEAR_SIZE = 16  # px: near-duplicates are compared on images shrunk to this
NEAR_RMS = (
    0.02  # RMS difference (intensity range 0-1) at or below which two images are near-identical
)
NEAR_MAX = 20_000  # larger sets: near-duplicates are looked for in a seeded subset this large
N_PAIRS_SHOWN = 6
POSITIONING = ("shift_x", "shift_y", "asymmetry", "dark_border")


@dataclass
class ImageStats:
    """What the exploration figures show; every array is computed from normalised pixels.

    Attributes
    ----------
    mean, std : ndarray (H, W) float32
        Per-pixel mean and standard deviation over the set.
    hist_edges : ndarray (B + 1,), hist_counts : ndarray (B,)
        Histogram of all pixel values in [0, 1].
    features : dict of str -> ndarray (N,)
        :func:`cxrvae.data.features.image_features` of every image.
    edges : dict of str -> ndarray (N,)
        Mean of each edge strip (left, right, top, bottom) of every image.
    small : ndarray (N, 16 * 16) float32
        The images shrunk to 16 x 16, for near-duplicates.
    atypicality : ndarray (N,)
        Distance of each image from the mean in pixel-PCA space.
    n_components : int
        PCA components used for ``atypicality``.
    """

    mean: np.ndarray
    std: np.ndarray
    hist_edges: np.ndarray
    hist_counts: np.ndarray
    features: dict
    edges: dict
    small: np.ndarray
    atypicality: np.ndarray
    n_components: int

    @property
    def brightness(self) -> np.ndarray:
        return self.features["exposure"]

    @property
    def contrast(self) -> np.ndarray:
        return self.features["contrast"]


def _shrink(x: np.ndarray, size: int) -> np.ndarray:
    """Images (B, H, W) in [0, 1] shrunk to (B, size * size) by area averaging."""
    b, h, w = x.shape
    if h % size == 0 and w % size == 0:
        return x.reshape(b, size, h // size, size, w // size).mean((2, 4)).reshape(b, -1)
    return np.stack(
        [
            np.asarray(Image.fromarray(im, mode="F").resize((size, size), Image.Resampling.BOX))
            for im in x.astype(np.float32)
        ]  # fmt: skip
    ).reshape(b, -1)


def image_stats(
    data: XrayData,
    seed: int = 0,
    bins: int = 64,
    chunk: int = CHUNK,
    n_components: int = 20,
    max_fit: int = 2000,
) -> ImageStats:
    """Describe how the images differ, streaming over chunks of normalised images."""
    n, (h, w) = len(data), data.images.shape[1:]
    s1, s2 = np.zeros((h, w)), np.zeros((h, w))
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.zeros(bins, dtype=np.int64)
    feats, strips, small = [], [], []
    for start in range(0, n, chunk):
        x = data.normalized(np.arange(start, min(n, start + chunk)))  # (B, H, W)
        s1 += x.sum(0)
        s2 += (x.astype(np.float64) ** 2).sum(0)
        counts += np.histogram(x, bins=edges)[0]
        feats.append(ft.image_features(x))
        strips.append(ft.edge_strips(x))
        small.append(_shrink(x, NEAR_SIZE).astype(np.float32))
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
        {f: np.concatenate([c[f] for c in feats]) for f in ft.NAMES},
        {side: np.concatenate([c[side] for c in strips]) for side in strips[0]},
        np.concatenate(small),
        atyp,
        k,
    )


def near_duplicates(small: np.ndarray, threshold: float = NEAR_RMS, block: int = 2048):
    """Pairs (i, j), i < j, of shrunk images (n, P) whose RMS difference is at most
    ``threshold``, and those differences; by blocks, so memory stays bounded."""
    x = small.astype(np.float64)
    sq = (x**2).sum(1)
    pairs, dists = [], []
    for a in range(0, len(x), block):
        d2 = sq[a : a + block, None] + sq[None] - 2 * x[a : a + block] @ x.T  # (b, n)
        rms = np.sqrt(np.maximum(d2, 0) / x.shape[1])
        i, j = np.nonzero(rms <= threshold)
        i = i + a
        keep = i < j
        pairs.append(np.stack([i[keep], j[keep]], 1))
        dists.append(rms[i[keep] - a, j[keep]])
    return np.concatenate(pairs).reshape(-1, 2), np.concatenate(dists)


def _spreads(stats: ImageStats, data: XrayData) -> tuple[dict, list[str] | None]:
    """Each feature's spread, and Cohen's d between the two most frequent labels."""
    pair = None
    if data.labels is not None and len(np.unique(data.labels)) >= 2:
        a, b = np.argsort(-np.bincount(data.labels), kind="stable")[:2]
        pair = (int(min(a, b)), int(max(a, b)))
    out = {}
    for name, v in stats.features.items():
        p5, med, p95 = np.percentile(v, [5, 50, 95])
        out[name] = FeatureSpread(
            mean=float(v.mean()),
            sd=float(v.std()),
            p5=float(p5),
            median=float(med),
            p95=float(p95),
            effect=None if pair is None else ft.cohens_d(v, data.labels, *pair),
        )
    names = None if pair is None else [data.label_names[pair[0]], data.label_names[pair[1]]]
    return out, names


def _duplicates(stats, data, test_idx, identical, joined, seed) -> tuple:
    """The duplicates' numbers, and the pairs to show (most identical first)."""
    n = len(data)
    compared = np.arange(n)
    if n > NEAR_MAX:
        compared = np.sort(np.random.default_rng(seed).choice(n, NEAR_MAX, replace=False))
    pairs, dists = near_duplicates(stats.small[compared])
    pairs = compared[pairs]
    side = np.zeros(n, dtype=np.int8)
    side[np.asarray(test_idx)] = 1
    straddle = side[pairs[:, 0]] != side[pairs[:, 1]] if len(pairs) else np.zeros(0, bool)
    numbers = Duplicates(
        identical_images=int(sum(len(g) for g in identical)),
        identical_groups=len(identical),
        identical_regrouped=int(joined),
        near_threshold=NEAR_RMS,
        near_compared=int(len(compared)),
        near_pairs=int(len(pairs)),
        near_straddling=int(straddle.sum()),
    )
    order = np.lexsort((dists, ~straddle))  # straddling pairs first, then the closest
    return numbers, pairs[order], dists[order], straddle[order]


def explore_data(
    data: XrayData, out, seed: int, test_idx=(), identical=(), joined: int = 0
) -> Exploration:
    """Write the exploration figures of ``data`` into the run folder ``out``; return the
    numbers they rest on. ``test_idx`` are the test images (pairs of duplicates across the
    split are counted), ``identical`` the groups of pixel-identical images (see
    :func:`cxrvae.data.split.identical_images`), ``joined`` how many of them spanned patients."""
    stats = image_stats(data, seed=derive_seed(seed, "explore"))
    spreads, effect_labels = _spreads(stats, data)
    dup, pairs, dists, straddle = _duplicates(
        stats, data, np.asarray(test_idx, dtype=int), list(identical), joined, seed
    )
    _draw(data, stats, spreads, effect_labels, out, seed, pairs, dists, straddle)
    dark = {side: float(np.mean(v < ft.DARK)) for side, v in stats.edges.items()}
    order = np.argsort(stats.atypicality)[::-1]
    return Exploration(
        features=spreads,
        effect_labels=effect_labels,
        dark_edges=dark,
        dark_any=float(np.mean(np.min(list(stats.edges.values()), axis=0) < ft.DARK)),
        atypical=[float(stats.atypicality[i]) for i in order[:N_TYPICAL]],
        atypical_median=float(np.median(stats.atypicality)),
        pca_components=stats.n_components,
        duplicates=dup,
    )


def _draw(data, stats, spreads, effect_labels, out, seed, pairs, dists, straddle) -> None:
    """The data figures (see :data:`cxrvae.outputs.FIGURES`)."""
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
    save_figure(
        plot_feature_histograms(
            {ft.WORDS[f]: stats.features[f] for f in POSITIONING}, data.labels, data.label_names
        ),
        FIGURES["positioning"].file(out),
    )
    if effect_labels is not None:
        save_figure(
            plot_effect_sizes(
                [ft.WORDS[f] for f in spreads], [s.effect for s in spreads.values()], *effect_labels
            ),
            FIGURES["label_effects"].file(out),
        )
    _draw_extremes(data, stats, out, pairs, dists, straddle)


def _draw_extremes(data, stats, out, pairs, dists, straddle) -> None:
    """The most typical and atypical images, and the near-identical pairs."""
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
    if len(pairs):
        shown = pairs[:N_PAIRS_SHOWN]
        save_figure(
            plot_duplicate_pairs(
                data.normalized(shown[:, 0]),
                data.normalized(shown[:, 1]),
                dists[:N_PAIRS_SHOWN],
                straddle[:N_PAIRS_SHOWN],
                len(pairs),
            ),
            FIGURES["duplicates"].file(out),
        )
