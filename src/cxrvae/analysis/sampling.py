"""What every model's analysis shares: one seeded sample of training images, the test images
shown reconstructed, the images' features, and a linear (PCA) baseline fitted on training
images. Saved as ``sample.npz`` for the explorer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from ..atomic import save_npz
from ..config import RunConfig
from ..data.features import image_features
from ..data.xray import XrayData, as_uint8
from ..outputs import SAMPLE, TEST_FEATURES
from ..seeding import derive_seed
from . import evidence as ev
from . import latent as lt

THUMBNAIL = 64  # px: the explorer's images (larger models' images are shrunk to this)
BASELINE_FIT = 5000  # training images the linear baseline is fitted on, at most


@dataclass
class Sample:
    """The images every model is analysed on, and what is computed from them once.

    ``sample_idx`` are the analysed training images, ``recon_idx`` the test images shown
    reconstructed, ``features`` the :func:`cxrvae.data.features.image_features` of the
    sample's images (the test images' are saved for scoring); ``baseline`` is PCA of up to
    ``BASELINE_FIT`` training images (``n_fit``) with as many components as the largest model
    has latent dimensions.
    """

    data: XrayData
    cfg: RunConfig
    out: Path
    sample_idx: np.ndarray
    test_idx: np.ndarray
    recon_idx: np.ndarray
    features: dict[str, np.ndarray]
    thumbnails: np.ndarray  # (n_samples, s, s) uint8, at most THUMBNAIL px
    note: str
    baseline: PCA
    n_fit: int
    other_idx: np.ndarray  # held-out images of labels not trained on (anomaly detection)

    @property
    def labels(self) -> np.ndarray | None:
        """The sample's labels, when the set has labels."""
        return None if self.data.labels is None else self.data.labels[self.sample_idx]

    @property
    def spread(self) -> dict[str, float]:
        """Standard deviation of each image feature across the sample."""
        return {f: float(v.std()) for f, v in self.features.items()}


def _note(n_sample: int, n_train: int, n_recon: int, cfg: RunConfig) -> str:
    a = cfg.analysis
    note = (
        f"all {n_sample} training images encoded (fewer than {a.n_samples})"
        if n_sample < a.n_samples
        else f"{n_sample} of {n_train} training images encoded"
    )
    if n_recon < a.n_reconstructions:
        note += (
            f"; reconstructions show all {n_recon} test images (fewer than {a.n_reconstructions})"
        )
    return note


def draw_sample(data: XrayData, cfg: RunConfig, out, train_idx, test_idx, other_idx=()) -> Sample:
    """Draw the seeded sample every model is analysed on, fit the linear baseline, and save
    the sample to ``sample.npz`` and the test images' features to ``test_features.npz``.
    ``other_idx`` are held-out images of labels the models were not trained on."""
    a, seed = cfg.analysis, cfg.seed
    recon_idx = lt.sample_indices(
        test_idx, a.n_reconstructions, derive_seed(seed, "reconstructions")
    )
    sample_idx = lt.sample_indices(train_idx, a.n_samples, derive_seed(seed, "sample"))
    fit_idx = lt.sample_indices(train_idx, BASELINE_FIT, derive_seed(seed, "linear-baseline"))
    fit = data.normalized(fit_idx).reshape(len(fit_idx), -1)
    baseline = ev.fit_linear_baseline(fit, max(cfg.model.latent_dims), derive_seed(seed, "pca"))
    images = data.normalized(sample_idx)
    sample = Sample(
        data=data,
        cfg=cfg,
        out=Path(out),
        sample_idx=sample_idx,
        test_idx=np.asarray(test_idx),
        recon_idx=recon_idx,
        features=image_features(images),
        thumbnails=as_uint8(images, THUMBNAIL),
        note=_note(len(sample_idx), len(train_idx), len(recon_idx), cfg),
        baseline=baseline,
        n_fit=len(fit_idx),
        other_idx=np.asarray(other_idx, dtype=np.int64),
    )
    save_npz(sample.out / TEST_FEATURES, test_idx=sample.test_idx, **features_of(data, test_idx))
    labels = sample.labels
    save_npz(
        sample.out / SAMPLE,
        compressed=True,
        sample_idx=np.asarray(sample_idx),
        images=sample.thumbnails,
        labels=np.full(len(sample_idx), -1) if labels is None else labels,
        label_names=np.asarray(data.label_names or [], dtype=str),
        ids=np.asarray(
            data.ids[sample_idx] if data.ids is not None else [f"#{i}" for i in sample_idx],
            dtype=str,
        ),
        **{f"feature_{name}": v.astype(np.float32) for name, v in sample.features.items()},
    )
    return sample


def features_of(data: XrayData, idx, batch: int = 512) -> dict[str, np.ndarray]:
    """The chest-film features of the images ``idx`` (n,), streamed: name -> (n,)."""
    idx = np.asarray(idx)
    parts = [image_features(data.normalized(idx[s : s + batch])) for s in range(0, len(idx), batch)]
    if not parts:
        return {}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
