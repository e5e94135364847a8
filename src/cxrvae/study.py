"""The study, step by step on a run folder: data and split, training, analysis, report.

Each step reads what earlier steps wrote (see :mod:`cxrvae.outputs`), so ``analyze_study`` and
the report can run again on a finished run. This module only orchestrates: the work is done by
the step packages :mod:`cxrvae.data`, :mod:`cxrvae.train`, :mod:`cxrvae.analysis` and
:mod:`cxrvae.report`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from . import outputs
from .analysis.all_models import analyze_models, plan_analysis
from .analysis.comparison import compare_models
from .analysis.sampling import draw_sample
from .analysis.seeds import seed_variation
from .config import RunConfig
from .data.loader import load_data, require_trainable
from .data.split import (
    identical_images,
    join_identical,
    source_sides,
    source_split_indices,
    split_indices,
)
from .data.survey import explore_data, survey_note
from .data.xray import XrayData
from .errors import DataError, RunFolderError
from .finished import Run, open_run
from .report.explorer import build_explorer
from .report.page import build_report
from .results import StudyMetrics, Timings
from .runfolder import (
    check_resume,
    prepare_run_dir,
    read_config,
    read_metrics,
    read_others,
    read_split,
    require_run,
    source_ref,
    write_config,
    write_metrics,
    write_split,
)
from .seeding import derive_seed, seed_everything
from .train import tensorboard_logs, workers
from .train.all_models import plan_training, train_models
from .train.distributed import barrier, init_distributed, is_main, on_main
from .train.loop import resolve_device

log = logging.getLogger(__name__)

# What the worker processes that train and analyse models at once import, once for all of them
# (see cxrvae.train.workers.start_server): this module, so every step's, and the compiler that
# torch.optim imports when a process makes its first optimiser (seconds of each training
# worker's start otherwise). cxrvae.cli.train starts the server with the same list.
WORKER_MODULES = (__name__, "torch._dynamo")


# --------------------------------------------------------------------------- data and split


def make_split(data: XrayData, cfg: RunConfig, out: Path, groups=None, resume: bool = False):
    """Train/test indices, saved to ``out/split.npz`` (reused when resuming), and the held-out
    images of the labels not trained on (empty unless ``train_labels`` is set).

    The seeded split keeps the images of each group in ``groups`` (patients, with sets of
    pixel-identical images joined, see :func:`cxrvae.data.split.join_identical`) on one side;
    ``split = "source"`` takes the source's own split as it is.
    """
    if resume and (out / outputs.SPLIT).exists():
        train, test = read_split(out)
        if max(train.max(), test.max()) >= len(data):
            raise RunFolderError(
                f"{out / outputs.SPLIT}: the saved split does not fit these {len(data)} images"
            )
        return train, test, read_others(out)
    if cfg.data.split == "source":
        train, test = source_split_indices(data.source_split, data.source)
    else:
        train, test = split_indices(
            len(data), data.labels, groups, derive_seed(cfg.seed, "split"), cfg.data.test_fraction
        )
    others = None
    if cfg.data.train_labels:  # anomaly detection: the others only ever held out
        kept = np.isin(np.asarray(data.label_names)[data.labels], cfg.data.train_labels)
        train, test, others = train[kept[train]], test[kept[test]], test[~kept[test]]
    write_split(out, train, test, others)
    return train, test, np.zeros(0, np.int64) if others is None else others


def check_train_labels(data: XrayData, cfg: RunConfig, source) -> None:
    """Refuse ``train_labels`` that DATA does not have, or that leave nothing to detect."""
    wanted = cfg.data.train_labels
    if not wanted:
        return
    if data.labels is None:
        raise DataError(f"{source}: --train-labels needs labelled images; these have no labels")
    unknown = [w for w in wanted if w not in data.label_names]
    if unknown:
        raise DataError(
            f"{source}: no label {unknown[0]!r} (the labels are {', '.join(data.label_names)})"
        )
    if set(wanted) >= set(data.label_names):
        raise DataError(
            f"{source}: --train-labels names every label; anomaly detection needs others"
        )


def _note_identical(data: XrayData, identical: list, joined: int) -> None:
    if identical:
        sets = "1 set" if len(identical) == 1 else f"{len(identical)} sets"
        spanned = f"; {joined} spanned patients, whose groups were joined" if joined else ""
        how = ", like one patient's images" if data.groups is not None else ""
        data.notes.append(
            f"{sum(len(g) for g in identical)} pixel-identical images ({sets}) are kept on one "
            f"side of the split{how}{spanned}"
        )


def _note_source_split(data: XrayData, train, test) -> None:
    """Say that the source's split is used, and how many patients it puts on both sides."""
    n_val = int(np.sum(source_sides(data.source_split, data.source) == "val"))
    val = f" (its {n_val} validation images among them)" if n_val else ""
    note = f"the source's own split: {len(train)} training{val} and {len(test)} test images"
    if data.groups is not None:
        both = np.intersect1d(data.groups[train], data.groups[test])
        note += f"; {len(both)} patients have images on both sides" if len(both) else ""
    data.notes.append(note)


