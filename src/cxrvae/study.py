"""The study as callable steps on a run folder: prepare data, train models, analyse, report.

The run folder is the contract between steps (see README "Output layout"); each step reads what
earlier steps wrote, so ``analyze`` and ``report`` can run again on a finished run.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from . import __version__
from .config import RunConfig
from .data import XrayData, image_stats, load_npz, split_indices
from .figures import (
    plot_brightness_contrast,
    plot_history,
    plot_history_comparison,
    plot_image_grid,
    plot_intensity_histogram,
    plot_mean_std,
    plot_typical_atypical,
    save_figure,
)
from .seeding import derive_seed, seed_everything

log = logging.getLogger(__name__)

RUN_MARKERS = ("config.json", "metrics.json", "split.npz")


class RunFolderError(ValueError):
    """The output folder cannot be used as asked (another run is there, not writable...)."""


# --------------------------------------------------------------------------- small file helpers


def write_json(path, obj) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def versions() -> dict:
    """Versions of the packages a run depends on, and the git commit of cxrvae when known."""
    import matplotlib
    import sklearn
    import torch

    out = {"cxrvae": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "scikit-learn": sklearn.__version__,
           "matplotlib": matplotlib.__version__}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def prepare_run_dir(out, resume: bool = False, overwrite: bool = False) -> Path:
    """Check that ``out`` may receive this run, and create it.

    A folder that already holds a run is refused unless ``resume`` (continue it) or
    ``overwrite`` (replace its files) is given.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    existing = [m for m in RUN_MARKERS if (out / m).exists()]
    if existing and not (resume or overwrite):
        raise RunFolderError(f"{out}: already holds a run ({', '.join(existing)}); "
                             "use --resume to continue it or --overwrite to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise RunFolderError(f"{out}: cannot write there ({e.strerror or e})") from None
    return out


# --------------------------------------------------------------------------- data step


def load_data(data_path, cfg: RunConfig) -> XrayData:
    """Load the images as the configuration says."""
    return load_npz(data_path, cfg.data.image_size, cfg.data.normalize)


def make_split(data: XrayData, cfg: RunConfig, out: Path, resume: bool = False):
    """Seeded train/test indices, saved to ``out/split.npz`` (reused when resuming)."""
    path = out / "split.npz"
    if resume and path.exists():
        with np.load(path) as f:
            train, test = f["train"], f["test"]
        if max(train.max(), test.max()) >= len(data):
            raise RunFolderError(f"{path}: the saved split does not fit these {len(data)} images")
        return train, test
    train, test = split_indices(len(data), data.labels, data.groups,
                                derive_seed(cfg.seed, "split"), cfg.data.test_fraction)
    tmp = out / ".split.tmp.npz"
    np.savez(tmp, train=train, test=test)
    os.replace(tmp, path)
    return train, test


DATA_CAPTIONS = {
    "grid.png": "Random images from the set, titled with their label where labels exist.",
    "mean_std.png": "Per-pixel mean and standard deviation over all images: bright areas on "
                    "the right are where images differ most.",
    "intensity_histogram.png": "Distribution of all normalised pixel values.",
    "brightness_contrast.png": "Per-image brightness (mean) and contrast (standard deviation), "
                               "by label where labels exist.",
    "typical_atypical.png": "The images closest to (top) and farthest from (bottom) the mean "
                            "in pixel-PCA space: atypical exposures, positions or artefacts.",
}


def explore_data(data: XrayData, out: Path, seed: int) -> dict:
    """Write the exploration figures to ``out/figures/data/``; return their captions."""
    folder = out / "figures" / "data"
    stats = image_stats(data, seed=derive_seed(seed, "explore"))
    rng = np.random.default_rng(derive_seed(seed, "grid"))
    pick = np.sort(rng.choice(len(data), size=min(32, len(data)), replace=False))
    titles = None if data.labels is None else [data.label_names[k] for k in data.labels[pick]]
    save_figure(plot_image_grid(data.normalized(pick), titles,
                                title=f"{len(pick)} random images of {len(data)}"),
                folder / "grid.png")
    save_figure(plot_mean_std(stats.mean, stats.std), folder / "mean_std.png")
    save_figure(plot_intensity_histogram(stats.hist_edges, stats.hist_counts),
                folder / "intensity_histogram.png")
    save_figure(plot_brightness_contrast(stats.brightness, stats.contrast, data.labels,
                                         data.label_names), folder / "brightness_contrast.png")
    order = np.argsort(stats.atypicality)
    typ, atyp = order[:8], order[::-1][:8]
    save_figure(plot_typical_atypical(data.normalized(typ), data.normalized(atyp),
                                      stats.atypicality[typ], stats.atypicality[atyp]),
                folder / "typical_atypical.png")
    return {
        "figures": DATA_CAPTIONS,
        "brightness_mean": float(stats.brightness.mean()),
        "contrast_mean": float(stats.contrast.mean()),
        "pca_components": stats.n_components,
    }


# --------------------------------------------------------------------------- training step


def _history_columns(history: list[dict]) -> dict:
    return {k: np.array([row[k] for row in history]) for k in history[0]}


def train_models(data: XrayData, train_idx, test_idx, cfg: RunConfig, out: Path,
                 resume: bool = False, progress=None) -> dict:
    """Train one model per latent size; write weights, history and figures for each.

    Parameters
    ----------
    progress : callable(latent_dim, done_epochs, total_epochs) -> callable(row), optional
        Factory for a per-epoch reporter, called once per model that trains.

    Returns
    -------
    dict
        Latent size (str) -> metrics of that model.
    """
    import torch

    from .train import build_model, fit, read_history, resolve_device, save_model, write_history

    device = resolve_device(cfg.train.device)
    results, histories = {}, {}
    for k in cfg.model.latent_dims:
        folder = out / f"latent_{k}"
        folder.mkdir(exist_ok=True)
        weights, ckpt = folder / "model.safetensors", folder / "checkpoint.pt"
        if resume and weights.exists() and (folder / "history.csv").exists():
            log.info("latent %d: already trained, skipped (--resume)", k)
            history = read_history(folder / "history.csv")
        else:
            if not resume:
                ckpt.unlink(missing_ok=True)
            torch.manual_seed(derive_seed(cfg.seed, f"init-{k}"))
            model = build_model(cfg.model, data.image_size, k)
            done = 0
            if ckpt.exists():
                done = len(torch.load(ckpt, weights_only=True)["history"])
            report = progress(k, done, cfg.train.epochs) if progress else None
            start = time.perf_counter()
            history = fit(model, data, train_idx, test_idx, cfg.train,
                          seed=derive_seed(cfg.seed, f"train-{k}"), device=device,
                          callback=report, checkpoint_path=ckpt, config_dict=cfg.to_dict())
            log.info("latent %d: trained in %.1f s", k, time.perf_counter() - start)
            write_history(folder / "history.csv", history)
            save_model(weights, model)
        histories[k] = _history_columns(history)
        save_figure(plot_history(histories[k], f"Latent {k}: train and test loss per epoch"),
                    out / "figures" / f"latent_{k}" / "history.png")
        last = history[-1]
        results[str(k)] = {
            "test_loss": last["test_loss"], "test_bce": last["test_bce"],
            "test_kl": last["test_kl"], "train_loss": last["train_loss"],
            "train_bce": last["train_bce"], "train_kl": last["train_kl"],
            "epochs": len(history), "train_seconds": float(sum(r["seconds"] for r in history)),
        }
    save_figure(plot_history_comparison(histories), out / "figures" / "history_comparison.png")
    return results


def train_study(data_path, cfg: RunConfig, out, resume: bool = False, overwrite: bool = False,
                progress=None) -> dict:
    """Data, split, exploration figures and every model: the ``cxrvae train`` command.

    Returns the metrics written to ``out/metrics.json``.
    """
    data = load_data(data_path, cfg)  # before touching the folder: bad input writes nothing
    for note in data.notes:
        log.info("data: %s", note)
    out = prepare_run_dir(out, resume=resume, overwrite=overwrite)
    seed_everything(cfg.seed)
    timings = {}
    t0 = time.perf_counter()
    train_idx, test_idx = make_split(data, cfg, out, resume=resume)
    summary = {**data.summary(), "n_train": int(len(train_idx)), "n_test": int(len(test_idx))}
    from .train import resolve_device

    write_json(out / "config.json", {
        "config": cfg.to_dict(), "seed": cfg.seed, "data_path": str(Path(data_path).resolve()),
        "versions": versions(), "device": str(resolve_device(cfg.train.device)),
        "data": summary,
    })
    log.info("data: %d images (%d train / %d test), %dx%d px", len(data), len(train_idx),
             len(test_idx), data.image_size, data.image_size)
    explore = explore_data(data, out, cfg.seed)
    timings["data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    models = train_models(data, train_idx, test_idx, cfg, out, resume=resume, progress=progress)
    timings["train"] = time.perf_counter() - t0
    metrics = {"data": {**summary, "exploration": explore}, "models": models,
               "timings": timings}
    write_json(out / "metrics.json", metrics)
    return metrics
