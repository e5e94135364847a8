"""The data step of a study: measure how the images differ and draw the exploration figures.

Everything is computed from normalised pixels, streamed in chunks, so a large set is never held
as floats: exposure, contrast and the other :mod:`cxrvae.data.features` with their spread and,
with labels, how the labels differ on them; dark edges; the most atypical images; and
near-identical images, with how many pairs straddle the train/test split. A set larger than
``SURVEY_MAX`` is surveyed on a seeded sample that large, so the step costs what the sample
costs; the data notes say so (pixel-identical images are found in the whole set, see
:func:`cxrvae.data.split.identical_images`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from sklearn.decomposition import PCA
from tqdm import tqdm

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
from .xray import XrayData, label_word

GRID_SIZE = 32  # images in the grid figure
N_TYPICAL = 8  # images in each row of the typical / atypical figure
SURVEY_MAX = 10_000  # larger sets: the survey measures a seeded sample this large
CHUNK = 512  # images normalised at a time
FEATURE_BATCH = 32  # images measured at a time: small temporaries stay in cache (5-8x faster)
NEAR_SIZE = 16  # px: near-duplicates are compared on images shrunk to this
NEAR_RMS = (
    0.02  # RMS difference (intensity range 0-1) at or below which two images are near-identical
)
N_PAIRS_SHOWN = 6
POSITIONING = ("shift_x", "shift_y", "asymmetry", "dark_border")


@dataclass
class ImageStats:
    """What the exploration figures show; every array is computed from normalised pixels.

    Attributes
    ----------
    idx : ndarray (N,) int
        The surveyed images: every image, or a seeded sample of ``SURVEY_MAX`` of them.
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

    idx: np.ndarray
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


def survey_indices(n: int, seed: int) -> np.ndarray:
    """The images the survey measures: all ``n``, or a seeded sample of ``SURVEY_MAX``."""
    if n <= SURVEY_MAX:
        return np.arange(n)
    rng = np.random.default_rng(derive_seed(seed, "survey"))
    return np.sort(rng.choice(n, SURVEY_MAX, replace=False))


def survey_note(n: int) -> str | None:
    """The data note that says a set is surveyed on a sample (None when every image is)."""
    if n <= SURVEY_MAX:
        return None
    return (
        f"how the images differ (features, data figures, near-identical pairs) is measured on "
        f"a seeded sample of {SURVEY_MAX:,} of the {n:,} images"
    )


