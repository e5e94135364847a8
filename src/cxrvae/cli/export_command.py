"""``cxrvae export``: any source as a plain npz that ``np.load`` reads."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import RunFolderError
from . import options
from .inspect_command import load

log = logging.getLogger("cxrvae")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write DATA as a plain npz (images uint8, labels, label_names, ids)",
        description="Load DATA as 'train' would (resized and min-max normalised) and write "
        "OUT as an npz holding images (uint8, N x H x W), labels, label_names and ids.",
    )
    p.add_argument("data", metavar="DATA", help=options.DATA_HELP)
    p.add_argument("output", type=Path, metavar="OUT.npz", help="npz file to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.npz if it exists")
    options.config_file(p)
    options.data(p)
    options.common(p)


def run(args) -> int:
    from ..data.xray import export_npz

    if args.output.exists() and not args.overwrite:
        raise RunFolderError(f"{args.output}: exists; pass --overwrite to replace it")
    data = load(args)
    path = export_npz(data, args.output)
    log.info(
        "wrote %s: %d images of %dx%d px (uint8)%s",
        path,
        len(data),
        data.image_size,
        data.image_size,
        f", labels {', '.join(data.label_names)}" if data.labels is not None else "",
    )
    return 0
