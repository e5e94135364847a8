"""One model's analysis, step by step on the shared :class:`~cxrvae.analysis.sampling.Sample`:
reconstructions and the reference points (:mod:`.reconstruction`), clusters and maps
(:mod:`.structure`), interpolations, the label probe along them and a traversal
(:mod:`.paths`), and images generated from the prior.

Every figure goes where :mod:`cxrvae.outputs` says; every number into a
:class:`~cxrvae.results.ModelAnalysis`; what the explorer shows into ``embedding.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..figures.common import plot_image_grid, save_figure
from ..outputs import EMBEDDING, FIGURES, model_dir
from ..results import ModelAnalysis
from ..seeding import derive_seed
from . import latent as lt
from .embedding import save_embedding
from .paths import interpolation_step, probe_step, traversal_step
from .reconstruction import baseline_step, likelihood_step, reconstruction_step, reference_step
from .sampling import Sample
from .structure import cluster_step, map_step

N_GENERATED = 16  # images decoded from the prior


@dataclass
class AnalysedModel:
    """One model's analysis, and the arrays that the comparison between models needs."""

    metrics: ModelAnalysis
    mu: np.ndarray  # (n_samples, latent_dim) posterior means of the sample
    clusters: np.ndarray  # (n_samples,)
    recon: np.ndarray  # (n_reconstructions, H, W) the shared test images, reconstructed
    bce_above_floor: np.ndarray  # (n_test,)


def _generated(model, s: Sample, latent_dim: int) -> None:
    """Images decoded from codes drawn from the prior N(0, I)."""
    rng = np.random.default_rng(derive_seed(s.cfg.seed, f"generate-{latent_dim}"))
    z = rng.standard_normal((N_GENERATED, latent_dim)).astype(np.float32)
    title = f"Latent {latent_dim}: {N_GENERATED} images decoded from random codes z ~ N(0, I)"
    save_figure(
        plot_image_grid(lt.decode(model, z), title=title),
        FIGURES["samples"].file(s.out, latent_dim=latent_dim),
    )


def analyze_model(model, s: Sample, latent_dim: int) -> AnalysedModel:
    """Every measure and figure of one model's analysis."""
    recon = reconstruction_step(model, s, latent_dim)
    mu, logvar = lt.encode(model, s.data, s.sample_idx)
    clustering = cluster_step(mu, s, latent_dim)
    maps = map_step(mu, clustering.clusters, s, latent_dim)
    paths = interpolation_step(model, mu, logvar, maps, s, latent_dim)
    probe_step(model, mu, paths, s, latent_dim)
    baseline = baseline_step(recon.above_floor, s, latent_dim)
    likelihood = likelihood_step(model, s, latent_dim)
    anomaly = reference_step(model, s, latent_dim, mu)
    traversal = traversal_step(model, mu, paths.kl_per_dim, s, latent_dim)
    save_embedding(model_dir(s.out, latent_dim) / EMBEDDING, model, s, mu, maps, clustering, paths)
    _generated(model, s, latent_dim)
    evr = maps.explained_variance
    metrics = ModelAnalysis(
        n_samples=int(len(s.sample_idx)),
        test_bce=recon.bce,
        test_bce_floor=recon.bce_floor,
        test_bce_above_floor=recon.bce_above_floor,
        test_mse=recon.mse,
        test_psnr=recon.psnr,
        test_ssim=recon.ssim,
        n_clusters=clustering.n_clusters,
        silhouette={str(n): v for n, v in clustering.silhouette.items()},
        cluster_sizes=clustering.sizes,
        cluster_features=clustering.features,
        cluster_separation=clustering.separation,
        silhouette_chosen=clustering.silhouette_chosen,
        label_share_per_cluster=clustering.label_share,
        purity=clustering.purity,
        nmi=clustering.nmi,
        pca_explained_variance=evr.tolist(),
        pca_variance_2d=float(evr[:2].sum()),
        trustworthiness=maps.trustworthiness,
        knn_accuracy=maps.knn_accuracy,
        probe_auc=maps.probe_auc,
        kl_per_dim=paths.kl_per_dim.tolist(),
        active_units=paths.active_units,
        kl_dims_used=paths.kl_dims_used,
        kl_top2_share=paths.kl_top2_share,
        interpolation_dim=paths.dim,
        interpolations=paths.summaries,
        linear_baseline=baseline,
        log_likelihood=likelihood,
        traversal=traversal,
        anomaly=anomaly,
    )
    return AnalysedModel(metrics, mu, clustering.clusters, recon.shown, recon.above_floor)
