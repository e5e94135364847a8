"""Measurements the discussion quotes: reconstruction quality, cluster-label agreement,
agreement between models, map faithfulness and what a linear read-out finds in the latents.

Every function takes numpy arrays and returns numbers or arrays; nothing here plots or writes.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.manifold import trustworthiness
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

N_FOLDS = 5
N_NEIGHBORS = 5  # k-NN label accuracy
TRUST_NEIGHBORS = 10  # trustworthiness of a 2-D map


def binary_entropy(x: np.ndarray) -> np.ndarray:
    """Summed binary entropy of targets x (n, H, W) in [0, 1], in nats per image (n,).

    The BCE of a perfect prediction ``x_hat = x`` equals this: the floor that no model can go
    below when targets are grey levels rather than 0 or 1.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(x > 0, x * np.log(x), 0.0) + np.where(x < 1, (1 - x) * np.log1p(-x), 0.0))
    return h.reshape(len(x), -1).sum(1)


def reconstruction_quality(x: np.ndarray, x_hat: np.ndarray, bce: np.ndarray) -> dict:
    """Per-image reconstruction measures of targets x and reconstructions x_hat (n, H, W).

    Parameters
    ----------
    x, x_hat : ndarray (n, H, W) in [0, 1]
    bce : ndarray (n,)
        BCE summed over pixels, computed from the logits by the caller.

    Returns
    -------
    dict of ndarray (n,): ``bce``, ``bce_floor``, ``bce_above_floor``, ``mse``, ``psnr`` (dB,
    data range 1) and ``ssim`` (scikit-image, data range 1).
    """
    x = np.asarray(x, dtype=np.float64)
    x_hat = np.asarray(x_hat, dtype=np.float64)
    floor = binary_entropy(x)
    mse = ((x - x_hat) ** 2).reshape(len(x), -1).mean(1)
    psnr = 10 * np.log10(1.0 / np.maximum(mse, 1e-12))
    ssim = np.array([structural_similarity(a, b, data_range=1.0) for a, b in zip(x, x_hat)])
    return {
        "bce": np.asarray(bce, dtype=np.float64),
        "bce_floor": floor,
        "bce_above_floor": np.asarray(bce) - floor,
        "mse": mse,
        "psnr": psnr,
        "ssim": ssim,
    }


