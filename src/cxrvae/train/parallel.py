"""Training the latent sizes at once, one worker process per model: whether to, and how.

On a CPU with two or more cores, small models train faster side by side, one torch thread
each, than one after another on every core (measured in benchmarks/README.md). The workers map
one shared copy of the images and report progress to the parent (see :mod:`cxrvae.train.workers`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from .. import outputs
from ..atomic import atomic_write
from ..config import RunConfig
from ..data.xray import XrayData
from . import workers
from .distributed import world
from .loop import resolve_device
from .runner import TrainResult, train_model

log = logging.getLogger(__name__)

# Below this much training (train images x epochs, in 64 px equivalents) the models train in
# turn: the workers take seconds to start, map the images and end, which a short training does
# not pay back. Moving it moves runs between the two ways of training, and with them the torch
# thread count their last digits depend on.
PARALLEL_MIN_WORK = 20_000
WORKER_MEMORY = 2**29  # bytes each worker adds to the shared images (torch, batches)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Models trained at once: the device of each worker process, and its torch threads."""

    devices: list[str]
    threads: int

    def device(self, i: int) -> str:
        """The device of the ``i``-th task: the devices are taken in turn."""
        return self.devices[i % len(self.devices)]

    def describe(self, latent_dims, what: str) -> str:
        """One line for the log: what runs at once, in how many processes, where."""
        processes = min(len(self.devices), len(latent_dims))
        return (
            f"{what} latent {', '.join(map(str, latent_dims))} at once: {processes} processes "
            f"on {', '.join(sorted(set(self.devices)))}, {self.threads} torch "
            f"thread{'' if self.threads == 1 else 's'} each"
        )


def plan_parallel(
    cfg: RunConfig,
    n_models: int,
    data: XrayData,
    n_train: int,
    parallel: bool | None = None,
    cpus: int | None = None,
) -> Plan | None:
    """How to train (or analyse) ``n_models`` at once, or None to do them in turn.

    ``parallel=None`` (the default) works at once on a CPU with two or more cores when the
    training is long enough (``PARALLEL_MIN_WORK``) and the processes fit in half the
    available memory: one process per model, at most one more than
    there are cores, the cores shared out as threads. With small models a torch thread does
    more work alone than alongside another one, so this beats one process using every core
    (benchmarks/README.md). ``parallel=True`` also puts one model on each of two or more GPUs;
    ``False`` never works at once.
    """
    if parallel is False or n_models < 2:
        return None
    if world()[1] > 1:
        if parallel:
            log.warning("--parallel-models is ignored under torchrun (the processes share models)")
        return None
    cpus = cpus or workers.cpu_count()
    device = resolve_device(cfg.train.device)
    if device.type == "cuda":
        return _plan_gpus(n_models, parallel, cpus)
    if device.type != "cpu" or cpus < 2:
        if parallel:
            log.warning("--parallel-models needs two or more CPU cores or GPUs; training in turn")
        return None
    tc = cfg.train
    per_epoch = n_train if tc.max_steps is None else min(n_train, tc.max_steps * tc.batch_size)
    work = per_epoch * tc.epochs * (data.image_size / 64) ** 2
    if parallel is None and work < PARALLEL_MIN_WORK:
        return None
    processes, threads = workers.share_cores(n_models, cpus)
    # The workers share one memory-mapped copy of the images; each adds torch and its batches.
    need, free = data.images.nbytes + processes * WORKER_MEMORY, workers.available_memory()
    if free is not None and need > free / 2:
        log.info(
            "models in turn: %d processes would need about %.1f GiB, %.1f GiB is available",
            processes,
            need / 2**30,
            free / 2**30,
        )
        return None
    return Plan(["cpu"] * processes, threads)


