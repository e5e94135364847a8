"""The training step: one model per latent size, in turn in this process or at once in worker
processes; what each model's training recorded, and the figure that compares their loss curves
(each model draws its own, see :mod:`cxrvae.train.runner`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import outputs
from ..config import RunConfig
from ..data.xray import XrayData
from ..figures.common import save_figure
from ..figures.training import plot_history_comparison
from ..results import ModelResult
from ..runfolder import history_columns, read_history
from .distributed import is_main
from .loop import resolve_device
from .parallel import Plan, plan_devices, plan_parallel, train_at_once
from .runner import TrainResult, train_model

log = logging.getLogger(__name__)


def plan_training(
    cfg: RunConfig,
    data: XrayData,
    n_train: int,
    parallel: bool | None = None,
    devices: list[str] | None = None,
) -> Plan | None:
    """How :func:`train_models` trains the models of ``cfg``: at once as the plan says, or in
    turn (None).

    ``parallel`` None decides by :func:`~cxrvae.train.parallel.plan_parallel` (on a CPU with
    two or more cores, for runs long enough), True also trains at once on several GPUs, False
    never; two or more ``devices`` train at once on them, one process per model, the devices
    taken in turn. Planned for every model of the run, not only those a resumed run has left:
    a resumed model then trains with the threads it started with, which keeps ``--resume``
    bit-identical on CPUs.
    """
    n_models = len(cfg.model.latent_dims)
    if devices and len(devices) > 1:
        return plan_devices(devices, n_models)
    return plan_parallel(cfg, n_models, data, n_train, parallel)


def train_models(
    data: XrayData,
    train_idx,
    test_idx,
    cfg: RunConfig,
    out: Path,
    resume: bool = False,
    progress=None,
    plan: Plan | None = None,
) -> dict[int, ModelResult]:
    """Train one model per latent size; write weights, history and figures for each. A model
    whose loss becomes non-finite stops there: its last good checkpoint is kept, the failure
    is recorded in its :class:`~cxrvae.results.ModelResult`, and the next model trains.

    Parameters
    ----------
    progress : callable(latent_dim, done_epochs, total_epochs) -> callable(row), optional
        Factory for a per-epoch reporter, called once per model that trains.
    plan : Plan, optional
        Train the models at once in worker processes, as :func:`plan_training` planned them
        (for every model of the run); None trains them in turn.
    """
    dims = cfg.model.latent_dims
    done = _finished_models(cfg, out) if resume else {}
    if is_main():
        for k in dims:
            outputs.model_dir(out, k).mkdir(exist_ok=True)
    todo = [k for k in dims if k not in done]
    if plan and todo:
        done.update(
            train_at_once(data, train_idx, test_idx, cfg, out, todo, plan, resume, progress)
        )
    device = resolve_device(cfg.train.device)
    results = {
        k: done.get(k)
        or train_model(data, train_idx, test_idx, cfg, out, k, resume, progress, device)
        for k in dims
    }
    return _recorded(results, out)


def _recorded(results: dict[int, TrainResult], out: Path) -> dict[int, ModelResult]:
    """What metrics.json records of each model, the figure comparing their loss curves and a
    line in the log."""
    models = {k: _model_result(r) for k, r in results.items()}
    histories = {k: history_columns(r.history) for k, r in results.items() if r.failure is None}
    if histories and is_main():
        save_figure(
            plot_history_comparison(histories), outputs.FIGURES["history_comparison"].file(out)
        )
    for k, m in models.items():
        if m.ok:
            log.info(
                "latent %d: test loss %.2f = BCE %.2f + KL %.2f nats/image (%d epochs, %.0f s)",
                *(k, m.test_loss, m.test_bce, m.test_kl, m.epochs, m.train_seconds),
            )
    return models


def _finished_models(cfg: RunConfig, out: Path) -> dict[int, TrainResult]:
    """The models of a resumed run whose training had finished (weights and history saved)."""
    done = {}
    for k in cfg.model.latent_dims:
        folder = outputs.model_dir(out, k)
        if (folder / outputs.WEIGHTS).exists() and (folder / outputs.HISTORY).exists():
            log.info("latent %d: already trained, skipped (--resume)", k)
            done[k] = TrainResult(k, read_history(folder / outputs.HISTORY))
    return done


def _model_result(result: TrainResult) -> ModelResult:
    """What metrics.json records of one model's training."""
    k, history = result.latent_dim, result.history
    if result.failure is not None:
        log.error(
            "latent %d: %s; stopped after %d good epochs (checkpoint kept)",
            k,
            result.failure,
            len(history),
        )
        return ModelResult(failed=result.failure, epochs=len(history))
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
