"""The flags that several commands share, each declared once, and the settings they give.

Settings flags default to absent (``argparse.SUPPRESS``), so that only the flags given override
a ``--config`` file; their help states the configuration's defaults. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import AUTO, IMAGE_SIZES, LAYOUTS, NORMALIZE, SPLITS, RunConfig, parse_n_clusters
from ..errors import ConfigError

S = argparse.SUPPRESS

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


def _default(flag: bool, on: str, off: str) -> str:
    """How a help text says the default of an on/off setting."""
    return on if flag else off


def config_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read the settings from a TOML file or from a run's config.json (to replay that "
        "run); flags given here override them",
    )


def layout(g) -> None:
    g.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default=S,
        help="how an npz/npy holds the images: nhw (N,H,W), nhwc (N,H,W,C), nchw (N,C,H,W), "
        "rows (N, S*S flattened), keys (one image per array), image (one image); auto finds "
        f"it, or names the readings when two are plausible (default: {RunConfig().data.layout})",
    )


def drop_invalid(g) -> None:
    g.add_argument(
        "--drop-invalid",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="leave out images holding NaN or infinite values, and files of a folder that are "
        "not usable images, instead of refusing the input (default: "
        f"{_default(RunConfig().data.drop_invalid, 'leave them out', 'refuse')})",
    )


def data(p: argparse.ArgumentParser) -> None:
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
    drop_invalid(g)
    layout(g)
    g.add_argument(
        "--split",
        choices=SPLITS,
        default=S,
        help="seeded: a seeded 80/20 split, stratified by label, each patient on one side; "
        "source: the source's own train/test split (an npz array source_split, MedMNIST's "
        "train/val/test, train/ and test/ folders), val images trained on "
        f"(default: {d.data.split})",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=S,
        help="seed of the split, the weights, the batch order and the analysis "
        f"(default: {d.seed})",
    )


def anomaly(p: argparse.ArgumentParser) -> None:
    p.add_argument_group("anomaly detection").add_argument(
        "--train-labels",
        nargs="+",
        default=S,
        metavar="LABEL",
        help="train on the images of these labels only (e.g. normal); the report then says how "
        "well each model's scores tell held-out images of the other labels from held-out images "
        "of these (ROC AUC). Default: every image",
    )


def models(p: argparse.ArgumentParser) -> None:
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


def training(p: argparse.ArgumentParser) -> None:
    d = RunConfig().train
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=S, help=f"epochs per model (default: {d.epochs})")
    g.add_argument("--batch-size", type=int, default=S,
                   help=f"images per optimiser step (default: {d.batch_size})")  # fmt: skip
    g.add_argument("--lr", type=float, default=S, help="peak learning rate of Adam's one-cycle "
                   f"schedule (default: {d.lr:g})")  # fmt: skip
    g.add_argument("--beta", type=float, default=S,
                   help=f"weight of the KL term (default: {d.beta:g}, the plain VAE)")  # fmt: skip
    g.add_argument(
        "--max-steps",
        type=int,
        default=S,
        metavar="N",
        help="at most N optimiser steps per epoch (smoke runs, benchmarks)",
    )
    g.add_argument("--device", default=S, help="auto (CUDA when present, else CPU), cpu, cuda, "
                   f"cuda:1... (default: {d.device})")  # fmt: skip
    g.add_argument(
        "--seeds",
        type=int,
        default=S,
        metavar="N",
        help="train N models per latent size that differ only in their initial weights and "
        "batch order, and say whether the differences between sizes exceed those between "
        f"seeds (default: {d.seeds})",
    )


def parallel(g) -> None:
    g.add_argument(
        "--parallel-models",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train and analyse the latent sizes at once, one process each. Default: yes on a "
        "CPU with two or more cores when training would take about a minute or more (the cores "
        "are shared out as threads), no on GPUs; --parallel-models also puts one model on each "
        "of two or more GPUs",
    )


def processes(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("processes and logs")
    parallel(g)
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


def analysis(p: argparse.ArgumentParser, keep_saved: bool = False) -> None:
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
    g.add_argument("--perplexity", type=float, default=S, help="t-SNE perplexity"
                   + (saved or f" (default: {d.perplexity:g})"))  # fmt: skip


def run_folder(p: argparse.ArgumentParser) -> None:
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


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    p.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")
