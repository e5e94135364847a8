"""Latent-space analysis: encode to posterior means, cluster, map to 2-D, interpolate.

Every embedding uses the posterior mean ``mu`` with the model in eval mode, so results repeat.
Results are numpy arrays in dataclasses; nothing here plots or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from ..data.features import image_features
from ..data.xray import XrayData
from ..results import Trend
from ..train.model import ConvVAE, kl_divergence

ENCODE_BATCH = 512


def _device(model: ConvVAE) -> torch.device:
    return next(model.parameters()).device


def batches(model: ConvVAE, data: XrayData, idx):
    """Put the model in eval mode; yield normalised images (B, 1, H, W) on its device."""
    model.eval()
    idx = np.asarray(idx)
    for start in range(0, len(idx), ENCODE_BATCH):
        x = torch.from_numpy(data.normalized(idx[start : start + ENCODE_BATCH])).unsqueeze(1)
        yield x.to(_device(model)).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def encode(model: ConvVAE, data: XrayData, idx) -> tuple[np.ndarray, np.ndarray]:
    """Posterior ``(mu, logvar)``, each (n, latent_dim) float32, of the images ``idx``.

    Streams over batches of ``ENCODE_BATCH`` images, so any set size fits in memory.
    """
    mus, logvars = [], []
    for x in batches(model, data, idx):
        mu, logvar = model.encode(x)
        mus.append(mu.float().cpu().numpy())
        logvars.append(logvar.float().cpu().numpy())
    return np.concatenate(mus), np.concatenate(logvars)


@torch.inference_mode()
def encode_images(model: ConvVAE, images: np.ndarray) -> np.ndarray:
    """Posterior means (n, latent_dim) of images (n, H, W) in [0, 1], such as decoded frames."""
    model.eval()
    out = []
    for start in range(0, len(images), ENCODE_BATCH):
        x = torch.as_tensor(images[start : start + ENCODE_BATCH], dtype=torch.float32)[:, None]
        x = x.to(_device(model)).contiguous(memory_format=torch.channels_last)
        out.append(model.encode(x)[0].float().cpu().numpy())
    return np.concatenate(out)


@torch.inference_mode()
def decode(model: ConvVAE, z: np.ndarray) -> np.ndarray:
    """Images (n, H, W) float32 in [0, 1]: sigmoid of the decoder's logits for codes z (n, D)."""
    model.eval()
    out = []
    for start in range(0, len(z), ENCODE_BATCH):
        zt = torch.as_tensor(
            z[start : start + ENCODE_BATCH], dtype=torch.float32, device=_device(model)
        )
        out.append(torch.sigmoid(model.decode(zt).float())[:, 0].cpu().numpy())
    return np.concatenate(out)


def reconstruct(model: ConvVAE, data: XrayData, idx) -> np.ndarray:
    """Reconstructions (n, H, W) of the images ``idx``, decoded from their posterior means."""
    return reconstruct_scored(model, data, idx)[0]


