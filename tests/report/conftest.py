"""Constructed metrics for the report's tests: three models (latent 4, 16, 32) whose numbers
are set by the test, with or without labels."""

import pytest

from cxrvae.data.features import NAMES

DIMS = (4, 16, 32)


AXES = ("pca1", "pca2", "tsne1", "tsne2", "z0")


def _spread(mean):
    return {"mean": mean, "median": mean, "p10": mean, "p90": mean}


def _trends(effects):
    return {f: {"start": 0.5, "end": 0.6, "slope": e, "effect": e} for f, e in effects.items()}


def _analysis(d, above, labels=True, used=None, active=None, effects=None, names=None,
              moving="tsne1"):  # fmt: skip
    effects = effects or {"exposure": -2.0, "contrast": 1.0}
    effects = {f: effects.get(f, 0.1) for f in NAMES}
    a = {
        "n_samples": 300,
        "test_bce": _spread(2300 + above),
        "test_bce_floor": _spread(2300.0),
        "test_bce_above_floor": _spread(above),
        "test_mse": _spread(0.01),
        "test_psnr": _spread(20.0),
        "test_ssim": _spread(0.6),
        "n_clusters": 2,
        "silhouette": {"2": 0.2, "3": 0.1},
        "cluster_sizes": [200, 100],
        "cluster_features": [{"exposure": 0.4}, {"exposure": 0.6}],
        "cluster_separation": {"exposure": 1.4, "contrast": 0.3},
        "silhouette_chosen": 0.2,
        "pca_explained_variance": [0.5, 0.2] + [0.3 / (d - 2)] * (d - 2),
        "pca_variance_2d": 0.7,
        "trustworthiness": {"pca": 0.9, "tsne": 0.97},
        "kl_per_dim": [1.0] * d,
        "active_units": d if active is None else active,
        "kl_dims_used": d if used is None else used,
        "kl_top2_share": 0.4,
        "interpolation_dim": 0,
        "interpolations": {
            ax: {"label": ax, "values": [0, 1], "trends": _trends(effects)} for ax in AXES
        },
        "linear_baseline": {
            "n_components": d,
            "n_fit": 400,
            "bce_above_floor": 2 * above,
            "ssim": 0.5,
            "error_removed": 0.5,
        },  # fmt: skip
        "log_likelihood": {
            "n_importance": 32,
            "n_images": 96,
            "nats": -2300 - above,
            "bits_per_pixel": 0.8,
            "elbo": -2304 - above,
            "gap": 4.0,
        },  # fmt: skip
        "traversal": {"dims": [0], "kl": [1.0], "sd": [1.0], "steps": [-3.0, 0.0, 3.0]},
    }
    if labels:
        first, second = names or ("normal", "pneumonia")
        a.update(label_share_per_cluster=[{first: 0.2, second: 0.8}, {first: 0.7, second: 0.3}],
                 purity=0.75, nmi=0.2, probe_auc=0.9,
                 knn_accuracy={"latent": 0.8, "pca": 0.7, "tsne": 0.78})  # fmt: skip
        for ax, p in a["interpolations"].items():
            p["probe"] = {
                "label": second,
                "probability": [0.9, 0.5, 0.1 if ax == moving else 0.8],
            }
    return a


def _features(labels):
    out = {}
    for f in NAMES:
        out[f] = {"mean": 0.4, "sd": 0.05, "p5": 0.35, "median": 0.4, "p95": 0.55}
        if labels:
            out[f]["effect"] = {"sharpness": -1.4, "lung_opacity": 0.7}.get(f, 0.1)
    return out


def constructed_metrics(labels=True, above=(300.0, 210.0, 200.0), ari=0.2, names=None, **kw):
    """Three models' metrics as metrics.json holds them; ``names`` are the two labels' names
    (default normal and pneumonia; ["0", "1"] for labels without names), ``kw`` go to each
    model's analysis (``used``, ``active``, ``effects``, ``moving``: the axis the probe
    follows)."""
    data = {"source": "x.npz", "n_images": 500, "n_train": 400, "n_test": 100,
            "image_size": 32, "native_shape": [32, 32], "source_dtype": "uint8",
            "storage_dtype": "uint8", "normalize": "global", "n_constant_images": 0,
            "has_labels": labels, "patient_grouped": False, "notes": [],
            "exploration": {"features": _features(labels), "dark_edges": {"left": 0.5},
                            "dark_any": 0.6, "atypical": [19.1, 15.0], "atypical_median": 7.3,
                            "pca_components": 20,
                            "duplicates": {"identical_images": 4, "identical_groups": 2,
                                           "identical_regrouped": 1, "near_threshold": 0.02,
                                           "near_compared": 500, "near_pairs": 3,
                                           "near_straddling": 0}}}  # fmt: skip
    if labels:
        data["label_names"] = list(names or ("normal", "pneumonia"))
        data["exploration"]["effect_labels"] = list(names or ("normal", "pneumonia"))
    models = {
        str(d): {"test_loss": 2300 + e + 10, "test_bce": 2300 + e, "test_kl": 5.0 * (i + 1),
                 "train_loss": 2400.0, "train_bce": 2390.0, "train_kl": 10.0, "epochs": 3,
                 "train_seconds": 2.0, "analysis": _analysis(d, e, labels, names=names, **kw)}
        for i, (d, e) in enumerate(zip(DIMS, above))
    }  # fmt: skip
    comparison = {"sample_note": "300 of 400 training images encoded", "n_samples": 300,
                  "ari": {"4-16": ari, "4-32": ari, "16-32": ari}, "ari_mean": ari,
                  "linear_r2": {"4->16": 0.5, "16->4": 0.9}, "n_paths": 15,
                  "path_leaders": {"exposure": 15}, "config": {}}  # fmt: skip
    return {"data": data, "models": models, "analysis": comparison}


@pytest.fixture
def constructed():
    """:func:`constructed_metrics`: a metrics.json-like dict of three models."""
    return constructed_metrics
