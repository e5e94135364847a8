"""``DIR/explorer.html``: an interactive, offline page of every model's latent space.

Built from the files the analysis writes (``sample.npz`` and ``latent_<k>/embedding.npz``), and
the layers that ``cxrvae score`` writes (``scores/<name>/scored.npz``), so ``cxrvae report DIR``
rebuilds it too. Images travel as JPEG sprite sheets inside the page, numbers as JSON; the page
needs no network, no server and no library. What each model shows: its PCA and t-SNE maps
coloured by cluster, label, reconstruction error or any chest-film feature; the images decoded
anywhere on the PCA map (a grid decoded ahead of time); each image's nearest neighbours in
latent space; traversals of the most used dimensions; the interpolations; every model side by
side.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from .. import outputs
from ..atomic import atomic_write
from ..data.features import WORDS, short
from ..data.xray import label_word
from ..runfolder import read_metrics
from .page import render

SPRITE_COLUMNS = 32
JPEG_QUALITY = 90


def sprite(images: np.ndarray, columns: int = SPRITE_COLUMNS) -> str:
    """uint8 images (N, s, s) -> a data: URL of one JPEG holding them in rows of ``columns``."""
    n, s = len(images), images.shape[-1]
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    sheet = np.zeros((rows * s, cols * s), dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        sheet[r * s : (r + 1) * s, c * s : (c + 1) * s] = im
    buf = io.BytesIO()
    Image.fromarray(sheet, mode="L").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _round(a, digits: int = 3) -> list:
    return np.round(np.asarray(a, dtype=float), digits).tolist()


def _model(k: int, analysis, e) -> dict:
    """One model's part of the page, from its ``embedding.npz`` ``e``."""
    evr = analysis.pca_explained_variance
    clusters = e["clusters"]
    out = {
        "name": f"latent {k}",
        "latent_dim": k,
        "pca": _round(e["pca"]),
        "tsne": _round(e["tsne"]),
        "pca_axes": [f"PCA {j + 1} ({100 * evr[j]:.1f}% of variance)" for j in (0, 1)],
        "tsne_axes": ["t-SNE 1", "t-SNE 2"],
        "clusters": clusters.tolist(),
        "cluster_sizes": np.bincount(clusters).tolist(),
        "recon": sprite(e["recon"]),
        "interps": [
            {"axis": str(a), "label": str(lab), "t": _round(t, 4), "sprite": sprite(f, len(f))}
            for a, lab, t, f in zip(e["axes"], e["axis_labels"], e["t"], e["frames"])
        ],
    }
    if "grid" in e.files:  # analysed by this version
        frames = e["traversal_frames"]  # (A, R, C, s, s)
        out |= {
            "error": _round(e["error"], 2),
            "neighbours": e["neighbours"].tolist(),
            "distances": _round(e["neighbour_distances"], 3),
            "grid": {
                "x": _round(e["grid_x"], 4),
                "y": _round(e["grid_y"], 4),
                "sprite": sprite(e["grid"], len(e["grid_x"])),
            },
            "traversal": {
                "dims": e["traversal_dims"].tolist(),
                "kl": _round(e["traversal_kl"], 2),
                "anchors": e["traversal_anchors"].tolist(),
                "steps": _round(e["traversal_steps"], 2),
                "sprite": sprite(frames.reshape(-1, *frames.shape[3:]), frames.shape[2]),
            },
        }
    return out


def _layers(out: Path, models: dict[int, object]) -> list[dict]:
    """The batches scored with ``cxrvae score`` into ``out/scores``, as layers of the maps."""
    layers = []
    for path in sorted((out / outputs.SCORES_DIR).glob(f"*/{outputs.SCORED}")):
        with np.load(path) as f:
            if not all(f"pca_{k}" in f.files for k in models):
                continue  # scored before a model was added, or with other models
            layers.append({
                "name": path.parent.name,
                "n": int(len(f["ids"])),
                "ids": [str(s) for s in f["ids"]],
                "images": sprite(f["images"]),
                "models": {str(k): {"pca": _round(f[f"pca_{k}"]), "tsne": _round(f[f"tsne_{k}"]),
                                    "flagged": f[f"flagged_{k}"].astype(int).tolist(),
                                    "percentile": _round(f[f"percentile_{k}"], 1)}
                           for k in models},
            })  # fmt: skip
    return layers


def explorer_payload(out) -> dict:
    """Everything the page shows, as JSON-ready values (read from the run folder)."""
    out = Path(out)
    metrics = read_metrics(out)
    with np.load(out / outputs.SAMPLE) as f:
        images, labels = f["images"], f["labels"]
        names = [label_word(s) for s in f["label_names"]]
        ids = [str(s) for s in f["ids"]] if "ids" in f.files else None
        features = {k[len("feature_") :]: f[k] for k in f.files if k.startswith("feature_")}
    models = {}
    for k, a in sorted(metrics.analysed.items()):
        path = outputs.model_dir(out, k) / outputs.EMBEDDING
        if path.exists():
            with np.load(path) as e:
                models[k] = _model(k, a, e)
    has_labels = len(names) > 0 and bool((labels >= 0).all())
    return {
        "n": int(len(images)),
        "thumb": int(images.shape[-1]),
        "cols": min(SPRITE_COLUMNS, len(images)),
        "images": sprite(images),
        "labels": labels.tolist() if has_labels else None,
        "label_names": names,
        "ids": ids or [f"#{i}" for i in range(len(images))],
        "features": [
            {"key": key, "name": short(key), "words": WORDS.get(key, key), "values": _round(v, 4)}
            for key, v in features.items()
        ],
        "models": list(models.values()),
        "layers": _layers(out, models),
    }


def build_explorer(out) -> Path | None:
    """Write ``out/explorer.html``; None when no model has been analysed yet."""
    out = Path(out)
    if not (out / outputs.SAMPLE).exists():
        return None
    payload = explorer_payload(out)
    if not payload["models"]:
        return None
    html = render("explorer.html", payload=payload, title=out.resolve().name, n=payload["n"])
    return atomic_write(out / outputs.EXPLORER, lambda tmp: tmp.write_text(html, encoding="utf-8"))
