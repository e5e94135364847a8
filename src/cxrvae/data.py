"""Load chest X-ray sets (npz of any common layout, image or DICOM folders, public sets by name),
normalise, split and describe them.

Images stay in their source integer type (uint8 for most sets) and are normalised per batch
through a per-image ``offset`` and ``scale``: ``x = (image - offset) * scale``. The whole set is
never held as floats.
"""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .sources import (
    DATASETS,
    LUMA,
    DataError,
    cast,
    fetch,
    nearest_file_size,
    parse_dataset,
    read_folder,
    resize_image,
    storage_dtype,
)

log = logging.getLogger(__name__)

MEDMNIST_SPLITS = ("train", "val", "test")
LABEL_KEYS = ("labels", "label", "y", "targets", "target", "classes")
ID_KEYS = ("ids", "id", "filenames", "filename", "files", "names", "paths")
SPLIT_KEYS = ("source_split", "split", "splits")
MIN_IMAGE_SIZE = 16
MIN_IMAGES = 10  # fewer cannot give a train and a test set of a few images each
MAX_CLASSES = 50  # a per-image array with more distinct values is not taken as class labels
# ITU-R BT.601 luma weights, the ones PIL uses for RGB -> L.
# Patient identifiers inside file names, tried in order (first match wins):
# Kermany pediatric set "person12_virus_40.jpeg", "IM-0011-0001.jpeg", "NORMAL2-IM-1427-0001.jpeg";
# NIH ChestX-ray14 "00000001_000.png"; folder or name "patient00001" (CheXpert and others).
PATIENT_PATTERNS = (
    re.compile(r"(?:^|/)(person\d+)_"),
    re.compile(r"(?:^|/)((?:[A-Za-z0-9]+-)?IM-\d+)-"),
    re.compile(r"(patient\d+)", re.IGNORECASE),
    re.compile(r"(?:^|/)(\d{6,})_\d+\."),
)


@dataclass
class XrayData:
    """A loaded chest X-ray set.

    Attributes
    ----------
    images : ndarray (N, H, W)
        Pixels in the storage type (the source's integer type, or float32 for float sources).
    offset, scale : ndarray (N,), float64
        Normalisation: ``(images[i] - offset[i]) * scale[i]`` lies in [0, 1].
    labels : ndarray (N,) int64 or None
        Class index per image, when the source has labels.
    label_names : list of str or None
        Name of each class index.
    ids : ndarray (N,) str or None
        Source identifiers (file names), never shown in figures or the report.
    groups : ndarray (N,) str or None
        Patient identifier derived from ``ids``, used to keep a patient on one side of the split.
    extras : dict of str -> ndarray (N,)
        Other per-image arrays of the source (e.g. ``subtype``), under their own names.
    source_split : ndarray (N,) str or None
        The source's own split (MedMNIST ``train/val/test`` or a ``source_split`` array).
    notes : list of str
        What loading did (pooling, channel conversion, resizing), for the user and the report.
    """

    images: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    source: str = ""
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    ids: np.ndarray | None = None
    groups: np.ndarray | None = None
    extras: dict = field(default_factory=dict)
    source_split: np.ndarray | None = None
    native_shape: tuple = ()
    source_dtype: str = ""
    normalize: str = "global"
    notes: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def normalized(self, idx) -> np.ndarray:
        """Float32 images (B, H, W) in [0, 1] for the indices ``idx``."""
        idx = np.asarray(idx)
        off = self.offset[idx, None, None].astype(np.float32)
        scale = self.scale[idx, None, None].astype(np.float32)
        return (self.images[idx].astype(np.float32) - off) * scale

    def summary(self) -> dict:
        """JSON-ready description of the set (no identifiers)."""
        out = {
            "source": self.source,
            "n_images": len(self),
            "image_size": self.image_size,
            "native_shape": list(self.native_shape),
            "source_dtype": self.source_dtype,
            "storage_dtype": str(self.images.dtype),
            "normalize": self.normalize,
            "n_constant_images": int(np.sum(self.scale == 0)),
            "has_labels": self.labels is not None,
            "patient_grouped": self.groups is not None,
            "notes": list(self.notes),
        }
        if self.labels is not None:
            counts = np.bincount(self.labels, minlength=len(self.label_names))
            out["label_names"] = list(self.label_names)
            out["label_counts"] = {n: int(c) for n, c in zip(self.label_names, counts)}
        if self.groups is not None:
            out["n_patients"] = int(len(np.unique(self.groups)))
        return out


