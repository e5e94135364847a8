"""Training: one epoch, evaluation, the fit loop, and checkpoints that resume exactly.

The whole image set lives on the device as one integer tensor; batches are drawn by index and
normalised on the fly, so no float copy of the set exists and there is no per-item loader work.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch.nn.parallel import DistributedDataParallel

from . import layout
from .config import ModelConfig, RunConfig, TrainConfig
from .data import XrayData
from .distributed import barrier, is_main, sum_over_processes, world
from .errors import TrainingError
from .files import atomic_write
from .model import ConvVAE, vae_loss
from .seeding import derive_seed, make_generator

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_bce",
    "train_kl",
    "test_loss",
    "test_bce",
    "test_kl",
    "seconds",
)
EVAL_BATCH = 512


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` is CUDA when present, else CPU; anything else is passed to ``torch.device``.

    Under torchrun, CUDA means this process's GPU (``LOCAL_RANK``).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and world()[1] > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def steps_per_epoch(n_train: int, cfg: TrainConfig) -> int:
    """Optimiser steps per epoch. A last batch too small for BatchNorm (under 2 images per
    process) is dropped; ``max_steps`` caps the count."""
    size = world()[1]
    steps = n_train // cfg.batch_size + (n_train % cfg.batch_size >= 2 * size)
    return steps if cfg.max_steps is None else min(steps, cfg.max_steps)


def _autocast(device: torch.device):
    # bf16 autocast on CUDA. On CPU it pays only with AVX512-BF16/AMX; on the AVX2 machines
    # measured here it was 10-20x slower (benchmarks/README.md), so CPUs stay in fp32.
    enabled = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@dataclass
class DeviceData:
    """The image set on a device: integer pixels plus per-image normalisation."""

    images: torch.Tensor  # (N, 1, H, W), storage dtype
    offset: torch.Tensor  # (N,) float32
    scale: torch.Tensor  # (N,) float32

    @classmethod
    def from_data(cls, data: XrayData, device) -> DeviceData:
        # On the CPU the tensor shares the array's memory (a memory-mapped .npy stays mapped).
        return cls(
            torch.from_numpy(data.images).unsqueeze(1).to(device),
            torch.as_tensor(data.offset, dtype=torch.float32, device=device),
            torch.as_tensor(data.scale, dtype=torch.float32, device=device),
        )

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float images (B, 1, H, W) in [0, 1], channels-last, for indices idx (B,)."""
        x = self.images[idx].float()
        x = (x - self.offset[idx, None, None, None]) * self.scale[idx, None, None, None]
        return x.contiguous(memory_format=torch.channels_last)


def build_model(model_cfg: ModelConfig, image_size: int, latent_dim: int) -> ConvVAE:
    """A fresh ConvVAE in channels-last layout (faster convolutions on CPU and GPU)."""
    model = ConvVAE(image_size, latent_dim, model_cfg.widths, model_cfg.batchnorm)
    return model.to(memory_format=torch.channels_last)


def train_epoch(
    model,
    optimizer,
    scheduler,
    dd: DeviceData,
    train_idx: torch.Tensor,
    cfg: TrainConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """One pass over a seeded permutation of ``train_idx``; returns mean loss, bce and kl.

    With several processes (torchrun) every process draws the same permutation and takes its
    share of each global batch of ``cfg.batch_size``; the means are over all processes.
    """
    model.train()
    device = dd.images.device
    rank, size = world()
    perm = train_idx[torch.randperm(len(train_idx), generator=generator).to(device)]
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, bce, kl, images
    for step in range(steps_per_epoch(len(perm), cfg)):
        idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size][rank::size]
        x = dd.batch(idx)
        with _autocast(device):
            x_hat, mu, logvar = model(x)
        terms = vae_loss(x_hat, x, mu, logvar, cfg.beta)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        scheduler.step()
        n = terms["loss"].new_tensor(1.0)
        sums += torch.stack([terms["loss"], terms["bce"], terms["kl"], n]).detach() * len(idx)
    sum_over_processes(sums)
    loss, bce, kl = (sums[:3] / sums[3]).tolist()
    if not all(math.isfinite(v) for v in (loss, bce, kl)):
        raise TrainingError(f"non-finite training loss (loss={loss}, bce={bce}, kl={kl})")
    return {"loss": loss, "bce": bce, "kl": kl}


