"""``cxrvae analyze``: the latent analysis of a trained run again, and its report."""

from __future__ import annotations

from pathlib import Path

from ..config import settings_from_flags
from . import options


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="re-run the latent analysis of a trained run, and its report",
        description="Analyse the trained models in "
        "DIR again (no training) and rebuild DIR/report.html and DIR/explorer.html.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run folder written by train or run")
    options.analysis(p, keep_saved=True)
    options.parallel(p.add_argument_group("processes"))
    options.common(p)


def run(args) -> int:
    from ..study import analyze_study

    analyze_study(args.dir, settings_from_flags(vars(args)).get("analysis"), args.parallel_models)
    return 0