# --------------------------------------------------------------------------- reading npz


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
        # MedMNIST layout: pool train/val/test, remember each image's source split.
        parts = [arrays[f"{s}_images"] for s in medmnist]
        for s, p in zip(medmnist, parts):
            if not _is_numeric(p) or p.ndim < 2:
                raise DataError(
                    f"{path}: {s}_images ({p.dtype}, shape {p.shape}) is not a "
                    "numeric array of images"
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
                notes.append(
                    f"labels of shape {labels.shape[1:]} per image are not used as classes"
                )
        notes.append(
            "pooled MedMNIST splits "
            + ", ".join(f"{s} ({len(p)})" for s, p in zip(medmnist, parts))
        )
        return images, per_image, split, label_names

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


def patient_groups(ids: np.ndarray | None) -> np.ndarray | None:
    """Patient identifier per image from file names, or None when names reveal no patient.

    Each id is matched against ``PATIENT_PATTERNS`` (first match wins); ids that match none stay
    their own group. Grouping is used only when some patient has more than one image.
    """
    if ids is None:
        return None
    groups = []
    for s in ids:
        s = str(s).replace("\\", "/")
        m = next((m for p in PATIENT_PATTERNS if (m := p.search(s))), None)
        groups.append(m.group(1) if m else s)
    groups = np.asarray(groups)
    return groups if len(np.unique(groups)) < len(groups) else None


def _normalization(images: np.ndarray, mode: str, path: Path):
    """Per-image offset and scale for min-max normalisation (global or per image)."""
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
        return np.full(n, lo.min()), np.full(n, 1.0 / (hi.max() - lo.min()))
    span = hi - lo
    # A constant image has nothing to stretch: it maps to 0 (counted in the summary).
    scale = np.divide(1.0, span, out=np.zeros(n), where=span > 0)
    return lo, scale


def load(
    source, image_size: int = 64, normalize: str = "global", drop_invalid: bool = False
) -> XrayData:
    """Load chest X-rays from a file, a folder or a public set's name.

    Parameters
    ----------
    source : str or Path
        An ``.npz``/``.npy`` file (see :func:`load_npz`); a folder of PNG/JPEG/TIFF/BMP or
        DICOM files (see :func:`load_folder`); or ``pneumoniamnist`` / ``chestmnist``,
        optionally with a size (``pneumoniamnist:128``), downloaded once and cached.
    image_size, normalize, drop_invalid
        As in :func:`load_npz`.

    Raises
    ------
    DataError
        With a one-line message naming the file and the problem.
    """
    path = Path(source)
    if not path.exists():
        named = parse_dataset(str(source))
        if named is not None:
            ds, size = named
            size = size or nearest_file_size(ds, image_size)
            data = load_npz(fetch(ds, size), image_size, normalize, drop_invalid, ds.label_names)
            data.source = f"{ds.name}:{size}"
            return data
        raise DataError(
            f"{source}: no such file or folder, and not a public set ({', '.join(DATASETS)})"
        )
    if path.is_dir():
        return load_folder(path, image_size, normalize, drop_invalid)
    return load_npz(path, image_size, normalize, drop_invalid)


def load_folder(
    folder, image_size: int = 64, normalize: str = "global", drop_invalid: bool = False
) -> XrayData:
    """Load every PNG/JPEG/TIFF/BMP/DICOM file under ``folder`` (searched recursively).

    Labels are the immediate subfolder names (e.g. ``NORMAL/``, ``PNEUMONIA/``), ids the
    relative paths. 16-bit images stay uint16 until normalisation; DICOM pixels go through the
    modality and VOI LUTs, and MONOCHROME1 is inverted so bone is bright.
    """
    folder = Path(folder)
    f = read_folder(folder, image_size, drop_invalid)
    per_image = {"ids": f.ids}
    if f.labels is not None:
        per_image["labels"] = f.labels
    return _build(
        folder,
        f.images,
        per_image,
        f.source_split,
        None,
        f.notes,
        image_size,
        normalize,
        drop_invalid,
        native_shape=f.native_shape,
        source_dtype=f.source_dtype,
        groups=f.groups,
    )


def load_npz(
    path,
    image_size: int = 64,
    normalize: str = "global",
    drop_invalid: bool = False,
    label_names=None,
) -> XrayData:
    """Load an npz of chest X-rays, whatever its layout.

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

    Returns
    -------
    XrayData

    Raises
    ------
    DataError
        With a one-line message naming the file and the problem.
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
    native_shape, source_dtype = images.shape[1:], str(images.dtype)
    if images.dtype.kind == "b":
        images = images.view(np.uint8)  # False/True -> 0/1
    images = _channels_to_gray(path, images, notes)
    if min(images.shape[1:]) < MIN_IMAGE_SIZE:
        raise DataError(
            f"{path}: images of {images.shape[1]}x{images.shape[2]} px are smaller "
            f"than the minimum {MIN_IMAGE_SIZE} px"
        )
    return _build(
        path,
        images,
        per_image,
        source_split,
        names,
        notes,
        image_size,
        normalize,
        drop_invalid,
        native_shape=tuple(native_shape),
        source_dtype=source_dtype,
    )


def _build(
    path: Path,
    images: np.ndarray,
    per_image: dict,
    source_split,
    label_names,
    notes: list[str],
    image_size: int,
    normalize: str,
    drop_invalid: bool,
    native_shape: tuple,
    source_dtype: str,
    groups=None,
) -> XrayData:
    """Checks, resizing, normalisation and labels shared by every source."""
    if images.dtype.kind == "f":
        bad = np.array([not np.isfinite(im).all() for im in images])
        if bad.any() and not drop_invalid:
            raise DataError(
                f"{path}: {int(bad.sum())} of {len(images)} images contain NaN or infinite "
                "values; fix them or pass --drop-invalid to leave them out"
            )
        if bad.any():
            keep = np.flatnonzero(~bad)
            images = images[keep]
            per_image = {k: v[keep] for k, v in per_image.items()}
            source_split = None if source_split is None else source_split[keep]
            groups = None if groups is None else groups[keep]
            notes.append(f"dropped {int(bad.sum())} images containing NaN or infinite values")
    if len(images) < MIN_IMAGES:
        raise DataError(
            f"{path}: {len(images)} usable images; the study needs at least {MIN_IMAGES}"
        )
    images = _resize(images, image_size, notes)
    offset, scale = _normalization(images, normalize, path)
    labels, names, ids, extras = _labels_from(per_image, label_names, notes)
    data = XrayData(
        images=images,
        offset=offset,
        scale=scale,
        source=path.name,
        labels=labels,
        label_names=names,
        ids=ids,
        groups=groups if groups is not None else patient_groups(ids),
        extras=extras,
        source_split=source_split,
        native_shape=tuple(native_shape),
        source_dtype=source_dtype,
        normalize=normalize,
        notes=notes,
    )
    if data.groups is not None:
        where = "in the DICOM headers" if groups is not None else "in the ids"
        notes.append(
            f"{len(np.unique(data.groups))} patients recognised {where}; each "
            "patient's images stay on one side of the split"
        )
    return data


def export_npz(data: XrayData, path, chunk: int = 1024) -> Path:
    """Write ``data`` as a plain npz: ``images`` (uint8 N x H x W, normalised to 0-255),
    ``labels``, ``label_names``, ``ids`` (and ``source_split`` when known).

    The file is written through a temporary name, so a failure leaves no partial file.
    """
    from .files import save_npz

    images = np.empty(data.images.shape, dtype=np.uint8)
    for start in range(0, len(data), chunk):  # chunk by chunk: no float copy of the set
        idx = np.arange(start, min(len(data), start + chunk))
        images[idx] = as_uint8(data.normalized(idx))
    arrays = {"images": images}
    if data.labels is not None:
        arrays["labels"] = data.labels
        arrays["label_names"] = np.asarray(data.label_names)
    ids = data.ids if data.ids is not None else np.asarray([f"{i:06d}" for i in range(len(data))])
    arrays["ids"] = np.asarray(ids, dtype=str)
    if data.source_split is not None:
        arrays["source_split"] = np.asarray(data.source_split, dtype=str)

    return save_npz(path, compressed=True, **arrays)


def as_uint8(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """Images in [0, 1] (N, H, W) -> uint8 0-255, shrunk to ``size`` px when larger."""
    out = np.clip(np.rint(np.asarray(images, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
    if size is not None and out.shape[-1] > size:
        out = np.stack([resize_image(im, size) for im in out])
    return out


# --------------------------------------------------------------------------- split


def split_indices(
    n: int, labels=None, groups=None, seed: int = 0, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split, stratified by ``labels`` and grouped by ``groups`` when given.

    Returns
    -------
    train_idx, test_idx : ndarray of int64, sorted
    """
    from sklearn.model_selection import (
        GroupShuffleSplit,
        StratifiedGroupKFold,
        StratifiedShuffleSplit,
    )

    idx = np.arange(n)
    k = max(2, int(round(1.0 / test_fraction)))
    n_groups = 0 if groups is None else len(np.unique(groups))
    if groups is not None and 2 <= n_groups < k:
        # Too few patients for K folds: hold out about test_fraction of the patients.
        gss = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
        train, test = next(gss.split(idx, groups=groups))
    elif groups is not None and n_groups >= k:
        # K folds with one held out give a test share of 1/K; every patient on one side.
        y = labels if labels is not None else np.zeros(n, dtype=np.int64)
        folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        train, test = next(folds.split(idx, y, groups))
    elif labels is not None and np.bincount(labels).min() >= 2:
        sss = StratifiedShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
        train, test = next(sss.split(idx, labels))
    else:
        perm = np.random.default_rng(seed).permutation(n)
        n_test = max(1, int(round(n * test_fraction)))
        train, test = perm[n_test:], perm[:n_test]
    return np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)


