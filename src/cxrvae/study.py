"""The study as callable steps on a run folder: prepare data, train models, analyse, report.

The run folder is the contract between steps (see README "Output layout"); each step reads what
earlier steps wrote, so ``analyze`` and ``report`` can run again on a finished run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, workers
from .config import ConfigError, RunConfig
from .data import XrayData, as_uint8, image_stats, load, split_indices
from .figures import (
    plot_brightness_contrast,
    plot_cluster_gallery,
    plot_error_distribution,
    plot_history,
    plot_history_comparison,
    plot_image_grid,
    plot_intensity_histogram,
    plot_interpolation,
    plot_maps,
    plot_mean_std,
    plot_reconstructions,
    plot_silhouette,
    plot_typical_atypical,
    save_figure,
)
from .files import atomic_write, save_npz
from .seeding import derive_seed, seed_everything

log = logging.getLogger(__name__)

RUN_MARKERS = ("config.json", "metrics.json", "split.npz")
IMAGES_FILE = ".images.npy"  # the images shared by models training at once, while they train


class RunFolderError(ValueError):
    """The output folder cannot be used as asked (another run is there, not writable...)."""


# --------------------------------------------------------------------------- small file helpers


def write_json(path, obj) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    text = json.dumps(obj, indent=2, default=_jsonable) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


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
        # Replace the previous run's own files (only those: --out may hold other things), so
        # none of its models can later pass for this run's.
        own = [*RUN_MARKERS, IMAGES_FILE, "report.html", "figures"]
        for p in [*own, *(q.name for q in out.glob("latent_*"))]:
            target = out / p
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return out


def require_run(out) -> Path:
    """``out`` as a Path, after checking that it holds a trained run."""
    out = Path(out)
    if not (out / "config.json").exists() or not (out / "metrics.json").exists():
        raise RunFolderError(
            f"{out}: no trained run here (config.json and metrics.json are "
            "written by 'cxrvae train')"
        )
    return out


# --------------------------------------------------------------------------- data step


def load_data(source, cfg: RunConfig) -> XrayData:
    """Load the images (file, folder or public set's name) as the configuration says."""
    return load(source, cfg.data.image_size, cfg.data.normalize, cfg.data.drop_invalid)


def source_ref(source, data: XrayData) -> str:
    """How config.json names the data: an absolute path, or a public set as ``name:size``."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else data.source


def make_split(data: XrayData, cfg: RunConfig, out: Path, resume: bool = False):
    """Seeded train/test indices, saved to ``out/split.npz`` (reused when resuming)."""
    path = out / "split.npz"
    if resume and path.exists():
        with np.load(path) as f:
            train, test = f["train"], f["test"]
        if max(train.max(), test.max()) >= len(data):
            raise RunFolderError(f"{path}: the saved split does not fit these {len(data)} images")
        return train, test
    train, test = split_indices(
        len(data), data.labels, data.groups, derive_seed(cfg.seed, "split"), cfg.data.test_fraction
    )

    save_npz(path, train=train, test=test)
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
    save_figure(
        plot_image_grid(
            data.normalized(pick), titles, title=f"{len(pick)} random images of {len(data)}"
        ),
        folder / "grid.png",
    )
    save_figure(plot_mean_std(stats.mean, stats.std), folder / "mean_std.png")
    save_figure(
        plot_intensity_histogram(stats.hist_edges, stats.hist_counts),
        folder / "intensity_histogram.png",
    )
    save_figure(
        plot_brightness_contrast(stats.brightness, stats.contrast, data.labels, data.label_names),
        folder / "brightness_contrast.png",
    )
    order = np.argsort(stats.atypicality)
    typ, atyp = order[:8], order[::-1][:8]
    save_figure(
        plot_typical_atypical(
            data.normalized(typ),
            data.normalized(atyp),
            stats.atypicality[typ],
            stats.atypicality[atyp],
        ),
        folder / "typical_atypical.png",
    )
    return {
        "figures": DATA_CAPTIONS,
        "brightness_mean": float(stats.brightness.mean()),
        "contrast_mean": float(stats.contrast.mean()),
        "pca_components": stats.n_components,
    }


# --------------------------------------------------------------------------- training step


def _history_columns(history: list[dict]) -> dict:
    return {k: np.array([row[k] for row in history]) for k in history[0]}


def _train_one(
    data, train_idx, test_idx, cfg: RunConfig, folder: Path, k: int, resume: bool, progress, device
) -> list[dict]:
    """Train (or continue) the model of latent size k; write its history and weights."""
    import torch

    from .train import barrier, build_model, fit, is_main, save_model, write_history

    ckpt = folder / "checkpoint.pt"
    if not resume and is_main():
        ckpt.unlink(missing_ok=True)
    barrier()  # every process sees the same checkpoint (or none)
    torch.manual_seed(derive_seed(cfg.seed, f"init-{k}"))
    model = build_model(cfg.model, data.image_size, k)
    done = len(torch.load(ckpt, weights_only=True)["history"]) if ckpt.exists() else 0
    if done:
        log.info("latent %d: resuming after epoch %d of %d", k, done, cfg.train.epochs)
    report = progress(k, done, cfg.train.epochs) if progress else None
    start = time.perf_counter()
    history = fit(
        model,
        data,
        train_idx,
        test_idx,
        cfg.train,
        seed=derive_seed(cfg.seed, f"train-{k}"),
        device=device,
        callback=report,
        checkpoint_path=ckpt,
        config_dict=cfg.to_dict(),
    )
    log.info("latent %d: trained in %.1f s", k, time.perf_counter() - start)
    if is_main():
        write_history(folder / "history.csv", history)
        save_model(folder / "model.safetensors", model)
    return history


def _train_in_process(images, data: XrayData, train_idx, test_idx, cfg, folder, k, resume, device):
    """One model in a worker process (``--parallel-models``): train it and write its files.

    ``images`` is an ``.npy`` file holding ``data``'s pixels (``data`` comes without them), mapped
    into memory, so every worker shares one copy. Progress goes to the parent through
    :func:`workers.send` as ("start", k, done, total) and ("row", k, row) messages. Returns the
    history, or the message of a TrainingError.
    """
    import torch

    from .train import TrainingError

    data = dataclasses.replace(data, images=np.load(images, mmap_mode="c"))

    def progress(latent_dim, done, total):
        workers.send("start", latent_dim, done, total)
        return lambda row: workers.send("row", latent_dim, row)

    try:
        return _train_one(
            data, train_idx, test_idx, cfg, folder, k, resume, progress, torch.device(device)
        )
    except TrainingError as e:
        return str(e)


def _images_file(data: XrayData, out: Path) -> tuple[Path, bool]:
    """An ``.npy`` file holding ``data.images``, and whether it is a temporary copy.

    A set loaded from an ``.npy`` file is already memory-mapped from it; other sets are written
    once to ``out/IMAGES_FILE`` for the workers to map.
    """
    name = getattr(data.images, "filename", None)
    if name and Path(name).suffix == ".npy":
        on_disk = np.load(name, mmap_mode="r")
        if on_disk.shape == data.images.shape and on_disk.dtype == data.images.dtype:
            return Path(name), False
    path = out / IMAGES_FILE

    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, data.images)

    return atomic_write(path, write), True


def _train_parallel(
    data, train_idx, test_idx, cfg: RunConfig, out: Path, todo, resume, plan, progress
) -> dict:
    """Train the models in ``todo`` at once, one worker process each (see :func:`plan_parallel`)."""
    devices, threads = plan
    processes = min(len(devices), len(todo))
    log.info(
        "training latent %s at once: %d processes on %s, %d torch thread%s each",
        ", ".join(map(str, todo)),
        processes,
        ", ".join(sorted(set(devices))),
        threads,
        "" if threads == 1 else "s",
    )
    reporters = {}

    def on_message(index, message):
        kind, k, *rest = message
        if kind == "start" and progress is not None:
            reporters[k] = progress(k, *rest)
        elif kind == "row" and k in reporters:
            reporters[k](rest[0])

    images, temporary = _images_file(data, out)
    meta = dataclasses.replace(data, images=data.images[:0].copy())  # sent without the pixels
    tasks = [
        (
            _train_in_process,
            (
                images,
                meta,
                train_idx,
                test_idx,
                cfg,
                out / f"latent_{k}",
                k,
                resume,
                devices[i % len(devices)],
            ),
        )
        for i, k in enumerate(todo)
    ]
    try:
        results = workers.run(tasks, processes, threads, on_message, [f"latent {k}" for k in todo])
    finally:
        if temporary:
            images.unlink(missing_ok=True)
    return dict(zip(todo, results))


# Below this much training (train images x epochs, in 64 px equivalents) the models train in
# turn: a worker process takes a few seconds to start and to load the data again.
PARALLEL_MIN_WORK = 100_000


def plan_parallel(
    cfg: RunConfig,
    n_models: int,
    data: XrayData,
    n_train: int,
    parallel: bool | None = None,
    cpus: int | None = None,
) -> tuple[list[str], int] | None:
    """Devices and torch threads per process for training ``n_models`` at once, or None.

    ``parallel=None`` (the default) trains at once on a CPU with two or more cores when the
    run is long enough (``PARALLEL_MIN_WORK``) and the processes fit in half the available
    memory: one process per model, at most one more than there are cores, the
    cores shared out as threads. With small models a torch thread does more work alone than
    alongside another one, so this beats one process using every core (benchmarks/README.md).
    ``parallel=True`` also trains one model per GPU on two or more GPUs; ``False`` never.
    """
    import torch

    from .train import resolve_device, world

    if parallel is False or n_models < 2:
        return None
    if world()[1] > 1:
        if parallel:
            log.warning("--parallel-models is ignored under torchrun (the processes share models)")
        return None
    cpus = cpus or workers.cpu_count()
    device = resolve_device(cfg.train.device)
    if device.type == "cuda":
        n_gpus = torch.cuda.device_count()
        if parallel and n_gpus >= 2:
            return [f"cuda:{i}" for i in range(n_gpus)], max(1, cpus // min(n_gpus, n_models))
        if parallel:
            log.warning("--parallel-models needs two or more GPUs (found %d); in turn", n_gpus)
        return None
    if device.type != "cpu" or cpus < 2:
        if parallel:
            log.warning("--parallel-models needs two or more CPU cores or GPUs; training in turn")
        return None
    tc = cfg.train
    per_epoch = n_train if tc.max_steps is None else min(n_train, tc.max_steps * tc.batch_size)
    work = per_epoch * tc.epochs * (data.image_size / 64) ** 2
    if parallel is None and work < PARALLEL_MIN_WORK:
        return None
    processes = min(n_models, cpus + 1)
    # The workers share one memory-mapped copy of the images; each adds torch and its batches.
    need, free = data.images.nbytes + processes * 2**29, workers.available_memory()
    if free is not None and need > free / 2:
        log.info(
            "training in turn: %d processes would need about %.1f GiB, %.1f GiB is available",
            processes,
            need / 2**30,
            free / 2**30,
        )
        return None
    return ["cpu"] * processes, max(1, cpus // processes)


def train_models(
    data: XrayData,
    train_idx,
    test_idx,
    cfg: RunConfig,
    out: Path,
    resume: bool = False,
    progress=None,
    parallel: bool | None = None,
    devices: list[str] | None = None,
) -> dict:
    """Train one model per latent size; write weights, history and figures for each.

    A model whose loss becomes non-finite stops there: its last good checkpoint is kept, the
    failure is recorded under ``"failed"`` in its metrics, and the next model trains.

    Parameters
    ----------
    progress : callable(latent_dim, done_epochs, total_epochs) -> callable(row), optional
        Factory for a per-epoch reporter, called once per model that trains.
    parallel : bool, optional
        Train the models at once in worker processes: None decides by :func:`plan_parallel`
        (on a CPU with two or more cores, for runs long enough), True also on several GPUs,
        False never. The processes share one memory-mapped copy of the images.
    devices : list of str, optional
        Two or more devices to train at once on, one process per model, the devices taken in
        turn (instead of the plan).

    Returns
    -------
    dict
        Latent size (str) -> metrics of that model.
    """
    import torch

    from .train import TrainingError, is_main, read_history, resolve_device

    device = resolve_device(cfg.train.device)
    results, histories = {}, {}
    done = {}
    for k in cfg.model.latent_dims:
        folder = out / f"latent_{k}"
        if is_main():
            folder.mkdir(exist_ok=True)
        if resume and (folder / "model.safetensors").exists() and (folder / "history.csv").exists():
            log.info("latent %d: already trained, skipped (--resume)", k)
            done[k] = read_history(folder / "history.csv")
    todo = [k for k in cfg.model.latent_dims if k not in done]
    # Planned for every model of the run, not only those left: a resumed model then trains
    # with the threads it started with, which keeps --resume bit-identical on CPUs.
    n_models = len(cfg.model.latent_dims)
    if devices and len(devices) > 1:
        plan = devices, max(1, workers.cpu_count() // min(len(devices), n_models))
    else:
        plan = plan_parallel(cfg, n_models, data, len(train_idx), parallel)
    if plan and todo:
        done.update(
            _train_parallel(data, train_idx, test_idx, cfg, out, todo, resume, plan, progress)
        )
    for k in cfg.model.latent_dims:
        folder = out / f"latent_{k}"
        history = done.get(k)
        if history is None:
            try:
                history = _train_one(
                    data, train_idx, test_idx, cfg, folder, k, resume, progress, device
                )
            except TrainingError as e:
                history = str(e)
        if isinstance(history, str):  # the message of a TrainingError
            ckpt = folder / "checkpoint.pt"
            good = len(torch.load(ckpt, weights_only=True)["history"]) if ckpt.exists() else 0
            log.error(
                "latent %d: %s; stopped after %d good epochs (checkpoint kept)", k, history, good
            )
            results[str(k)] = {"failed": history, "epochs": good}
            continue
        histories[k] = _history_columns(history)
        if is_main():
            save_figure(
                plot_history(histories[k], f"Latent {k}: train and test loss per epoch"),
                out / "figures" / f"latent_{k}" / "history.png",
            )
        last = history[-1]
        results[str(k)] = {
            "test_loss": last["test_loss"],
            "test_bce": last["test_bce"],
            "test_kl": last["test_kl"],
            "train_loss": last["train_loss"],
            "train_bce": last["train_bce"],
            "train_kl": last["train_kl"],
            "epochs": len(history),
            "train_seconds": float(sum(r["seconds"] for r in history)),
        }
    if histories and is_main():
        save_figure(plot_history_comparison(histories), out / "figures" / "history_comparison.png")
    return results


def _check_resume_config(out: Path, cfg: RunConfig) -> None:
    """Refuse --resume when data, model or training settings differ from the saved run's."""
    path = out / "config.json"
    if not path.exists():
        return
    saved = read_json(path)["config"]
    now = json.loads(json.dumps(cfg.to_dict()))
    diff = [
        f"{part}.{key}"
        for part in ("data", "model", "train")
        for key in now[part]
        if saved.get(part, {}).get(key) != now[part][key]
    ]
    if saved.get("seed") != now["seed"]:
        diff.insert(0, "seed")
    if diff:
        raise RunFolderError(
            f"{out}: --resume needs the settings of the saved run; these differ: "
            f"{', '.join(diff)} (use --overwrite to start again)"
        )


def _require_tensorboard():
    """TensorBoard's SummaryWriter, or a one-line error saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "--tensorboard needs the tensorboard package: pip install 'cxrvae[tensorboard]'"
        ) from None
    return SummaryWriter


def _tensorboard_writer(folder: Path):
    return _require_tensorboard()(log_dir=str(folder))


def _with_tensorboard(progress, out: Path):
    """Wrap a progress factory so that every epoch's row is also logged as TensorBoard scalars
    (``loss/train``, ``loss/test``, ``bce/test``...) under ``out/tensorboard/latent_<k>``."""

    def start(latent_dim: int, done: int, total: int):
        writer = _tensorboard_writer(out / "tensorboard" / f"latent_{latent_dim}")
        report = progress(latent_dim, done, total) if progress else None

        def on_epoch(row):
            for key, value in row.items():
                if key != "epoch":
                    split, _, metric = key.partition("_")
                    writer.add_scalar(f"{metric}/{split}" if metric else key, value, row["epoch"])
            writer.flush()
            if row["epoch"] == total:
                writer.close()
            if report:
                report(row)

        return on_epoch

    return start


def _tensorboard_embedding(out: Path, latent_dim: int, mu, clusters, labels, label_names, thumbs):
    """The analysed sample for TensorBoard's projector, with X-ray thumbnails (uint8)."""
    import torch

    if labels is None:
        meta, header = [str(c) for c in clusters], None
    else:
        meta = [[str(c), label_names[y]] for c, y in zip(clusters, labels)]
        header = ["cluster", "label"]
    writer = _tensorboard_writer(out / "tensorboard" / f"latent_{latent_dim}")
    writer.add_embedding(
        torch.from_numpy(np.ascontiguousarray(mu, dtype=np.float32)),
        metadata=meta,
        metadata_header=header,
        label_img=torch.from_numpy(thumbs[:, None].astype(np.float32) / 255.0),
        tag=f"latent_{latent_dim}",
    )
    writer.close()


def _on_main(fn, *args, **kwargs):
    """Run ``fn`` in the main process only and hand its result (or its error) to the others.

    Without torchrun this is a plain call.
    """
    import torch.distributed as dist

    from .train import world

    rank, size = world()
    result, error = None, None
    if rank == 0:
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # shared below, so no process waits forever for rank 0
            error = e
    if size > 1:
        box = [(result, None if error is None else str(error))]
        dist.broadcast_object_list(box, src=0)
        result, message = box[0]
        if rank != 0 and message is not None:
            raise RunFolderError(message)
    if error is not None:
        raise error
    return result


def train_study(
    data_path,
    cfg: RunConfig,
    out,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
    tensorboard: bool = False,
    parallel: bool | None = None,
    devices: list[str] | None = None,
) -> dict:
    """Data, split, exploration figures and every model: the ``cxrvae train`` command.

    With ``tensorboard``, per-epoch scalars go to ``out/tensorboard/latent_<k>`` (and the
    analysis adds the encoded sample to TensorBoard's projector). ``parallel`` and ``devices``
    choose whether the models train at once in worker processes (see :func:`train_models`).

    Under torchrun every process trains its share of each batch (DistributedDataParallel) and
    only rank 0 writes files.

    Returns the metrics written to ``out/metrics.json``.
    """
    from .train import barrier, init_distributed, is_main, resolve_device

    init_distributed(cfg.train.device)
    main = is_main()
    if tensorboard:
        _require_tensorboard()  # before anything is written
    t0 = time.perf_counter()
    data = load_data(data_path, cfg)  # before touching the folder: bad input writes nothing
    for note in data.notes:
        log.info("data: %s", note)
    if resume:
        _check_resume_config(Path(out), cfg)
    out = Path(_on_main(prepare_run_dir, out, resume=resume, overwrite=overwrite))
    seed_everything(cfg.seed)
    timings = {}
    train_idx, test_idx = _on_main(make_split, data, cfg, out, resume=resume)
    summary = {**data.summary(), "n_train": int(len(train_idx)), "n_test": int(len(test_idx))}
    if main:
        write_json(
            out / "config.json",
            {
                "config": cfg.to_dict(),
                "seed": cfg.seed,
                "data_path": source_ref(data_path, data),
                "versions": versions(),
                "device": str(resolve_device(cfg.train.device)),
                "data": summary,
            },
        )
    log.info(
        "data: %d images (%d train / %d test), %dx%d px",
        len(data),
        len(train_idx),
        len(test_idx),
        data.image_size,
        data.image_size,
    )
    explore = _on_main(explore_data, data, out, cfg.seed)
    timings["data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if tensorboard and main:
        progress = _with_tensorboard(progress, out)
    models = train_models(
        data,
        train_idx,
        test_idx,
        cfg,
        out,
        resume=resume,
        progress=progress if main else None,
        parallel=parallel,
        devices=devices,
    )
    timings["train"] = time.perf_counter() - t0
    metrics = {"data": {**summary, "exploration": explore}, "models": models, "timings": timings}
    if main:
        write_json(out / "metrics.json", metrics)
    barrier()
    return metrics


# --------------------------------------------------------------------------- analysis step

GALLERY_SIZE = 8
PATH_FEATURES = ("brightness", "contrast", "edge_energy", "lr_asymmetry", "centre_brightness")


def _axis_label(axis: str, evr) -> str:
    if axis.startswith("pca"):
        i = int(axis[-1]) - 1
        return f"PCA {i + 1} ({100 * evr[i]:.1f}% of variance)"
    if axis.startswith("tsne"):
        return f"t-SNE {axis[-1]}"
    return f"latent dimension {axis[1:]} (largest mean KL)"


@dataclass
class ModelAnalysis:
    """One model's analysis: metrics for metrics.json, and arrays for comparing models."""

    metrics: dict
    mu: np.ndarray  # (n_samples, latent_dim) posterior means of the sample
    clusters: np.ndarray  # (n_samples,)
    recon: np.ndarray  # (n_reconstructions, H, W) the shared test images, reconstructed
    bce_above_floor: np.ndarray  # (n_test,)


def _reconstruction_step(model, data, test_idx, recon_idx, name, folder) -> tuple[dict, ...]:
    """Reconstruction quality over the whole test set, streamed; figures of 10 and the worst."""
    from . import evidence as ev
    from . import latent as lt

    parts = []
    for start in range(0, len(test_idx), 512):
        idx = test_idx[start : start + 512]
        x_hat, bce = lt.reconstruct_scored(model, data, idx)
        parts.append(ev.reconstruction_quality(data.normalized(idx), x_hat, bce))
    quality = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    recon = lt.reconstruct(model, data, recon_idx)
    save_figure(
        plot_reconstructions(
            data.normalized(recon_idx),
            {name.lower(): recon},
            f"{name}: test images (top) and reconstructions (bottom)",
        ),
        folder / "reconstructions.png",
    )
    worst = np.argsort(quality["bce_above_floor"])[::-1][:GALLERY_SIZE]
    save_figure(
        plot_reconstructions(
            data.normalized(test_idx[worst]),
            {name.lower(): lt.reconstruct(model, data, test_idx[worst])},
            f"{name}: the {len(worst)} worst-reconstructed test images (largest BCE above "
            "its floor)",
        ),
        folder / "worst_reconstructions.png",
    )
    metrics = {f"test_{k}": ev.summarize(v) for k, v in quality.items()}
    return metrics, recon, quality["bce_above_floor"]


def _cluster_step(mu, data, sample_idx, feats, cfg: RunConfig, name, folder, latent_dim):
    """K-means (K by silhouette unless given), galleries; returns (metrics, cluster labels)."""
    from . import evidence as ev
    from . import latent as lt

    a, seed = cfg.analysis, cfg.seed
    curve = {}
    if a.clusters is None:
        curve = lt.silhouette_curve(mu, a.k_range, derive_seed(seed, "kmeans"), a.n_init)
        k = max(curve, key=curve.get)
        save_figure(
            plot_silhouette(curve, k, f"{name}: silhouette of K-means by K"),
            folder / "silhouette.png",
        )
    else:
        k = min(a.clusters, len(mu) - 1)
        if k < a.clusters:
            log.warning(
                "latent %d: %d clusters asked for %d images; using %d",
                latent_dim,
                a.clusters,
                len(mu),
                k,
            )
    clusters = lt.kmeans(mu, k, derive_seed(seed, "kmeans"), a.n_init)
    sizes = np.bincount(clusters, minlength=k)
    rng = np.random.default_rng(derive_seed(seed, f"gallery-{latent_dim}"))
    galleries = []
    for c in range(k):
        members = np.flatnonzero(clusters == c)
        pick = np.sort(rng.choice(members, size=min(GALLERY_SIZE, len(members)), replace=False))
        galleries.append(data.normalized(np.asarray(sample_idx)[pick]))
    save_figure(
        plot_cluster_gallery(galleries, sizes, f"{name}: random members of each K-means cluster"),
        folder / "clusters.png",
    )
    metrics = {
        "clusters": int(k),
        "silhouette": {str(kk): v for kk, v in curve.items()},
        "cluster_sizes": sizes.tolist(),
        "cluster_features": [
            {
                f: float(feats[f][clusters == c].mean())
                for f in ("brightness", "contrast", "edge_energy")
            }
            for c in range(k)
        ],
    }
    if curve:
        metrics["silhouette_chosen"] = curve[k]
    labels = None if data.labels is None else data.labels[sample_idx]
    if labels is not None:
        metrics["label_share_per_cluster"] = [
            {n: float(np.mean(labels[clusters == c] == j)) for j, n in enumerate(data.label_names)}
            for c in range(k)
        ]
        metrics.update(ev.cluster_label_agreement(clusters, labels))
    return metrics, clusters


def _map_step(mu, clusters, data, sample_idx, cfg: RunConfig, name, folder):
    """PCA and t-SNE maps coloured by cluster (and label); returns (metrics, pca, tsne)."""
    from . import evidence as ev
    from . import latent as lt

    seed = cfg.seed
    k = int(clusters.max()) + 1
    pca_xy, evr = lt.pca(mu, derive_seed(seed, "pca"))
    tsne_xy = lt.tsne(mu, cfg.analysis.perplexity, derive_seed(seed, "tsne"))
    save_figure(
        plot_maps(
            pca_xy,
            tsne_xy,
            clusters,
            [f"cluster {c}" for c in range(k)],
            f"{name}: {len(mu)} training images coloured by K-means cluster",
            evr,
        ),
        folder / "maps_clusters.png",
    )
    metrics = {
        "pca_explained_variance": evr.tolist(),
        "trustworthiness": {
            "pca": ev.map_trustworthiness(mu, pca_xy),
            "tsne": ev.map_trustworthiness(mu, tsne_xy),
        },
    }
    labels = None if data.labels is None else data.labels[sample_idx]
    if labels is not None:
        save_figure(
            plot_maps(
                pca_xy,
                tsne_xy,
                labels,
                data.label_names,
                f"{name}: the same maps coloured by label",
                evr,
            ),
            folder / "maps_labels.png",
        )
    if ev.usable_labels(labels):
        s = derive_seed(seed, "evidence")
        metrics["knn_accuracy"] = {
            "latent": ev.knn_accuracy(mu, labels, s),
            "pca": ev.knn_accuracy(pca_xy, labels, s),
            "tsne": ev.knn_accuracy(tsne_xy, labels, s),
        }
        metrics["probe_auc"] = ev.probe_auc(mu, labels, s)
    return metrics, pca_xy, tsne_xy


def _interpolation_step(
    model,
    mu,
    logvar,
    pca_xy,
    tsne_xy,
    evr,
    data,
    sample_idx,
    spread,
    cfg: RunConfig,
    name,
    folder,
) -> dict:
    """Interpolations along PCA1/2, t-SNE1/2 and the most used latent dimension.

    Returns (metrics, {axis: latent.Interpolation}).
    """
    from . import latent as lt

    dim, kl_per_dim = lt.most_used_dim(mu, logvar)
    axes = {
        "pca1": pca_xy[:, 0],
        "pca2": pca_xy[:, 1],
        "tsne1": tsne_xy[:, 0],
        "tsne2": tsne_xy[:, 1],
        f"z{dim}": mu[:, dim],
    }
    interps, paths = {}, {}
    for axis, values in axes.items():
        label = _axis_label(axis, evr)
        it = lt.interpolate_axis(
            model, data, sample_idx, values, axis, label, cfg.analysis.n_between, spread
        )
        feats = lt.image_features(it.images)
        # Change from t = 0 in standard deviations of the feature across the sampled images.
        shown = {f: (feats[f] - feats[f][0]) / max(spread[f], 1e-12) for f in PATH_FEATURES}
        save_figure(
            plot_interpolation(
                it.t,
                it.images,
                it.originals,
                it.reconstructions,
                f"{name}: interpolation along {label}",
                ("lowest", "highest"),
                shown,
            ),
            folder / f"interpolation_{axis}.png",
        )
        interps[axis] = {"label": label, "values": list(it.values), "trends": it.trends}
        paths[axis] = it
    metrics = {
        "kl_per_dim": kl_per_dim.tolist(),
        "active_units": int(np.sum(mu.var(0) > 0.01)),
        "interpolation_dim": dim,
        "interpolations": interps,
    }
    return metrics, paths


THUMBNAIL = 64  # px: the explorer's images (larger models' images are shrunk to this)


def _save_embedding(path, sample_idx, mu, pca_xy, tsne_xy, clusters, recon, paths) -> None:
    """What the explorer shows of one model: coordinates, clusters, images, interpolations."""
    axes = list(paths)
    save_npz(
        path,
        compressed=True,
        sample_idx=np.asarray(sample_idx),
        mu=mu.astype(np.float32),
        pca=pca_xy.astype(np.float32),
        tsne=tsne_xy.astype(np.float32),
        clusters=clusters.astype(np.int64),
        recon=as_uint8(recon, THUMBNAIL),
        axes=np.asarray(axes),
        axis_labels=np.asarray([paths[a].label for a in axes]),
        t=np.stack([paths[a].t for a in axes]).astype(np.float32),
        frames=np.stack([as_uint8(paths[a].images, THUMBNAIL) for a in axes]),
        endpoints=np.asarray([paths[a].endpoints for a in axes]),
    )


def analyze_model(
    model,
    data: XrayData,
    sample_idx,
    test_idx,
    recon_idx,
    cfg: RunConfig,
    out: Path,
    latent_dim: int,
    sample_features: dict | None = None,
) -> ModelAnalysis:
    """Reconstructions, clusters, maps, interpolations and samples of one model.

    ``sample_features`` (:func:`latent.image_features` of the sample's images) is the same for
    every model; pass it to compute it once per run.
    """
    from . import latent as lt

    if sample_features is None:
        sample_features = lt.image_features(data.normalized(sample_idx))
    folder = out / "figures" / f"latent_{latent_dim}"
    name = f"Latent {latent_dim}"
    metrics = {"n_samples": int(len(sample_idx))}
    recon_metrics, recon, above_floor = _reconstruction_step(
        model, data, test_idx, recon_idx, name, folder
    )
    mu, logvar = lt.encode(model, data, sample_idx)
    cluster_metrics, clusters = _cluster_step(
        mu, data, sample_idx, sample_features, cfg, name, folder, latent_dim
    )
    map_metrics, pca_xy, tsne_xy = _map_step(mu, clusters, data, sample_idx, cfg, name, folder)
    evr = np.asarray(map_metrics["pca_explained_variance"])
    spread = {f: float(v.std()) for f, v in sample_features.items()}
    interp_metrics, paths = _interpolation_step(
        model, mu, logvar, pca_xy, tsne_xy, evr, data, sample_idx, spread, cfg, name, folder
    )
    _save_embedding(
        out / f"latent_{latent_dim}" / "embedding.npz",
        sample_idx,
        mu,
        pca_xy,
        tsne_xy,
        clusters,
        lt.decode(model, mu),  # the sample's reconstructions: its means are already encoded
        paths,
    )
    # Generation: decode codes drawn from the prior N(0, I).
    rng = np.random.default_rng(derive_seed(cfg.seed, f"generate-{latent_dim}"))
    z = rng.standard_normal((16, latent_dim)).astype(np.float32)
    save_figure(
        plot_image_grid(
            lt.decode(model, z), title=f"{name}: 16 images decoded from random codes z ~ N(0, I)"
        ),
        folder / "samples.png",
    )
    metrics.update(recon_metrics, **cluster_metrics, **map_metrics, **interp_metrics)
    return ModelAnalysis(metrics, mu, clusters, recon, above_floor)


def _compare_models(results: dict[int, ModelAnalysis], seed: int) -> dict:
    """Adjusted Rand index between clusterings, and linear R^2 between latent spaces."""
    from sklearn.metrics import adjusted_rand_score

    from .evidence import linear_r2

    dims = list(results)
    pairs = [(a, b) for i, a in enumerate(dims) for b in dims[i + 1 :]]
    s = derive_seed(seed, "evidence")
    return {
        "ari": {
            f"{a}-{b}": float(adjusted_rand_score(results[a].clusters, results[b].clusters))
            for a, b in pairs
        },
        "linear_r2": {
            f"{a}->{b}": linear_r2(results[a].mu, results[b].mu, s)
            for a in dims
            for b in dims
            if a != b
        },
    }


def analyze_study(out, analysis_overrides: dict | None = None) -> dict:
    """Analyse every trained model of the run in ``out``; update metrics.json and the report.

    ``analysis_overrides`` replaces fields of the saved analysis configuration (``clusters``,
    ``n_samples``, ``perplexity``...).
    """
    from . import latent as lt
    from .explorer import build_explorer
    from .report import build_report
    from .train import load_model, resolve_device

    out = require_run(out)
    saved = read_json(out / "config.json")
    cfg = RunConfig.from_dict(saved["config"])
    if analysis_overrides:
        cfg = cfg.replace(analysis=analysis_overrides)
    data = load_data(saved["data_path"], cfg)
    with np.load(out / "split.npz") as f:
        train_idx, test_idx = f["train"], f["test"]
    seed_everything(cfg.seed)
    device = resolve_device(cfg.train.device)
    metrics = read_json(out / "metrics.json")
    a = cfg.analysis
    recon_idx = lt.sample_indices(
        test_idx, a.n_reconstructions, derive_seed(cfg.seed, "reconstructions")
    )
    sample_idx = lt.sample_indices(train_idx, a.n_samples, derive_seed(cfg.seed, "sample"))
    note = (
        f"all {len(sample_idx)} training images encoded (fewer than {a.n_samples})"
        if len(sample_idx) < a.n_samples
        else f"{len(sample_idx)} of {len(train_idx)} training images encoded"
    )
    if len(recon_idx) < a.n_reconstructions:
        note += (
            f"; reconstructions show all {len(recon_idx)} test images (fewer than "
            f"{a.n_reconstructions})"
        )
    log.info("analysis: %s", note)

    sample_images = data.normalized(sample_idx)
    sample_features = lt.image_features(sample_images)  # model-independent
    thumbs = as_uint8(sample_images, THUMBNAIL)
    sample_labels = None if data.labels is None else data.labels[sample_idx]
    save_npz(
        out / "sample.npz",
        compressed=True,
        sample_idx=np.asarray(sample_idx),
        images=thumbs,
        labels=np.full(len(sample_idx), -1) if sample_labels is None else sample_labels,
        label_names=np.asarray(data.label_names or [], dtype=str),
    )
    results: dict[int, ModelAnalysis] = {}
    timings = {}
    for k in cfg.model.latent_dims:
        if "failed" in metrics["models"].get(str(k), {"failed": "not trained"}):
            log.warning("latent %d: not analysed (training failed or missing)", k)
            continue
        t0 = time.perf_counter()
        model = load_model(out / f"latent_{k}" / "model.safetensors", device)
        results[k] = analyze_model(
            model, data, sample_idx, test_idx, recon_idx, cfg, out, k, sample_features
        )
        metrics["models"][str(k)]["analysis"] = results[k].metrics
        if (out / "tensorboard").is_dir():  # the run was trained with --tensorboard
            _tensorboard_embedding(
                out,
                k,
                results[k].mu,
                results[k].clusters,
                sample_labels,
                data.label_names,
                thumbs,
            )
        timings[str(k)] = time.perf_counter() - t0
        log.info(
            "latent %d: analysed in %.1f s (K = %d)",
            k,
            timings[str(k)],
            results[k].metrics["clusters"],
        )
    figs = out / "figures"
    save_figure(
        plot_reconstructions(
            data.normalized(recon_idx),
            {f"latent {k}": r.recon for k, r in results.items()},
            f"The same {len(recon_idx)} test images reconstructed by every model",
        ),
        figs / "reconstructions_comparison.png",
    )
    save_figure(
        plot_error_distribution(
            {f"latent {k}": r.bce_above_floor for k, r in results.items()},
            "BCE above its floor (nats per image)",
        ),
        figs / "error_distribution.png",
    )
    metrics["analysis"] = {
        "sample_note": note,
        "n_samples": int(len(sample_idx)),
        **_compare_models(results, cfg.seed),
        "config": cfg.to_dict()["analysis"],
    }
    metrics.setdefault("timings", {})["analysis"] = timings
    write_json(out / "metrics.json", metrics)
    t0 = time.perf_counter()
    build_report(out)
    build_explorer(out)
    metrics["timings"]["report"] = time.perf_counter() - t0
    write_json(out / "metrics.json", metrics)
    return metrics


# --------------------------------------------------------------------------- Python API


@dataclass
class Run:
    """A run folder opened from Python: its configuration, metrics, split and per-model files.

    Returned by :func:`run_study` and :func:`open_run`; every accessor reads the folder, so
    ``analyze_study`` or ``build_report`` can change it in between.
    """

    out: Path
    config: RunConfig
    metrics: dict
    train_idx: np.ndarray
    test_idx: np.ndarray

    @property
    def latent_dims(self) -> list[int]:
        """Latent sizes whose training finished."""
        return [int(k) for k, m in self.metrics["models"].items() if "failed" not in m]

    def data(self) -> XrayData:
        """The images, loaded again from the run's source."""
        return load_data(read_json(self.out / "config.json")["data_path"], self.config)

    def history(self, latent_dim: int) -> dict[str, np.ndarray]:
        """Per-epoch columns (``epoch``, ``train_loss``, ``test_loss``, ``test_bce``...)."""
        from .train import read_history

        return _history_columns(read_history(self.out / f"latent_{latent_dim}" / "history.csv"))

    def model(self, latent_dim: int, device="cpu"):
        """The trained :class:`~cxrvae.model.ConvVAE` in eval mode."""
        from .train import load_model

        return load_model(self.out / f"latent_{latent_dim}" / "model.safetensors", device)

    def embedding(self, latent_dim: int) -> dict[str, np.ndarray]:
        """The analysed sample of one model: ``sample_idx``, ``mu``, ``pca``, ``tsne``,
        ``clusters``, ``recon`` (uint8), and the interpolations (``axes``, ``t``, ``frames``).
        """
        path = self.out / f"latent_{latent_dim}" / "embedding.npz"
        if not path.exists():
            raise RunFolderError(f"{path}: no analysis yet (run analyze_study first)")
        with np.load(path) as f:
            return {k: f[k] for k in f.files}


def open_run(out) -> Run:
    """Open a run folder written by ``cxrvae train``/``run`` or :func:`run_study`."""
    out = require_run(out)
    with np.load(out / "split.npz") as f:
        train_idx, test_idx = f["train"], f["test"]
    return Run(
        out,
        RunConfig.from_dict(read_json(out / "config.json")["config"]),
        read_json(out / "metrics.json"),
        train_idx,
        test_idx,
    )


def run_study(
    source,
    out,
    config: RunConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
    tensorboard: bool = False,
    parallel: bool | None = None,
) -> Run:
    """The whole study from Python, with the CLI's defaults: ``cxrvae run`` as a function.

    Parameters
    ----------
    source : str or Path
        A file, a folder or a public set's name, as for :func:`cxrvae.data.load`.
    out : str or Path
        Run folder.
    config : RunConfig, optional
        Defaults to ``RunConfig()``, the settings the command line uses.
    parallel : bool, optional
        Train the models at once in worker processes (see :func:`train_models`).
    """
    cfg = config or RunConfig()
    metrics = train_study(
        source,
        cfg,
        out,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        tensorboard=tensorboard,
        parallel=parallel,
    )
    if any("failed" not in m for m in metrics["models"].values()):
        analyze_study(out)
    return open_run(out)
