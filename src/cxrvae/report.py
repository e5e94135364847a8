"""The study report: one self-contained HTML file built from a run folder's JSON and figures.

The discussion is assembled from the run's measured numbers; the thresholds that decide what a
sentence claims are named constants below, not tuned to one data set.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment

from .files import atomic_write

# What counts as a clear difference, used by the discussion's sentences.
ARI_SAME = 0.7  # adjusted Rand above this: two models group the images in much the same way
ARI_DIFFERENT = 0.3  # below this: they group them differently
LINEAR_SHARED = 0.8  # cross-validated R^2 above this: one space is a linear map of the other
PCA_FAITHFUL = 0.6  # PC1 + PC2 explain at least this share: the PCA map shows most of the space
SILHOUETTE_CLEAR = 0.5  # silhouette above this: well-separated clusters
SILHOUETTE_WEAK = 0.25  # below this: clusters are cuts through a continuum
LABEL_ENRICHED = 0.15  # a cluster's label share differs from the sample's by this much or more
MIN_EFFECT = 0.5  # a path changes a feature when it moves by half its SD across the images
PROBE_GOOD = 0.85  # probe AUC at or above: the latent space captures the label well
PROBE_SOME = 0.65  # at or above: in part
UNUSED_KL = 0.05  # a latent dimension with less mean KL than this (nats) is unused
COLLAPSED_UNITS = 1  # at most this many active latent units: the posterior has collapsed

FEATURE_WORDS = {
    "brightness": "overall brightness",
    "contrast": "contrast",
    "edge_energy": "edge energy (sharpness of structures)",
    "lr_asymmetry": "left-right asymmetry",
    "centre_brightness": "brightness of the centre relative to the border",
}


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(x, digits=1) -> str:
    return f"{x:,.{digits}f}"


# --------------------------------------------------------------------------- discussion


def _recon_answer(models: dict) -> str:
    dims = sorted(models, key=int)
    parts = [
        f"latent {d}: test BCE {_fmt(models[d]['test_bce'])} and KL "
        f"{_fmt(models[d]['test_kl'])} nats/image"
        for d in dims
    ]
    lo, hi = dims[0], dims[-1]
    gain = models[lo]["test_bce"] - models[hi]["test_bce"]
    extra_kl = models[hi]["test_kl"] - models[lo]["test_kl"]
    text = "Measured on the test set: " + "; ".join(parts) + ". "
    if gain > 0:
        text += (
            f"Going from {lo} to {hi} latent dimensions lowers the reconstruction error "
            f"by {_fmt(gain)} nats/image while the KL term grows by {_fmt(extra_kl)}: "
            "a larger code can carry more information about each image, and the KL term "
            "is the price, in nats, of that information. "
        )
        if extra_kl > 0 and gain < extra_kl:
            text += (
                "The gain in reconstruction is smaller than the added KL, so the larger "
                "models buy little detail for their extra code length. "
            )
    else:
        text += (
            f"The model with {hi} dimensions does not reconstruct better than the one with "
            f"{lo} (difference {_fmt(gain)} nats/image): the extra dimensions carry no "
            "extra information at this training length. "
        )
    quality = [(d, models[d].get("analysis", {})) for d in dims]
    if all("test_bce_above_floor" in a for _, a in quality):
        text += (
            "Part of every BCE is a floor that no model can go below, because the targets are "
            "grey levels (the summed binary entropy of each image, here "
            f"{_fmt(quality[0][1]['test_bce_floor']['mean'])} nats/image on average). Above "
            "that floor, with pixel-level PSNR and structural similarity (SSIM, 1 = identical): "
            + "; ".join(
                f"latent {d}: {_fmt(a['test_bce_above_floor']['mean'])} nats/image, PSNR "
                f"{a['test_psnr']['mean']:.2f} dB, SSIM {a['test_ssim']['mean']:.3f}"
                for d, a in quality
            )
            + ". "
        )
        lo_q, hi_q = quality[0][1], quality[-1][1]
        share = 1 - hi_q["test_bce_above_floor"]["mean"] / max(
            lo_q["test_bce_above_floor"]["mean"], 1e-12
        )
        if share > 0:
            text += (
                f"Measured above the floor, the largest model removes {share:.0%} of the "
                "smallest one's reconstruction error. "
            )
        else:
            text += (
                f"Measured above the floor, the largest model's error is {-share:.0%} "
                "higher than the smallest one's. "
            )
    act = [(d, models[d].get("analysis", {}).get("active_units")) for d in dims]
    if all(a is not None for _, a in act):
        text += (
            "Active latent units (variance of the means across images above 0.01): "
            + ", ".join(f"{a} of {d}" for d, a in act)
            + ". "
        )
        collapsed = [d for d, a in act if a <= COLLAPSED_UNITS]
        if collapsed:
            text += (
                f"Posterior collapse: latent {', '.join(collapsed)} "
                f"{'has' if len(collapsed) == 1 else 'have'} at most {COLLAPSED_UNITS} "
                "active unit; the decoder ignores the code and draws an average image, "
                "so the clusters, maps and interpolations of such a model carry little "
                "meaning. "
            )
        unused = {
            d: sum(v < UNUSED_KL for v in models[d]["analysis"].get("kl_per_dim", [])) for d in dims
        }
        if any(unused.values()):
            text += (
                f"Dimensions whose mean KL is below {UNUSED_KL} nats, left at the prior: "
                + ", ".join(f"{n} of {d}" for d, n in unused.items())
                + ". They carry no information, which is why adding dimensions raises the KL "
                "less than in proportion. "
            )
    return text


def _cluster_answer(models: dict, ari: dict, label_names) -> str:
    dims = [d for d in sorted(models, key=int) if "analysis" in models[d]]
    out = []
    for d in dims:
        a = models[d]["analysis"]
        k, sizes = a["clusters"], a["cluster_sizes"]
        sil = a.get("silhouette_chosen")
        s = f"Latent {d}: K = {k} (sizes {', '.join(map(str, sizes))})"
        if _collapsed(a):
            s += " on a collapsed latent space (clusters of noise-level differences)"
        if sil is not None:
            quality = (
                "well separated"
                if sil >= SILHOUETTE_CLEAR
                else "weakly separated, cuts through a continuum"
                if sil < SILHOUETTE_WEAK
                else "moderately separated"
            )
            s += f", silhouette {sil:.2f} ({quality})"
        feats = a["cluster_features"]
        b = [f["brightness"] for f in feats]
        s += f"; mean brightness of the clusters' images ranges from {min(b):.3f} to {max(b):.3f}"
        shares = a.get("label_share_per_cluster")
        if shares and label_names:
            name = label_names[-1]
            vals = [sh[name] for sh in shares]
            overall = sum(v * n for v, n in zip(vals, sizes)) / sum(sizes)
            s += (
                f", share of '{name}' per cluster from {min(vals):.0%} to {max(vals):.0%} "
                f"against {overall:.0%} in the sample"
            )
            if max(abs(v - overall) for v in vals) >= LABEL_ENRICHED:
                s += " (the clusters partly follow the label)"
            else:
                s += " (the clusters barely follow the label)"
            if "nmi" in a:
                s += f"; purity {a['purity']:.2f}, normalised mutual information {a['nmi']:.2f}"
        out.append(s + ".")
    text = " ".join(out)
    if ari:
        pairs = ", ".join(f"{p.replace('-', ' vs ')}: {v:.2f}" for p, v in ari.items())
        mean = sum(ari.values()) / len(ari)
        verdict = (
            "the models group the same images together"
            if mean >= ARI_SAME
            else "the models group the images differently"
            if mean < ARI_DIFFERENT
            else "the groupings overlap only in part"
        )
        text += (
            f" Agreement between the models' clusterings of the same images (adjusted "
            f"Rand index; 1 = identical, 0 = chance): {pairs}; on average {mean:.2f}, so "
            f"{verdict}."
        )
    return text


def _organisation_answer(models: dict, r2: dict) -> str:
    out = []
    for d in sorted(models, key=int):
        a = models[d].get("analysis")
        if not a:
            continue
        kl = sorted(a["kl_per_dim"], reverse=True)
        top = sum(kl[:2]) / max(sum(kl), 1e-12)
        out.append(
            f"latent {d}: {a['active_units']} active units, the two most used "
            f"dimensions hold {top:.0%} of the KL, PC1 + PC2 explain "
            f"{sum(a['pca_explained_variance'][:2]):.0%} of the variance of the means"
        )
    text = (
        "How each latent space is used: " + "; ".join(out) + ". A space whose variance "
        "sits in a few directions is organised along a few dominant factors; one that "
        "spreads it over many dimensions encodes more independent detail."
    )
    if r2:
        text += (
            " How much of one model's latent space a linear map from another's explains on "
            "held-out images (cross-validated R^2): "
            + "; ".join(
                f"{p.split('->')[1]} from {p.split('->')[0]}: {v:.2f}" for p, v in r2.items()
            )
            + ". "
        )
        small_to_large = [v for p, v in r2.items() if int(p.split("->")[0]) < int(p.split("->")[1])]
        large_to_small = [v for p, v in r2.items() if int(p.split("->")[0]) > int(p.split("->")[1])]
        if small_to_large and large_to_small:
            if min(large_to_small) >= LINEAR_SHARED and max(small_to_large) < LINEAR_SHARED:
                text += (
                    "Larger spaces contain the smaller ones' information almost linearly, "
                    "while the smaller ones miss much of the larger ones': the extra "
                    "dimensions hold information of their own."
                )
            elif min(r2.values()) >= LINEAR_SHARED:
                text += (
                    "Every space is close to a linear transform of the others: they "
                    "encode much the same information, differently rotated."
                )
            else:
                text += (
                    "The spaces are not linear transforms of each other: the models "
                    "organise the images differently, not just in another basis."
                )
    return text


def _maps_answer(models: dict) -> str:
    out = []
    for d in sorted(models, key=int):
        a = models[d].get("analysis")
        if not a:
            continue
        ev = sum(a["pca_explained_variance"][:2])
        how = (
            "so the PCA map is a faithful picture of the space"
            if ev >= PCA_FAITHFUL
            else "so the PCA map flattens most of the space away and t-SNE's neighbourhoods "
            "show more of its structure"
        )
        clause = f"latent {d}: PC1 + PC2 explain {ev:.0%}, {how}"
        tw = a.get("trustworthiness")
        if tw:
            clause += (
                f" (trustworthiness of the neighbours shown: PCA {tw['pca']:.3f}, "
                f"t-SNE {tw['tsne']:.3f})"
            )
        knn = a.get("knn_accuracy")
        if knn:
            clause += (
                f"; 5-NN label accuracy {knn['latent']:.0%} in the latent space, "
                f"{knn['pca']:.0%} in the PCA map, {knn['tsne']:.0%} in the t-SNE map"
            )
        out.append(clause)
    return (
        "PCA is a linear projection that keeps the directions of largest variance and "
        "global distances; t-SNE keeps local neighbourhoods and distorts distances between "
        "groups. " + "; ".join(out) + ". In the maps coloured by cluster, clusters that are "
        "separate in t-SNE but overlap in PCA differ in directions beyond the first two "
        "components."
    )


def _probe_answer(models: dict, label_names) -> str | None:
    aucs = [
        (d, models[d]["analysis"].get("probe_auc"))
        for d in sorted(models, key=int)
        if "analysis" in models[d]
    ]
    if not aucs or any(v is None for _, v in aucs):
        return None
    best = max(aucs, key=lambda x: x[1])
    verdict = (
        "captures the label well"
        if best[1] >= PROBE_GOOD
        else "captures the label only in part"
        if best[1] >= PROBE_SOME
        else "barely captures the label"
    )
    return (
        "A logistic-regression probe from the latent means to the label "
        f"({' / '.join(label_names or [])}), trained and scored on held-out images (5-fold "
        "ROC AUC; 0.5 = chance, 1 = perfect): "
        + "; ".join(f"latent {d}: {v:.3f}" for d, v in aucs)
        + f". The best, latent {best[0]}, {verdict}: the models were never shown the labels, "
        "so this is what unsupervised compression kept about them."
    )


def _strongest(trends: dict) -> tuple[str, dict]:
    name = max(trends, key=lambda n: abs(trends[n]["effect"]))
    return name, trends[name]


def _collapsed(analysis: dict) -> bool:
    return analysis.get("active_units", 99) <= COLLAPSED_UNITS


def _path_sentence(it: dict) -> tuple[str | None, str]:
    """The leading feature of one interpolation (None when nothing changes much) and a clause."""
    name, tr = _strongest(it["trends"])
    words = FEATURE_WORDS.get(name, name)
    if abs(tr["effect"]) < MIN_EFFECT:
        return None, (
            f"{it['label']}: no measured feature changes by {MIN_EFFECT} SD or more "
            f"(largest: {words}, {tr['effect']:+.2f} SD)"
        )
    direction = "rises" if tr["effect"] > 0 else "falls"
    others = [
        FEATURE_WORDS.get(n, n)
        for n, v in it["trends"].items()
        if n != name and abs(v["effect"]) >= MIN_EFFECT
    ]
    also = f"; also {', '.join(others)}" if others else ""
    return name, (
        f"{it['label']}: {words} {direction} most, from {tr['start']:.3g} to "
        f"{tr['end']:.3g} ({tr['effect']:+.2f} SD across images){also}"
    )


def _axes_answer(models: dict) -> tuple[str, str, str]:
    per_axis, per_model = [], []
    by_axis: dict[str, list] = {}
    for d in sorted(models, key=int):
        a = models[d].get("analysis")
        if not a:
            continue
        clauses, leading = [], []
        for axis, it in a["interpolations"].items():
            name, clause = _path_sentence(it)
            clauses.append(clause)
            leading.append(name)
            by_axis.setdefault("latent dimension" if axis.startswith("z") else axis, []).append(
                name
            )
        per_axis.append(f"Latent {d}: " + "; ".join(clauses) + ".")
        moving = sorted({FEATURE_WORDS.get(n, n) for n in leading if n})
        if _collapsed(a):
            per_model.append(
                f"latent {d} has collapsed ({a['active_units']} active units), so "
                "its paths barely change the decoded image"
            )
        elif moving:
            per_model.append(
                f"latent {d}: its 5 axes lead with {len(moving)} different "
                f"feature{'s' if len(moving) != 1 else ''} ({', '.join(moving)})"
            )
        else:
            per_model.append(f"latent {d}: no axis changes a measured feature by {MIN_EFFECT} SD")
    axes_diff = []
    for axis, names in by_axis.items():
        found = [n for n in names if n]
        if not found:
            axes_diff.append(f"{axis}: no clear change in any model")
            continue
        common = max(sorted(set(found)), key=found.count)
        axes_diff.append(
            f"{axis}: {FEATURE_WORDS.get(common, common)} in "
            f"{found.count(common)} of {len(names)} models"
        )
    a1 = " ".join(per_axis) + (
        " Features are measured on the decoded images along each path; changes are given in "
        "standard deviations (SD) of the feature across the analysed images, and the figures' "
        "bottom panels plot them against t."
    )
    a2 = (
        "Leading feature of each axis, across models: " + "; ".join(axes_diff) + ". Axes "
        "with different leading features separate different properties of the images; axes "
        "sharing one are different views of the same dominant factor."
    )
    a3 = (
        "Between models: " + "; ".join(per_model) + ". More distinct leading features mean "
        "more factors of variation laid out along separate directions of the latent space."
    )
    return a1, a2, a3


def discussion(metrics: dict, label_names=None) -> list[dict]:
    """The study's questions, each answered by a paragraph built from ``metrics``."""
    models = {k: m for k, m in metrics["models"].items() if "failed" not in m}
    if not models:
        return [
            {
                "question": "How does reconstruction differ between latent sizes, and why?",
                "answer": "No model finished training, so there is nothing to compare.",
            }
        ]
    ari = metrics.get("analysis", {}).get("ari", {})
    r2 = metrics.get("analysis", {}).get("linear_r2", {})
    items = [
        ("How does reconstruction differ between latent sizes, and why?", _recon_answer(models))
    ]
    if any("analysis" in m for m in models.values()):
        a1, a2, a3 = _axes_answer(models)
        items += [
            (
                "Do the clusters show different images, and do the models cluster alike?",
                _cluster_answer(models, ari, label_names),
            ),
            (
                "Is the latent space organised differently between models?",
                _organisation_answer(models, r2),
            ),
            (
                "How do the PCA and t-SNE maps differ, between methods and between models, and "
                "why?",
                _maps_answer(models),
            ),
            ("What changes along each interpolation axis?", a1),
            ("How do the interpolation axes differ from each other?", a2),
            ("How do the models' interpolation axes differ?", a3),
        ]
        probe = _probe_answer(models, label_names)
        if probe:
            items.append(("What did the unsupervised latent space learn about the label?", probe))
    return [{"question": q, "answer": a} for q, a in items]


