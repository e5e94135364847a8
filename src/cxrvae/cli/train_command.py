"""``cxrvae train``: load the data and train one VAE per latent size (``cxrvae run`` adds the
analysis and the report, :mod:`cxrvae.cli.run_command`). Imports no torch until it runs."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from .. import outputs
from ..config import read_config_file
from ..data.catalog import DATASETS, SAMPLE
from ..errors import UsageError
from . import options
from .progress import progress_factory, terminal_logs
from .settings import configured, may_exist

log = logging.getLogger("cxrvae")

EXIT_FAILED = 1
# cxrvae.study.WORKER_MODULES, named here to start the workers' server before torch is imported
WORKER_MODULES = ("cxrvae.study", "torch._dynamo")


def add_options(p) -> None:
    """DATA and the flags ``train`` and ``run`` share."""
    p.add_argument("data", nargs="?", metavar="DATA", help=options.DATA_HELP + options.DEFAULT_HELP)
    for add in (options.config_file, options.run_folder, options.data, options.anomaly,
                options.models, options.training):  # fmt: skip
        add(p)
    options.processes(p)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="load the data and train one VAE per latent size",
        description="Load DATA, draw the exploration figures, split 80/20 and "
        "train one convolutional VAE per latent size.",
    )
    add_options(p)
    options.common(p)


def run(args) -> int:
    from ..study import train_study

    resolve_data(args)
    with terminal_logs():
        metrics = train_study(args.data, configured(args), out_folder(args), **study_options(args))
    return failures(metrics, out_folder(args))


def resolve_data(args) -> None:
    """Fill in DATA when it is omitted: the source that --config names, else the default set;
    and say so."""
    if args.data is not None:
        return
    if args.config is not None:
        _, source = read_config_file(args.config)
        if source:
            args.data = source
            log.info("no DATA given: using %s, the source named by %s", source, args.config)
            return
    args.data = SAMPLE
    log.info(
        "no DATA given: studying the packaged sample of 480 pediatric chest X-rays at 64 px "
        "(Kermany et al. 2018, CC BY 4.0; no download). Give a file, a folder or a public "
        "set's name (%s) to study other images",
        ", ".join(DATASETS),
    )


def out_folder(args) -> Path:
    """--out, else ``runs/<name of DATA>``."""
    if args.out:
        return args.out
    path = Path(args.data)
    name = path.stem if path.suffix.lower() in (".npz", ".npy") else path.name or "data"
    return Path("runs") / re.sub(r"[^\w.-]+", "_", name)


def study_options(args) -> dict:
    """The keyword arguments that ``train`` and ``run`` pass to the study functions."""
    return {
        "resume": args.resume,
        "overwrite": args.overwrite,
        "progress": progress_factory(),
        "tensorboard": args.tensorboard,
        "parallel": args.parallel_models,
    }


def failures(metrics, out: Path) -> int:
    """Exit status 1 with one line when a model failed, else 0."""
    from ..train.distributed import is_main

    failed = [str(k) for k, m in metrics.models.items() if not m.ok]
    if failed and not is_main():
        return EXIT_FAILED
    if failed:
        print(
            f"cxrvae: error: training of latent {', '.join(failed)} failed (non-finite loss; "
            f"see {out / outputs.METRICS}); the other models finished",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def interrupted(args) -> str:
    """Which model and epoch an interrupted train/run reached, and how to continue."""
    from ..train.checkpoints import checkpoint_history

    out = out_folder(args)
    stopped = []  # models trained at once (--parallel-models) all stop
    for folder in outputs.model_dirs(out):
        if (folder / outputs.CHECKPOINT).exists() and not (folder / outputs.WEIGHTS).exists():
            try:
                done = len(checkpoint_history(folder / outputs.CHECKPOINT))
            except Exception:  # a checkpoint from before the interruption may be unreadable
                continue
            stopped.append(f"{folder.name} stopped after epoch {done}")
    if stopped:
        saved = "which is saved" if len(stopped) == 1 else "each saved"
        return f"{', '.join(stopped)}, {saved}. Continue with the same command plus --resume."
    return f"Continue with the same command plus --resume (run folder: {out})."


def device(args) -> str:
    """The --device setting (flag or --config file); "auto" until the settings are checked."""
    try:
        return configured(args).train.device
    except UsageError:
        return "auto"  # the command itself reports the error


# --------------------------------------------------------------------------- before torch


def warm_workers(args) -> None:
    """Start the workers' server now where the models may train at once on this CPU
    (:func:`server_threads`).

    The server imports torch and the study's modules on another core while this process
    imports them, so the workers can start as soon as the images are split.
    Where the models then train in turn it stays idle; where the plan wants workers with
    another waiting policy, they are spawned (:func:`cxrvae.train.workers.start_server`).
    """
    threads = server_threads(args)
    if threads is not None:
        from ..train import workers

        workers.start_server(WORKER_MODULES, threads)


def server_threads(args) -> int | None:
    """The torch threads of each worker where the models of ``train`` or ``run`` may train at
    once on this CPU (see :func:`cxrvae.train.parallel.plan_parallel`), else None. Imports no
    torch."""
    if args.parallel_models is False:
        return None
    try:
        cfg = configured(args)
        if not may_exist(args.data):
            return None
    except UsageError:
        return None  # the command itself reports it
    from ..train import workers

    n_models = len(cfg.model.latent_dims)
    under_torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1  # processes share models
    if n_models < 2 or cfg.train.device not in ("auto", "cpu") or under_torchrun:
        return None
    if workers.cpu_count() < 2:
        return None
    return workers.share_cores(n_models)[1]
