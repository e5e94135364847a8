"""Command line: ``cxrvae train | run | analyze | report``. Only this module prints."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .config import IMAGE_SIZES, NORMALIZE, ConfigError, RunConfig
from .data import DataError

log = logging.getLogger("cxrvae")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _data_options(p: argparse.ArgumentParser) -> None:
    d = RunConfig()
    g = p.add_argument_group("data")
    g.add_argument(
        "--image-size",
        type=int,
        choices=IMAGE_SIZES,
        default=d.data.image_size,
        help="side of the square images the models see; other sizes are resized "
        "with an antialiased resize (default: %(default)s)",
    )
    g.add_argument(
        "--normalize",
        choices=NORMALIZE,
        default=d.data.normalize,
        help="min-max normalisation over the whole set (global) or over each image "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--drop-invalid",
        action="store_true",
        help="leave out images holding NaN or infinite values instead of refusing the file",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="seed of the split, the weights, the batch order and the analysis "
        "(default: %(default)s)",
    )


def _train_options(p: argparse.ArgumentParser) -> None:
    d = RunConfig()
    g = p.add_argument_group("models and training")
    g.add_argument(
        "--latent-dims",
        type=int,
        nargs="+",
        default=list(d.model.latent_dims),
        metavar="K",
        help="one model per latent size (default: %(default)s)",
    )
    g.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=list(d.model.widths),
        metavar="C",
        help="encoder channel widths, one stride-2 layer each; the decoder mirrors "
        "them (default: %(default)s)",
    )
    g.add_argument("--no-batchnorm", action="store_true", help="no BatchNorm between hidden layers")
    g.add_argument(
        "--epochs", type=int, default=d.train.epochs, help="epochs per model (default: %(default)s)"
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=d.train.batch_size,
        help="images per optimiser step (default: %(default)s)",
    )
    g.add_argument(
        "--lr",
        type=float,
        default=d.train.lr,
        help="peak learning rate of Adam's one-cycle schedule (default: %(default)s)",
    )
    g.add_argument(
        "--beta",
        type=float,
        default=d.train.beta,
        help="weight of the KL term (default: %(default)s, the plain VAE)",
    )
    g.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="at most N optimiser steps per epoch (smoke runs, benchmarks)",
    )
    g.add_argument(
        "--device",
        default=d.train.device,
        help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1... (default: %(default)s)",
    )


def _clusters(value: str):
    """'auto' stays 'auto' (the silhouette chooses K); anything else must be a number."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {value!r}") from None


def _analysis_options(p: argparse.ArgumentParser, keep_saved: bool = False) -> None:
    """Analysis flags; with ``keep_saved`` their defaults are the run's saved values."""
    d = RunConfig().analysis
    g = p.add_argument_group("latent analysis")
    saved = " (default: as saved in the run)" if keep_saved else ""
    g.add_argument(
        "--clusters",
        type=_clusters,
        default=None if keep_saved else "auto",
        metavar="K",
        help="K-means clusters, or 'auto': the K in 2-10 with the best "
        "silhouette" + (saved or " (default: auto)"),
    )
    g.add_argument(
        "--n-samples",
        type=int,
        default=None if keep_saved else d.n_samples,
        help="training images encoded for the latent analysis"
        + (saved or f" (default: {d.n_samples})"),
    )
    g.add_argument(
        "--perplexity",
        type=float,
        default=None if keep_saved else d.perplexity,
        help="t-SNE perplexity" + (saved or f" (default: {d.perplexity:g})"),
    )