def _plan_gpus(n_models: int, parallel: bool | None, cpus: int) -> Plan | None:
    n_gpus = torch.cuda.device_count()
    if parallel and n_gpus >= 2:
        return Plan([f"cuda:{i}" for i in range(n_gpus)], max(1, cpus // min(n_gpus, n_models)))
    if parallel:
        log.warning("--parallel-models needs two or more GPUs (found %d); in turn", n_gpus)
    return None


def plan_devices(devices: list[str], n_models: int) -> Plan:
    """Train at once on the given devices, one model per process, the devices taken in turn."""
    return Plan(list(devices), max(1, workers.cpu_count() // min(len(devices), n_models)))


def train_at_once(
    data: XrayData,
    train_idx,
    test_idx,
    cfg: RunConfig,
    out: Path,
    latent_dims: list[int],
    plan: Plan,
    resume: bool = False,
    progress=None,
) -> dict[int, TrainResult]:
    """Train the models of ``latent_dims`` at once, one worker process each, as ``plan`` says.

    ``progress`` is the factory of :func:`cxrvae.train.runner.train_model`, called in this
    process.
    """
    log.info(plan.describe(latent_dims, "training"))
    split = (train_idx, test_idx)
    with shared_images(data, out) as (images, meta):
        tasks = [
            (_train_in_worker, (images, meta, *split, cfg, out, k, resume, plan.device(i)))
            for i, k in enumerate(latent_dims)
        ]
        names = [f"latent {k}" for k in latent_dims]
        processes = min(len(plan.devices), len(latent_dims))
        results = workers.run(tasks, processes, plan.threads, _reporting(progress), names)
    return dict(zip(latent_dims, results))


def _reporting(progress):
    """The parent's handler of the workers' progress messages: each ("start", latent_dim, done,
    total) makes a reporter with ``progress``, each ("row", latent_dim, row) is given to it."""
    reporters = {}

    def on_message(index, message):
        kind, latent_dim, *rest = message
        if kind == "start" and progress is not None:
            reporters[latent_dim] = progress(latent_dim, *rest)
        elif kind == "row" and latent_dim in reporters:
            reporters[latent_dim](rest[0])

    return on_message


def _train_in_worker(images, data, train_idx, test_idx, cfg, out, latent_dim, resume, device):
    """One model in a worker process: train it and write its files.

    ``images`` is an ``.npy`` file holding ``data``'s pixels (``data`` comes without them),
    mapped into memory, so every worker shares one copy. Progress goes to the parent through
    :func:`workers.send` as ("start", latent_dim, done, total) and ("row", latent_dim, row).
    """
    data = attach_images(data, images)

    def progress(latent_dim, done, total):
        workers.send("start", latent_dim, done, total)
        return lambda row: workers.send("row", latent_dim, row)

    return train_model(
        data, train_idx, test_idx, cfg, out, latent_dim, resume, progress, torch.device(device)
    )


@contextlib.contextmanager
def shared_images(data: XrayData, out):
    """(an ``.npy`` file of ``data``'s images that worker processes map, ``data`` without its
    pixels to send them), for the time of the ``with`` block; a temporary copy (see
    :func:`images_file`) is removed after it."""
    images, temporary = images_file(data, out)
    try:
        yield images, dataclasses.replace(data, images=data.images[:0].copy())
    finally:
        if temporary:
            images.unlink(missing_ok=True)


def attach_images(data: XrayData, images: Path) -> XrayData:
    """In a worker: ``data``, sent without its pixels, with the shared images mapped in."""
    return dataclasses.replace(data, images=np.load(images, mmap_mode="c"))


def images_file(data: XrayData, out: Path) -> tuple[Path, bool]:
    """An ``.npy`` file holding ``data.images``, and whether it is a temporary copy.

    A set loaded from an ``.npy`` file is already memory-mapped from it; other sets are written
    once to ``out/.images.npy`` for the workers to map.
    """
    name = getattr(data.images, "filename", None)
    if name and Path(name).suffix == ".npy":
        on_disk = np.load(name, mmap_mode="r")
        if on_disk.shape == data.images.shape and on_disk.dtype == data.images.dtype:
            return Path(name), False

    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, data.images)

    return atomic_write(Path(out) / outputs.IMAGES, write), True
