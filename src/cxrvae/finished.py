"""A trained run from Python: :class:`Run`, the view of a run folder that
:func:`~cxrvae.study.run_study` and :func:`open_run` return, and :func:`score_study`, scoring
new images with it (``cxrvae score``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import outputs
from .atomic import write_json
from .config import RunConfig
from .data.loader import load_data
from .data.xray import XrayData
from .errors import ConfigError, RunFolderError
from .report.explorer import build_explorer
from .report.score_page import build_score_page, conclusion
from .results import StudyMetrics, to_dict
from .runfolder import (
    history_columns,
    read_config,
    read_history,
    read_metrics,
    read_split,
    require_run,
)
from .score.loading import load_images, open_for_scoring
from .score.scoring import Scores, default_out, prepare_score_dir, score_batch, write_scores
from .train.checkpoints import load_model
from .train.loop import resolve_device

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- scoring new images


def score_study(
    run,
    source,
    out=None,
    fpr: float = 0.01,
    overwrite: bool = False,
    layout: str = "auto",
    drop_invalid: bool = False,
    write: bool = True,
) -> Scores:
    """Score the images of ``source`` with the trained run in folder ``run``: ``cxrvae score``.

    Each image gets each model's scores, its percentile among the run's test images and a flag
    beyond the threshold that a share ``fpr`` of them exceed; the batch is tested against the
    test images. With ``write``, ``scores.csv``, ``score.json``, ``score.html``, the figures and
    the explorer's layer go to ``out`` (default ``RUN/scores/<name of DATA>``), created only once
    everything is read and scored: bad input writes nothing. A batch scored into ``RUN/scores``
    becomes a layer of the run's ``explorer.html``, which is built again.
    """
    if not 0 < fpr < 1:
        raise ConfigError(f"fpr must be between 0 and 1, got {fpr}")
    r = open_for_scoring(run)
    images = load_images(source, r, layout, drop_invalid)
    scores = score_batch(r, images, fpr, resolve_device(r.config.train.device))
    scores.summary.conclusion = conclusion(scores.summary)
    if write:
        out = prepare_score_dir(out or default_out(r.out, source), overwrite)
        write_scores(scores, images.data, r, out)
        write_json(out / outputs.SCORE_JSON, to_dict(scores.summary))
        log.info("scores: %s", out / outputs.SCORES_CSV)
        log.info("score page: %s", build_score_page(out))
        if out.resolve().parent == (r.out / outputs.SCORES_DIR).resolve():
            log.info("explorer, with this batch as a layer: %s", build_explorer(r.out))
    return scores


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

    def score(self, data, fpr: float = 0.01, out=None, **options) -> Scores:
        """Score new images (a file, folder, set's name or an ``XrayData`` at the run's size)
        against this run: see :func:`score_study`. Nothing is written unless ``out`` is given."""
        return score_study(self.out, data, out, fpr, write=out is not None, **options)

    def embedding(self, latent_dim: int) -> dict[str, np.ndarray]:
        """The analysed sample of one model: ``sample_idx``, ``mu``, ``pca``, ``tsne``,
        ``clusters``, ``recon`` (uint8), ``error``, ``neighbours`` and ``neighbour_distances``,
        the interpolations (``axes``, ``t``, ``frames``), the decoded grid over the PCA map
        (``grid_x``, ``grid_y``, ``grid_z``, ``grid``) and the traversals (``traversal_*``);
        see :mod:`cxrvae.analysis.embedding`."""
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
