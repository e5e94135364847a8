"""What a run writes: the name of every file in a run folder, and every figure's caption.

The steps that write a file and the report that shows it both look it up here, so a name or a
caption exists once. Captions are ``str.format`` templates filled from the run's saved
configuration and results (``{latent_dim}``, ``{n_reconstructions}``, ``{label}``...).
See README "Output layout".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.json"
METRICS = "metrics.json"
SPLIT = "split.npz"
REPORT = "report.html"
EXPLORER = "explorer.html"
SAMPLE = "sample.npz"  # the analysed training images: indices, thumbnails, labels
IMAGES = ".images.npy"  # the images shared by models training at once, while they train
TENSORBOARD = "tensorboard"
FIGURES_DIR = "figures"
# In each model's folder:
HISTORY = "history.csv"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.pt"
EMBEDDING = "embedding.npz"
REFERENCE = "reference.npz"  # the test images' scores under the model (see cxrvae.score)
OTHERS = "others.npz"  # trained on some labels only: the held-out other labels' scores
DENSITY = "density.npz"  # the training images' codes and errors that scores compare with
# The test images' chest-film features, beside sample.npz:
TEST_FEATURES = "test_features.npz"
# What `cxrvae score RUN DATA` writes, by default in RUN/scores/<name of DATA>:
SCORES_DIR = "scores"
SCORES_CSV = "scores.csv"  # one row per image
SCORE_JSON = "score.json"  # the batch's numbers
SCORE_PAGE = "score.html"
SCORED = "scored.npz"  # thumbnails and map positions of the scored images (the explorer's layer)
SCORE_MARKERS = (SCORE_JSON, SCORES_CSV)  # a folder holding any of these holds a scoring

REPEATS_DIR = "repeats"  # with --seeds N: the models of the other seeds, one run folder each

RUN_MARKERS = (CONFIG, METRICS, SPLIT)  # a folder holding any of these holds a run
MODEL_PREFIX = "latent_"  # each model's folder, and its TensorBoard logs, are latent_<k>


def model_dir(out, latent_dim: int) -> Path:
    """``out/latent_<latent_dim>``: the weights, history and checkpoint of one model."""
    return Path(out) / f"{MODEL_PREFIX}{latent_dim}"


def repeat_dir(out, repeat: int) -> Path:
    """``out/repeats/<repeat + 1>``: the run folder of the models of seed ``repeat`` (1, 2...;
    those of the first seed are the run itself)."""
    return Path(out) / REPEATS_DIR / str(repeat + 1)


def repeat_dirs(out, seeds: int, repeat: int = 0) -> list[Path]:
    """The run folders of the other seeds of the run in ``out``, trained with ``--seeds
    seeds``; none when ``out`` is itself one of them (``repeat`` > 0)."""
    return [] if repeat else [repeat_dir(out, r) for r in range(1, seeds)]


def model_dirs(out) -> list[Path]:
    """Every model folder in the run folder ``out``, by latent size."""
    found = [p for p in Path(out).glob(MODEL_PREFIX + "*") if p.name[len(MODEL_PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(MODEL_PREFIX) :]))


def tensorboard_dir(out, latent_dim: int) -> Path:
    """``out/tensorboard/latent_<latent_dim>``: one model's TensorBoard logs."""
    return Path(out) / TENSORBOARD / f"{MODEL_PREFIX}{latent_dim}"


@dataclass(frozen=True)
class FigureSpec:
    """Where one figure is written and what its caption says.

    ``path`` is relative to the run folder and may hold ``{latent_dim}`` and ``{axis}``;
    ``caption`` is a template of values from the run; ``section`` is the report section.
    """

    path: str
    caption: str
    section: str

    def file(self, out, **names) -> Path:
        """The figure's path in the run folder ``out``."""
        return Path(out) / self.path.format(**names)

    def text(self, **values) -> str:
        """The caption with ``values`` filled in."""
        return self.caption.format(**values)


_M = "figures/latent_{latent_dim}/"  # one model's figures

