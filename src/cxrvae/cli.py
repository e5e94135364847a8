"""Command line: ``cxrvae train | run | analyze | report | score | inspect | export``.

Only this module prints.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from . import __version__, outputs
from .config import (
    AUTO,
    IMAGE_SIZES,
    LAYOUTS,
    NORMALIZE,
    RunConfig,
    merge_settings,
    parse_n_clusters,
    read_config_file,
    section_of,
)
from .data.catalog import DATASETS, SAMPLE, parse_dataset
from .errors import ConfigError, RunFolderError, TrainingError, UsageError

log = logging.getLogger("cxrvae")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# cxrvae.study.WORKER_MODULES, named here to start the workers' server before torch is imported
WORKER_MODULES = ("cxrvae.study", "torch._dynamo")


S = argparse.SUPPRESS  # settings default to absent, so that only given flags override a file


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read the settings from a TOML file or from a run's config.json (to replay that "
        "run); flags given here override them",
    )


def _default(flag: bool, on: str, off: str) -> str:
    """How a help text says the default of an on/off setting."""
    return on if flag else off


def _data_options(p: argparse.ArgumentParser) -> None:
    d = RunConfig()
    g = p.add_argument_group("data")
    g.add_argument(
        "--image-size",
        type=int,
        choices=IMAGE_SIZES,
        default=S,
        help="side of the square images the models see; other sizes are resized "
        f"with an antialiased resize (default: {d.data.image_size}, or the size of a "
        "public set named with one, e.g. pneumoniamnist:128)",
    )
    g.add_argument(
        "--normalize",
        choices=NORMALIZE,
        default=S,
        help="min-max normalisation over the whole set (global) or over each image "
        f"(default: {d.data.normalize})",
    )
    g.add_argument(
        "--drop-invalid",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="leave out images holding NaN or infinite values, and files of a folder that are "
        "not usable images, instead of refusing the input (default: "
        f"{_default(d.data.drop_invalid, 'leave them out', 'refuse')})",
    )
    g.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default=S,
        help="how an npz/npy holds the images: nhw (N,H,W), nhwc (N,H,W,C), nchw (N,C,H,W), "
        "rows (N, S*S flattened), keys (one image per array), image (one image); auto finds "
        f"it, or names the readings when two are plausible (default: {d.data.layout})",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=S,
        help="seed of the split, the weights, the batch order and the analysis "
        f"(default: {d.seed})",
    )


def _anomaly_option(p: argparse.ArgumentParser) -> None:
    p.add_argument_group("anomaly detection").add_argument(
        "--train-labels",
        nargs="+",
        default=S,
        metavar="LABEL",
        help="train on the images of these labels only (e.g. normal); the report then says how "
        "well each model's scores tell held-out images of the other labels from held-out images "
        "of these (ROC AUC). Default: every image",
    )


def _model_options(p: argparse.ArgumentParser) -> None:
    d = RunConfig().model
    g = p.add_argument_group("models")
    g.add_argument(
        "--latent-dims",
        type=int,
        nargs="+",
        default=S,
        metavar="K",
        help=f"one model per latent size (default: {' '.join(map(str, d.latent_dims))})",
    )
    g.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=S,
        metavar="C",
        help="encoder channel widths, one stride-2 layer each; the decoder mirrors "
        f"them (default: {' '.join(map(str, d.widths))})",
    )
    g.add_argument(
        "--batchnorm",
        action=argparse.BooleanOptionalAction,
        default=S,
        help=f"BatchNorm between hidden layers (default: {_default(d.batchnorm, 'on', 'off')})",
    )


def _train_options(p: argparse.ArgumentParser) -> None:
    d = RunConfig().train
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=S, help=f"epochs per model (default: {d.epochs})")
    g.add_argument(
        "--batch-size",
        type=int,
        default=S,
        help=f"images per optimiser step (default: {d.batch_size})",
    )
    g.add_argument(
        "--lr",
        type=float,
        default=S,
        help=f"peak learning rate of Adam's one-cycle schedule (default: {d.lr:g})",
    )
    g.add_argument(
        "--beta",
        type=float,
        default=S,
        help=f"weight of the KL term (default: {d.beta:g}, the plain VAE)",
    )
    g.add_argument(
        "--max-steps",
        type=int,
        default=S,
        metavar="N",
        help="at most N optimiser steps per epoch (smoke runs, benchmarks)",
    )
    g.add_argument(
        "--device",
        default=S,
        help=f"auto (CUDA when present, else CPU), cpu, cuda, cuda:1... (default: {d.device})",
    )


def _parallel_option(g) -> None:
    g.add_argument(
        "--parallel-models",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train and analyse the latent sizes at once, one process each. Default: yes on a "
        "CPU with two or more cores when training would take about a minute or more (the cores "
        "are shared out as threads), no on GPUs; --parallel-models also puts one model on each "
        "of two or more GPUs",
    )


def _process_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("processes and logs")
    _parallel_option(g)
    g.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log per-epoch losses to DIR/tensorboard, and the encoded sample with "
        "thumbnails for TensorBoard's projector (needs: pip install 'cxrvae[tensorboard]')",
    )


def _n_clusters(value: str):
    """--n-clusters as the configuration reads it (see :func:`cxrvae.config.parse_n_clusters`)."""
    try:
        return parse_n_clusters(value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _analysis_options(p: argparse.ArgumentParser, keep_saved: bool = False) -> None:
    """Analysis flags; with ``keep_saved`` their defaults are the run's saved values."""
    d = RunConfig().analysis
    g = p.add_argument_group("latent analysis")
    saved = " (default: as saved in the run)" if keep_saved else ""
    g.add_argument(
        "--n-clusters",
        type=_n_clusters,
        default=S,
        metavar="K",
        help=f"K-means clusters, or '{AUTO}': the K in {d.k_range[0]}-{d.k_range[1]} with the "
        "best silhouette" + (saved or f" (default: {d.n_clusters or AUTO})"),
    )
    g.add_argument(
        "--n-samples",
        type=int,
        default=S,
        help="training images encoded for the latent analysis"
        + (saved or f" (default: {d.n_samples})"),
    )
    g.add_argument(
        "--perplexity",
        type=float,
        default=S,
        help="t-SNE perplexity" + (saved or f" (default: {d.perplexity:g})"),
    )


