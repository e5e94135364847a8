"""The loaded set: :class:`XrayData`, integer pixels normalised per batch, its summary, and the
conversions of normalised images to uint8 (the explorer's thumbnails, ``cxrvae export``).

Images stay in their source integer type (uint8 for most sets) and are normalised per batch
through a per-image ``offset`` and ``scale``: ``x = (image - offset) * scale``. The whole set is
never held as floats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import save_npz
from ..results import DataSummary
from .pixels import resize_image


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
    reading : str
        How the source was read as images (the layout of an npz and why, or the files read).
    notes : list of str
        What loading did (pooling, channel conversion, resizing), for the user and the report.
    """

    images: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    source: str = ""
    reading: str = ""
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
    pixel_range: tuple[float, float] | None = None  # global normalisation's (min, max)
    clip: bool = False  # clip normalised values to [0, 1] (images scored with a run's range)

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
        x = (self.images[idx].astype(np.float32) - off) * scale
        return np.clip(x, 0.0, 1.0, out=x) if self.clip else x

    def subset(self, idx) -> XrayData:
        """The images ``idx`` (and their labels, ids and other per-image arrays) as a set of
        their own, normalised as they are here."""
        idx = np.asarray(idx)

        def pick(a):
            return None if a is None else np.asarray(a)[idx]

        return dataclasses.replace(
            self,
            images=self.images[idx],
            offset=self.offset[idx],
            scale=self.scale[idx],
            labels=pick(self.labels),
            ids=pick(self.ids),
            groups=pick(self.groups),
            extras={k: v[idx] for k, v in self.extras.items()},
            source_split=pick(self.source_split),
            notes=list(self.notes),
        )

    def normalized_as(self, pixel_range) -> XrayData:
        """These images normalised with another set's global range ``(min, max)``, such as a
        trained run's, and clipped to [0, 1]: a darker set stays darker."""
        lo, hi = (float(v) for v in pixel_range)
        n = len(self)
        return dataclasses.replace(
            self,
            offset=np.full(n, lo),
            scale=np.full(n, 1.0 / (hi - lo)),
            pixel_range=(lo, hi),
            clip=True,
        )

    def outside_range(self, idx) -> np.ndarray:
        """Share of each image's pixels that normalisation put outside [0, 1] (n,): clipped
        when ``clip`` is set."""
        idx = np.asarray(idx)
        raw = (self.images[idx].astype(np.float32) - self.offset[idx, None, None]) * self.scale[
            idx, None, None
        ]
        return ((raw < 0) | (raw > 1)).reshape(len(idx), -1).mean(1)

    def summary(self) -> DataSummary:
        """What the set is, without identifiers (for config.json, metrics.json, inspect)."""
        out = DataSummary(
            source=self.source,
            reading=self.reading,
            n_images=len(self),
            image_size=self.image_size,
            native_shape=list(self.native_shape),
            source_dtype=self.source_dtype,
            storage_dtype=str(self.images.dtype),
            normalize=self.normalize,
            n_constant_images=int(np.sum(self.scale == 0)),
            has_labels=self.labels is not None,
            patient_grouped=self.groups is not None,
            notes=list(self.notes),
            pixel_range=None if self.pixel_range is None else list(self.pixel_range),
        )
        if self.labels is not None:
            counts = np.bincount(self.labels, minlength=len(self.label_names))
            out.label_names = list(self.label_names)
            out.label_counts = {n: int(c) for n, c in zip(self.label_names, counts)}
        if self.groups is not None:
            out.n_patients = int(len(np.unique(self.groups)))
        return out


def label_word(name) -> str:
    """How text and figures name a label: its name, or ``label 1`` for a class known only by
    its number (an integer labels array without label names)."""
    name = str(name)
    try:
        float(name)
    except ValueError:
        return name
    return f"label {name}"


def export_npz(data: XrayData, path, chunk: int = 1024) -> Path:
    """Write ``data`` as a plain npz: ``images`` (uint8 N x H x W, normalised to 0-255),
    ``labels``, ``label_names``, ``ids`` (and ``source_split`` when known).

    The file is written through a temporary name, so a failure leaves no partial file.
    """
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
