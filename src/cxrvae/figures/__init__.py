"""Figure functions: numpy arrays in, a matplotlib Figure out. No torch, no show(); only
:func:`save_figure` writes a file.

The backend is left to the caller (a notebook shows the figures inline); the command line
selects the non-interactive Agg backend, since it only writes files. Every plot function of
every step is available here (``cxrvae.figures.plot_maps``); the modules group them by step:
:mod:`.data` (how the images differ), :mod:`.training` (loss curves) and :mod:`.analysis`
(latent spaces) and :mod:`.scoring` (new images against a run), on the shared
:mod:`.common`.
"""

from .analysis import (
    plot_cluster_gallery,
    plot_error_distribution,
    plot_interpolation,
    plot_latent_scatter,
    plot_maps,
    plot_over_seeds,
    plot_path_probability,
    plot_rate_distortion,
    plot_reconstructions,
    plot_silhouette,
    plot_similarity,
    plot_traversal,
)
from .common import COLORS, color, plot_image_grid, save_figure, show_image
from .data import (
    plot_brightness_contrast,
    plot_duplicate_pairs,
    plot_effect_sizes,
    plot_feature_histograms,
    plot_intensity_histogram,
    plot_mean_std,
    plot_typical_atypical,
)
from .scoring import plot_atypical, plot_on_maps, plot_score_distributions
from .training import plot_history, plot_history_comparison

__all__ = [
    "COLORS",
    "color",
    "save_figure",
    "show_image",
    "plot_image_grid",
    "plot_mean_std",
    "plot_intensity_histogram",
    "plot_brightness_contrast",
    "plot_typical_atypical",
    "plot_effect_sizes",
    "plot_feature_histograms",
    "plot_duplicate_pairs",
    "plot_history",
    "plot_history_comparison",
    "plot_reconstructions",
    "plot_silhouette",
    "plot_similarity",
    "plot_over_seeds",
    "plot_cluster_gallery",
    "plot_latent_scatter",
    "plot_interpolation",
    "plot_maps",
    "plot_error_distribution",
    "plot_rate_distortion",
    "plot_traversal",
    "plot_path_probability",
    "plot_score_distributions",
    "plot_atypical",
    "plot_on_maps",
]
