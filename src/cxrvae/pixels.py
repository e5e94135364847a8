"""Pixel types and resizing shared by every reader: integers keep their type, floats become
float32, colour becomes BT.601 luminance, and images are resized with antialiasing.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 weights for colour -> grayscale


def storage_dtype(dtype) -> np.dtype:
    """Integers keep their type; floats are stored as float32."""
    return np.dtype(dtype) if np.dtype(dtype).kind in "biu" else np.dtype(np.float32)


def cast(a: np.ndarray, dtype) -> np.ndarray:
    """Round and clip float values into an integer dtype, or cast to a float dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(a), info.min, info.max).astype(dtype)
    return a.astype(dtype)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bicubic resize of one 2-D image to size x size, keeping its storage type."""
    dtype = storage_dtype(image.dtype)
    if image.shape == (size, size):
        return image.astype(dtype, copy=False)
    # PIL's "F" mode resizes in float32; its filters widen when shrinking (antialiasing).
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    return cast(np.asarray(img.resize((size, size), Image.Resampling.BICUBIC)), dtype)