# --------------------------------------------------------------------------- figures and HTML

CAPTIONS = {
    "reconstructions.png": "Ten test images (top) and their reconstructions decoded from the "
    "posterior mean (bottom).",
    "silhouette.png": "Silhouette score of K-means on the latent means for each K; the circled "
    "K was used.",
    "clusters.png": "Random members of each K-means cluster; the row label gives the cluster "
    "size. Colours match the maps.",
    "maps_clusters.png": "PCA (left) and t-SNE (right) maps of the encoded training images, "
    "coloured by K-means cluster.",
    "maps_labels.png": "The same maps coloured by the dataset's labels.",
    "history.png": "Train and test loss per epoch: total, reconstruction (BCE) and KL.",
    "worst_reconstructions.png": "The test images this model reconstructs worst (largest BCE "
    "above the image's own floor), originals on top.",
    "samples.png": "Images decoded from 16 random codes drawn from the prior N(0, I): what the "
    "model generates.",
}


def _model_figures(fig_dir: Path, names) -> list[dict]:
    return [
        {"src": _img(fig_dir / n), "caption": CAPTIONS.get(n, ""), "name": n}
        for n in names
        if (fig_dir / n).exists()
    ]


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>cxrvae study: {{ source }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc;
       padding: 0.25em 0.6em; text-align: right; } th { background: #f2f2f2; }
td.l, th.l { text-align: left; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
nav a { margin-right: 1em; } .q { font-weight: 600; margin-top: 1.2em; }
</style></head><body>
<h1>Convolutional VAEs on {{ source }}</h1>
<p>Seed {{ seed }} &middot; device {{ device }} &middot; cxrvae {{ versions.cxrvae }}
{% if versions.git_commit %}({{ versions.git_commit }}){% endif %} &middot; built {{ built }}</p>
<nav><a href="#data">Data</a><a href="#training">Training</a>
<a href="#reconstructions">Reconstructions</a><a href="#clusters">Clusters and maps</a>
<a href="#interpolations">Interpolations</a><a href="#samples">Samples</a>
<a href="#discussion">Discussion</a>
<a href="#config">Configuration</a></nav>
<p>Interactive maps (hover an image, play the interpolations):
<a href="explorer.html">explorer.html</a>
in this folder, written by <code>cxrvae analyze</code>.</p>

<h2 id="data">1. Data</h2>
<table>{% for k, v in data_rows %}<tr><th class="l">{{ k }}</th><td class="l">{{ v }}</td></tr>
{% endfor %}</table>
{% for f in data_figures %}<figure><img src="{{ f.src }}" alt="{{ f.name }}">
<figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}

<h2 id="training">2. Models and training</h2>
<p>One convolutional VAE per latent size; loss = binary cross-entropy summed over pixels +
KL(q(z|x) || N(0, I)), in nats per image. Train values are averaged over each epoch with
sampled codes and BatchNorm in training mode; test values decode the posterior mean with the
model in eval mode, which is why the test curves can lie below the training curves.</p>
<table><tr>{% for h in table_head %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in table_rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if train_wall %}<p>Training took {{ train_wall }} s of wall time in all{% if at_once %}; the
models trained at once, one process each, so their times in "train s" overlap{% endif %}.</p>
{% endif %}
{% if comparison %}<figure><img src="{{ comparison }}" alt="history comparison">
<figcaption>Test loss, BCE and KL per epoch for every model.</figcaption></figure>{% endif %}
{% for m in models %}{% for f in m.history %}<figure><img src="{{ f.src }}" alt="history">
<figcaption>Latent {{ m.dim }}: {{ f.caption }}</figcaption></figure>{% endfor %}{% endfor %}

<h2 id="reconstructions">3. Reconstructions</h2>
{% if recon_comparison %}<figure><img src="{{ recon_comparison }}" alt="reconstructions">
<figcaption>The same test images (top row) reconstructed by every model.</figcaption>
</figure>{% else %}<p>Not analysed yet: run <code>cxrvae analyze</code>.</p>{% endif %}
{% if quality_rows %}<p>Reconstruction quality over the whole test set (means over images).
The BCE floor is the summed binary entropy of each target image: the BCE of a perfect
reconstruction, which no model can beat with grey-level targets.</p>
<table><tr><th>latent</th><th>BCE</th><th>BCE floor</th><th>BCE above floor</th><th>MSE</th>
<th>PSNR (dB)</th><th>SSIM</th></tr>
{% for row in quality_rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
{% if error_distribution %}<figure><img src="{{ error_distribution }}" alt="errors">
<figcaption>Distribution over test images of the BCE above each image's floor, per model.
</figcaption></figure>{% endif %}
{% for m in models %}{% for f in m.recon %}<figure><img src="{{ f.src }}" alt="{{ f.name }}">
<figcaption>Latent {{ m.dim }}: {{ f.caption }}</figcaption></figure>{% endfor %}{% endfor %}

<h2 id="clusters">4. Clusters and maps</h2>
{% if sample_note %}<p>{{ sample_note }}.</p>{% endif %}
{% for m in models %}<h3>Latent {{ m.dim }}</h3>
{% for f in m.clusters %}<figure><img src="{{ f.src }}" alt="{{ f.name }}">
<figcaption>Latent {{ m.dim }}: {{ f.caption }}</figcaption></figure>{% endfor %}{% endfor %}

<h2 id="interpolations">5. Interpolations</h2>
<p>For each axis, the two sampled training images with the lowest and highest value are
encoded; their latent means are joined by a straight line with 7 evenly spaced points in
between (t = 0, 1/8, ..., 1) and every point is decoded. The bottom panel plots image features
measured on the decoded images against t.</p>
{% for m in models %}<h3>Latent {{ m.dim }}</h3>
{% for f in m.interpolations %}<figure><img src="{{ f.src }}" alt="{{ f.name }}">
<figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}{% endfor %}

{% if models | selectattr("samples") | list %}<h2 id="samples">6. Samples from the prior</h2>
{% for m in models %}{% for f in m.samples %}<figure><img src="{{ f.src }}" alt="{{ f.name }}">
<figcaption>Latent {{ m.dim }}: {{ f.caption }}</figcaption></figure>{% endfor %}{% endfor %}
{% endif %}
<h2 id="discussion">7. Discussion</h2>
{% for d in discussion %}<p class="q">{{ d.question }}</p><p>{{ d.answer }}</p>{% endfor %}

<h2 id="config">8. Configuration and versions</h2>
<pre>{{ config_json }}</pre>
<table>{% for k, v in versions.items() %}<tr><th class="l">{{ k }}</th><td class="l">{{ v }}</td>
</tr>{% endfor %}</table>
</body></html>
"""


def build_report(out) -> Path:
    """Write ``out/report.html`` from ``config.json``, ``metrics.json`` and the figures."""
    out = Path(out)
    saved = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    figs = out / "figures"
    data = metrics["data"]
    dims = sorted(metrics["models"], key=int)

    data_rows = [
        ("source", data["source"]),
        ("images", data["n_images"]),
        ("train / test", f"{data['n_train']} / {data['n_test']}"),
        (
            "image size",
            f"{data['image_size']} x {data['image_size']} px "
            f"(source {' x '.join(map(str, data['native_shape']))}, "
            f"{data['source_dtype']})",
        ),
        ("normalisation", f"min-max, {data['normalize']}"),
    ]
    if data.get("label_counts"):
        data_rows.append(
            ("labels", ", ".join(f"{k}: {v}" for k, v in data["label_counts"].items()))
        )
    if data.get("n_patients"):
        data_rows.append(("patients", f"{data['n_patients']} (each on one side of the split)"))
    for note in data.get("notes", []):
        data_rows.append(("note", note))
    captions = data.get("exploration", {}).get("figures", {})
    data_figures = [
        {"src": _img(figs / "data" / n), "caption": c, "name": n}
        for n, c in captions.items()
        if (figs / "data" / n).exists()
    ]

    head = [
        "latent",
        "test loss",
        "test BCE",
        "test KL",
        "train loss",
        "epochs",
        "train s",
        "active units",
        "K",
        "silhouette",
    ]
    rows, models = [], []
    for d in dims:
        m = metrics["models"][d]
        a = m.get("analysis", {})
        if "failed" in m:
            rows.append(
                [
                    d,
                    f"training failed after {m['epochs']} good epochs: {m['failed']}",
                    *["-"] * (len(head) - 2),
                ]
            )
            continue
        rows.append(
            [
                d,
                _fmt(m["test_loss"]),
                _fmt(m["test_bce"]),
                _fmt(m["test_kl"], 2),
                _fmt(m["train_loss"]),
                m["epochs"],
                _fmt(m["train_seconds"], 0),
                a.get("active_units", "-"),
                a.get("clusters", "-"),
                f"{a['silhouette_chosen']:.3f}" if "silhouette_chosen" in a else "-",
            ]
        )
        mdir = figs / f"latent_{d}"
        interp = []
        for axis, it in a.get("interpolations", {}).items():
            path = mdir / f"interpolation_{axis}.png"
            if path.exists():
                interp.append(
                    {
                        "src": _img(path),
                        "name": path.name,
                        "caption": f"Latent {d}: decoded images along {it['label']}, "
                        "from the lowest (t = 0) to the highest (t = 1) "
                        "image, with both originals and reconstructions.",
                    }
                )
        models.append(
            {
                "dim": d,
                "history": _model_figures(mdir, ["history.png"]),
                "recon": _model_figures(mdir, ["reconstructions.png", "worst_reconstructions.png"]),
                "samples": _model_figures(mdir, ["samples.png"]),
                "clusters": _model_figures(
                    mdir,
                    [
                        "silhouette.png",
                        "clusters.png",
                        "maps_clusters.png",
                        "maps_labels.png",
                    ],
                ),
                "interpolations": interp,
            }
        )
    comparison = figs / "history_comparison.png"
    recon_cmp = figs / "reconstructions_comparison.png"
    errors = figs / "error_distribution.png"
    quality_rows = []
    for d in dims:
        a = metrics["models"][d].get("analysis", {})
        if "test_bce_above_floor" in a:
            quality_rows.append(
                [d]
                + [
                    _fmt(a[f"test_{k}"]["mean"], digits)
                    for k, digits in (
                        ("bce", 1),
                        ("bce_floor", 1),
                        ("bce_above_floor", 1),
                        ("mse", 4),
                        ("psnr", 2),
                        ("ssim", 3),
                    )
                ]
            )
    # Each model's seconds add up to more than the wall time only when they trained at once.
    train_wall = metrics.get("timings", {}).get("train")
    trained = [m["train_seconds"] for m in metrics["models"].values() if "train_seconds" in m]
    env = Environment(autoescape=True)
    html = env.from_string(TEMPLATE).render(
        train_wall=None if train_wall is None else _fmt(train_wall, 0),
        at_once=train_wall is not None and sum(trained) > train_wall,
        source=data["source"],
        seed=saved["seed"],
        device=saved.get("device", "?"),
        versions=saved.get("versions", {}),
        built=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        data_rows=data_rows,
        data_figures=data_figures,
        table_head=head,
        table_rows=rows,
        comparison=_img(comparison) if comparison.exists() else None,
        recon_comparison=_img(recon_cmp) if recon_cmp.exists() else None,
        error_distribution=_img(errors) if errors.exists() else None,
        quality_rows=quality_rows,
        sample_note=metrics.get("analysis", {}).get("sample_note"),
        models=models,
        discussion=discussion(metrics, data.get("label_names")),
        config_json=json.dumps(saved["config"], indent=2),
    )
    return atomic_write(out / "report.html", lambda tmp: tmp.write_text(html, encoding="utf-8"))
