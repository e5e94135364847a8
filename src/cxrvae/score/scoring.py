"""Score a batch of images with a trained run, and write what ``cxrvae score`` writes: one row
per image (``scores.csv``), the scored images' thumbnails and map positions (``scored.npz``, the
explorer's layer), the figures, and the batch's numbers (``score.json``, written by the caller
once the conclusion is worded)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import outputs
from ..analysis import latent as lt
from ..analysis.sampling import THUMBNAIL, features_of
from ..atomic import atomic_write, save_npz
from ..data.features import words
from ..data.xray import XrayData, as_uint8
from ..errors import RunFolderError
from ..figures.common import save_figure
from ..figures.data import plot_effect_sizes
from ..figures.scoring import plot_atypical, plot_on_maps, plot_score_distributions
from ..results import FLAG_SCORE, SCORE_WORDS, SCORES
from ..train.checkpoints import load_model
from .batch import feature_shifts, model_score
from .ensemble import EnsembleImages, ensemble
from .images import ModelImages, score_with_model
from .loading import NewImages, ScoringRun, check_model
from .summary import ScoreSummary

N_ATYPICAL = 6  # rows of the atypical-images figure


@dataclass
class Scores:
    """A scored batch: the numbers of ``score.json`` (``summary``), each model's view of every
    image (``models``), the images' ids, the share of each image's pixels clipped to the run's
    range, and the reconstructions of each model's most atypical images."""

    summary: ScoreSummary
    ids: np.ndarray  # (n,) str
    clipped: np.ndarray  # (n,)
    models: dict[int, ModelImages]
    atypical: dict[int, tuple[np.ndarray, np.ndarray]]  # k -> (indices, reconstructions)
    ensembles: dict[int, EnsembleImages]  # with --seeds N: k -> the N seeds' models together


def score_batch(run: ScoringRun, images: NewImages, fpr: float, device) -> Scores:
    """Every image (read by :func:`cxrvae.score.loading.load_images`) under every trained
    model of ``run``, and the batch against the run's test images."""
    data, seed, models, atypical, ensembles = images.data, run.config.seed, {}, {}, {}
    for k in run.latent_dims:
        path = outputs.model_dir(run.out, k) / outputs.WEIGHTS
        model = load_model(path, device)
        check_model(model, run, k, path)
        m = models[k] = score_with_model(model, data, run.out, seed, fpr)
        top = np.argsort(-m.flag_score, kind="stable")[:N_ATYPICAL]
        atypical[k] = (top, lt.decode(model, m.scores.mu[top]))
        if (seeds := ensemble(run, data, m, fpr, device)) is not None:
            ensembles[k] = seeds
    with np.load(run.out / outputs.TEST_FEATURES) as f:
        reference = {name: f[name] for name in f.files if name != "test_idx"}
    n = len(data)
    summary = ScoreSummary(
        run=str(run.out),
        source=data.source,
        n_images=n,
        image_size=data.image_size,
        notes=images.notes,
        models={k: model_score(m, fpr, seed, ensembles.get(k)) for k, m in models.items()},
        features=feature_shifts(reference, features_of(data, np.arange(n))),
    )
    ids = data.ids if data.ids is not None else np.array([f"{i:06d}" for i in range(n)])
    ids = np.asarray(ids, dtype=str)
    return Scores(summary, ids, images.clipped, models, atypical, ensembles)


def default_out(run_out, source) -> Path:
    """``RUN/scores/<name of DATA>``."""
    name = Path(str(source)).stem if Path(str(source)).suffix else Path(str(source)).name
    return Path(run_out) / outputs.SCORES_DIR / (re.sub(r"[^\w.-]+", "_", name) or "images")


