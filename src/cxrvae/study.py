"""The study, step by step on a run folder: data and split, training, analysis, report; and the
Python view of a finished run (:class:`Run`, :func:`open_run`).

Each step reads what earlier steps wrote (see :mod:`cxrvae.outputs`), so ``analyze_study`` and
the report can run again on a finished run. This module only orchestrates: the work is done by
the step packages :mod:`cxrvae.data`, :mod:`cxrvae.train`, :mod:`cxrvae.analysis` and
:mod:`cxrvae.report`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import outputs
from .analysis.comparison import compare_models
from .analysis.per_model import AnalysedModel, analyze_model
from .analysis.sampling import draw_sample
from .config import RunConfig
from .data.loader import load_data, require_trainable
from .data.split import identical_images, join_identical, split_indices
from .data.survey import explore_data
from .data.xray import XrayData
from .errors import RunFolderError
from .report.explorer import build_explorer
from .report.page import build_report
from .results import StudyMetrics, Timings
from .runfolder import (
    check_resume,
    history_columns,
    prepare_run_dir,
    read_config,
    read_history,
    read_metrics,
    read_split,
    require_run,
    source_ref,
    write_config,
    write_metrics,
    write_split,
)
from .seeding import derive_seed, seed_everything
from .train import tensorboard_logs
from .train.checkpoints import load_model
from .train.distributed import barrier, init_distributed, is_main, on_main
from .train.loop import resolve_device
from .train.step import train_models

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- data and split


def make_split(data: XrayData, cfg: RunConfig, out: Path, groups=None, resume: bool = False):
    """Seeded train/test indices, saved to ``out/split.npz`` (reused when resuming).

    The images of each group in ``groups`` (patients, with sets of pixel-identical images
    joined, see :func:`cxrvae.data.split.join_identical`) stay on one side.
    """
    if resume and (out / outputs.SPLIT).exists():
        train, test = read_split(out)
        if max(train.max(), test.max()) >= len(data):
            raise RunFolderError(
                f"{out / outputs.SPLIT}: the saved split does not fit these {len(data)} images"
            )
        return train, test
    train, test = split_indices(
        len(data), data.labels, groups, derive_seed(cfg.seed, "split"), cfg.data.test_fraction
    )
    write_split(out, train, test)
    return train, test


def _note_identical(data: XrayData, identical: list, joined: int) -> None:
    if identical:
        sets = "1 set" if len(identical) == 1 else f"{len(identical)} sets"
        spanned = f"; {joined} spanned patients, whose groups were joined" if joined else ""
        data.notes.append(
            f"{sum(len(g) for g in identical)} pixel-identical images ({sets}) are kept on one "
            f"side of the split, like one patient's images{spanned}"
        )


def _data_step(data: XrayData, source, cfg: RunConfig, out: Path, resume: bool):
    """Split the images (identical ones kept together), write config.json and survey how the
    images differ; returns the train and test indices and the data's summary."""
    identical = identical_images(data.images)
    groups, joined = join_identical(data.groups, identical, len(data))
    _note_identical(data, identical, joined)
    train_idx, test_idx = on_main(make_split, data, cfg, out, groups, resume=resume)
    summary = data.summary()
    summary.n_train, summary.n_test = int(len(train_idx)), int(len(test_idx))
    if is_main():
        device = str(resolve_device(cfg.train.device))
        write_config(out, cfg, source_ref(source, data.source), device, summary)
    log.info(
        "data: %d images (%d train / %d test), %dx%d px",
        *(len(data), len(train_idx), len(test_idx), data.image_size, data.image_size),
    )
    summary.exploration = on_main(explore_data, data, out, cfg.seed, test_idx, identical, joined)
    return train_idx, test_idx, summary


# --------------------------------------------------------------------------- training


def train_study(
    source,
    cfg: RunConfig,
    out,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
    tensorboard: bool = False,
    parallel: bool | None = None,
    devices: list[str] | None = None,
) -> StudyMetrics:
    """Data, split, exploration figures and every model: the ``cxrvae train`` command.

    With ``tensorboard``, per-epoch scalars go to ``out/tensorboard/latent_<k>`` (and the
    analysis adds the encoded sample to TensorBoard's projector). ``parallel`` and ``devices``
    choose whether the models train at once in worker processes (see
    :func:`cxrvae.train.step.train_models`). Under torchrun every process trains its share of
    each batch (DistributedDataParallel) and only rank 0 writes files.

    Returns the metrics written to ``out/metrics.json``.
    """
    init_distributed(cfg.train.device)
    if tensorboard:
        tensorboard_logs.require_tensorboard()  # before anything is written
    t0 = time.perf_counter()
    data = load_data(source, cfg.data)  # before touching the folder: bad input writes nothing
    require_trainable(data, source)
    for note in data.notes:
        log.info("data: %s", note)
    if resume:
        check_resume(out, cfg)
    out = Path(on_main(prepare_run_dir, out, resume=resume, overwrite=overwrite))
    seed_everything(cfg.seed)
    train_idx, test_idx, summary = _data_step(data, source, cfg, out, resume)
    timings = Timings(data=time.perf_counter() - t0)
    t0 = time.perf_counter()
    if not is_main():
        progress = None  # under torchrun, rank 0 reports
    elif tensorboard:
        progress = tensorboard_logs.logged(progress, out)
    split = (train_idx, test_idx)
    models = train_models(data, *split, cfg, out, resume, progress, parallel, devices)
    timings.train = time.perf_counter() - t0
    metrics = StudyMetrics(data=summary, models=models, timings=timings)
    if is_main():
        write_metrics(out, metrics)
    barrier()
    log.info("wrote %s", out)
    return metrics