def summarize(values: np.ndarray) -> dict:
    """Mean, median, 10th and 90th percentile of a per-image measure."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "p10": float(np.percentile(v, 10)),
        "p90": float(np.percentile(v, 90)),
    }


def cluster_label_agreement(clusters: np.ndarray, labels: np.ndarray) -> dict:
    """Purity (share of images in their cluster's majority label) and normalised mutual
    information between K-means clusters and labels."""
    majority = sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters))
    return {
        "purity": float(majority / len(labels)),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
    }


def linear_r2(z_from: np.ndarray, z_to: np.ndarray, seed: int) -> float:
    """Cross-validated R^2 of a linear map from one latent space (n, D1) to another (n, D2).

    The share of the target space's variance (summed over its dimensions) that a linear
    function of the source explains on held-out images.
    """
    folds = KFold(N_FOLDS, shuffle=True, random_state=seed)
    pred = cross_val_predict(LinearRegression(), z_from, z_to, cv=folds)
    resid = ((z_to - pred) ** 2).sum()
    total = ((z_to - z_to.mean(0)) ** 2).sum()
    return float(1 - resid / total) if total > 0 else 0.0


def map_trustworthiness(z: np.ndarray, coords: np.ndarray) -> float:
    """sklearn's trustworthiness of a 2-D map (1 = every map neighbour is a true neighbour)."""
    k = min(TRUST_NEIGHBORS, (len(z) - 1) // 2)
    return float(trustworthiness(z, coords, n_neighbors=k))


def knn_accuracy(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Cross-validated accuracy of a 5-nearest-neighbour classifier of the labels."""
    folds = StratifiedKFold(_n_folds(labels), shuffle=True, random_state=seed)
    return float(
        cross_val_score(KNeighborsClassifier(N_NEIGHBORS), features, labels, cv=folds).mean()
    )


def probe_auc(z: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Cross-validated ROC AUC of a logistic-regression probe from latent means to labels.

    Binary labels give the usual AUC; more classes the macro one-vs-rest AUC.
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(_n_folds(labels), shuffle=True, random_state=seed)
    scoring = "roc_auc" if len(np.unique(labels)) == 2 else "roc_auc_ovr"
    return float(cross_val_score(probe, z, labels, cv=folds, scoring=scoring).mean())


def _n_folds(labels: np.ndarray) -> int:
    return int(max(2, min(N_FOLDS, np.bincount(labels).min())))


def usable_labels(labels: np.ndarray | None) -> bool:
    """Labels with at least two classes of at least two images each (what CV needs)."""
    if labels is None:
        return False
    counts = np.bincount(labels)
    return int((counts >= 2).sum()) >= 2 and counts[counts > 0].min() >= 2


# --------------------------------------------------------------------------- reference points

PCA_CLIP = 1e-3  # a PCA reconstruction is clipped to [PCA_CLIP, 1 - PCA_CLIP] before its BCE


def fit_linear_baseline(images: np.ndarray, n_components: int, seed: int) -> PCA:
    """PCA of flattened images (n, P) in [0, 1] with ``n_components`` components."""
    k = int(min(n_components, len(images) - 1, images.shape[1]))
    # ARPACK finds the leading components to machine precision, as fast as the randomized
    # solver at these sizes; it needs k below both dimensions of the data.
    solver = "arpack" if k < min(images.shape) else "full"
    return PCA(n_components=k, svd_solver=solver, random_state=seed).fit(images)


def linear_reconstruction(pca: PCA, images: np.ndarray, n_components: int) -> np.ndarray:
    """Images (n, P) projected on the first ``n_components`` principal components and back."""
    comps = pca.components_[:n_components]  # (k, P)
    return (images - pca.mean_) @ comps.T @ comps + pca.mean_


def linear_quality(x: np.ndarray, x_hat: np.ndarray, shape: tuple) -> dict[str, np.ndarray]:
    """Per-image BCE above the floor and SSIM of a linear reconstruction of targets x (n, P).

    The reconstruction can leave [0, 1]; it is clipped to [PCA_CLIP, 1 - PCA_CLIP] for the BCE
    (the VAE's BCE comes from logits and needs no clipping) and to [0, 1] for the SSIM.
    """
    p = np.clip(x_hat, PCA_CLIP, 1 - PCA_CLIP)
    bce = -(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(1)
    images = x.reshape(-1, *shape)
    recon = np.clip(x_hat, 0, 1).reshape(-1, *shape)
    ssim = np.array([structural_similarity(a, b, data_range=1.0) for a, b in zip(images, recon)])
    return {"bce_above_floor": bce - binary_entropy(images), "ssim": ssim}


def fit_probe(z: np.ndarray, labels: np.ndarray, seed: int):
    """The logistic-regression probe of :func:`probe_auc`, fitted on all of ``z`` (n, D)."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return probe.fit(z, labels)


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear centred kernel alignment of two representations (n, p) and (n, q) of the same n
    images (Kornblith et al., ICML 2019): 1 for representations that are rotations or isotropic
    scalings of each other, near 0 for unrelated ones; dimensions need not match."""
    a = np.asarray(a, np.float64) - np.mean(a, axis=0)
    b = np.asarray(b, np.float64) - np.mean(b, axis=0)
    cross = np.linalg.norm(b.T @ a) ** 2
    norm = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(cross / norm) if norm > 0 else 0.0


def map_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two 2-D maps (n, 2) of the same images are once aligned: 1 minus the
    disparity left after the orthogonal Procrustes alignment (translation, rotation or
    reflection, scaling) of one onto the other (scipy.spatial.procrustes); 1 for the same map."""
    from scipy.spatial import procrustes

    return float(1 - procrustes(np.asarray(a, np.float64), np.asarray(b, np.float64))[2])
