"""Make the chest X-ray sample that cxrvae ships (``cxrvae run`` with no DATA studies it).

Takes whole patients at random (seeded) from the pediatric set until each label has
``--per-label`` images, so the sample is balanced and a patient's images stay together (the ids
are the source file names, from which cxrvae groups patients). Writes a compressed npz with
``images`` (uint8, N x 64 x 64), ``labels``, ``label_names``, ``subtype`` and ``ids``.

    python scripts/make_sample.py --source ../shared/data/pediatric_cxr_64.npz

Source: Kermany, Zhang and Goldbaum (2018), Mendeley Data v2, doi:10.17632/rscbjbr9sx.2,
CC BY 4.0 (see src/cxrvae/data/samples/README.md).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "cxrvae" / "data" / "samples" / "pediatric_cxr_sample.npz"
MAX_BYTES = 2_000_000
PATIENT = re.compile(r"^(person\d+)_|^((?:[A-Za-z0-9]+-)?IM-\d+)-")


def patient_of(file_name: str) -> str:
    m = PATIENT.search(file_name)
    return next(g for g in m.groups() if g) if m else file_name


def choose(labels: np.ndarray, ids: np.ndarray, per_label: int, seed: int) -> np.ndarray:
    """Indices of whole patients, in a seeded random order, until each label is full."""
    patients = np.array([patient_of(str(s)) for s in ids])
    order = np.random.default_rng(seed).permutation(np.unique(patients))
    taken, counts = [], np.zeros(labels.max() + 1, dtype=int)
    for p in order:
        members = np.flatnonzero(patients == p)
        need = np.bincount(labels[members], minlength=len(counts))
        if np.all(counts + need <= per_label):
            taken.extend(members)
            counts += need
        if np.all(counts == per_label):
            break
    return np.sort(np.asarray(taken))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, default=ROOT.parent / "shared/data/pediatric_cxr_64.npz")
    p.add_argument("--per-label", type=int, default=240)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    with np.load(a.source) as f:
        idx = choose(f["labels"], f["ids"], a.per_label, a.seed)
        arrays = {
            "images": f["images"][idx],
            "labels": f["labels"][idx],
            "label_names": f["label_names"],
            "subtype": f["subtype"][idx],
            "ids": f["ids"][idx],
        }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, **arrays)
    size = a.out.stat().st_size
    n_patients = len({patient_of(str(s)) for s in arrays["ids"]})
    print(
        f"wrote {a.out}: {len(idx)} images of {n_patients} patients, labels "
        f"{np.bincount(arrays['labels']).tolist()}, {size / 1e6:.2f} MB"
    )
    if size > MAX_BYTES:
        print(f"too large: the packaged sample must stay under {MAX_BYTES / 1e6:.0f} MB")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