FIGURES = {
    # 1. data
    "grid": FigureSpec(
        "figures/data/grid.png",
        "Random images from the set, titled with their label where labels exist.",
        "data",
    ),
    "mean_std": FigureSpec(
        "figures/data/mean_std.png",
        "Per-pixel mean and standard deviation over all images: bright areas on the right are "
        "where images differ most.",
        "data",
    ),
    "intensity_histogram": FigureSpec(
        "figures/data/intensity_histogram.png",
        "Distribution of all normalised pixel values.",
        "data",
    ),
    "brightness_contrast": FigureSpec(
        "figures/data/brightness_contrast.png",
        "Per-image exposure (mean brightness) and contrast (standard deviation), by label where "
        "labels exist.",
        "data",
    ),
    "label_effects": FigureSpec(
        "figures/data/label_effects.png",
        "How the labels differ on each measured feature: the difference of the means in pooled "
        "standard deviations (Cohen's d); dotted and dashed lines mark 0.5 (medium) and 0.8 "
        "(large).",
        "data",
    ),
    "positioning": FigureSpec(
        "figures/data/positioning.png",
        "Where the body sits in the frame (offset of the brightness centroid from the centre, as "
        "a share of the width or height), its left-right asymmetry, and the share of the edges "
        "that is dark (air or collimation).",
        "data",
    ),
    "typical_atypical": FigureSpec(
        "figures/data/typical_atypical.png",
        "The images closest to (top) and farthest from (bottom) the mean in pixel-PCA space: "
        "atypical exposures, positions or artefacts.",
        "data",
    ),
    "duplicates": FigureSpec(
        "figures/data/duplicates.png",
        "Near-identical pairs (RMS difference at most {near_rms} on 16 x 16 versions): pairs "
        "across the train/test split first, then the closest.",
        "data",
    ),
    # 2. training
    "history_comparison": FigureSpec(
        "figures/history_comparison.png",
        "Test loss, BCE and KL per epoch for every model.",
        "training",
    ),
    "history": FigureSpec(
        _M + "history.png",
        "Latent {latent_dim}: train and test loss per epoch: total, reconstruction (BCE) and KL.",
        "training",
    ),
    # 3. reconstructions
    "reconstructions_comparison": FigureSpec(
        "figures/reconstructions_comparison.png",
        "The same {n_reconstructions} test images (top row) reconstructed by every model.",
        "reconstructions",
    ),
    "error_distribution": FigureSpec(
        "figures/error_distribution.png",
        "Distribution over test images of the BCE above each image's floor, per model.",
        "reconstructions",
    ),
    "rate_distortion": FigureSpec(
        "figures/rate_distortion.png",
        "Left: each model's rate (KL, the information its code carries) against its distortion "
        "(BCE above the floor) on the test set. Right: the distortion beside that of PCA with as "
        "many components, fitted on the training images: a linear code of the same size.",
        "reconstructions",
    ),
    "reconstructions": FigureSpec(
        _M + "reconstructions.png",
        "Latent {latent_dim}: {n_reconstructions} test images (top) and their reconstructions "
        "decoded from the posterior mean (bottom).",
        "reconstructions",
    ),
    "worst_reconstructions": FigureSpec(
        _M + "worst_reconstructions.png",
        "Latent {latent_dim}: the test images this model reconstructs worst (largest BCE above "
        "the image's own floor), originals on top.",
        "reconstructions",
    ),
    # 4. clusters and maps
    "silhouette": FigureSpec(
        _M + "silhouette.png",
        "Latent {latent_dim}: silhouette score of K-means on the latent means for each K; the "
        "circled K was used.",
        "clusters",
    ),
    "clusters": FigureSpec(
        _M + "clusters.png",
        "Latent {latent_dim}: random members of each K-means cluster; the row label gives the "
        "cluster size. Colours match the maps.",
        "clusters",
    ),
    "maps_clusters": FigureSpec(
        _M + "maps_clusters.png",
        "Latent {latent_dim}: PCA (left) and t-SNE (right) maps of the encoded training "
        "images, coloured by K-means cluster.",
        "clusters",
    ),
    "maps_labels": FigureSpec(
        _M + "maps_labels.png",
        "Latent {latent_dim}: the same maps coloured by the dataset's labels.",
        "clusters",
    ),
    # 5. interpolations and traversals
    "interpolation": FigureSpec(
        _M + "interpolation_{axis}.png",
        "Latent {latent_dim}: decoded images along {label}, from the lowest (t = 0) to the "
        "highest (t = 1) image, with both originals and reconstructions.",
        "interpolations",
    ),
    "path_probability": FigureSpec(
        _M + "path_probability.png",
        "Latent {latent_dim}: each decoded frame of every interpolation encoded again and "
        "given to a logistic-regression probe trained on the sample's latent means and labels: "
        "its probability of the label along t.",
        "interpolations",
    ),
    "traversal": FigureSpec(
        _M + "traversal.png",
        "Latent {latent_dim}: the most used latent dimensions (largest mean KL), one per row, "
        "each moved from -{traversal_sd} to +{traversal_sd} standard deviations of its means "
        "while the others stay at the code of the most typical sampled image.",
        "interpolations",
    ),
    # the models of every seed (--seeds N)
    "seeds": FigureSpec(
        "figures/seeds.png",
        "Each number that describes a model, for every latent size over the trainings with "
        "other seeds (one point each; the bar is their mean): where the points of two sizes "
        "overlap, the seeds alone can make the difference.",
        "seeds",
    ),
    "cka": FigureSpec(
        "figures/cka.png",
        "Linear CKA between the latent means of the same sampled training images under every "
        "two models (latent size / seed): 1 for spaces that are rotations or scalings of each "
        "other. Blocks along the diagonal are the seeds of one size.",
        "seeds",
    ),
    # 6. samples
    "samples": FigureSpec(
        _M + "samples.png",
        "Latent {latent_dim}: images decoded from 16 random codes drawn from the prior "
        "N(0, I): what the model generates.",
        "samples",
    ),
}


def figures_in(section: str) -> dict[str, FigureSpec]:
    """The figures of one report section, in the order the report shows them."""
    return {name: f for name, f in FIGURES.items() if f.section == section}


# The figures of a scoring, in its folder, in the order the score page shows them.
SCORE_FIGURES = {
    "score_distribution": FigureSpec(
        "figures/score_distribution.png",
        "The flag score ({flag_words}) of the scored images against the run's test images, per "
        "model. Images beyond the dashed line are flagged: their conformal p-value against the "
        "test images is at most {fpr}.",
        "scores",
    ),
    "atypical": FigureSpec(
        "figures/latent_{latent_dim}/atypical.png",
        "Latent {latent_dim}: the most atypical scored images (highest flag score), each with the "
        "model's reconstruction and its nearest analysed training images in latent space.",
        "images",
    ),
    "maps": FigureSpec(
        "figures/latent_{latent_dim}/maps.png",
        "Latent {latent_dim}: the scored images on the run's PCA map (projected with the run's "
        "PCA) and t-SNE map (placed at the weighted mean of their 10 nearest analysed training "
        "images; the map itself is unchanged), over the analysed training images in grey; "
        "flagged images in red.",
        "maps",
    ),
    "feature_shift": FigureSpec(
        "figures/feature_shift.png",
        "How the scored images differ from the run's test images on each chest-film feature: "
        "the difference of the means in pooled standard deviations (Cohen's d).",
        "batch",
    ),
}
