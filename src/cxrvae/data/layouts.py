"""How the arrays of an npz or npy file read as images: the layout, found or stated, never guessed.

Every plausible reading of the file's arrays is listed; when exactly one remains it is used and
its reason recorded, when several remain the error names them and the ``--layout`` that
chooses. The layouts:

- ``nhw``: one array (N, H, W), a stack of grayscale images;
- ``nhwc`` / ``nchw``: one array (N, H, W, C) / (N, C, H, W), C = 1, 3 or 4;
- ``rows``: one array (N, S*S), each row a flattened S x S image;
- ``keys``: several arrays of one image shape under separate keys (``np.savez(f, *images)``),
  stacked in the file's key order;
- ``image``: one array that is a single image, (H, W), (H, W, C) or (C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import LAYOUTS
from ..errors import DataError
from .pixels import LUMA, cast, storage_dtype

__all__ = ["LAYOUTS", "Reading", "choose", "to_images"]

CHANNELS = (1, 3, 4)
MIN_IMAGE_SIZE = 16  # px: the smallest side taken as an image
MAX_ASPECT = 3.0  # no radiograph is three times wider than tall (or taller than wide)


@dataclass(frozen=True)
class Reading:
    """One way to read images from the arrays ``keys``, and why it was taken."""

    layout: str
    keys: tuple[str, ...]
    shape: tuple  # of one array
    channel_axis: int | None = None  # axis of the channels in one array, when there is one

    def hw(self) -> tuple[int, int]:
        """Height and width of one image."""
        s, axis = self.shape, self.channel_axis
        if self.layout == "rows":
            side = int(round(np.sqrt(s[1])))
            return side, side
        one = s if self.layout in ("keys", "image") else s[1:]  # the shape of one image
        if axis is not None and self.layout not in ("keys", "image"):
            axis -= 1
        if axis is None:
            return one[0], one[1]
        return (one[1], one[2]) if axis == 0 else (one[0], one[1])

    def describe(self) -> str:
        """What this reading makes of the arrays, in words."""
        (h, w), k = self.hw(), self.keys[0]
        if self.layout == "keys":
            names = ", ".join(self.keys) if len(self.keys) <= 4 else f"{k} ... {self.keys[-1]}"
            return (
                f"{len(self.keys)} arrays of shape {self.shape} under separate keys ({names}) "
                f"as one {h}x{w} image each"
            )
        if self.layout == "image":
            return f"array {k!r} of shape {self.shape} as one {h}x{w} image"
        what = "rows" if self.layout == "rows" else "images"
        return f"array {k!r} of shape {self.shape} as {count(self)} {what} of {h}x{w} px"


def _square_side(n: int) -> int | None:
    side = int(round(np.sqrt(n)))
    return side if side * side == n and side >= MIN_IMAGE_SIZE else None


def _image_like(h: int, w: int) -> bool:
    return min(h, w) >= MIN_IMAGE_SIZE and max(h, w) / min(h, w) <= MAX_ASPECT


def single_image_axes(shape: tuple) -> list[int | None]:
    """The ways an array of ``shape`` can be a single image, as its channel axis: None (H, W),
    -1 (H, W, C) or 0 (C, H, W)."""
    out = []
    if len(shape) == 2 and _image_like(*shape):
        out.append(None)
    if len(shape) == 3 and shape[-1] in CHANNELS and _image_like(*shape[:2]):
        out.append(-1)
    if len(shape) == 3 and shape[0] in CHANNELS and _image_like(*shape[1:]):
        out.append(0)
    return out


def stack_readings(key: str, shape: tuple) -> list[Reading]:
    """The ways one array can be a stack of images, or a single image."""
    out = []
    if len(shape) == 2 and _square_side(shape[1]):
        out.append(Reading("rows", (key,), shape))
    if len(shape) == 3 and min(shape[1:]) >= MIN_IMAGE_SIZE:
        out.append(Reading("nhw", (key,), shape))
    if len(shape) == 4 and shape[-1] in CHANNELS and min(shape[1:3]) >= MIN_IMAGE_SIZE:
        out.append(Reading("nhwc", (key,), shape, channel_axis=-1))
    if len(shape) == 4 and shape[1] in CHANNELS and min(shape[2:]) >= MIN_IMAGE_SIZE:
        out.append(Reading("nchw", (key,), shape, channel_axis=1))
    axes = single_image_axes(shape)
    if len(shape) == 3 and shape[0] == 1:  # one image either way: (1, H, W)
        axes = [a for a in axes if a != 0]
    return out + [Reading("image", (key,), shape, channel_axis=a) for a in axes]


def readings(arrays: dict[str, np.ndarray], n_per_image: set[int]) -> list[Reading]:
    """Every plausible reading of ``arrays`` (numeric, at least 2-D), most specific first.

    ``n_per_image`` are the lengths of the 1-D arrays beside them (labels, ids): a reading whose
    image count is one of them is clear, and the others are dropped.
    """
    largest = max(arrays, key=lambda k: (arrays[k].size, k == "images"))
    shape = arrays[largest].shape
    same = tuple(k for k, a in arrays.items() if a.shape == shape)
    axes = single_image_axes(shape)
    if len(same) >= 2 and axes:
        # Several arrays of one image shape: one image each (rows of the largest would leave
        # the others out).
        found = [Reading("keys", same, shape, axes[0])]
    else:
        found = stack_readings(largest, shape)
    counted = [r for r in found if count(r) in n_per_image]
    return counted or found


def count(r: Reading) -> int:
    """How many images a reading gives."""
    if r.layout == "keys":
        return len(r.keys)
    return 1 if r.layout == "image" else r.shape[0]


def choose(path, arrays: dict[str, np.ndarray], n_per_image: set[int], layout: str) -> Reading:
    """The reading of ``arrays`` to use: the only plausible one, or the one ``layout`` names.

    Raises :class:`DataError` naming every plausible reading when there is more than one, or
    when ``layout`` does not fit the arrays.
    """
    if layout != "auto":
        return _stated(path, arrays, layout)
    found = readings(arrays, n_per_image)
    if len(found) == 1:
        return found[0]
    if not found:
        key = max(arrays, key=lambda k: arrays[k].size)
        raise DataError(
            f"{path}: array {key!r} of shape {arrays[key].shape} {_why_not(arrays[key].shape)}"
        )
    options = "; or ".join(f"{r.describe()} (--layout {r.layout})" for r in found)
    raise DataError(f"{path}: the layout is ambiguous: {options}; say which with --layout")


def _why_not(shape: tuple) -> str:
    """Why no layout reads an array of ``shape`` as images."""
    if len(shape) == 3 and min(shape[1:]) < MIN_IMAGE_SIZE:
        return (
            f"holds images of {shape[1]}x{shape[2]} px, smaller than the minimum "
            f"{MIN_IMAGE_SIZE} px"
        )
    return (
        "is not images in any layout cxrvae reads ((N,H,W), (N,H,W,C), (N,C,H,W), rows of "
        f"flattened square images, or one image per key; images at least {MIN_IMAGE_SIZE} px)"
    )


def _stated(path, arrays: dict[str, np.ndarray], layout: str) -> Reading:
    """The reading that ``--layout`` names, if it fits the largest array (or its shape)."""
    largest = max(arrays, key=lambda k: (arrays[k].size, k == "images"))
    shape = arrays[largest].shape
    if layout == "keys":
        same = tuple(k for k, a in arrays.items() if a.shape == shape)
        fits = [Reading("keys", same, shape, axis) for axis in single_image_axes(shape)]
    else:
        fits = [r for r in stack_readings(largest, shape) if r.layout == layout]
    if not fits:
        raise DataError(
            f"{path}: --layout {layout} does not fit array {largest!r} of shape {shape}"
        )
    return fits[0]


def to_images(r: Reading, arrays: dict[str, np.ndarray], notes: list) -> np.ndarray:
    """The images (N, H, W) of a reading, in the arrays' storage type; colour becomes BT.601
    luminance, one image at a time (no float copy of the set)."""
    a = arrays[r.keys[0]]
    if r.layout == "rows":
        side = int(round(np.sqrt(a.shape[1])))
        return a.reshape(len(a), side, side)
    if r.layout in ("keys", "image"):  # one image per array: stacked on a new first axis
        stack = np.stack([arrays[k] for k in r.keys])
        axis = None if r.channel_axis is None else (1 if r.channel_axis == 0 else -1)
        return _gray(stack, axis, notes)
    return _gray(a, r.channel_axis, notes)


def _gray(images: np.ndarray, channel_axis: int | None, notes: list) -> np.ndarray:
    """(N,H,W) as it is; (N,H,W,C) or (N,C,H,W) with ``channel_axis`` -1 or 1 to (N,H,W)."""
    if channel_axis is None:
        return images
    last = channel_axis == -1
    c = images.shape[-1] if last else images.shape[1]
    if c == 1:
        return images[..., 0] if last else images[:, 0]
    notes.append(f"{'RGBA' if c == 4 else 'RGB'} converted to grayscale (BT.601 luminance)")
    shape = images.shape[1:3] if last else images.shape[2:4]
    out = np.empty((len(images), *shape), dtype=storage_dtype(images.dtype))
    for i in range(len(images)):
        rgb = images[i, ..., :3] if last else np.moveaxis(images[i, :3], 0, -1)
        out[i] = cast(rgb.astype(np.float64) @ LUMA, out.dtype)
    return out
