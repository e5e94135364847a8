"""The analysis step: every trained model analysed on the shared sample, one after another in
this process, or at once in worker processes with the machinery that trains models at once
(:mod:`cxrvae.train.parallel`): one process per model, the cores shared out as threads, one
memory-mapped copy of the images.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from .. import outputs
from ..config import RunConfig
from ..data.xray import XrayData
from ..train import tensorboard_logs, workers
from ..train.checkpoints import load_model
from ..train.parallel import Plan, attach_images, plan_parallel, shared_images
from .per_model import AnalysedModel, analyze_model
from .sampling import Sample

log = logging.getLogger(__name__)


def plan_analysis(
    cfg: RunConfig, n_models: int, data: XrayData, n_train: int, parallel: bool | None = None
) -> Plan | None:
    """How to analyse ``n_models`` at once, or None to analyse them in turn: at once where
    they would train at once (:func:`cxrvae.train.parallel.plan_parallel`), with the same
    processes and threads."""
    return plan_parallel(cfg, n_models, data, n_train, parallel)


def analyze_models(
    out, sample: Sample, latent_dims: list[int], device, plan: Plan | None = None
) -> dict[int, tuple[AnalysedModel, float]]:
    """Each model's analysis and the seconds it took, by latent size: in turn on ``device``,
    or at once as ``plan`` says (see :func:`plan_analysis`)."""
    if plan is None or len(latent_dims) < 2:
        return {k: analyse_one(out, k, sample, device) for k in latent_dims}
    log.info(plan.describe(latent_dims, "analysing"))
    with shared_images(sample.data, out) as (images, meta):
        light = dataclasses.replace(sample, data=meta)  # sent without the pixels
        tasks = [
            (_analyse_in_worker, (images, light, Path(out), k, plan.device(i)))
            for i, k in enumerate(latent_dims)
        ]
        names = [f"latent {k}" for k in latent_dims]
        processes = min(len(plan.devices), len(latent_dims))
        results = workers.run(tasks, processes, plan.threads, names=names)
    return dict(zip(latent_dims, results))


def analyse_one(out, latent_dim: int, sample: Sample, device) -> tuple[AnalysedModel, float]:
    """One trained model's analysis (and its TensorBoard projector when the run logs one), and
    the seconds it took."""
    start = time.perf_counter()
    model = load_model(outputs.model_dir(out, latent_dim) / outputs.WEIGHTS, device)
    result = analyze_model(model, sample, latent_dim)
    if tensorboard_logs.has_logs(out):
        tensorboard_logs.log_embedding(
            out, latent_dim, result.mu, result.clusters, sample.labels,
            sample.data.label_names, sample.thumbnails,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    log.info(
        "latent %d: analysed in %.1f s (K = %d)", latent_dim, seconds, result.metrics.n_clusters
    )
    return result, seconds


def _analyse_in_worker(images, sample: Sample, out: Path, latent_dim: int, device: str):
    """One model's analysis in a worker process; ``images`` are the sample's data's pixels,
    mapped (the sample comes without them)."""
    data = attach_images(sample.data, images)
    return analyse_one(out, latent_dim, dataclasses.replace(sample, data=data), device)
