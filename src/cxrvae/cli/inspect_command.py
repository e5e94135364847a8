"""``cxrvae inspect``: what would be loaded from DATA, without training."""

from __future__ import annotations

import numpy as np

from . import options
from .settings import configured


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="show what would be loaded from DATA, without training",
        description="Load DATA as 'train' would and print what was found: count, shape, "
        "types, value range, labels, patients, and what resizing and normalisation do.",
    )
    p.add_argument("data", metavar="DATA", help=options.DATA_HELP)
    options.config_file(p)
    options.data(p)
    options.common(p)


def load(args):
    """DATA as ``train`` would load it, with the command's data settings."""
    from ..data.loader import load_data

    return load_data(args.data, configured(args).data)


def run(args) -> int:
    data = load(args)
    s = data.summary()
    lo, hi = data.images.min(), data.images.max()
    native = "x".join(map(str, s.native_shape)) + " px" if s.native_shape else "sizes vary"
    lines = [
        f"source:        {data.source}",
        f"reading:       {data.reading}",
        f"images:        {len(data)} ({native}, {s.source_dtype} in the source)",
        f"models see:    {data.image_size}x{data.image_size} px, stored as "
        f"{s.storage_dtype} (values {lo:g} to {hi:g})",
    ]
    if data.normalize == "global":
        lines.append(
            f"normalisation: global min-max, x = (value - {data.offset[0]:g}) / "
            f"{1 / data.scale[0]:g}, giving [0, 1]"
        )
    else:
        lines.append(
            f"normalisation: per-image min-max to [0, 1] ({s.n_constant_images} constant "
            "images map to 0)"
        )
    if data.labels is not None:
        counts = ", ".join(f"{k} {v}" for k, v in s.label_counts.items())
        lines.append(f"labels:        {counts}")
    else:
        lines.append("labels:        none (the analysis then uses clusters only)")
    if data.groups is not None:
        lines.append(f"patients:      {s.n_patients} (each kept on one side of the split)")
    if data.source_split is not None:
        names, counts = np.unique(data.source_split, return_counts=True)
        lines.append("source split:  " + ", ".join(f"{n} {c}" for n, c in zip(names, counts)))
    if data.extras:
        lines.append(f"other arrays:  {', '.join(data.extras)}")
    lines += [f"note:          {n}" for n in data.notes]
    print("\n".join(lines))
    return 0
