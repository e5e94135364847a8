"""``cxrvae report``: the report and the explorer of a run, rebuilt from its files."""

from __future__ import annotations

import logging
from pathlib import Path

from . import options

log = logging.getLogger("cxrvae")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild the report and the explorer of a run from its files",
        description="Rebuild DIR/report.html and DIR/explorer.html from the files in DIR.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run folder")
    options.common(p)


def run(args) -> int:
    from ..report.explorer import build_explorer
    from ..report.page import build_report
    from ..runfolder import require_run

    log.info("report: %s", build_report(require_run(args.dir)))
    explorer = build_explorer(args.dir)
    if explorer:
        log.info("explorer: %s", explorer)
    return 0
