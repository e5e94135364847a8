"""Measurable properties of chest radiographs, named as a reader of chest X-rays would name them.

Every feature is a number per image computed from the normalised pixels of a frontal film
(images (n, H, W) in [0, 1]); the regions are fixed fractions of the frame (a film roughly
centred on the chest), so they are approximate. The data step describes the set with them, the
analysis measures them along interpolation paths and per cluster.
"""

from __future__ import annotations

import numpy as np

# Regions as fractions of the frame (rows, columns): two lung fields and the central column
# (spine, heart and mediastinum) between them.
LUNG_ROWS = (0.25, 0.70)
LEFT_LUNG_COLS, RIGHT_LUNG_COLS = (0.12, 0.42), (0.58, 0.88)
CENTRE_COLS = (0.42, 0.58)
BORDER = 1 / 16  # width of the edge strips, as a fraction of the frame
DARK = 0.15  # normalised intensity below which an edge strip counts as dark (air, collimation)

WORDS = {
    "exposure": "exposure (overall brightness)",
    "contrast": "contrast",
    "sharpness": "sharpness of edges (ribs, vessels)",
    "lung_opacity": "lung-field brightness (opacity)",
    "mediastinum": "central brightness (spine, heart and mediastinum against the lungs)",
    "asymmetry": "left-right asymmetry (rotation, one-sided opacity)",
    "shift_x": "left-right position of the body in the frame",
    "shift_y": "up-down position of the body in the frame",
    "dark_border": "dark edges (air or collimation outside the body)",
}
NAMES = tuple(WORDS)


def words(feature: str) -> str:
    """A feature's description, as tables and figures say it (see :data:`WORDS`)."""
    return WORDS.get(feature, feature)


def short(feature: str) -> str:
    """A feature's name without its explanation in brackets (``lung-field brightness``), as
    sentences, narrow table cells and figure legends say it."""
    return words(feature).split(" (")[0]


def _box(images: np.ndarray, rows, cols) -> np.ndarray:
    h, w = images.shape[1:]
    r0, r1 = int(rows[0] * h), max(int(rows[0] * h) + 1, int(rows[1] * h))
    c0, c1 = int(cols[0] * w), max(int(cols[0] * w) + 1, int(cols[1] * w))
    return images[:, r0:r1, c0:c1].mean((1, 2))


def image_features(images: np.ndarray) -> dict[str, np.ndarray]:
    """Each feature of :data:`WORDS` for images (n, H, W) in [0, 1], as an array (n,).

    exposure: mean intensity; contrast: standard deviation; sharpness: mean squared gradient;
    lung_opacity: mean of the two lung fields minus the image mean; mediastinum: mean of the
    central column minus the lung fields; asymmetry: mean absolute difference between the image
    and its mirror image; shift_x, shift_y: the intensity centroid's offset from the frame's
    centre, as a fraction of the width or height (positive: right, down); dark_border: the share
    of the four edge strips darker than ``DARK``.
    """
    x = np.asarray(images, dtype=np.float64)
    h, w = x.shape[1:]
    gy, gx = np.gradient(x, axis=(1, 2))
    lungs = (_box(x, LUNG_ROWS, LEFT_LUNG_COLS) + _box(x, LUNG_ROWS, RIGHT_LUNG_COLS)) / 2
    total = np.maximum(x.sum((1, 2)), 1e-12)
    yy, xx = np.mgrid[0:h, 0:w]
    strips = _strips(x)
    return {
        "exposure": x.mean((1, 2)),
        "contrast": x.std((1, 2)),
        "sharpness": (gx**2 + gy**2).mean((1, 2)),
        "lung_opacity": lungs - x.mean((1, 2)),
        "mediastinum": _box(x, LUNG_ROWS, CENTRE_COLS) - lungs,
        "asymmetry": np.abs(x - x[:, :, ::-1]).mean((1, 2)),
        "shift_x": (x * xx).sum((1, 2)) / total / max(w - 1, 1) - 0.5,
        "shift_y": (x * yy).sum((1, 2)) / total / max(h - 1, 1) - 0.5,
        "dark_border": np.mean([(s < DARK).mean((1, 2)) for s in strips.values()], axis=0),
    }


def _strips(x: np.ndarray) -> dict[str, np.ndarray]:
    b = max(1, int(round(BORDER * x.shape[2])))
    return {"left": x[:, :, :b], "right": x[:, :, -b:], "top": x[:, :b], "bottom": x[:, -b:]}


def edge_strips(images: np.ndarray) -> dict[str, np.ndarray]:
    """Mean intensity of each edge strip (left, right, top, bottom) per image (n,)."""
    return {k: v.mean((1, 2)) for k, v in _strips(np.asarray(images, dtype=np.float64)).items()}


def cohens_d(values: np.ndarray, labels: np.ndarray, a: int, b: int) -> float:
    """Standardised difference of means of ``values`` between label ``b`` and label ``a``
    (pooled standard deviation); 0 when both groups are constant."""
    va, vb = values[labels == a], values[labels == b]
    if len(va) < 2 or len(vb) < 2:
        return 0.0
    pooled = np.sqrt(((len(va) - 1) * va.var(ddof=1) + (len(vb) - 1) * vb.var(ddof=1))
                     / (len(va) + len(vb) - 2))  # fmt: skip
    return float((vb.mean() - va.mean()) / pooled) if pooled > 0 else 0.0