def image_stats(
    data: XrayData,
    idx=None,
    seed: int = 0,
    bins: int = 64,
    n_components: int = 20,
    max_fit: int = 2000,
) -> ImageStats:
    """Describe how the images ``idx`` (default: all) differ, streaming over chunks of
    normalised images; shows progress on a terminal when it takes more than a few seconds."""
    idx = np.arange(len(data)) if idx is None else np.asarray(idx)
    n, (h, w) = len(idx), data.images.shape[1:]
    s1, s2 = np.zeros((h, w)), np.zeros((h, w))
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.zeros(bins, dtype=np.int64)
    feats, strips, small = [], [], []
    bar = tqdm(total=2 * n, desc="data survey", unit="image", delay=3, leave=False, disable=None)
    for start in range(0, n, CHUNK):
        x = data.normalized(idx[start : start + CHUNK])  # (B, H, W)
        s1 += x.sum(0)
        s2 += (x.astype(np.float64) ** 2).sum(0)
        counts += np.histogram(x, bins=edges)[0]
        for b in range(0, len(x), FEATURE_BATCH):  # per image: the batch size changes nothing
            feats.append(ft.image_features(x[b : b + FEATURE_BATCH]))
        strips.append(ft.edge_strips(x))
        small.append(_shrink(x, NEAR_SIZE).astype(np.float32))
        bar.update(len(x))
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
    k = int(min(n_components, n - 1, h * w))
    fit_idx = idx[np.sort(np.random.default_rng(seed).permutation(n)[:max_fit])]
    pca = PCA(n_components=k, random_state=seed).fit(data.normalized(fit_idx).reshape(-1, h * w))
    atyp = np.empty(n)
    for start in range(0, n, CHUNK):
        x = data.normalized(idx[start : start + CHUNK]).reshape(-1, h * w)
        atyp[start : start + len(x)] = np.linalg.norm(pca.transform(x), axis=1)
        bar.update(len(x))
    bar.close()
    return ImageStats(
        idx,
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


def near_duplicates(small: np.ndarray, threshold: float = NEAR_RMS, block: int = 512):
    """Pairs (i, j), i < j, of shrunk images (n, P) whose RMS difference is at most
    ``threshold``, and those differences; by blocks, so memory stays bounded (two (block, n)
    matrices at a time)."""
    x = small.astype(np.float64)
    sq = (x**2).sum(1)
    p = x.shape[1]
    near = (threshold * (1 + 1e-6)) ** 2 * p  # candidates; the exact test follows
    pairs, dists = [], []
    for a in range(0, len(x), block):
        gram = x[a : a + block] @ x.T  # (b, n)
        gram *= 2  # exact: as sq_i + sq_j - 2 x_i.x_j, without more temporaries
        d2 = sq[a : a + block, None] + sq[None]
        d2 -= gram
        i, j = np.nonzero(d2 <= near)
        keep = i + a < j
        i, j = i[keep], j[keep]
        rms = np.sqrt(np.maximum(d2[i, j], 0) / p)
        ok = rms <= threshold
        pairs.append(np.stack([i[ok] + a, j[ok]], 1))
        dists.append(rms[ok])
    return np.concatenate(pairs).reshape(-1, 2), np.concatenate(dists)


def _labels(data: XrayData, stats: ImageStats) -> np.ndarray | None:
    return None if data.labels is None else data.labels[stats.idx]


def _spreads(stats: ImageStats, data: XrayData) -> tuple[dict, list[str] | None]:
    """Each feature's spread, and Cohen's d between the two most frequent labels."""
    pair, labels = None, _labels(data, stats)
    if labels is not None and len(np.unique(labels)) >= 2:
        a, b = np.argsort(-np.bincount(labels), kind="stable")[:2]
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
            effect=None if pair is None else ft.cohens_d(v, labels, *pair),
        )
    names = None if pair is None else [data.label_names[pair[0]], data.label_names[pair[1]]]
    return out, names


def _duplicates(stats, data, test_idx, identical, joined) -> tuple:
    """The duplicates' numbers, and the pairs to show (most identical first)."""
    compared = stats.idx
    pairs, dists = near_duplicates(stats.small)
    pairs = compared[pairs]
    side = np.zeros(len(data), dtype=np.int8)
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
    idx = survey_indices(len(data), seed)
    stats = image_stats(data, idx, seed=derive_seed(seed, "explore"))
    spreads, effect_labels = _spreads(stats, data)
    dup, pairs, dists, straddle = _duplicates(
        stats, data, np.asarray(test_idx, dtype=int), list(identical), joined
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
    names = None if data.labels is None else [label_word(n) for n in data.label_names]
    titles = None if names is None else [names[k] for k in data.labels[pick]]
    grid = plot_image_grid(
        data.normalized(pick), titles, title=f"{len(pick)} random images of {len(data)}"
    )
    save_figure(grid, FIGURES["grid"].file(out))
    save_figure(plot_mean_std(stats.mean, stats.std), FIGURES["mean_std"].file(out))
    labels = _labels(data, stats)
    save_figure(
        plot_intensity_histogram(stats.hist_edges, stats.hist_counts),
        FIGURES["intensity_histogram"].file(out),
    )
    save_figure(
        plot_brightness_contrast(stats.brightness, stats.contrast, labels, names),
        FIGURES["brightness_contrast"].file(out),
    )
    save_figure(
        plot_feature_histograms(
            {ft.words(f): stats.features[f] for f in POSITIONING}, labels, names
        ),
        FIGURES["positioning"].file(out),
    )
    if effect_labels is not None:
        save_figure(
            plot_effect_sizes(
                [ft.words(f) for f in spreads],
                [s.effect for s in spreads.values()],
                *map(label_word, effect_labels),
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
            data.normalized(stats.idx[typ]),
            data.normalized(stats.idx[atyp]),
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
