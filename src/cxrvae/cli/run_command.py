"""``cxrvae run``: the whole study, everything ``train`` does, then the analysis of every model
and the report. Imports no torch until it runs."""

from __future__ import annotations

from . import options
from . import train_command as train
from .progress import terminal_logs
from .settings import configured

# What run shares with train: how it starts, stops and says where it stopped
warm_workers, interrupted, device = train.warm_workers, train.interrupted, train.device


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="the whole study: train, analyse every model, write the report",
        description="Everything 'train' does, then for every model the latent "
        "analysis (reconstructions, K-means, PCA, t-SNE, "
        "interpolations), DIR/report.html and DIR/explorer.html.",
    )
    train.add_options(p)
    options.analysis(p)
    options.common(p)


def run(args) -> int:
    from ..study import run_study

    train.resolve_data(args)
    out = train.out_folder(args)
    with terminal_logs():
        study = run_study(args.data, out, configured(args), **train.study_options(args))
    if study is None:  # under torchrun, rank 0 analyses and reports
        return 0
    return train.failures(study.metrics, out)
