"""Read an ``.npz`` or ``.npy`` file of chest X-rays, whatever its layout, into a stack of
grayscale images and the per-image arrays beside them. Nothing is unpickled.

:mod:`cxrvae.data` turns the result into an ``XrayData`` (resizing, normalisation, labels).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError
from .pixels import LUMA, cast, storage_dtype

MEDMNIST_SPLITS = ("train", "val", "test")
LABEL_KEYS = ("labels", "label", "y", "targets", "target", "classes")
ID_KEYS = ("ids", "id", "filenames", "filename", "files", "names", "paths")
SPLIT_KEYS = ("source_split", "split", "splits")
MIN_IMAGE_SIZE = 16


@dataclass
class NpzImages:
    """What an npz holds, read: grayscale images and the arrays with one value per image.

    Attributes
    ----------
    images : ndarray (N, H, W)
        In the file's numeric type (booleans as uint8; RGB converted to BT.601 luminance).
    per_image : dict of str -> ndarray (N,)
        1-D arrays with one entry per image (labels, ids, extras), by name.
    source_split : ndarray (N,) str or None
        MedMNIST's train/val/test, or a ``source_split`` array.
    label_names : ndarray or None
        A ``label_names`` array, when the file has one.
    native_shape, source_dtype
        Shape of one image and dtype as stored in the file.
    notes : list of str
        What reading did (pooling, picking an array, channel conversion).
    """

    images: np.ndarray
    per_image: dict
    source_split: np.ndarray | None
    label_names: np.ndarray | None
    native_shape: tuple
    source_dtype: str
    notes: list = field(default_factory=list)


def read_npz(path, label_names=None) -> NpzImages:
    """Read the images of an npz (or npy) file and the arrays that belong to them.

    ``label_names`` names the classes when the file holds label indices but no
    ``label_names`` array. Raises :class:`DataError` with a one-line message.
    """
    path = Path(path)
    arrays = _open_npz(path)
    if not arrays:
        raise DataError(f"{path}: the npz holds no arrays")
    if label_names is not None and "label_names" not in arrays:
        arrays["label_names"] = np.asarray(label_names)
    notes: list[str] = []
    images, per_image, source_split, names = _pick_arrays(path, arrays, notes)
    if images.size == 0 or len(images) == 0:
        raise DataError(f"{path}: the image array {images.shape} is empty")
    if images.dtype.kind not in "biuf":
        raise DataError(f"{path}: images have dtype {images.dtype}; expected numbers")
    native_shape, source_dtype = tuple(images.shape[1:]), str(images.dtype)
    if images.dtype.kind == "b":
        images = images.view(np.uint8)  # False/True -> 0/1
    images = _channels_to_gray(path, images, notes)
    if min(images.shape[1:]) < MIN_IMAGE_SIZE:
        raise DataError(
            f"{path}: images of {images.shape[1]}x{images.shape[2]} px are smaller "
            f"than the minimum {MIN_IMAGE_SIZE} px"
        )
    return NpzImages(images, per_image, source_split, names, native_shape, source_dtype, notes)


def _open_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an npz (or npy) file without unpickling anything."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give an .npz file")
    try:
        if path.suffix.lower() == ".npy":
            # Memory-mapped (copy-on-write, never written): pages are read as batches need them.
            return {"images": np.load(path, mmap_mode="c", allow_pickle=False)}
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                starts_like_zip = f.read(4) == b"PK\x03\x04"
            if starts_like_zip:  # a zip whose end (the central directory) is missing
                raise DataError(f"{path}: truncated or corrupt npz (the zip archive is cut short)")
            raise DataError(f"{path}: not an npz file (an npz is a zip archive of .npy arrays)")
        with np.load(path, allow_pickle=False) as npz:
            split_images = [f"{s}_images" for s in MEDMNIST_SPLITS if f"{s}_images" in npz.files]
            arrays = _stream_into_one(path, split_images)  # MedMNIST: no second copy
            arrays.update({k: npz[k] for k in npz.files if k not in arrays})
            return arrays
    except DataError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise DataError(
                f"{path}: holds pickled Python objects, which cxrvae never loads; "
                "save the arrays with plain numeric or string dtypes"
            ) from None
        raise DataError(f"{path}: cannot read: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: truncated or corrupt npz ({type(e).__name__}: {e})") from None


def _read_npy_header(f):
    version = np.lib.format.read_magic(f)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    return read(f)  # (shape, fortran_order, dtype)


def _stream_into_one(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """npz members ``names`` read straight into consecutive slices of one new array.

    Returns ``{name: slice}`` (views of that array, in order), or ``{}`` when the members do not
    share dtype and image shape (they are then read one by one). Pooling MedMNIST's train, val
    and test images this way holds the set once, not twice, at its peak.
    """
    if not names:
        return {}
    with zipfile.ZipFile(path) as zf:
        headers = []
        for n in names:
            with zf.open(n + ".npy") as f:
                headers.append(_read_npy_header(f))
        shape0, _, dtype = headers[0]
        if any(
            fortran
            or dt != dtype
            or dt.hasobject
            or len(sh) < 2
            or sh[1:] != shape0[1:]
            or 0 in sh  # empty: left to the checks that say so
            for sh, fortran, dt in headers
        ):
            return {}
        out = np.empty((sum(sh[0] for sh, _, _ in headers), *shape0[1:]), dtype)
        views, start = {}, 0
        for n, (sh, _, _) in zip(names, headers):
            view = out[start : start + sh[0]]
            buf = memoryview(view).cast("B")
            with zf.open(n + ".npy") as f:
                _read_npy_header(f)
                got = 0
                while got < len(buf):  # in chunks: zip streams copy through a temporary
                    k = f.readinto(buf[got : got + (1 << 20)])
                    if not k:
                        raise EOFError(f"{n} is cut short")
                    got += k
            views[n], start = view, start + sh[0]
    return views


def _joined(parts: list[np.ndarray]) -> np.ndarray | None:
    """The one array that ``parts`` are the slices of (see _stream_into_one), or None."""
    base = parts[0].base
    if base is None or any(p.base is not base for p in parts) or len(base) != sum(map(len, parts)):
        return None
    return base


def _is_numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "biuf"


def _to_1d_labels(a: np.ndarray, n: int) -> np.ndarray | None:
    """A per-image label vector from shapes (N,) or (N, 1); None for anything else."""
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    return a if a.ndim == 1 and len(a) == n else None


def _pick_arrays(path: Path, arrays: dict[str, np.ndarray], notes: list[str]):
    """Return (images, per-image 1-D arrays by name, source_split or None, label_names or None)."""
    label_names = arrays.get("label_names")
    if label_names is not None and label_names.ndim != 1:
        label_names = None
    medmnist = [s for s in MEDMNIST_SPLITS if f"{s}_images" in arrays]
    if medmnist:
        return _pick_medmnist(path, arrays, medmnist, label_names, notes)
    return _pick_plain(path, arrays, label_names, notes)


def _pick_medmnist(path: Path, arrays: dict, medmnist: list[str], label_names, notes: list):
    """MedMNIST layout: pool train/val/test, remember each image's source split."""
    parts = [arrays[f"{s}_images"] for s in medmnist]
    for s, p in zip(medmnist, parts):
        if not _is_numeric(p) or p.ndim < 2:
            raise DataError(
                f"{path}: {s}_images ({p.dtype}, shape {p.shape}) is not a numeric array of images"
            )
    if len({p.shape[1:] for p in parts}) != 1:
        raise DataError(f"{path}: the {', '.join(medmnist)} images have different shapes")
    images = _joined(parts)
    if images is None:
        images = np.concatenate(parts)
    split = np.concatenate([np.full(len(p), s) for s, p in zip(medmnist, parts)])
    per_image = {}
    label_parts = [arrays.get(f"{s}_labels") for s in medmnist]
    if all(lp is not None and lp.ndim >= 1 for lp in label_parts):
        if len({lp.shape[1:] for lp in label_parts}) != 1:
            raise DataError(f"{path}: the *_labels arrays have different shapes")
        labels = np.concatenate(label_parts)
        if len(labels) != len(images):
            raise DataError(
                f"{path}: {len(labels)} labels for {len(images)} images in the "
                "train/val/test arrays"
            )
        one = _to_1d_labels(labels, len(images))
        if one is not None:
            per_image["labels"] = one
        elif labels.ndim == 2 and np.isin(labels, (0, 1)).all():
            per_image["labels"] = _findings(labels, label_names, notes)
            label_names = None
        else:
            notes.append(f"labels of shape {labels.shape[1:]} per image are not used as classes")
    notes.append(
        "pooled MedMNIST splits " + ", ".join(f"{s} ({len(p)})" for s, p in zip(medmnist, parts))
    )
    return images, per_image, split, label_names