def _analysis_overrides(args) -> dict:
    out = {}
    if args.clusters is not None:
        out["clusters"] = None if args.clusters == "auto" else args.clusters
    if args.n_samples is not None:
        out["n_samples"] = args.n_samples
    if args.perplexity is not None:
        out["perplexity"] = args.perplexity
    return out


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxrvae",
        description="Train convolutional VAEs on chest X-rays and explain what their latent "
        "spaces learned.",
        epilog="Run 'cxrvae COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"cxrvae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data_help = (
        "chest X-ray images: an .npz (any common layout: one image array, several "
        "arrays with labels, or MedMNIST's train/val/test) or an .npy array"
    )
    p = sub.add_parser(
        "train",
        help="load the data and train one VAE per latent size",
        description="Load DATA, draw the exploration figures, split 80/20 and "
        "train one convolutional VAE per latent size.",
    )
    p.add_argument("data", type=Path, metavar="DATA", help=data_help)
    _run_options(p)
    _data_options(p)
    _train_options(p)
    _common(p)

    p = sub.add_parser(
        "run",
        help="the whole study: train, analyse every model, write the report",
        description="Everything 'train' does, then for every model the latent "
        "analysis (reconstructions, K-means, PCA, t-SNE, "
        "interpolations) and DIR/report.html.",
    )
    p.add_argument("data", type=Path, metavar="DATA", help=data_help)
    _run_options(p)
    _data_options(p)
    _train_options(p)
    _analysis_options(p)
    _common(p)

    p = sub.add_parser(
        "analyze",
        help="re-run the latent analysis of a trained run, and its report",
        description="Analyse the trained models in "
        "DIR again (no training) and rebuild DIR/report.html.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run folder written by train or run")
    _analysis_options(p, keep_saved=True)
    _common(p)

    p = sub.add_parser(
        "report",
        help="rebuild the report of a run from its files",
        description="Rebuild DIR/report.html from the JSON files and figures in DIR.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run folder")
    _common(p)
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig that the parsed options describe."""
    d = RunConfig()
    train = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "beta": args.beta,
        "max_steps": args.max_steps,
        "device": args.device,
    }
    analysis = _analysis_overrides(args) if hasattr(args, "clusters") else {}
    return d.replace(
        seed=args.seed,
        data={
            "image_size": args.image_size,
            "normalize": args.normalize,
            "drop_invalid": args.drop_invalid,
        },
        model={
            "latent_dims": tuple(args.latent_dims),
            "widths": tuple(args.widths),
            "batchnorm": not args.no_batchnorm,
        },
        train=train,
        analysis=analysis,
    )


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


def _out(args) -> Path:
    return args.out or Path("runs") / args.data.stem


def _train(args) -> dict:
    from .study import train_study

    metrics = train_study(
        args.data,
        config_from_args(args),
        _out(args),
        resume=args.resume,
        overwrite=args.overwrite,
        progress=_progress_factory(),
    )
    for k, m in metrics["models"].items():
        if "failed" in m:
            log.error("latent %s: FAILED after %d good epochs: %s", k, m["epochs"], m["failed"])
            continue
        log.info(
            "latent %s: test loss %.2f = BCE %.2f + KL %.2f nats/image (%d epochs, %.0f s)",
            k,
            m["test_loss"],
            m["test_bce"],
            m["test_kl"],
            m["epochs"],
            m["train_seconds"],
        )
    log.info("wrote %s", _out(args))
    return metrics


def _failures(metrics: dict, out: Path) -> int:
    """Exit status 1 with one line when a model failed, else 0."""
    failed = [k for k, m in metrics["models"].items() if "failed" in m]
    if failed:
        print(
            f"cxrvae: error: training of latent {', '.join(failed)} failed (non-finite loss; "
            f"see {out / 'metrics.json'}); the other models finished",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _cmd_train(args) -> int:
    return _failures(_train(args), _out(args))


def _cmd_run(args) -> int:
    from .study import analyze_study

    metrics = _train(args)
    if any("failed" not in m for m in metrics["models"].values()):
        analyze_study(_out(args))
        log.info("report: %s", _out(args) / "report.html")
    return _failures(metrics, _out(args))


def _cmd_analyze(args) -> int:
    from .study import analyze_study

    analyze_study(args.dir, _analysis_overrides(args))
    log.info("report: %s", args.dir / "report.html")
    return 0


def _cmd_report(args) -> int:
    from .report import build_report
    from .study import require_run

    log.info("report: %s", build_report(require_run(args.dir)))
    return 0


COMMANDS = {"train": _cmd_train, "run": _cmd_run, "analyze": _cmd_analyze, "report": _cmd_report}


def main(argv=None) -> int:
    """Entry point of the ``cxrvae`` command; returns the exit status."""
    from .study import RunFolderError
    from .train import TrainingError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    try:
        return COMMANDS[args.command](args)
    except (DataError, ConfigError, RunFolderError) as e:
        if args.debug:
            raise
        print(f"cxrvae: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingError as e:
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
    import torch

    out = _out(args)
    for ckpt in sorted(out.glob("latent_*/checkpoint.pt")):
        if not (ckpt.parent / "model.safetensors").exists():
            try:
                done = len(torch.load(ckpt, weights_only=True)["history"])
            except Exception:  # a checkpoint from before the interruption may be unreadable
                continue
            return (
                f"{ckpt.parent.name} stopped after epoch {done}, which is saved. Continue "
                "with the same command plus --resume."
            )
    return f"Continue with the same command plus --resume (run folder: {out})."
