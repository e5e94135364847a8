"""What every reader shares: the raw images it hands on, integer pixels kept in their type,
floats as float32, colour as BT.601 luminance, and antialiased resizing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        # float(2**63 - 1) is 2**63, one past int64's range: clip at the float below it (in
        # float64: float32 rounds that back up to 2**63)
        hi = float(info.max)
        if int(hi) > info.max:
            hi = float(np.nextafter(hi, 0.0))
        return np.clip(np.rint(np.asarray(a, np.float64)), info.min, hi).astype(dtype)
    with np.errstate(over="ignore"):  # beyond float32: infinite, which the loader refuses
        return a.astype(dtype)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bicubic resize of one 2-D image to size x size, keeping its storage type."""
    dtype = storage_dtype(image.dtype)
    if image.shape == (size, size):
        return image.astype(dtype, copy=False)
    # PIL's "F" mode resizes in float32; its filters widen when shrinking (antialiasing).
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    return cast(np.asarray(img.resize((size, size), Image.Resampling.BICUBIC)), dtype)


@dataclass
class RawImages:
    """Images as a reader found them, before resizing, normalisation and labels.

    Attributes
    ----------
    images : ndarray (N, H, W)
        Grayscale, in the storage type (see :func:`storage_dtype`).
    per_image : dict of str -> ndarray (N,)
        Arrays with one value per image: ``labels``, ``ids`` and any others, by name.
    source_split : ndarray (N,) str or None
        The source's own train/val/test split.
    label_names : sequence of str or None
        Class names for integer labels.
    groups : ndarray (N,) str or None
        A patient key per image when the files say it (hashed DICOM PatientID).
    reading : str
        How the source was read as images, and why.
    native_shape, source_dtype
        One image's shape and the dtype as stored ((), "mixed" when they vary).
    notes : list of str
        What reading did, for the user and the report.
    """

    images: np.ndarray
    per_image: dict
    reading: str
    native_shape: tuple
    source_dtype: str
    source_split: np.ndarray | None = None
    label_names: object = None
    groups: np.ndarray | None = None
    notes: list = field(default_factory=list)
