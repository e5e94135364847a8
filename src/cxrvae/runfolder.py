"""The run folder: the checks before a run writes into it, and the records it keeps about the
run (``config.json``, ``metrics.json``, ``split.npz`` and each model's ``history.csv``).

The folder is the contract between the steps (see :mod:`cxrvae.outputs` for its file names):
each step reads what earlier steps wrote, so ``analyze`` and ``report`` can run again later.
Nothing here imports torch or reads images.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np

from . import __version__, outputs
from .atomic import atomic_write, read_json, save_npz, write_json
from .config import RunConfig, read_config_file
from .errors import RunFolderError
from .results import StudyMetrics, from_dict, to_dict

HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_bce",
    "train_kl",
    "test_loss",
    "test_bce",
    "test_kl",
    "seconds",
)


# --------------------------------------------------------------------------- checks


def prepare_run_dir(out, resume: bool = False, overwrite: bool = False) -> Path:
    """Check that ``out`` may receive this run, and create it.

    A folder that already holds a run is refused unless ``resume`` (continue it) or
    ``overwrite`` (replace its files) is given.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    existing = [m for m in outputs.RUN_MARKERS if (out / m).exists()]
    if existing and not (resume or overwrite):
        raise RunFolderError(
            f"{out}: already holds a run ({', '.join(existing)}); "
            "use --resume to continue it or --overwrite to replace it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise RunFolderError(f"{out}: cannot write there ({e.strerror or e})") from None
    if overwrite and not resume:
        _remove_run(out)
    return out


def _remove_run(out: Path) -> None:
    # Replace the previous run's own files (only those: --out may hold other things), so none
    # of its models can later pass for this run's.
    own = [*outputs.RUN_MARKERS, outputs.IMAGES, outputs.REPORT, outputs.FIGURES_DIR]
    own.append(outputs.REPEATS_DIR)
    for target in [*(out / p for p in own), *outputs.model_dirs(out)]:
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def require_run(out) -> Path:
    """``out`` as a Path, after checking that it holds a trained run."""
    out = Path(out)
    if not (out / outputs.CONFIG).exists() or not (out / outputs.METRICS).exists():
        raise RunFolderError(
            f"{out}: no trained run here (config.json and metrics.json are "
            "written by 'cxrvae train')"
        )
    return out


def check_resume(out, cfg: RunConfig) -> None:
    """Refuse --resume when data, model or training settings differ from the saved run's."""
    path = Path(out) / outputs.CONFIG
    if not path.exists():
        return
    saved = read_json(path)["config"]
    now = json.loads(json.dumps(cfg.to_dict()))
    default = json.loads(json.dumps(RunConfig().to_dict()))  # a setting added since it was saved
    diff = [
        f"{part}.{key}"
        for part in ("data", "model", "train")
        for key in now[part]
        if saved.get(part, {}).get(key, default[part][key]) != now[part][key]
    ]
    if saved.get("seed") != now["seed"]:
        diff.insert(0, "seed")
    if diff:
        raise RunFolderError(
            f"{out}: --resume needs the settings of the saved run; these differ: "
            f"{', '.join(diff)} (use --overwrite to start again)"
        )


# --------------------------------------------------------------------------- records


def versions() -> dict:
    """Versions of the packages a run depends on, and the git commit of cxrvae when known."""
    import matplotlib
    import sklearn
    import torch

    out = {
        "cxrvae": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def source_ref(source, loaded_as: str) -> str:
    """How config.json names the data: an absolute path, or what the loader called it (a
    public set as ``name:size``, the packaged ``sample``)."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else loaded_as


def write_config(out, cfg: RunConfig, source: str, device: str, summary) -> Path:
    """``config.json``: the resolved settings, the source, versions, device and the data."""
    record = {
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "source": source,
        "versions": versions(),
        "device": device,
        "data": to_dict(summary),
    }
    return write_json(Path(out) / outputs.CONFIG, record)


def read_config(out) -> tuple[RunConfig, str]:
    """The run's saved configuration and the source of its images."""
    settings, source = read_config_file(Path(out) / outputs.CONFIG)
    return RunConfig.from_dict(settings), source


def read_metrics(out) -> StudyMetrics:
    """``metrics.json`` as :class:`~cxrvae.results.StudyMetrics`."""
    return from_dict(StudyMetrics, read_json(Path(out) / outputs.METRICS))


def write_metrics(out, metrics: StudyMetrics) -> Path:
    """Write ``metrics.json`` (atomically)."""
    return write_json(Path(out) / outputs.METRICS, to_dict(metrics))


def read_split(out) -> tuple[np.ndarray, np.ndarray]:
    """The run's train and test indices."""
    with np.load(Path(out) / outputs.SPLIT) as f:
        return f["train"], f["test"]


def read_others(out) -> np.ndarray:
    """The held-out images of the labels a run was not trained on (none for most runs)."""
    with np.load(Path(out) / outputs.SPLIT) as f:
        return f["others"] if "others" in f.files else np.zeros(0, np.int64)


def write_split(out, train, test, others=None) -> Path:
    """``split.npz``: the train and test indices, and the held-out images of other labels of a
    run trained on some labels only."""
    extra = {} if others is None else {"others": others}
    return save_npz(Path(out) / outputs.SPLIT, train=train, test=test, **extra)


def write_history(path, history: list[dict]) -> None:
    """``history.csv`` with the columns ``HISTORY_COLUMNS``."""
    lines = [",".join(HISTORY_COLUMNS)]
    for row in history:
        lines.append(
            ",".join(str(row[c]) if c == "epoch" else f"{row[c]:.6f}" for c in HISTORY_COLUMNS)
        )
    atomic_write(path, lambda p: p.write_text("\n".join(lines) + "\n"))


def read_history(path) -> list[dict]:
    """Rows of a ``history.csv`` as dicts of numbers."""
    header, *rows = Path(path).read_text().strip().splitlines()
    cols = header.split(",")
    return [
        {c: (int(v) if c == "epoch" else float(v)) for c, v in zip(cols, r.split(","))}
        for r in rows
    ]


def history_columns(history: list[dict]) -> dict[str, np.ndarray]:
    """History rows as one array per column."""
    return {k: np.array([row[k] for row in history]) for k in history[0]}