def _pick_plain(path: Path, arrays: dict, label_names, notes: list):
    """One image array (the largest numeric one) and the per-image arrays beside it."""
    candidates = {k: a for k, a in arrays.items() if _is_numeric(a) and a.ndim >= 2}
    if not candidates:
        raise DataError(
            f"{path}: no numeric array with at least 2 dimensions (arrays: {_describe(arrays)})"
        )
    key = max(candidates, key=lambda k: (candidates[k].size, k == "images"))
    images = candidates[key]
    if len(arrays) > 1:
        notes.append(f"images from array {key!r}")
    n = len(images)
    for k in (*LABEL_KEYS, *ID_KEYS):
        if k in arrays and arrays[k].ndim >= 1 and len(arrays[k]) != n:
            raise DataError(
                f"{path}: array {k!r} has {len(arrays[k])} entries for {n} images; "
                "labels and ids need one entry per image"
            )
    per_image = {}
    for k, a in arrays.items():
        if k == key or k == "label_names":
            continue
        one = _to_1d_labels(a, n) if (_is_numeric(a) or a.dtype.kind in "US") else None
        if one is not None:
            per_image[k] = one
    split = None
    for k in SPLIT_KEYS:
        if k in per_image:
            split = per_image.pop(k).astype(str)
            break
    return images, per_image, split, label_names