def _run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run folder")
    g.add_argument(
        "--out", type=Path, default=None, help="run folder (default: runs/<name of DATA>)"
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out: finished models are kept, an interrupted "
        "one continues from its last completed epoch",
    )
    g.add_argument("--overwrite", action="store_true", help="replace the run already in --out")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    p.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")


DATA_HELP = (
    "chest X-ray images: an .npz (any common layout: one image array, one image per key, "
    "arrays with labels, or MedMNIST's train/val/test), an .npy array, a folder of "
    "PNG/JPEG/TIFF/BMP or DICOM files (labels from subfolder names) or one such file, "
    "'sample' (480 X-rays shipped with cxrvae), or a public set: pneumoniamnist or "
    "chestmnist, optionally with a size (pneumoniamnist:128), downloaded once and cached"
)
DEFAULT_HELP = (
    " (default: the DATA named by --config, else the packaged sample: 480 pediatric chest "
    "X-rays at 64 px, no download)"
)


def _add_training_commands(sub) -> None:
    p = sub.add_parser(
        "train",
        help="load the data and train one VAE per latent size",
        description="Load DATA, draw the exploration figures, split 80/20 and "
        "train one convolutional VAE per latent size.",
    )
    p.add_argument("data", nargs="?", metavar="DATA", help=DATA_HELP + DEFAULT_HELP)
    for add in (_config_option, _run_options, _data_options, _anomaly_option, _model_options,
                _train_options):  # fmt: skip
        add(p)
    _process_options(p)
    _common(p)

    p = sub.add_parser(
        "run",
        help="the whole study: train, analyse every model, write the report",
        description="Everything 'train' does, then for every model the latent "
        "analysis (reconstructions, K-means, PCA, t-SNE, "
        "interpolations), DIR/report.html and DIR/explorer.html.",
    )
    p.add_argument("data", nargs="?", metavar="DATA", help=DATA_HELP + DEFAULT_HELP)
    for add in (_config_option, _run_options, _data_options, _anomaly_option, _model_options,
                _train_options):  # fmt: skip
        add(p)
    _process_options(p)
    _analysis_options(p)
    _common(p)