def prepare_score_dir(out, overwrite: bool = False) -> Path:
    """Create ``out``; refuse one that holds a scoring unless ``overwrite``."""
    out = Path(out)
    held = [m for m in outputs.SCORE_MARKERS if (out / m).exists()]
    if held and not overwrite:
        raise RunFolderError(
            f"{out}: already holds a scoring ({', '.join(held)}); use --overwrite to replace "
            "it or --out for another folder"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFolderError(f"{out}: cannot write there ({e.strerror or e})") from None
    return out


def write_scores(scores: Scores, data: XrayData, run: ScoringRun, out: Path) -> None:
    """``scores.csv``, ``scored.npz`` and the figures, into ``out``."""
    _write_csv(scores, out / outputs.SCORES_CSV)
    thumbs = np.concatenate(
        [as_uint8(data.normalized(np.arange(s, min(len(data), s + 512))), THUMBNAIL)
         for s in range(0, len(data), 512)]
    ) if len(data) else np.zeros((0, THUMBNAIL, THUMBNAIL), np.uint8)  # fmt: skip
    layer = {"ids": scores.ids, "images": thumbs}
    for k, m in scores.models.items():
        layer |= {f"pca_{k}": m.pca, f"tsne_{k}": m.tsne, f"flagged_{k}": m.flagged,
                  f"percentile_{k}": m.percentile[FLAG_SCORE]}  # fmt: skip
    save_npz(out / outputs.SCORED, compressed=True, **layer)
    _draw(scores, data, run, out)


def _write_csv(scores: Scores, path: Path) -> None:
    head = ["id", "clipped"]
    columns = [scores.ids, scores.clipped]
    for k, m in scores.models.items():
        p = f"latent{k}_"
        head += [p + s for s in SCORES] + [p + "percentile", p + "pvalue", p + "flagged",
                                           p + "nearest", p + "nearest_distance", p + "pca1",
                                           p + "pca2", p + "tsne1", p + "tsne2"]  # fmt: skip
        nearest = [";".join(map(str, m.analysed.sample_idx[r])) for r in m.nearest]
        columns += [m.scores.score(s) for s in SCORES] + [
            m.percentile[FLAG_SCORE], m.flags.pvalue, m.flagged.astype(int), nearest,
            m.nearest_distance[:, 0], m.pca[:, 0], m.pca[:, 1], m.tsne[:, 0], m.tsne[:, 1],
        ]  # fmt: skip
        if (e := scores.ensembles.get(k)) is not None:
            head += [p + "seeds_" + FLAG_SCORE, p + "seeds_flagged", p + "seeds_flagging"]
            columns += [e.score, e.flagged.astype(int), e.seeds_flagging]
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(head)
    for row in zip(*columns):
        w.writerow([f"{v:.6g}" if isinstance(v, float | np.floating) else v for v in row])
    atomic_write(path, lambda tmp: tmp.write_text(text.getvalue()))


def _short(name: str, width: int = 18) -> str:
    """A file name that fits under an image: its end, where names differ."""
    name = str(name)
    return name if len(name) <= width else "..." + name[-(width - 3) :]


def _draw(scores: Scores, data: XrayData, run: ScoringRun, out: Path) -> None:
    figs = outputs.SCORE_FIGURES
    ms = scores.models
    save_figure(
        plot_score_distributions(
            {k: m.reference.score(FLAG_SCORE) for k, m in ms.items()},
            {k: m.flag_score for k, m in ms.items()},
            {k: m.threshold for k, m in ms.items()},
            SCORE_WORDS[FLAG_SCORE],
        ),
        figs["score_distribution"].file(out),
    )
    with np.load(run.out / outputs.SAMPLE) as f:
        train_thumbs = f["images"]
    for k, m in ms.items():
        top, recon = scores.atypical[k]
        save_figure(
            plot_atypical(
                data.normalized(top), recon, train_thumbs[m.nearest[top]] / 255.0,
                [f"{_short(scores.ids[i])}\n{m.percentile[FLAG_SCORE][i]:.0f}th percentile"
                 for i in top],
                f"Latent {k}: the most atypical scored images",
            ),
            figs["atypical"].file(out, latent_dim=k),
        )  # fmt: skip
        save_figure(
            plot_on_maps(m.analysed.pca, m.analysed.tsne, m.pca, m.tsne, m.flagged,
                         f"Latent {k}: {len(m.pca)} scored images on the run's maps"),
            figs["maps"].file(out, latent_dim=k),
        )  # fmt: skip
    if scores.summary.features:
        f = scores.summary.features
        save_figure(
            plot_effect_sizes([words(n) for n in f], [s.effect for s in f.values()],
                              "the test images", "the scored images"),
            figs["feature_shift"].file(out),
        )  # fmt: skip
