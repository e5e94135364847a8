"""Read an ``.npz`` or ``.npy`` file of chest X-rays, whatever its layout (found or stated, see
:mod:`cxrvae.data.layouts`), into a stack of grayscale images and the per-image arrays beside them.
Nothing is unpickled, and no array larger than the file can hold is allocated.

:mod:`cxrvae.data.loader` turns the result into an ``XrayData`` (resizing, normalisation, labels).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import layouts
from .pixels import RawImages

MEDMNIST_SPLITS = ("train", "val", "test")
LABEL_KEYS = ("labels", "label", "y", "targets", "target", "classes")
ID_KEYS = ("ids", "id", "filenames", "filename", "files", "names", "paths")
SPLIT_KEYS = ("source_split", "split", "splits")
MAX_DEFLATE_RATIO = 1100  # deflate cannot expand data by more than about 1032:1


def read_npz(path, label_names=None, layout: str = "auto") -> RawImages:
    """Read the images of an npz (or npy) file and the arrays that belong to them.

    ``label_names`` names the classes when the file holds label indices but no
    ``label_names`` array; ``layout`` states how the arrays hold the images (see
    :mod:`cxrvae.data.layouts`; "auto" finds it, or says why it cannot). Raises :class:`DataError`
    with a one-line message.
    """
    path = Path(path)
    arrays = _open_npz(path)
    if not arrays:
        raise DataError(f"{path}: the npz holds no arrays")
    if label_names is not None and "label_names" not in arrays:
        arrays["label_names"] = np.asarray(label_names)
    label_names = arrays.get("label_names")
    if label_names is not None and label_names.ndim != 1:
        label_names = None
    notes: list[str] = []
    medmnist = [s for s in MEDMNIST_SPLITS if f"{s}_images" in arrays]
    if medmnist and layout != "auto":
        raise DataError(f"{path}: --layout does not apply to MedMNIST's train/val/test arrays")
    if medmnist:
        stacked, per_image, source_split, label_names = _pick_medmnist(
            path, arrays, medmnist, label_names, notes
        )
        arrays = {"images": stacked}
    else:
        per_image, source_split = _per_image_arrays(arrays)
    lengths = {len(a) for a in per_image.values()}
    lengths |= {len(source_split)} if source_split is not None else set()
    stack, reading, native_shape, source_dtype = _images(path, arrays, lengths, layout, notes)
    per_image, source_split = _matching(path, per_image, source_split, len(stack))
    return RawImages(
        stack,
        per_image,
        reading.describe(),
        tuple(native_shape),
        source_dtype,
        source_split=source_split,
        label_names=label_names,
        notes=notes,
    )


def _images(path: Path, arrays: dict, lengths: set[int], layout: str, notes: list):
    """The image stack (N, H, W) of ``arrays`` as the layout reads it, the reading, one image's
    stored shape and dtype. ``lengths`` are those of the per-image arrays (they can decide)."""
    images = {
        k: a for k, a in arrays.items() if _is_numeric(a) and a.ndim >= 2 and a.shape[1:] != (1,)
    }
    if not images:
        raise DataError(
            f"{path}: no numeric array with at least 2 dimensions (arrays: {_describe(arrays)})"
        )
    reading = layouts.choose(path, images, lengths, layout)
    left_out = [f"{k} {a.shape}" for k, a in images.items() if k not in reading.keys]
    if left_out:
        notes.append(f"image-like arrays left out: {', '.join(left_out)}")
    first = images[reading.keys[0]]
    if first.size == 0:
        raise DataError(f"{path}: the image array {first.shape} is empty")
    native_shape = {"keys": first.shape, "image": first.shape, "rows": reading.hw()}.get(
        reading.layout, first.shape[1:]
    )
    if first.dtype.kind == "b":  # False/True -> 0/1
        images = {k: a.view(np.uint8) for k, a in images.items()}
    stack = layouts.to_images(reading, images, notes)
    return stack, reading, native_shape, str(first.dtype)


def _open_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an npz (or npy) file without unpickling anything."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give an .npz file")
    try:
        if path.suffix.lower() == ".npy":
            _check_sizes(path)
            # Memory-mapped (copy-on-write, never written): pages are read as batches need them.
            return {"images": np.load(path, mmap_mode="c", allow_pickle=False)}
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                starts_like_zip = f.read(4) == b"PK\x03\x04"
            if starts_like_zip:  # a zip whose end (the central directory) is missing
                raise DataError(f"{path}: truncated or corrupt npz (the zip archive is cut short)")
            raise DataError(f"{path}: not an npz file (an npz is a zip archive of .npy arrays)")
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            split_images = [f"{s}_images" for s in MEDMNIST_SPLITS if f"{s}_images" in npz.files]
            arrays = _stream_into_one(path, split_images)  # MedMNIST: no second copy
            # members other than .npy arrays (a text file added to the zip) are never read
            members = set(npz.zip.namelist())
            kept = [k for k in npz.files if k not in arrays and k + ".npy" in members]
            arrays.update({k: npz[k] for k in kept})
            return arrays
    except DataError:
        raise
    except ValueError as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    except MemoryError:
        raise DataError(
            f"{path}: its arrays do not fit in memory; save the images as an .npy file, which "
            "cxrvae maps from disk instead of loading"
        ) from None
    except Exception as e:  # damaged bytes: zipfile and numpy's header parser raise many types
        raise DataError(f"{path}: truncated or corrupt npz ({type(e).__name__}: {e})") from None


def _check_sizes(path: Path) -> None:
    """Refuse, before anything is allocated, an array whose header declares more data than the
    file holds for it (a damaged or hostile file would otherwise ask for terabytes)."""
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as f:
            shape, _, dtype = _read_npy_header(f)
            holds = path.stat().st_size - f.tell()
        _compare_size(path, "the array", shape, dtype, holds)
        return
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = f"array {info.filename[:-4]!r}"
            deflated = info.compress_type == zipfile.ZIP_DEFLATED
            if deflated and info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1):
                raise DataError(
                    f"{path}: {name} claims to unpack {_size(info.compress_size)} into "
                    f"{_size(info.file_size)}, more than zip compression can give; the file is "
                    "damaged or not what it claims"
                )
            with zf.open(info) as f:
                shape, _, dtype = _read_npy_header(f)
                holds = info.file_size - f.tell()
            _compare_size(path, name, shape, dtype, holds)


def _compare_size(path: Path, name: str, shape: tuple, dtype: np.dtype, holds: int) -> None:
    if dtype.hasobject:  # refused from the header, before np.load is asked to read it
        raise DataError(
            f"{path}: {name} holds pickled Python objects, which cxrvae never loads; "
            "save the arrays with plain numeric or string dtypes"
        )
    declared = math.prod(shape) * dtype.itemsize
    if declared > holds:
        raise DataError(
            f"{path}: {name} declares shape {shape} of {dtype} ({_size(declared)}) but the "
            f"file holds {_size(holds)} for it; the file is damaged or not what it claims"
        )


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} bytes"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:,.1f} TB"


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
            fortran or dt != dtype or len(sh) < 2 or sh[1:] != shape0[1:]
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
    return a.dtype.kind in ("b", "i", "u", "f")


def _to_1d_labels(a: np.ndarray, n: int) -> np.ndarray | None:
    """A per-image label vector from shapes (N,) or (N, 1); None for anything else."""
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    return a if a.ndim == 1 and len(a) == n else None


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


def _per_image_arrays(arrays: dict):
    """The 1-D arrays of a plain npz (labels, ids, extras; (N, 1) too), and its source split."""
    per_image = {}
    for k, a in arrays.items():
        if k == "label_names" or not (_is_numeric(a) or a.dtype.kind in ("U", "S")):
            continue
        if a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1 and a.shape[0] > 1):
            per_image[k] = a.reshape(-1)
    split = None
    for k in SPLIT_KEYS:
        if k in per_image:
            split = per_image.pop(k).astype(str)
            break
    return per_image, split


def _matching(path: Path, per_image: dict, split, n: int):
    """The per-image arrays with one entry per image; labels and ids of another length are an
    error (others are left aside)."""
    for k in (*LABEL_KEYS, *ID_KEYS):
        if k in per_image and len(per_image[k]) != n:
            raise DataError(
                f"{path}: array {k!r} has {len(per_image[k])} entries for {n} images; "
                "labels and ids need one entry per image"
            )
    if split is not None and len(split) != n:
        split = None
    return {k: a for k, a in per_image.items() if len(a) == n}, split


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
    return ", ".join(f"{k} {a.dtype} {a.shape}" for k, a in arrays.items())
