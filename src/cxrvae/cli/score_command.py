"""``cxrvae score``: new images against a trained run."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import RunConfig
from . import options

log = logging.getLogger("cxrvae")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score new images with a trained run: what is unlike its training set",
        description="Read DATA as RUN read its training images (its size, and its pixel range "
        "with global normalisation) and score each image under every model against RUN's "
        "held-out test images: reconstruction error above the floor, negative ELBO, bits per "
        "pixel, their percentile among the test images, a flag, the nearest training images "
        "and the place on RUN's maps (scores.csv); test the batch against the test images "
        "(classifier AUROC, MMD, feature shifts); write score.html. Scored into RUN/scores, "
        "the batch becomes a layer of RUN/explorer.html, which is built again.",
    )
    p.add_argument("run", type=Path, metavar="RUN", help="a run folder trained and analysed")
    p.add_argument("data", metavar="DATA", help=options.DATA_HELP)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder to write (default: RUN/scores/<name of DATA>)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a scoring already in --out")
    p.add_argument(
        "--fpr",
        type=float,
        default=0.01,
        help="flag images whose conformal p-value against the run's test images is at most "
        "this: images drawn like the test images are flagged at this rate or less; with N test "
        "images it must be at least 1/(N+1) (default: 0.01)",
    )
    g = p.add_argument_group("data")
    options.layout(g)
    options.drop_invalid(g)
    options.common(p)


def run(args) -> int:
    from ..finished import score_study

    default = RunConfig().data  # the flags are absent unless given
    layout = vars(args).get("layout", default.layout)
    drop_invalid = vars(args).get("drop_invalid", default.drop_invalid)
    scores = score_study(
        args.run, args.data, args.out, args.fpr, args.overwrite, layout, drop_invalid
    )
    log.info("%s", scores.summary.conclusion)
    return 0
