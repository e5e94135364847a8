"""Small synthetic "chest X-rays" for tests, demos and the quickstart: two dark lung fields on
a bright body, with a class-dependent blob or ring, from a seeded generator.
"""

from __future__ import annotations

import numpy as np


def synthetic_xrays(n: int = 64, size: int = 32, seed: int = 0, n_classes: int = 2):
    """Small synthetic "chest X-rays" for tests and demos.

    Two dark lung fields on a bright body, plus a class-dependent bright blob (class 1) or
    ring (class 2) inside one lung, with noise.

    Returns
    -------
    images : ndarray (n, size, size) uint8
    labels : ndarray (n,) int64, cycling 0..n_classes-1
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)  # (size, size) in [0, 1]
    labels = np.arange(n) % n_classes
    images = np.empty((n, size, size), dtype=np.uint8)
    for i in range(n):
        body = 0.75 - 0.25 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
        dx, dy, r = rng.normal(0, 0.02, 3)
        for cx in (0.3, 0.7):  # two lung fields
            lung = ((xx - cx - dx) / (0.16 + r)) ** 2 + ((yy - 0.5 - dy) / 0.3) ** 2 < 1
            body = np.where(lung, body - 0.45, body)
        if labels[i] >= 1:
            cx, cy = 0.3 + 0.4 * rng.integers(2), rng.uniform(0.35, 0.65)
            d2 = (xx - cx) ** 2 + (yy - cy) ** 2
            if labels[i] == 1:
                blob = np.exp(-d2 / 0.006)
            else:
                blob = np.exp(-((np.sqrt(d2) - 0.1) ** 2) / 0.0008)
            body = body + 0.5 * blob
        img = body + rng.normal(0, 0.04, (size, size))
        images[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)