@torch.inference_mode()
def evaluate(model, dd: DeviceData, idx: torch.Tensor, beta: float = 1.0) -> dict[str, float]:
    """Mean loss, BCE and KL per image over ``idx``, decoding the posterior mean (eval mode).

    With several processes each evaluates its share of ``idx`` and the sums are combined.
    """
    model.eval()
    rank, size = world()
    idx = idx[rank::size]
    sums = torch.zeros(4, dtype=torch.float64, device=dd.images.device)
    for start in range(0, len(idx), EVAL_BATCH):
        b = idx[start : start + EVAL_BATCH]
        x = dd.batch(b)
        with _autocast(x.device):
            x_hat, mu, logvar = model(x)
        terms = vae_loss(x_hat, x, mu, logvar, beta)
        n = terms["loss"].new_tensor(1.0)
        sums += torch.stack([terms["loss"], terms["bce"], terms["kl"], n]) * len(b)
    sum_over_processes(sums)
    loss, bce, kl = (sums[:3] / sums[3]).tolist()
    return {"loss": loss, "bce": bce, "kl": kl}


def _ddp_ids(device: torch.device):
    return [device.index] if device.type == "cuda" else None


def _optimiser(model, cfg: TrainConfig, steps: int):
    """Adam with a one-cycle learning-rate schedule over every step of the run."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps
    )
    return optimizer, scheduler


def fit(
    model: ConvVAE,
    data: XrayData,
    train_idx,
    test_idx,
    cfg: TrainConfig,
    seed: int,
    device=None,
    callback=None,
    checkpoint_path=None,
    config_dict=None,
) -> list[dict]:
    """Train ``model`` for ``cfg.epochs`` epochs with Adam and a one-cycle schedule.

    Parameters
    ----------
    model : ConvVAE, its weights initialised from the caller's seed
    data : XrayData; train_idx, test_idx : arrays of int indexing it
    cfg : TrainConfig
    seed : int, seeding the batch order and the reparameterisation noise
    device : torch.device, optional (default ``resolve_device(cfg.device)``)
    callback : callable(row), optional, called with each epoch's history row
    checkpoint_path : path, optional
        A resumable checkpoint (holding ``config_dict``) is written there after every epoch;
        when it exists, training resumes from it (model, optimiser, schedule, batch order).

    Returns
    -------
    list of dict, one row per epoch with the keys ``HISTORY_COLUMNS``. Under torchrun only
    rank 0 writes the checkpoint and calls ``callback``.
    """
    device = device or resolve_device(cfg.device)
    model.to(device)
    dd = DeviceData.from_data(data, device)
    train_t, test_t = (torch.as_tensor(np.asarray(i), device=device) for i in (train_idx, test_idx))
    optimizer, scheduler = _optimiser(model, cfg, steps_per_epoch(len(train_t), cfg))
    generator = make_generator(seed)  # batch order, on CPU so it is the same on every device
    history = _restore(checkpoint_path, model, optimizer, scheduler, generator)
    rank, size = world()
    # With several processes, gradients are averaged over them; the weights start from rank 0's.
    net = DistributedDataParallel(model, device_ids=_ddp_ids(device)) if size > 1 else model
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        start = time.perf_counter()
        # Reparameterisation noise: seeded per epoch and process, so a resumed run (one process
        # or several) draws exactly the noise an uninterrupted one would.
        torch.manual_seed(derive_seed(seed, f"noise-{epoch}-{rank}"))
        tr = train_epoch(net, optimizer, scheduler, dd, train_t, cfg, generator)
        te = evaluate(model, dd, test_t, cfg.beta)
        if device.type == "cuda":
            torch.cuda.synchronize()
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()}}  # loss, bce, kl
        row |= {f"test_{k}": v for k, v in te.items()} | {"seconds": time.perf_counter() - start}
        history.append(row)
        if checkpoint_path is not None and rank == 0:
            state = (model, optimizer, scheduler, generator, history, config_dict or {})
            save_checkpoint(checkpoint_path, *state)
        if callback is not None and rank == 0:
            callback(row)
    return history


# --------------------------------------------------------------------------- files


def save_checkpoint(path, model, optimizer, scheduler, generator, history, config_dict) -> None:
    """Everything needed to continue training, loadable with ``weights_only=True``."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "history": history,
        "config": json.dumps(config_dict),
        "model_args": _model_args(model),
        "versions": {"torch": str(torch.__version__)},
    }
    # Serialise in memory, then write with plain file I/O: a full disk then raises OSError
    # (torch.save writing to a full disk raises a RuntimeError that names no file).
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda p: p.write_bytes(buffer.getvalue()))


