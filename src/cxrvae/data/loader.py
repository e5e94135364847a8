"""Load chest X-ray sets (an npz or npy of any common layout, a folder of image or DICOM files,
the packaged sample, a public set by name) into an :class:`~cxrvae.data.xray.XrayData`:
checks, resizing, min-max normalisation, labels and patient groups.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .catalog import (
    DATASETS,
    SAMPLE,
    SAMPLE_CREDIT,
    fetch,
    nearest_file_size,
    parse_dataset,
    sample_path,
)
from .folders import is_image_file, read_file, read_folder
from .npz import ID_KEYS, LABEL_KEYS, read_npz
from .pixels import RawImages, resize_image, storage_dtype
from .split import patient_groups
from .xray import XrayData

MIN_IMAGES = 10  # fewer cannot give a train and a test set of a few images each
MAX_CLASSES = 50  # a per-image array with more distinct values is not taken as class labels
FLOAT32_MAX = float(np.finfo(np.float32).max)  # float images are kept as float32


def _resize(images: np.ndarray, size: int, notes: list[str]) -> np.ndarray:
    """Antialiased bicubic resize of every image to size x size (aspect ratio not kept)."""
    h, w = images.shape[1:]
    dtype = storage_dtype(images.dtype)
    if (h, w) == (size, size):
        return images if images.dtype == dtype else images.astype(dtype)
    how = "down" if h * w > size * size else "up"
    notes.append(
        f"resized {h}x{w} -> {size}x{size} (antialiased bicubic, {how}sampling"
        + (", aspect ratio not kept" if h != w else "")
        + ")"
    )
    out = np.empty((len(images), size, size), dtype=dtype)
    for i in range(len(images)):
        out[i] = resize_image(images[i], size)
    return out


def _labels_from(per_image: dict, label_names, notes: list[str]):
    """Choose the class labels among the per-image arrays; return (labels, names, ids, extras)."""
    ids = next((per_image.pop(k).astype(str) for k in ID_KEYS if k in per_image), None)
    key = next((k for k in LABEL_KEYS if k in per_image), None)
    if key is None:  # otherwise the first integer or text array with few distinct values
        key = next(
            (
                k
                for k, a in per_image.items()
                if a.dtype.kind in "biuUS" and len(np.unique(a)) <= MAX_CLASSES
            ),
            None,
        )
    if key is None:
        return None, None, ids, per_image
    raw = per_image.pop(key)
    if raw.dtype.kind in "US":
        names, labels = np.unique(raw.astype(str), return_inverse=True)
        return labels.astype(np.int64), [str(s) for s in names], ids, per_image
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            notes.append(f"array {key!r} is not integer-valued and is not used as labels")
            return None, None, ids, {**per_image, key: raw}
    values = np.unique(raw)
    if label_names is not None and values.min() >= 0 and values.max() < len(label_names):
        return raw.astype(np.int64), [str(s) for s in label_names], ids, per_image
    # Arbitrary class values: re-index 0..C-1, named by their values.
    labels = np.searchsorted(values, raw).astype(np.int64)
    return labels, [str(v.item()) for v in values], ids, per_image


def _normalization(images: np.ndarray, mode: str, path: Path):
    """Per-image offset and scale for min-max normalisation (global or per image), and the
    global (min, max) (None per image)."""
    n = len(images)
    # Per-image minima and maxima, computed image by image (no float copy).
    lo = np.array([im.min() for im in images], dtype=np.float64)
    hi = np.array([im.max() for im in images], dtype=np.float64)
    if mode == "global":
        if hi.max() == lo.min():
            raise DataError(
                f"{path}: every pixel of every image equals {lo.min():g}; "
                "min-max normalisation needs at least two values"
            )
        offset, scale = np.full(n, lo.min()), np.full(n, 1.0 / (hi.max() - lo.min()))
        return offset, scale, (float(lo.min()), float(hi.max()))
    span = hi - lo
    # A constant image has nothing to stretch: it maps to 0 (counted in the summary).
    scale = np.divide(1.0, span, out=np.zeros(n), where=span > 0)
    return lo, scale, None


def load_data(source, cfg: DataConfig) -> XrayData:
    """Load ``source`` with the image size, normalisation, checks and layout of ``cfg``."""
    return load(source, cfg.image_size, cfg.normalize, cfg.drop_invalid, cfg.layout)


def load(
    source,
    image_size: int = 64,
    normalize: str = "global",
    drop_invalid: bool = False,
    layout: str = "auto",
) -> XrayData:
    """Load chest X-rays from a file, a folder, the packaged sample or a public set's name.

    Parameters
    ----------
    source : str or Path
        An ``.npz``/``.npy`` file (see :func:`load_npz`); a folder of PNG/JPEG/TIFF/BMP or
        DICOM files, or one such file (see :func:`load_folder`); ``sample``, the 480 chest
        X-rays that cxrvae ships; or ``pneumoniamnist`` / ``chestmnist``, optionally with a size
        (``pneumoniamnist:128``), downloaded once and cached.
    image_size, normalize, drop_invalid, layout
        As in :func:`load_npz`.

    Raises
    ------
    DataError
        With a one-line message naming the file and the problem.
    """
    path = Path(source)
    if not path.exists():
        if str(source) == SAMPLE:
            data = load_npz(sample_path(), image_size, normalize, drop_invalid)
            data.source = SAMPLE
            data.notes.insert(0, SAMPLE_CREDIT)
            return data
        named = parse_dataset(str(source))
        if named is not None:
            ds, size = named
            size = size or nearest_file_size(ds, image_size)
            data = load_npz(fetch(ds, size), image_size, normalize, drop_invalid, ds.label_names)
            data.source = f"{ds.name}:{size}"
            return data
        raise DataError(
            f"{source}: no such file or folder, the packaged '{SAMPLE}' or a public set "
            f"({', '.join(DATASETS)})"
        )
    if path.is_dir() or is_image_file(path):
        return load_folder(path, image_size, normalize, drop_invalid)
    return load_npz(path, image_size, normalize, drop_invalid, layout=layout)


def load_folder(
    folder, image_size: int = 64, normalize: str = "global", drop_invalid: bool = False
) -> XrayData:
    """Load every PNG/JPEG/TIFF/BMP/DICOM file under ``folder`` (searched recursively), or the
    one image or DICOM file that ``folder`` names.

    Labels are the immediate subfolder names (e.g. ``NORMAL/``, ``PNEUMONIA/``), ids the
    relative paths. 16-bit images stay uint16 until normalisation; DICOM pixels go through the
    modality and VOI LUTs, and MONOCHROME1 is inverted so bone is bright.
    """
    folder = Path(folder)
    raw = (
        read_folder(folder, image_size, drop_invalid)
        if folder.is_dir()
        else read_file(folder, image_size)
    )
    return _build(folder, raw, image_size, normalize, drop_invalid)


def load_npz(
    path,
    image_size: int = 64,
    normalize: str = "global",
    drop_invalid: bool = False,
    label_names=None,
    layout: str = "auto",
) -> XrayData:
    """Load an npz (or npy) of chest X-rays, whatever its layout.

    Parameters
    ----------
    path : str or Path
        ``.npz`` (or ``.npy``) file. Read with ``allow_pickle=False``.
    image_size : int
        Side of the square images returned; other sizes are resized (antialiased).
    normalize : {"global", "per-image"}
        Min-max over the whole set (default) or over each image.
    drop_invalid : bool
        Drop images holding NaN or infinite values (and their labels) instead of refusing.
    label_names : sequence of str, optional
        Class names when the file holds label indices but no ``label_names`` array.
    layout : str
        How the arrays hold the images: "auto" (found, or an error naming the readings when
        two are plausible), or one of :data:`cxrvae.layouts.LAYOUTS`.

    Raises
    ------
    DataError
        With a one-line message naming the file and the problem.
    """
    path = Path(path)
    raw = read_npz(path, label_names, layout)
    return _build(path, raw, image_size, normalize, drop_invalid)


def require_trainable(data: XrayData, source) -> None:
    """Refuse a set too small to train and test on (fewer than ``MIN_IMAGES`` images)."""
    if len(data) < MIN_IMAGES:
        raise DataError(
            f"{source}: {len(data)} usable images; training needs at least {MIN_IMAGES} "
            "(inspect and export take any number)"
        )


def _drop_non_finite(path: Path, raw: RawImages, drop_invalid: bool) -> RawImages:
    """Float images holding NaN, infinity or values that float32 (how float images are kept)
    cannot hold: refused, or left out with ``drop_invalid``."""
    if raw.images.dtype.kind != "f":
        return raw
    nonfinite = np.array([not np.isfinite(im).all() for im in raw.images])
    huge = np.zeros(len(nonfinite), bool)
    if raw.images.dtype.itemsize > 4:  # float64 values that float32 turns into infinities
        huge = np.array([bool(np.any(np.abs(im) > FLOAT32_MAX)) for im in raw.images])
    bad = nonfinite | huge
    if not bad.any():
        return raw
    beyond = f"values beyond float32's range (±{FLOAT32_MAX:.1e})"
    what = "NaN or infinite values" if not huge.any() else beyond
    if huge.any() and nonfinite.any():
        what = f"NaN or infinite values, or {beyond}"
    if not drop_invalid:
        raise DataError(
            f"{path}: {int(bad.sum())} of {len(bad)} images contain {what}; fix them or pass "
            "--drop-invalid to leave them out"
        )
    keep = np.flatnonzero(~bad)
    if not len(keep):
        raise DataError(f"{path}: every image contains {what}")
    raw.notes.append(f"dropped {int(bad.sum())} images containing {what}")
    return dataclasses.replace(
        raw,
        images=raw.images[keep],
        per_image={k: v[keep] for k, v in raw.per_image.items()},
        source_split=None if raw.source_split is None else raw.source_split[keep],
        groups=None if raw.groups is None else raw.groups[keep],
    )


def _build(path: Path, raw: RawImages, image_size: int, normalize: str, drop_invalid: bool):
    """Checks, resizing, normalisation and labels shared by every source."""
    raw = _drop_non_finite(path, raw, drop_invalid)
    notes = raw.notes
    images = _resize(raw.images, image_size, notes)
    offset, scale, pixel_range = _normalization(images, normalize, path)
    labels, names, ids, extras = _labels_from(dict(raw.per_image), raw.label_names, notes)
    data = XrayData(
        images=images,
        offset=offset,
        scale=scale,
        source=path.name,
        reading=raw.reading,
        labels=labels,
        label_names=names,
        ids=ids,
        groups=raw.groups if raw.groups is not None else patient_groups(ids),
        extras=extras,
        source_split=raw.source_split,
        native_shape=tuple(raw.native_shape),
        source_dtype=raw.source_dtype,
        normalize=normalize,
        notes=notes,
        pixel_range=pixel_range,
    )
    if data.groups is not None:
        where = "in the DICOM headers" if raw.groups is not None else "in the ids"
        notes.append(
            f"{len(np.unique(data.groups))} patients recognised {where}; each "
            "patient's images stay on one side of the split"
        )
    return data