# --------------------------------------------------------------------------- exploration


@dataclass
class ImageStats:
    """What the exploration figures show; every array is computed from normalised pixels.

    Attributes
    ----------
    mean, std : ndarray (H, W) float32
        Per-pixel mean and standard deviation over the set.
    hist_edges : ndarray (B + 1,), hist_counts : ndarray (B,)
        Histogram of all pixel values in [0, 1].
    brightness, contrast : ndarray (N,)
        Mean and standard deviation of each image.
    atypicality : ndarray (N,)
        Distance of each image from the mean in pixel-PCA space.
    n_components : int
        PCA components used for ``atypicality``.
    """

    mean: np.ndarray
    std: np.ndarray
    hist_edges: np.ndarray
    hist_counts: np.ndarray
    brightness: np.ndarray
    contrast: np.ndarray
    atypicality: np.ndarray
    n_components: int


def image_stats(
    data: XrayData,
    seed: int = 0,
    bins: int = 64,
    chunk: int = 512,
    n_components: int = 20,
    max_fit: int = 2000,
) -> ImageStats:
    """Describe how the images differ, streaming over chunks of normalised images."""
    from sklearn.decomposition import PCA

    n, (h, w) = len(data), data.images.shape[1:]
    s1, s2 = np.zeros((h, w)), np.zeros((h, w))
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.zeros(bins, dtype=np.int64)
    brightness, contrast = np.empty(n), np.empty(n)
    for start in range(0, n, chunk):
        x = data.normalized(np.arange(start, min(n, start + chunk)))  # (B, H, W)
        s1 += x.sum(0)
        s2 += (x.astype(np.float64) ** 2).sum(0)
        counts += np.histogram(x, bins=edges)[0]
        brightness[start : start + len(x)] = x.mean((1, 2))
        contrast[start : start + len(x)] = x.std((1, 2))
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
        brightness,
        contrast,
        atyp,
        k,
    )


# --------------------------------------------------------------------------- synthetic


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
