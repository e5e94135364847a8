"""With ``--seeds N``: each scored image's flag score averaged over the N trainings of one latent
size (an ensemble of the run's own model and those of ``repeats/``), the flags of that average,
and how far the seeds agree on which images they flag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import outputs
from ..analysis.atypicality import TrainingDensity, load_scores, score_images
from ..data.xray import XrayData
from ..errors import RunFolderError
from ..results import FLAG_SCORE
from ..seeding import derive_seed
from ..train.checkpoints import load_model
from .images import ModelImages, flags
from .loading import ScoringRun, check_model
from .summary import EnsembleScore


@dataclass
class EnsembleImages:
    """Each scored image under the N seeds' models of one latent size (n images, N seeds)."""

    per_seed: np.ndarray  # (N, n) the flag score under each seed's model, the run's own first
    score: np.ndarray  # (n,) their mean
    flagged: np.ndarray  # (n,) bool: the mean's conformal flag against the test images' means
    seeds_flagging: np.ndarray  # (n,) how many seeds flag the image on their own threshold
    summary: EnsembleScore


def seed_folders(run: ScoringRun) -> list:
    """The run folders of the run's other seeds (``repeats/2``...), in seed order; none for a
    run of one seed, or for one of those folders scoring by itself."""
    return outputs.repeat_dirs(run.out, run.config.train.seeds, run.config.train.repeat)


def ensemble(
    run: ScoringRun, data: XrayData, first: ModelImages, fpr: float, device
) -> EnsembleImages | None:
    """The flag score of every image of ``data`` under each seed's model of latent size
    ``first.latent_dim`` (``first``: the run's own model's view), averaged; None for one seed."""
    folders = seed_folders(run)
    if not folders:
        return None
    k = first.latent_dim
    scores, reference = [first.flag_score], [first.reference.score(FLAG_SCORE)]
    for folder in folders:
        path = outputs.model_dir(folder, k) / outputs.WEIGHTS
        model = load_model(path, device)
        check_model(model, run, k, path)
        seed = derive_seed(run.config.seed, f"score-{k}")
        density = TrainingDensity.load(outputs.model_dir(folder, k) / outputs.DENSITY)
        scored = score_images(model, data, np.arange(len(data)), seed, density)
        scores.append(scored.score(FLAG_SCORE))
        ref = load_scores(outputs.model_dir(folder, k) / outputs.REFERENCE)
        if not np.array_equal(ref.idx, first.reference.idx):
            raise RunFolderError(f"{folder}: tested on other images than the run; it mixes runs")
        reference.append(ref.score(FLAG_SCORE))
    per_seed, per_seed_reference = np.stack(scores), np.stack(reference)
    each = [flags(r, s, fpr).flagged for r, s in zip(per_seed_reference, per_seed)]
    mean = per_seed.mean(0)
    flagged = flags(per_seed_reference.mean(0), mean, fpr)
    any_seed, every_seed = np.any(each, axis=0), np.all(each, axis=0)
    summary = EnsembleScore(
        n_seeds=len(per_seed),
        threshold=flagged.threshold if flagged.attainable else None,
        n_flagged=int(flagged.flagged.sum()),
        flagged_per_seed=[int(f.sum()) for f in each],
        flagged_by_any=int(any_seed.sum()),
        flagged_by_every=int(every_seed.sum()),
    )
    return EnsembleImages(per_seed, mean, flagged.flagged, np.sum(each, axis=0), summary)