def _findings(labels: np.ndarray, names, notes: list[str]) -> np.ndarray:
    """Multi-label 0/1 findings (N, C) -> one class per image: the finding, none, or several."""
    c = labels.shape[1]
    names = [str(n) for n in names] if names is not None and len(names) == c else None
    names = names or [f"finding {j}" for j in range(c)]
    count = labels.sum(1)
    out = np.where(count == 0, "no finding", "several findings").astype(object)
    single = count == 1
    out[single] = np.asarray(names, dtype=object)[labels[single].argmax(1)]
    notes.append(
        f"{c} multi-label findings summarised as one class per image: no finding "
        f"({int((count == 0).sum())}), one finding ({int(single.sum())}), several findings "
        f"({int((count > 1).sum())})"
    )
    return out.astype(str)


def _describe(arrays: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {a.dtype} {a.shape}" for k, a in arrays.items()) or "none"


def _channels_to_gray(path: Path, images: np.ndarray, notes: list[str]) -> np.ndarray:
    """(N,H,W), (N,H,W,C) or (N,C,H,W) -> (N,H,W); RGB becomes BT.601 luminance."""
    shape = images.shape
    if images.ndim == 2:
        side = int(round(np.sqrt(shape[1])))
        if side * side == shape[1] and side >= MIN_IMAGE_SIZE:
            notes.append(f"rows of {shape[1]} values reshaped to {side}x{side} images")
            return images.reshape(len(images), side, side)
        raise DataError(
            f"{path}: a 2-D array of shape {shape} is neither a stack of images "
            "nor rows of flattened square images"
        )
    if images.ndim == 3:
        return images
    if images.ndim != 4:
        raise DataError(
            f"{path}: image array of shape {shape} has {images.ndim} dimensions; "
            "expected (N,H,W), (N,H,W,C) or (N,C,H,W)"
        )
    if shape[-1] in (1, 3, 4) and shape[1] not in (1, 3, 4):
        channels_last = True
    elif shape[1] in (1, 3, 4):
        channels_last = False
    else:
        raise DataError(
            f"{path}: image array of shape {shape} has no channel axis of size 1, 3 or 4"
        )
    c = shape[-1] if channels_last else shape[1]
    if c == 1:
        return images[..., 0] if channels_last else images[:, 0]
    notes.append(f"{'RGBA' if c == 4 else 'RGB'} converted to grayscale (BT.601 luminance)")
    out = np.empty(
        (shape[0], *(shape[1:3] if channels_last else shape[2:4])),
        dtype=storage_dtype(images.dtype),
    )
    for i in range(len(images)):  # one image at a time: no float copy of the set
        rgb = images[i, ..., :3] if channels_last else np.moveaxis(images[i, :3], 0, -1)
        out[i] = cast(rgb.astype(np.float64) @ LUMA, out.dtype)
    return out