@torch.inference_mode()
def reconstruct_scored(model: ConvVAE, data: XrayData, idx) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions (n, H, W) from the posterior means, and each image's BCE (n,).

    The BCE is summed over pixels and computed from the decoder's logits (exact, no clipping).
    """
    images, bces = [], []
    for x in batches(model, data, idx):
        logits = model.decode(model.encode(x)[0]).float()  # (B, 1, H, W)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
        images.append(torch.sigmoid(logits)[:, 0].cpu().numpy())
        bces.append(bce.cpu().numpy())
    return np.concatenate(images), np.concatenate(bces).astype(np.float64)


def sample_indices(pool, n_samples: int, seed: int) -> np.ndarray:
    """``n_samples`` indices drawn without replacement from ``pool`` (all of it when smaller)."""
    pool = np.asarray(pool)
    if len(pool) <= n_samples:
        return np.sort(pool)
    return np.sort(np.random.default_rng(seed).choice(pool, size=n_samples, replace=False))


# --------------------------------------------------------------------------- clusters


def kmeans(z: np.ndarray, n_clusters: int, seed: int, n_init: int = 10) -> np.ndarray:
    """K-means labels (n,), renumbered so cluster 0 is the largest (stable colours)."""
    raw = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(z)
    sizes = np.bincount(raw, minlength=n_clusters)
    order = np.argsort(-sizes, kind="stable")  # old label of the largest, second largest...
    rank = np.empty(n_clusters, dtype=np.int64)
    rank[order] = np.arange(n_clusters)
    return rank[raw]


def silhouette_curve(
    z: np.ndarray, k_range: tuple[int, int], seed: int, n_init: int = 10
) -> dict[int, float]:
    """Silhouette score of K-means for each K in ``k_range`` (inclusive), K < n."""
    out = {}
    for k in range(k_range[0], min(k_range[1], len(z) - 1) + 1):
        labels = kmeans(z, k, seed, n_init)
        out[k] = float(silhouette_score(z, labels)) if len(np.unique(labels)) > 1 else -1.0
    return out


# --------------------------------------------------------------------------- maps


def fit_pca(z: np.ndarray, seed: int) -> PCA:
    """The PCA of latent means (n, D) that the maps draw; refitted on the saved means, it gives
    the same map again and places new points on it."""
    return PCA(random_state=seed).fit(z)


def pca(z: np.ndarray, seed: int, n_components: int = 2):
    """PCA coordinates (n, n_components) and explained-variance ratios of all components (D,)."""
    full = fit_pca(z, seed)
    coords = full.transform(z)[:, :n_components]
    return coords, full.explained_variance_ratio_


TSNE_THREADS = 2  # OpenMP threads of t-SNE, on every machine and in every process


def tsne(z: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """t-SNE coordinates (n, 2); the perplexity is capped below n / 3 for small samples.

    scikit-learn's Barnes-Hut t-SNE gives another map for another number of OpenMP threads
    (which torch's thread setting also changes), so it always runs with ``TSNE_THREADS``: the
    same seed gives the same map on any machine, in this process or a worker.
    """
    perplexity = float(min(perplexity, max(1.0, (len(z) - 1) / 3)))
    with threadpool_limits(TSNE_THREADS, user_api="openmp"):
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=1000
        ).fit_transform(z)


def traverse(
    model: ConvVAE, base: np.ndarray, dims, sd: np.ndarray, steps: np.ndarray
) -> np.ndarray:
    """Decoded images (len(dims), len(steps), H, W): the code ``base`` (D,) with dimension
    ``dims[r]`` set to ``base[d] + steps[c] * sd[r]``, all other dimensions kept."""
    z = np.repeat(np.asarray(base, dtype=np.float32)[None, None], len(dims), 0)
    z = np.repeat(z, len(steps), 1)  # (R, C, D)
    for r, d in enumerate(dims):
        z[r, :, d] = base[d] + np.asarray(steps) * sd[r]
    images = decode(model, z.reshape(-1, len(base)))
    return images.reshape(len(dims), len(steps), *images.shape[1:])


def most_used_dim(mu: np.ndarray, logvar: np.ndarray) -> tuple[int, np.ndarray]:
    """Latent dimension with the largest mean KL over the sample, and the KL per dimension (D,)."""
    kl = kl_divergence(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).numpy()
    return int(np.argmax(kl)), kl


# --------------------------------------------------------------------------- interpolation


def interpolate(z0: np.ndarray, z1: np.ndarray, n_between: int = 7):
    """Linear path from z0 to z1 (D,) with ``n_between`` points strictly between.

    Returns
    -------
    t : ndarray (n_between + 2,)
        0, 1/(n_between + 1), ..., 1.
    z : ndarray (n_between + 2, D)
        ``(1 - t) * z0 + t * z1``; the first and last rows equal z0 and z1 exactly.
    """
    t = np.linspace(0.0, 1.0, n_between + 2)
    z = (1.0 - t)[:, None] * z0[None] + t[:, None] * z1[None]
    z[0], z[-1] = z0, z1  # exact endpoints, whatever the rounding
    return t, z.astype(np.float32)


def feature_spread(images: np.ndarray) -> dict[str, float]:
    """Standard deviation of each :func:`cxrvae.data.features.image_features` feature across
    images."""
    return {name: float(v.std()) for name, v in image_features(images).items()}


def feature_trends(
    t: np.ndarray, features: dict[str, np.ndarray], spread: dict[str, float]
) -> dict[str, Trend]:
    """Least-squares slope of each feature along t, in the feature's units and in data spreads.

    ``effect`` = slope / ``spread[name]``: the change from t = 0 to t = 1 in standard deviations
    of that feature across the analysed images, so features of different units can be ranked and
    a change can be called large or small against how much real images vary.
    """
    out = {}
    for name, values in features.items():
        slope = float(np.polyfit(t, values, 1)[0])
        out[name] = Trend(
            start=float(values[0]),
            end=float(values[-1]),
            slope=slope,
            effect=slope / max(float(spread[name]), 1e-12),
        )
    return out


@dataclass
class Interpolation:
    """One interpolation between the lowest and highest image on an axis.

    ``endpoints`` are indices into the analysed sample; ``images`` (n_between + 2, H, W) are the
    decoded path; ``originals`` and ``reconstructions`` (2, H, W) belong to the two endpoints;
    ``features`` are the :func:`cxrvae.data.features.image_features` of ``images``, and ``trends``
    their slopes along t.
    """

    axis: str
    label: str
    endpoints: tuple[int, int]
    values: tuple[float, float]
    t: np.ndarray
    z: np.ndarray
    images: np.ndarray
    originals: np.ndarray
    reconstructions: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    trends: dict[str, Trend] = field(default_factory=dict)


def interpolate_axis(
    model: ConvVAE,
    data: XrayData,
    sample_idx,
    axis_values,
    axis: str,
    label: str,
    n_between: int = 7,
    spread: dict | None = None,
) -> Interpolation:
    """Interpolate between the arg-min and arg-max of ``axis_values`` (n,) over the sample.

    Both endpoint images are encoded again (posterior means), the path between them is decoded.
    ``spread`` (feature name -> standard deviation across the sample's images) scales the
    feature trends; computed from the sample when not given.
    """
    if spread is None:
        spread = feature_spread(data.normalized(sample_idx))
    lo, hi = int(np.argmin(axis_values)), int(np.argmax(axis_values))
    ends = np.asarray(sample_idx)[[lo, hi]]
    mu, _ = encode(model, data, ends)
    t, z = interpolate(mu[0], mu[1], n_between)
    images = decode(model, z)
    features = image_features(images)
    return Interpolation(
        axis,
        label,
        (lo, hi),
        (float(axis_values[lo]), float(axis_values[hi])),
        t,
        z,
        images,
        data.normalized(ends),
        images[[0, -1]],
        features,
        feature_trends(t, features, spread),
    )
