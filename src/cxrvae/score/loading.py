"""What scoring reads, checked before anything is written: the run's trained models (their
weights matching the run's settings, their test images' reference scores), and the images to
score, read as the run read its training images: its image size, grey conversion and, with
global normalisation, its saved pixel range (never the new images' own: a darker batch stays
darker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import outputs
from ..config import RunConfig
from ..data.loader import load
from ..data.xray import XrayData
from ..errors import DataError, RunFolderError
from ..results import DataSummary, StudyMetrics
from ..runfolder import read_config, read_metrics, require_run

CHUNK = 2048  # images checked at a time for pixels outside the run's range


@dataclass
class NewImages:
    """The images to score as the run's models see them, how they were read, and the share of
    each image's pixels that fell outside the run's range (clipped to it)."""

    data: XrayData
    notes: list[str]
    clipped: np.ndarray  # (n,)


@dataclass
class ScoringRun:
    """A run folder ready to score with: its settings, metrics and the models to use."""

    out: Path
    config: RunConfig
    source: str
    metrics: StudyMetrics
    latent_dims: list[int]


def open_for_scoring(run) -> ScoringRun:
    """The run in folder ``run``, after checking that every trained model has weights and the
    reference scores of the test images that ``cxrvae analyze`` writes."""
    out = require_run(run)
    cfg, source = read_config(out)
    metrics = read_metrics(out)
    dims = list(metrics.trained)
    if not dims:
        raise RunFolderError(f"{out}: no trained model to score with (training failed or missing)")
    folders = [outputs.model_dir(out, k) for k in dims]
    folders += [  # with --seeds N, every seed's models score too
        outputs.model_dir(folder, k)
        for folder in outputs.repeat_dirs(out, cfg.train.seeds, cfg.train.repeat)
        for k in dims
    ]
    for folder in folders:
        if not (folder / outputs.WEIGHTS).exists():
            raise RunFolderError(f"{folder / outputs.WEIGHTS}: missing; train the run again")
        if not (folder / outputs.REFERENCE).exists() or not (out / outputs.TEST_FEATURES).exists():
            raise RunFolderError(
                f"{out}: analysed by an earlier cxrvae, without the scores of its test images "
                f"that scoring compares with; run 'cxrvae analyze {out}' first"
            )
    return ScoringRun(out, cfg, source, metrics, dims)


def check_model(model, run: ScoringRun, latent_dim: int, path: Path) -> None:
    """Refuse weights that do not belong to the run's settings."""
    c = run.config
    want = (c.data.image_size, latent_dim, tuple(c.model.widths))
    got = (model.image_size, model.latent_dim, tuple(model.widths))
    if want != got:
        raise RunFolderError(
            f"{path}: weights for {got[0]} px images, latent size {got[1]} and widths {got[2]}, "
            f"but the run's config.json says {want[0]} px, latent size {want[1]}, widths "
            f"{want[2]}; the folder mixes runs"
        )


def load_images(
    source, run: ScoringRun, layout: str = "auto", drop_invalid: bool = False
) -> NewImages:
    """The images of ``source`` (a file, folder or set's name, or an :class:`XrayData` loaded
    at the run's image size) as the run's models see them, with notes on how they were read.

    Raises :class:`DataError` naming the file and the problem.
    """
    d = run.config.data
    if isinstance(source, XrayData):
        data = source
        if data.image_size != d.image_size:
            raise DataError(
                f"{data.source or 'the images'}: {data.image_size} px; the run's models take "
                f"{d.image_size} px (load them with image_size={d.image_size})"
            )
    else:
        data = load(source, d.image_size, d.normalize, drop_invalid, layout)
    notes = list(data.notes)
    if d.normalize == "global":
        lo, hi = _run_range(run)
        data = data.normalized_as((lo, hi))
        notes.append(
            f"normalised with the run's pixel range {lo:g} to {hi:g} (its training images'), not "
            "their own"
        )
        stored = run.metrics.data.source_dtype
        if data.source_dtype != stored:
            notes.append(
                f"these images are {data.source_dtype} in the source, the run's were {stored}: "
                "their values are compared on the run's scale"
            )
    n = len(data)
    outside = np.concatenate(
        [data.outside_range(np.arange(s, min(n, s + CHUNK))) for s in range(0, n, CHUNK)]
    ) if n else np.zeros(0)  # fmt: skip
    if d.normalize == "global" and outside.any():
        notes.append(
            f"{int((outside > 0).sum())} of {n} images have pixels outside that "
            f"range ({100 * outside.mean():.1f}% of all pixels), clipped to it"
        )
    return NewImages(data, notes, outside)


def _run_range(run: ScoringRun) -> tuple[float, float]:
    """The run's global (min, max): saved with the data summary, or for runs of earlier
    versions measured again on the run's own source when it is still there."""
    summary: DataSummary = run.metrics.data
    if summary.pixel_range is not None:
        return summary.pixel_range[0], summary.pixel_range[1]
    try:
        again = load(run.source, **_load_args(run.config))
    except DataError:
        raise RunFolderError(
            f"{run.out}: trained by an earlier cxrvae that did not record its normalisation "
            f"range, and its source {run.source} cannot be read to measure it again"
        ) from None
    return again.pixel_range


def _load_args(cfg: RunConfig) -> dict:
    d = cfg.data
    return {
        "image_size": d.image_size,
        "normalize": d.normalize,
        "drop_invalid": d.drop_invalid,
        "layout": d.layout,
    }
