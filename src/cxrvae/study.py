"""The study, step by step on a run folder: data and split, training, analysis, report.

Each step reads what earlier steps wrote (see :mod:`cxrvae.layout`), so ``analyze_study`` and
the report can run again on a finished run. This module only orchestrates: the work is done by
:mod:`~cxrvae.explore`, :mod:`~cxrvae.train` and :mod:`~cxrvae.parallel`,
:mod:`~cxrvae.analysis` and :mod:`~cxrvae.report`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from . import layout, tensorboard_logs
from .analysis import analyze_model
from .comparison import compare_models
from .config import RunConfig
from .data import XrayData, load_data, require_trainable
from .distributed import barrier, init_distributed, is_main, on_main
from .errors import RunFolderError
from .explore import explore_data
from .explorer import build_explorer
from .figures import plot_history, plot_history_comparison, save_figure
from .files import read_json, write_json
from .parallel import plan_devices, plan_parallel, train_at_once
from .report import build_report
from .results import ModelResult, StudyMetrics, Timings, to_dict
from .runfolder import (
    Run,
    open_run,
    prepare_run_dir,
    read_config,
    read_metrics,
    read_split,
    require_run,
    source_ref,
    versions,
    write_metrics,
    write_split,
)
from .sampling import draw_sample
from .seeding import derive_seed, seed_everything
from .split import identical_images, join_identical, split_indices
from .train import (
    TrainResult,
    history_columns,
    load_model,
    read_history,
    resolve_device,
    train_model,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- data and split


def make_split(data: XrayData, cfg: RunConfig, out: Path, groups=None, resume: bool = False):
    """Seeded train/test indices, saved to ``out/split.npz`` (reused when resuming).

    The images of each group in ``groups`` (patients, with sets of pixel-identical images
    joined, see :func:`cxrvae.split.join_identical`) stay on one side.
    """
    if resume and (out / layout.SPLIT).exists():
        train, test = read_split(out)
        if max(train.max(), test.max()) >= len(data):
            raise RunFolderError(
                f"{out / layout.SPLIT}: the saved split does not fit these {len(data)} images"
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


def _check_resume_config(out: Path, cfg: RunConfig) -> None:
    """Refuse --resume when data, model or training settings differ from the saved run's."""
    path = out / layout.CONFIG
    if not path.exists():
        return
    saved = read_json(path)["config"]
    now = json.loads(json.dumps(cfg.to_dict()))
    diff = [
        f"{part}.{key}"
        for part in ("data", "model", "train")
        for key in now[part]
        if saved.get(part, {}).get(key) != now[part][key]
    ]
    if saved.get("seed") != now["seed"]:
        diff.insert(0, "seed")
    if diff:
        raise RunFolderError(
            f"{out}: --resume needs the settings of the saved run; these differ: "
            f"{', '.join(diff)} (use --overwrite to start again)"
        )


# --------------------------------------------------------------------------- training


def train_models(
    data: XrayData,
    train_idx,
    test_idx,
    cfg: RunConfig,
    out: Path,
    resume: bool = False,
    progress=None,
    parallel: bool | None = None,
    devices: list[str] | None = None,
) -> dict[int, ModelResult]:
    """Train one model per latent size; write weights, history and figures for each.

    A model whose loss becomes non-finite stops there: its last good checkpoint is kept, the
    failure is recorded in its :class:`~cxrvae.results.ModelResult`, and the next model trains.

    Parameters
    ----------
    progress : callable(latent_dim, done_epochs, total_epochs) -> callable(row), optional
        Factory for a per-epoch reporter, called once per model that trains.
    parallel : bool, optional
        Train the models at once in worker processes: None decides by
        :func:`~cxrvae.parallel.plan_parallel` (on a CPU with two or more cores, for runs long
        enough), True also on several GPUs, False never.
    devices : list of str, optional
        Two or more devices to train at once on, one process per model, the devices taken in
        turn (instead of the plan).
    """
    dims = cfg.model.latent_dims
    done = _finished_models(cfg, out) if resume else {}
    if is_main():
        for k in dims:
            layout.model_dir(out, k).mkdir(exist_ok=True)
    todo = [k for k in dims if k not in done]
    # Planned for every model of the run, not only those left: a resumed model then trains
    # with the threads it started with, which keeps --resume bit-identical on CPUs.
    if devices and len(devices) > 1:
        plan = plan_devices(devices, len(dims))
    else:
        plan = plan_parallel(cfg, len(dims), data, len(train_idx), parallel)
    if plan and todo:
        done.update(
            train_at_once(data, train_idx, test_idx, cfg, out, todo, plan, resume, progress)
        )
    device = resolve_device(cfg.train.device)
    models, histories = {}, {}
    for k in dims:
        result = done.get(k) or train_model(
            data, train_idx, test_idx, cfg, out, k, resume, progress, device
        )
        models[k] = _model_result(result, out)
        if result.failure is None:
            histories[k] = history_columns(result.history)
    if histories and is_main():
        save_figure(
            plot_history_comparison(histories), layout.FIGURES["history_comparison"].file(out)
        )
    return models