def _data_step(data: XrayData, source, cfg: RunConfig, out: Path, resume: bool, parallel, devices):
    """Split the images (identical ones kept together), write config.json, plan the training
    and survey how the images differ; returns the train and test indices, the data's summary
    and the training's plan (:func:`cxrvae.train.all_models.plan_training`).

    Where the plan trains at once, the workers' server starts before the survey: it imports
    what they need while the images are surveyed."""
    identical = identical_images(data.images)
    groups, joined = join_identical(data.groups, identical, len(data))
    _note_identical(data, identical, joined)
    train_idx, test_idx, others = on_main(make_split, data, cfg, out, groups, resume=resume)
    if cfg.data.train_labels:
        data.notes.append(
            f"trained on {', '.join(cfg.data.train_labels)} only: {len(train_idx)} training "
            f"and {len(test_idx)} held-out images; the {len(others)} held-out images of the "
            "other labels test anomaly detection"
        )
    summary = data.summary()
    summary.n_train, summary.n_test = int(len(train_idx)), int(len(test_idx))
    summary.split = cfg.data.split
    if cfg.data.train_labels:
        summary.train_labels, summary.n_others = list(cfg.data.train_labels), int(len(others))
    if is_main():
        device = str(resolve_device(cfg.train.device))
        write_config(out, cfg, source_ref(source, data.source), device, summary)
    log.info(
        "data: %d images (%d train / %d test), %dx%d px",
        *(len(data), len(train_idx), len(test_idx), data.image_size, data.image_size),
    )
    plan = plan_training(cfg, data, len(train_idx), parallel, devices)
    if plan is not None:
        workers.start_server(WORKER_MODULES, plan.threads)
    summary.exploration = on_main(explore_data, data, out, cfg.seed, test_idx, identical, joined)
    return train_idx, test_idx, summary, plan


# --------------------------------------------------------------------------- training


def _load_trainable(source, cfg: RunConfig) -> XrayData:
    """The images of ``source``, refused unless they can be trained on as ``cfg`` says; their
    notes logged."""
    data = load_data(source, cfg.data)
    require_trainable(data, source)
    check_train_labels(data, cfg, source)
    if cfg.data.split == "source":
        _note_source_split(data, *source_split_indices(data.source_split, source))
    data.notes += [n for n in [survey_note(len(data))] if n]
    for note in data.notes:
        log.info("data: %s", note)
    return data


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
    :func:`cxrvae.train.all_models.plan_training`). Under torchrun every process trains its share of
    each batch (DistributedDataParallel) and only rank 0 writes files.

    Returns the metrics written to ``out/metrics.json``.
    """
    init_distributed(cfg.train.device)
    if tensorboard:
        tensorboard_logs.require_tensorboard()  # before anything is written
    t0 = time.perf_counter()
    data = _load_trainable(source, cfg)  # before touching the folder: bad input writes nothing
    if resume:
        check_resume(out, cfg)
    out = Path(on_main(prepare_run_dir, out, resume=resume, overwrite=overwrite))
    seed_everything(cfg.seed)
    train_idx, test_idx, summary, plan = _data_step(
        data, source, cfg, out, resume, parallel, devices
    )
    timings = Timings(data=time.perf_counter() - t0)
    t0 = time.perf_counter()
    if not is_main():
        progress = None  # under torchrun, rank 0 reports
    elif tensorboard:
        progress = tensorboard_logs.logged(progress, out)
    models = train_models(data, train_idx, test_idx, cfg, out, resume, progress, plan)
    timings.train = time.perf_counter() - t0
    metrics = StudyMetrics(data=summary, models=models, timings=timings)
    if is_main():
        write_metrics(out, metrics)
    barrier()
    for r in range(1, cfg.train.seeds):
        _train_repeat(data, train_idx, test_idx, cfg, out, r, summary, source, resume, progress,
                      plan)  # fmt: skip
    log.info("wrote %s", out)
    return metrics


def _train_repeat(data, train_idx, test_idx, cfg, out, r, summary, source, resume, progress, plan):
    """The models of seed ``r + 1`` (``--seeds``) in their run folder ``out/repeats/<r + 1>``:
    the run's split and settings, their own initial weights and batch order."""
    folder = outputs.repeat_dir(out, r)
    repeat = cfg.replace(train={"repeat": r})
    log.info("seed %d of %d: training the models in %s", r + 1, cfg.train.seeds, folder)
    if is_main():
        folder.mkdir(parents=True, exist_ok=True)
        device = str(resolve_device(cfg.train.device))
        write_config(folder, repeat, source_ref(source, data.source), device, summary)
        shutil.copyfile(out / outputs.SPLIT, folder / outputs.SPLIT)
    barrier()
    t0 = time.perf_counter()
    models = train_models(data, train_idx, test_idx, repeat, folder, resume, progress, plan)
    timings = Timings(train=time.perf_counter() - t0)
    if is_main():
        write_metrics(folder, StudyMetrics(data=summary, models=models, timings=timings))
    barrier()


