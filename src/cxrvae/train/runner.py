"""One model of a run: train it (or continue it) in the run folder and write its files."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from .. import outputs
from ..config import RunConfig
from ..data.xray import XrayData
from ..errors import TrainingError
from ..figures.common import save_figure
from ..figures.training import plot_history
from ..runfolder import history_columns, write_history
from ..seeding import derive_seed
from .checkpoints import checkpoint_history, save_model
from .distributed import barrier, is_main
from .loop import build_model, fit

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """One model's training: the history of its completed epochs, and why it stopped early.

    ``failure`` is None when every epoch ran; otherwise it is the message of the
    :class:`TrainingError`, and ``history`` holds the good epochs kept in the checkpoint.
    """

    latent_dim: int
    history: list[dict]
    failure: str | None = None


def train_model(
    data: XrayData,
    train_idx,
    test_idx,
    cfg: RunConfig,
    out,
    latent_dim: int,
    resume: bool = False,
    progress=None,
    device=None,
) -> TrainResult:
    """Train (or continue) the model of ``latent_dim`` in the run folder ``out``.

    Writes its checkpoint every epoch, then its loss-curve figure, history and weights (see
    :mod:`cxrvae.outputs`).
    ``progress(latent_dim, done, total)`` may return a per-epoch callback. A non-finite loss
    ends training with a failed :class:`TrainResult`; its last good checkpoint is kept.
    """
    folder = outputs.model_dir(out, latent_dim)
    ckpt = folder / outputs.CHECKPOINT
    if not resume and is_main():
        ckpt.unlink(missing_ok=True)
    barrier()  # every process sees the same checkpoint (or none)
    repeat = f"-repeat-{cfg.train.repeat}" if cfg.train.repeat else ""  # the first: as ever
    torch.manual_seed(derive_seed(cfg.seed, f"init-{latent_dim}{repeat}"))
    model = build_model(cfg.model, data.image_size, latent_dim)
    done = len(checkpoint_history(ckpt))
    if done:
        log.info("latent %d: resuming after epoch %d of %d", latent_dim, done, cfg.train.epochs)
    report = progress(latent_dim, done, cfg.train.epochs) if progress else None
    start = time.perf_counter()
    try:
        history = fit(
            model,
            data,
            train_idx,
            test_idx,
            cfg.train,
            seed=derive_seed(cfg.seed, f"train-{latent_dim}{repeat}"),
            device=device,
            callback=report,
            checkpoint_path=ckpt,
            config_dict=cfg.to_dict(),
        )
    except TrainingError as e:
        return TrainResult(latent_dim, checkpoint_history(ckpt), str(e))
    log.info("latent %d: trained in %.1f s", latent_dim, time.perf_counter() - start)
    if is_main():
        _write_trained(out, latent_dim, history, model)
    return TrainResult(latent_dim, history)


def _write_trained(out, latent_dim: int, history: list[dict], model) -> None:
    """A trained model's loss-curve figure, then its history and weights: those two last,
    since together they mark the model as trained (``--resume`` skips it)."""
    title = f"Latent {latent_dim}: train and test loss per epoch"
    figure = outputs.FIGURES["history"].file(out, latent_dim=latent_dim)
    save_figure(plot_history(history_columns(history), title), figure)
    folder = outputs.model_dir(out, latent_dim)
    write_history(folder / outputs.HISTORY, history)
    save_model(folder / outputs.WEIGHTS, model)
