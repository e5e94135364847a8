"""``DIR/explorer.html``: an interactive, offline page of every model's latent maps.

Built from the files the analysis writes (``sample.npz`` and ``latent_<k>/embedding.npz``), so
``cxrvae report DIR`` rebuilds it too. Images travel as JPEG sprite sheets inside the page; the
page needs no network and no library.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from .. import outputs
from ..atomic import atomic_write
from ..data.xray import label_word
from ..runfolder import read_metrics
from .page import render

SPRITE_COLUMNS = 32
JPEG_QUALITY = 90


def sprite(images: np.ndarray, columns: int) -> str:
    """uint8 images (N, s, s) -> a data: URL of one JPEG holding them in rows of ``columns``."""
    n, s = len(images), images.shape[-1]
    cols = min(columns, n)
    rows = -(-n // cols)
    sheet = np.zeros((rows * s, cols * s), dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        sheet[r * s : (r + 1) * s, c * s : (c + 1) * s] = im
    buf = io.BytesIO()
    Image.fromarray(sheet, mode="L").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _round(xy: np.ndarray) -> list:
    return np.round(xy.astype(float), 3).tolist()


def explorer_payload(out) -> dict:
    """Everything the page shows, as JSON-ready values (read from the run folder)."""
    out = Path(out)
    metrics = read_metrics(out)
    with np.load(out / outputs.SAMPLE) as f:
        images, labels, names = f["images"], f["labels"], [str(s) for s in f["label_names"]]
    cols = min(SPRITE_COLUMNS, len(images))
    models = []
    for k, a in metrics.analysed.items():
        path = outputs.model_dir(out, k) / outputs.EMBEDDING
        if not path.exists():
            continue
        evr = a.pca_explained_variance
        with np.load(path) as e:
            clusters = e["clusters"]
            models.append(
                {
                    "name": f"latent {k}",
                    "pca": _round(e["pca"]),
                    "tsne": _round(e["tsne"]),
                    "pca_axes": [f"PCA {j + 1} ({100 * evr[j]:.1f}% of variance)" for j in (0, 1)],
                    "tsne_axes": ["t-SNE 1", "t-SNE 2"],
                    "clusters": clusters.tolist(),
                    "cluster_sizes": np.bincount(clusters).tolist(),
                    "recon": sprite(e["recon"], cols),
                    "interps": [
                        {
                            "axis": str(a),
                            "label": str(lab),
                            "t": np.round(t.astype(float), 4).tolist(),
                            "sprite": sprite(frames, len(frames)),
                        }
                        for a, lab, t, frames in zip(
                            e["axes"], e["axis_labels"], e["t"], e["frames"]
                        )
                    ],
                }
            )
    has_labels = len(names) > 0 and bool((labels >= 0).all())
    return {
        "n": int(len(images)),
        "thumb": int(images.shape[-1]),
        "cols": cols,
        "images": sprite(images, cols),
        "labels": labels.tolist() if has_labels else None,
        "label_names": [label_word(n) for n in names],
        "models": models,
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