# --------------------------------------------------------------------------- analysis


def analyze_study(
    out, analysis_overrides: dict | None = None, parallel: bool | None = None, report: bool = True
) -> StudyMetrics:
    """Analyse every trained model of the run in ``out``; update metrics.json, the report and
    the explorer.

    ``analysis_overrides`` replaces fields of the saved analysis configuration (``n_clusters``,
    ``n_samples``, ``perplexity``...). ``parallel`` analyses the models at once in worker
    processes: None where training would train them at once and there are two cores for each
    (see :func:`cxrvae.analysis.all_models.plan_analysis`), True also on several GPUs, False never.
    With ``--seeds N``, the other seeds' models (``out/repeats/``) are analysed first, alike,
    and the run's metrics say how much every number varies between seeds
    (:func:`cxrvae.analysis.seeds.seed_variation`). ``report`` False writes no report.
    """
    out = require_run(out)
    cfg, source = read_config(out)
    if analysis_overrides:
        cfg = cfg.replace(analysis=analysis_overrides)
    repeats = outputs.repeat_dirs(out, cfg.train.seeds, cfg.train.repeat)
    for r, folder in enumerate(repeats, start=2):  # the other seeds' models first
        log.info("seed %d of %d: analysing %s", r, cfg.train.seeds, folder)
        analyze_study(folder, analysis_overrides, parallel, report=False)
    data = load_data(source, cfg.data)
    train_idx, test_idx = read_split(out)
    seed_everything(cfg.seed)
    metrics = read_metrics(out)
    sample = draw_sample(data, cfg, out, train_idx, test_idx, read_others(out))
    log.info("analysis: %s", sample.note)
    for k in cfg.model.latent_dims:
        if k not in metrics.trained:
            log.warning("latent %d: not analysed (training failed or missing)", k)
    dims = [k for k in cfg.model.latent_dims if k in metrics.trained]
    plan = plan_analysis(cfg, len(dims), data, len(train_idx), parallel)
    analysed = analyze_models(out, sample, dims, resolve_device(cfg.train.device), plan)
    results = {k: r for k, (r, _) in analysed.items()}
    for k, r in results.items():
        metrics.models[k].analysis = r.metrics
    rates = {k: metrics.models[k].test_kl for k in results}
    metrics.analysis = compare_models(results, sample, rates)
    metrics.timings.analysis = {str(k): seconds for k, (_, seconds) in analysed.items()}
    if repeats:
        metrics.seeds = seed_variation(out, cfg, metrics, sample)
    write_metrics(out, metrics)
    if not report:
        return metrics
    t0 = time.perf_counter()
    log.info("report: %s", build_report(out))
    explorer = build_explorer(out)
    if explorer:
        log.info("explorer: %s", explorer)
    metrics.timings.report = time.perf_counter() - t0
    write_metrics(out, metrics)
    return metrics


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
        Per-model progress reporter factory (see :func:`cxrvae.train.all_models.train_models`).
    parallel : bool, optional
        Train the models at once in worker processes (see
        :func:`cxrvae.train.all_models.plan_training`).

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
        analyze_study(out, parallel=parallel)
    return open_run(out)