def _finished_models(cfg: RunConfig, out: Path) -> dict[int, TrainResult]:
    """The models of a resumed run whose training had finished (weights and history saved)."""
    done = {}
    for k in cfg.model.latent_dims:
        folder = layout.model_dir(out, k)
        if (folder / layout.WEIGHTS).exists() and (folder / layout.HISTORY).exists():
            log.info("latent %d: already trained, skipped (--resume)", k)
            done[k] = TrainResult(k, read_history(folder / layout.HISTORY))
    return done


def _model_result(result: TrainResult, out: Path) -> ModelResult:
    """What metrics.json records of one model's training; its history figure."""
    k, history = result.latent_dim, result.history
    if result.failure is not None:
        log.error(
            "latent %d: %s; stopped after %d good epochs (checkpoint kept)",
            k,
            result.failure,
            len(history),
        )
        return ModelResult(failed=result.failure, epochs=len(history))
    if is_main():
        save_figure(
            plot_history(history_columns(history), f"Latent {k}: train and test loss per epoch"),
            layout.FIGURES["history"].file(out, latent_dim=k),
        )
    last = history[-1]
    return ModelResult(
        test_loss=last["test_loss"],
        test_bce=last["test_bce"],
        test_kl=last["test_kl"],
        train_loss=last["train_loss"],
        train_bce=last["train_bce"],
        train_kl=last["train_kl"],
        epochs=len(history),
        train_seconds=float(sum(r["seconds"] for r in history)),
    )


def _write_config(out: Path, cfg: RunConfig, source: str, summary) -> None:
    """``config.json``: the resolved settings, the source, versions, device and the data."""
    record = {
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "source": source,
        "versions": versions(),
        "device": str(resolve_device(cfg.train.device)),
        "data": to_dict(summary),
    }
    write_json(out / layout.CONFIG, record)


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
    choose whether the models train at once in worker processes (see :func:`train_models`).
    Under torchrun every process trains its share of each batch (DistributedDataParallel) and
    only rank 0 writes files.

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
        _check_resume_config(Path(out), cfg)
    out = Path(on_main(prepare_run_dir, out, resume=resume, overwrite=overwrite))
    seed_everything(cfg.seed)
    identical = identical_images(data.images)
    groups, joined = join_identical(data.groups, identical, len(data))
    _note_identical(data, identical, joined)
    train_idx, test_idx = on_main(make_split, data, cfg, out, groups, resume=resume)
    summary = data.summary()
    summary.n_train, summary.n_test = int(len(train_idx)), int(len(test_idx))
    if is_main():
        _write_config(out, cfg, source_ref(source, data), summary)
    log.info(
        "data: %d images (%d train / %d test), %dx%d px",
        *(len(data), len(train_idx), len(test_idx), data.image_size, data.image_size),
    )
    summary.exploration = on_main(explore_data, data, out, cfg.seed, test_idx, identical, joined)
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
    return metrics


# --------------------------------------------------------------------------- analysis


def analyze_study(out, analysis_overrides: dict | None = None) -> StudyMetrics:
    """Analyse every trained model of the run in ``out``; update metrics.json, the report and
    the explorer.

    ``analysis_overrides`` replaces fields of the saved analysis configuration (``clusters``,
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
        model = load_model(layout.model_dir(out, k) / layout.WEIGHTS, device)
        results[k] = analyze_model(model, sample, k)
        metrics.models[k].analysis = results[k].metrics
        if tensorboard_logs.has_logs(out):
            r = results[k]
            tensorboard_logs.log_embedding(
                out, k, r.mu, r.clusters, sample.labels, data.label_names, sample.thumbnails
            )
        timings[str(k)] = time.perf_counter() - t0
        log.info(
            "latent %d: analysed in %.1f s (K = %d)",
            k,
            timings[str(k)],
            results[k].metrics.n_clusters,
        )
    rates = {k: metrics.models[k].test_kl for k in results}
    metrics.analysis = compare_models(results, sample, rates)
    metrics.timings.analysis = timings
    write_metrics(out, metrics)
    t0 = time.perf_counter()
    build_report(out)
    build_explorer(out)
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
) -> Run:
    """The whole study from Python, with the CLI's defaults: ``cxrvae run`` as a function.

    Parameters
    ----------
    source : str or Path
        A file, a folder or a public set's name, as for :func:`cxrvae.data.load`.
    out : str or Path
        Run folder.
    config : RunConfig, optional
        Defaults to ``RunConfig()``, the settings the command line uses.
    parallel : bool, optional
        Train the models at once in worker processes (see :func:`train_models`).
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
    if metrics.trained:
        analyze_study(out)
    return open_run(out)