def _restore(path, model, optimizer, scheduler, generator) -> list[dict]:
    """The history of the checkpoint at ``path``, its states loaded ([] without one)."""
    if path is None or not Path(path).exists():
        return []
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    log.info("resumed from %s after epoch %d", path, len(state["history"]))
    return list(state["history"])


def _model_args(model: ConvVAE) -> dict:
    return {
        "image_size": model.image_size,
        "latent_dim": model.latent_dim,
        "widths": list(model.widths),
        "batchnorm": any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()),
    }


def save_model(path, model: ConvVAE) -> None:
    """Weights as safetensors, with the constructor arguments in the file's metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"cxrvae_model": json.dumps(_model_args(model))}
    blob = save(tensors, metadata=meta)
    atomic_write(path, lambda p: p.write_bytes(blob))


def load_model(path, device="cpu") -> ConvVAE:
    """Rebuild a ConvVAE from a file written by :func:`save_model`, in eval mode."""
    with safe_open(str(path), framework="pt") as f:
        args = json.loads(f.metadata()["cxrvae_model"])
    model = ConvVAE(args["image_size"], args["latent_dim"], args["widths"], args["batchnorm"])
    model.load_state_dict(load_file(str(path)))
    return model.to(device=device, memory_format=torch.channels_last).eval()


def write_history(path, history: list[dict]) -> None:
    """``history.csv`` with the columns ``HISTORY_COLUMNS``."""
    lines = [",".join(HISTORY_COLUMNS)]
    for row in history:
        lines.append(
            ",".join(str(row[c]) if c == "epoch" else f"{row[c]:.6f}" for c in HISTORY_COLUMNS)
        )
    atomic_write(path, lambda p: p.write_text("\n".join(lines) + "\n"))


def history_columns(history: list[dict]) -> dict[str, np.ndarray]:
    """History rows as one array per column."""
    return {k: np.array([row[k] for row in history]) for k in history[0]}


def read_history(path) -> list[dict]:
    """Rows of a ``history.csv`` as dicts of numbers."""
    header, *rows = Path(path).read_text().strip().splitlines()
    cols = header.split(",")
    return [
        {c: (int(v) if c == "epoch" else float(v)) for c, v in zip(cols, r.split(","))}
        for r in rows
    ]


# --------------------------------------------------------------------------- one model of a run


@dataclass
class TrainResult:
    """One model's training: the history of its completed epochs, and why it stopped early.

    ``failure`` is None when every epoch ran; otherwise it is the message of the
    :class:`TrainingError`, and ``history`` holds the good epochs kept in the checkpoint.
    """

    latent_dim: int
    history: list[dict]
    failure: str | None = None


def checkpoint_history(path) -> list[dict]:
    """The history rows stored in a checkpoint ([] when there is none)."""
    path = Path(path)
    return list(torch.load(path, weights_only=True)["history"]) if path.exists() else []


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

    Writes its checkpoint every epoch, then its history and weights (see :mod:`layout`).
    ``progress(latent_dim, done, total)`` may return a per-epoch callback. A non-finite loss
    ends training with a failed :class:`TrainResult`; its last good checkpoint is kept.
    """
    folder = layout.model_dir(out, latent_dim)
    ckpt = folder / layout.CHECKPOINT
    if not resume and is_main():
        ckpt.unlink(missing_ok=True)
    barrier()  # every process sees the same checkpoint (or none)
    torch.manual_seed(derive_seed(cfg.seed, f"init-{latent_dim}"))
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
            seed=derive_seed(cfg.seed, f"train-{latent_dim}"),
            device=device,
            callback=report,
            checkpoint_path=ckpt,
            config_dict=cfg.to_dict(),
        )
    except TrainingError as e:
        return TrainResult(latent_dim, checkpoint_history(ckpt), str(e))
    log.info("latent %d: trained in %.1f s", latent_dim, time.perf_counter() - start)
    if is_main():
        write_history(folder / layout.HISTORY, history)
        save_model(folder / layout.WEIGHTS, model)
    return TrainResult(latent_dim, history)