# --------------------------------------------------------------------------- analysis


def analyze_study(out, analysis_overrides: dict | None = None) -> StudyMetrics:
    """Analyse every trained model of the run in ``out``; update metrics.json, the report and
    the explorer.

    ``analysis_overrides`` replaces fields of the saved analysis configuration (``n_clusters``,
    ``n_samples``, ``perplexity``...).
    """
    out = require_run(out)
    cfg, source = read_config(out)
    if analysis_overrides:
        cfg = cfg.replace(analysis=analysis_overrides)
    data = load_data(source, cfg.data)
    train_idx, test_idx = read_split(out)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.train.device)
    metrics = read_metrics(out)
    sample = draw_sample(data, cfg, out, train_idx, test_idx)
    log.info("analysis: %s", sample.note)
    results, timings = {}, {}
    for k in cfg.model.latent_dims:
        if k not in metrics.trained:
            log.warning("latent %d: not analysed (training failed or missing)", k)
            continue
        t0 = time.perf_counter()
        results[k] = _analyse(out, k, sample, device)
        metrics.models[k].analysis = results[k].metrics
        timings[str(k)] = time.perf_counter() - t0
        log.info("latent %d: analysed in %.1f s (K = %d)", k, timings[str(k)],
                 results[k].metrics.n_clusters)  # fmt: skip
    rates = {k: metrics.models[k].test_kl for k in results}
    metrics.analysis = compare_models(results, sample, rates)
    metrics.timings.analysis = timings
    write_metrics(out, metrics)
    t0 = time.perf_counter()
    log.info("report: %s", build_report(out))
    explorer = build_explorer(out)
    if explorer:
        log.info("explorer: %s", explorer)
    metrics.timings.report = time.perf_counter() - t0
    write_metrics(out, metrics)
    return metrics


def _analyse(out: Path, latent_dim: int, sample, device) -> AnalysedModel:
    """One trained model's analysis (and its TensorBoard projector, when the run logs one)."""
    model = load_model(outputs.model_dir(out, latent_dim) / outputs.WEIGHTS, device)
    result = analyze_model(model, sample, latent_dim)
    if tensorboard_logs.has_logs(out):
        tensorboard_logs.log_embedding(
            out, latent_dim, result.mu, result.clusters, sample.labels,
            sample.data.label_names, sample.thumbnails,
        )  # fmt: skip
    return result


# --------------------------------------------------------------------------- the whole study


def run_study(
    source,
    out,
    config: RunConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
    tensorboard: bool = False,
    parallel: bool | None = None,
) -> Run | None:
    """The whole study from Python, with the CLI's defaults: ``cxrvae run`` is this function.

    Parameters
    ----------
    source : str or Path
        A file, a folder or a public set's name, as for :func:`cxrvae.data.loader.load`.
    out : str or Path
        Run folder.
    config : RunConfig, optional
        Defaults to ``RunConfig()``, the settings the command line uses.
    progress : callable(latent_dim, done_epochs, total_epochs) -> callable(row), optional
        Per-model progress reporter factory (see :func:`cxrvae.train.step.train_models`).
    parallel : bool, optional
        Train the models at once in worker processes (see
        :func:`cxrvae.train.step.train_models`).

    Returns the finished :class:`Run`; under torchrun, where rank 0 alone analyses and writes
    the report, the other processes get None.
    """
    metrics = train_study(
        source,
        config or RunConfig(),
        out,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        tensorboard=tensorboard,
        parallel=parallel,
    )
    if not is_main():
        return None
    if metrics.trained:
        analyze_study(out)
    return open_run(out)


# --------------------------------------------------------------------------- a finished run


@dataclass
class Run:
    """A run folder opened from Python: its configuration, metrics, split and per-model files.

    Returned by :func:`run_study` and :func:`open_run`; every accessor reads the folder, so
    ``analyze_study`` or ``build_report`` can change it in between.
    """

    out: Path
    config: RunConfig
    source: str
    metrics: StudyMetrics
    train_idx: np.ndarray
    test_idx: np.ndarray

    @property
    def latent_dims(self) -> list[int]:
        """Latent sizes whose training finished."""
        return list(self.metrics.trained)

    def data(self) -> XrayData:
        """The images, loaded again from the run's source."""
        return load_data(self.source, self.config.data)

    def history(self, latent_dim: int) -> dict[str, np.ndarray]:
        """Per-epoch columns (``epoch``, ``train_loss``, ``test_loss``, ``test_bce``...)."""
        return history_columns(
            read_history(outputs.model_dir(self.out, latent_dim) / outputs.HISTORY)
        )

    def model(self, latent_dim: int, device="cpu"):
        """The trained :class:`~cxrvae.train.model.ConvVAE` in eval mode."""
        return load_model(outputs.model_dir(self.out, latent_dim) / outputs.WEIGHTS, device)

    def embedding(self, latent_dim: int) -> dict[str, np.ndarray]:
        """The analysed sample of one model: ``sample_idx``, ``mu``, ``pca``, ``tsne``,
        ``clusters``, ``recon`` (uint8), and the interpolations (``axes``, ``t``, ``frames``).
        """
        path = outputs.model_dir(self.out, latent_dim) / outputs.EMBEDDING
        if not path.exists():
            raise RunFolderError(f"{path}: no analysis yet (run analyze_study first)")
        with np.load(path) as f:
            return {k: f[k] for k in f.files}


def open_run(out) -> Run:
    """Open a run folder written by ``cxrvae train``/``run`` or :func:`run_study`."""
    out = require_run(out)
    config, source = read_config(out)
    return Run(out, config, source, read_metrics(out), *read_split(out))
