"""The training loop: one epoch, evaluation, and the fit loop that resumes from a checkpoint
exactly.

The whole image set lives on the device as one integer tensor; batches are drawn by index and
normalised on the fly, so no float copy of the set exists and there is no per-item loader work.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..config import ModelConfig, TrainConfig
from ..data.xray import XrayData
from ..errors import TrainingError
from ..seeding import derive_seed, make_generator
from .checkpoints import restore_checkpoint, save_checkpoint
from .distributed import sum_over_processes, world
from .model import ConvVAE, vae_loss

EVAL_PIXELS = 512 * 64 * 64  # pixels per evaluation batch: 512 images at 64 px, 128 at 128 px


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
    # bf16 autocast on CUDA. On CPU it pays only with AVX512-BF16/AMX and is many times slower
    # without them (benchmarks/README.md), so CPUs stay in fp32.
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
    batch = max(1, EVAL_PIXELS // dd.images[0].numel())  # activations bounded at any size
    for start in range(0, len(idx), batch):
        b = idx[start : start + batch]
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

    ``model`` has its weights initialised from the caller's seed; ``train_idx`` and ``test_idx``
    index ``data``; ``seed`` seeds the batch order and the reparameterisation noise; ``device``
    defaults to ``resolve_device(cfg.device)``; ``callback(row)`` is called with each epoch's
    history row. With ``checkpoint_path``, a resumable checkpoint (holding ``config_dict``) is
    written there after every epoch, and training resumes from one that exists there (model,
    optimiser, schedule, batch order).

    Returns one row per epoch, with the keys of :data:`cxrvae.runfolder.HISTORY_COLUMNS`. Under
    torchrun only rank 0 writes the checkpoint and calls ``callback``.
    """
    device = device or resolve_device(cfg.device)
    model.to(device)
    dd = DeviceData.from_data(data, device)
    train_t, test_t = (torch.as_tensor(np.asarray(i), device=device) for i in (train_idx, test_idx))
    optimizer, scheduler = _optimiser(model, cfg, steps_per_epoch(len(train_t), cfg))
    generator = make_generator(seed)  # batch order, on CPU so it is the same on every device
    history = restore_checkpoint(checkpoint_path, model, optimizer, scheduler, generator)
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
        history.append(_row(epoch, tr, te, time.perf_counter() - start))
        if checkpoint_path is not None and rank == 0:
            state = (model, optimizer, scheduler, generator, history, config_dict or {})
            save_checkpoint(checkpoint_path, *state)
        if callback is not None and rank == 0:
            callback(history[-1])
    return history


def _row(epoch: int, train: dict, test: dict, seconds: float) -> dict:
    """One epoch's history row: the train and test loss, bce and kl, and the seconds taken."""
    row = {"epoch": epoch, **{f"train_{k}": v for k, v in train.items()}}
    return row | {f"test_{k}": v for k, v in test.items()} | {"seconds": seconds}
