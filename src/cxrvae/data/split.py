"""The train/test split: seeded, stratified by label, and grouped so that each patient's images
(recognised from file names or DICOM headers) stay on one side.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, StratifiedShuffleSplit

from ..errors import DataError
from .folders import SPLIT_NAMES

# Patient identifiers inside file names, tried in order (first match wins):
# Kermany pediatric set "person12_virus_40.jpeg", "IM-0011-0001.jpeg", "NORMAL2-IM-1427-0001.jpeg";
# NIH ChestX-ray14 "00000001_000.png"; folder or name "patient00001" (CheXpert and others).
PATIENT_PATTERNS = (
    re.compile(r"(?:^|/)(person\d+)_"),
    re.compile(r"(?:^|/)((?:[A-Za-z0-9]+-)?IM-\d+)-"),
    re.compile(r"(patient\d+)", re.IGNORECASE),
    re.compile(r"(?:^|/)(\d{6,})_\d+\."),
)


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


def split_indices(
    n: int, labels=None, groups=None, seed: int = 0, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split, stratified by ``labels`` and grouped by ``groups`` when given.

    Returns
    -------
    train_idx, test_idx : ndarray of int64, sorted
    """
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


def source_sides(source_split, source) -> np.ndarray:
    """Each image's side of the source's own split: ``train``, ``val`` or ``test`` (str array).

    ``source_split`` holds one name per image: those three, or their longer forms (``training``,
    ``validation``, ``testing``...) in any case. A DataError, naming ``source``, when it is
    missing, names anything else, or leaves the train or the test side empty.
    """
    if source_split is None:
        raise DataError(
            f"{source}: --split source needs the source's own split (an npz array "
            "'source_split', MedMNIST's train_/val_/test_ arrays, or train/ and test/ folders); "
            "these images have none"
        )
    names = np.char.lower(np.char.strip(np.asarray(source_split, dtype=str)))
    unknown = sorted(set(names.tolist()) - set(SPLIT_NAMES))
    if unknown:
        n = int(np.isin(names, unknown).sum())
        raise DataError(
            f"{source}: the source split names {unknown[0]!r} for {n} image(s); each image must "
            "be train, val or test"
        )
    sides = np.array([SPLIT_NAMES[v] for v in names.tolist()])
    for side in ("train", "test"):
        if not np.any(sides == side) and not (side == "train" and np.any(sides == "val")):
            raise DataError(f"{source}: the source split has no {side} images")
    return sides


def source_split_indices(source_split, source) -> tuple[np.ndarray, np.ndarray]:
    """The source's own split (see :func:`source_sides`): its ``train`` images, with its ``val``
    images (a run selects nothing on them), to train on; its ``test`` images to test on.

    Returns
    -------
    train_idx, test_idx : ndarray of int64, sorted
    """
    sides = source_sides(source_split, source)
    return np.flatnonzero(sides != "test").astype(np.int64), np.flatnonzero(sides == "test")


def identical_images(images) -> list[np.ndarray]:
    """Groups (sorted index arrays of two or more) of pixel-identical images (n, H, W)."""
    seen: dict[bytes, list[int]] = {}
    for i, im in enumerate(images):
        key = hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16).digest()
        seen.setdefault(key, []).append(i)
    return [np.asarray(v) for v in seen.values() if len(v) > 1]


def join_identical(groups, identical: list[np.ndarray], n: int) -> tuple[np.ndarray | None, int]:
    """Split groups in which each set of identical images is one group, like one patient's.

    ``groups`` are the patient groups (or None: each image its own group). Returns the groups
    (None when there are neither patients nor identical images) and how many identical sets
    spanned more than one patient and joined their groups (0 without patient groups).
    """
    if not identical:
        return groups, 0
    patients = groups is not None  # without them, no set can span patients
    keys = np.asarray(groups, dtype=str) if patients else np.arange(n).astype(str)
    parent = {k: k for k in np.unique(keys)}

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    joined = 0
    for idx in identical:
        roots = sorted({root(k) for k in keys[idx]})
        joined += patients and len(roots) > 1
        for r in roots[1:]:
            parent[r] = roots[0]
    return np.array([root(k) for k in keys]), joined