def _add_run_folder_commands(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="re-run the latent analysis of a trained run, and its report",
        description="Analyse the trained models in "
        "DIR again (no training) and rebuild DIR/report.html and DIR/explorer.html.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run folder written by train or run")
    _analysis_options(p, keep_saved=True)
    _parallel_option(p.add_argument_group("processes"))
    _common(p)

    p = sub.add_parser(
        "report",
        help="rebuild the report and the explorer of a run from its files",
        description="Rebuild DIR/report.html and DIR/explorer.html from the files in DIR.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run folder")
    _common(p)


def _add_score_command(sub) -> None:
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
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
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
        help="flag images whose reconstruction error above the floor exceeds that of all but "
        "this share of the run's test images: the false-positive rate on images like them "
        "(default: 0.01)",
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default="auto",
        help="how an npz/npy holds the images (see 'cxrvae run --help'; default: auto)",
    )
    g.add_argument("--drop-invalid", action="store_true",
                   help="leave out unusable images instead of refusing DATA")  # fmt: skip
    _common(p)


def _add_data_commands(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="show what would be loaded from DATA, without training",
        description="Load DATA as 'train' would and print what was found: count, shape, "
        "types, value range, labels, patients, and what resizing and normalisation do.",
    )
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    _config_option(p)
    _data_options(p)
    _common(p)

    p = sub.add_parser(
        "export",
        help="write DATA as a plain npz (images uint8, labels, label_names, ids)",
        description="Load DATA as 'train' would (resized and min-max normalised) and write "
        "OUT as an npz holding images (uint8, N x H x W), labels, label_names and ids.",
    )
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("output", type=Path, metavar="OUT.npz", help="npz file to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.npz if it exists")
    _config_option(p)
    _data_options(p)
    _common(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxrvae",
        description="Train convolutional VAEs on chest X-rays and explain what their latent "
        "spaces learned.",
        epilog="Run 'cxrvae COMMAND --help' for the options of a command. Settings flags "
        "(--epochs, --latent-dims...) are the kebab-case names of the fields of a --config "
        "file.",
    )
    parser.add_argument("--version", action="version", version=f"cxrvae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_training_commands(sub)
    _add_run_folder_commands(sub)
    _add_score_command(sub)
    _add_data_commands(sub)
    return parser


def settings_from_args(args: argparse.Namespace) -> dict:
    """The settings given as flags, nested like a config file (``{"train": {"epochs": 5}}``)."""
    given = vars(args)
    out: dict = {}
    for name, value in given.items():
        section = section_of(name)
        if section == "":
            out[name] = value
        elif section is not None:
            out.setdefault(section, {})[name] = value
    return out


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig of a command: defaults, then the --config file, then the flags given.

    When neither sets the image size, a public set named with a size (pneumoniamnist:128)
    sets it.
    """
    file_settings: dict = {}
    if getattr(args, "config", None):
        file_settings, _ = read_config_file(args.config)
        try:
            RunConfig.from_dict(file_settings)
        except UsageError as e:
            raise ConfigError(f"{args.config}: {e}") from None
    settings = merge_settings(file_settings, settings_from_args(args))
    if "image_size" not in settings.get("data", {}):
        size = _size_of_named_set(getattr(args, "data", None))
        if size is not None:
            settings = merge_settings(settings, {"data": {"image_size": size}})
    return RunConfig.from_dict(settings)


def _progress_factory():
    """Per-model progress: a tqdm bar on a terminal, one log line per epoch otherwise."""
    tty = sys.stderr.isatty()

    def start(latent_dim: int, done: int, total: int):
        if tty:
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                initial=done,
                desc=f"latent {latent_dim:>3}",
                unit="epoch",
                dynamic_ncols=True,
            )

            def report(row):
                bar.update(1)
                bar.set_postfix(  # a dict keeps this order (keyword arguments get sorted)
                    {
                        "train": f"{row['train_loss']:.1f}",
                        "test": f"{row['test_loss']:.1f}",
                        "test BCE": f"{row['test_bce']:.1f}",
                        "test KL": f"{row['test_kl']:.2f}",
                    }
                )
                if row["epoch"] == total:
                    bar.close()
        else:

            def report(row):
                log.info(
                    "latent %d epoch %d/%d: train %.2f test %.2f (bce %.2f, kl %.2f) %.1fs",
                    latent_dim,
                    row["epoch"],
                    total,
                    row["train_loss"],
                    row["test_loss"],
                    row["test_bce"],
                    row["test_kl"],
                    row["seconds"],
                )

        return report

    return start


def _resolve_data(args) -> None:
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


def _size_of_named_set(data) -> int | None:
    """The model size for a public set named with a size (``pneumoniamnist:128`` -> 128)."""
    if data is None or Path(data).exists():
        return None
    named = parse_dataset(data)
    if named is None or named[1] is None:
        return None
    return min(IMAGE_SIZES, key=lambda s: (abs(s - named[1]), -s))


def _out(args) -> Path:
    if args.out:
        return args.out
    path = Path(args.data)
    name = path.stem if path.suffix.lower() in (".npz", ".npy") else path.name or "data"
    return Path("runs") / re.sub(r"[^\w.-]+", "_", name)


def _terminal_logs():
    """On a terminal, log lines are written above the progress bars instead of through them."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


def _study_options(args) -> dict:
    """The keyword arguments that ``train`` and ``run`` pass to the study functions."""
    return {
        "resume": args.resume,
        "overwrite": args.overwrite,
        "progress": _progress_factory(),
        "tensorboard": args.tensorboard,
        "parallel": args.parallel_models,
    }


def _failures(metrics, out: Path) -> int:
    """Exit status 1 with one line when a model failed, else 0."""
    from .train.distributed import is_main

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


def _cmd_train(args) -> int:
    from .study import train_study

    _resolve_data(args)
    with _terminal_logs():
        metrics = train_study(args.data, config_from_args(args), _out(args), **_study_options(args))
    return _failures(metrics, _out(args))


def _cmd_run(args) -> int:
    from .study import run_study

    _resolve_data(args)
    with _terminal_logs():
        run = run_study(args.data, _out(args), config_from_args(args), **_study_options(args))
    if run is None:  # under torchrun, rank 0 analyses and reports
        return 0
    return _failures(run.metrics, _out(args))


def _cmd_analyze(args) -> int:
    from .study import analyze_study

    analyze_study(args.dir, settings_from_args(args).get("analysis"), args.parallel_models)
    return 0


def _cmd_report(args) -> int:
    from .report.explorer import build_explorer
    from .report.page import build_report
    from .runfolder import require_run

    log.info("report: %s", build_report(require_run(args.dir)))
    explorer = build_explorer(args.dir)
    if explorer:
        log.info("explorer: %s", explorer)
    return 0


def _cmd_score(args) -> int:
    from .trained import score_study

    scores = score_study(
        args.run, args.data, args.out, args.fpr, args.overwrite, args.layout, args.drop_invalid
    )
    log.info("%s", scores.summary.conclusion)
    return 0


def _load(args):
    from .data.loader import load_data

    return load_data(args.data, config_from_args(args).data)


def _cmd_inspect(args) -> int:
    data = _load(args)
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


def _cmd_export(args) -> int:
    from .data.xray import export_npz

    if args.output.exists() and not args.overwrite:
        raise RunFolderError(f"{args.output}: exists; pass --overwrite to replace it")
    data = _load(args)
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


COMMANDS = {
    "train": _cmd_train,
    "run": _cmd_run,
    "analyze": _cmd_analyze,
    "report": _cmd_report,
    "score": _cmd_score,
    "inspect": _cmd_inspect,
    "export": _cmd_export,
}


def main(argv=None) -> int:
    """Entry point of the ``cxrvae`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # before importing torch: --help stays quick
    _warm_workers(args)
    import matplotlib

    from .train.distributed import init_distributed, is_main

    matplotlib.use("Agg")  # the command line only writes figures to files
    several = args.command in ("train", "run") and init_distributed(_device(args))
    logging.basicConfig(
        level=logging.WARNING if args.quiet or not is_main() else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    if not args.debug:
        _quiet_readers()
    try:
        return _dispatch(args)
    finally:
        if several:
            import torch.distributed as dist

            dist.destroy_process_group()


def _quiet_readers() -> None:
    """Leave out what the readers' libraries say of a damaged file (pydicom's log lines and
    tracebacks, its and Pillow's warnings: several lines each). The command says in one line
    what matters: that a file was refused, and why. ``--debug`` shows them."""
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"(pydicom|PIL)(\.|$)")


def _warm_workers(args) -> None:
    """Start the workers' server now where ``train`` or ``run`` may train its models at once on
    this CPU (:func:`_server_threads`).

    The server imports torch and the study's modules on another core while this process
    imports them, so the workers can start as soon as the images are split (benchmarks/README.md).
    Where the models then train in turn it stays idle; where the plan wants workers with
    another waiting policy, they are spawned (:func:`cxrvae.train.workers.start_server`).
    """
    threads = _server_threads(args)
    if threads is not None:
        from .train import workers

        workers.start_server(WORKER_MODULES, threads)


def _server_threads(args) -> int | None:
    """The torch threads of each worker where the models of ``train`` or ``run`` may train at
    once on this CPU (see :func:`cxrvae.train.parallel.plan_parallel`), else None. Imports no
    torch."""
    if args.command not in ("train", "run") or args.parallel_models is False:
        return None
    try:
        cfg = config_from_args(args)
        if not _may_exist(args.data):
            return None
    except UsageError:
        return None  # the command itself reports it
    from .train import workers

    n_models = len(cfg.model.latent_dims)
    under_torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1  # processes share models
    if n_models < 2 or cfg.train.device not in ("auto", "cpu") or under_torchrun:
        return None
    if workers.cpu_count() < 2:
        return None
    return workers.share_cores(n_models)[1]


def _may_exist(data) -> bool:
    """Whether DATA may name images: omitted, a path that exists, the sample or a public set."""
    return data is None or data == SAMPLE or Path(data).exists() or parse_dataset(data) is not None


def console() -> None:
    """The ``cxrvae`` program: :func:`main`, then exit with its status.

    Before exiting, the objects left are moved out of the garbage collector's sight
    (``gc.freeze``): Python's last collection at exit would otherwise walk everything torch,
    scikit-learn and matplotlib made, for nothing, as the process ends (benchmarks/README.md).
    """
    status = main()
    gc.freeze()
    sys.exit(status)


def _device(args) -> str:
    """The --device setting (flag or --config file); "auto" until the settings are checked."""
    try:
        return config_from_args(args).train.device
    except UsageError:
        return "auto"  # the command itself reports the error


def _dispatch(args) -> int:
    """Run the command; turn the errors users can fix into one line and an exit status."""
    from .train.distributed import is_main
    from .train.workers import WorkerDied

    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        if not is_main():
            return EXIT_USAGE  # under torchrun, rank 0 says it
        if args.debug:
            raise
        print(f"cxrvae: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (TrainingError, WorkerDied) as e:
        if args.debug:
            raise
        print(f"cxrvae: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # unwritable folder, full disk...: say which file, keep what exists
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"cxrvae: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\ncxrvae: interrupted. {_where_stopped(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _where_stopped(args) -> str:
    """Which model and epoch an interrupted train/run reached, and how to continue."""
    if args.command not in ("train", "run"):
        return "Nothing was changed that a new run would not write again."
    from .train.checkpoints import checkpoint_history

    out = _out(args)
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
