"""Run configuration: frozen dataclasses, validated on creation, saved as JSON and read from
TOML or a run's own ``config.json``. No torch here.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, UsageError

IMAGE_SIZES = (32, 64, 128, 256)
LAYOUTS = ("nhw", "nhwc", "nchw", "rows", "keys", "image")  # see cxrvae.data.layouts
NORMALIZE = ("global", "per-image")
SPLITS = ("seeded", "source")  # a seeded stratified split, or the source's own train/test
AUTO = "auto"  # how files and the command line say "let the analysis choose" (n_clusters)
# Names of earlier versions, read from old runs' config.json and metrics.json and from files.
RENAMED = {"clusters": "n_clusters", "data_path": "source"}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """How images are loaded: target size, normalisation and the train/test split."""

    image_size: int = 64
    normalize: str = "global"  # "global": min-max over the whole set; "per-image": each image
    test_fraction: float = 0.2  # share of the images held out for testing (seeded split)
    split: str = "seeded"  # "source": the source's own train/test split (see data.split)
    drop_invalid: bool = False  # leave out unusable images or files instead of refusing
    layout: str = "auto"  # how an npz's arrays hold the images (see cxrvae.data.layouts)
    # anomaly detection: train on these labels only; held-out images of the others are scored
    train_labels: tuple[str, ...] | None = None

    def __post_init__(self):
        names = self.train_labels
        if names is not None:
            names = (names,) if isinstance(names, str) else names
            object.__setattr__(self, "train_labels", tuple(str(n) for n in names))
            _check(len(self.train_labels) > 0, "train_labels must name at least one label")
        _check(
            self.image_size in IMAGE_SIZES,
            f"image_size must be one of {IMAGE_SIZES}, got {self.image_size}",
        )
        _check(
            self.normalize in NORMALIZE,
            f"normalize must be one of {NORMALIZE}, got {self.normalize!r}",
        )
        _check(
            self.layout in ("auto", *LAYOUTS),
            f"layout must be one of auto, {', '.join(LAYOUTS)}; got {self.layout!r}",
        )
        _check(
            self.split in SPLITS, f"split must be one of {', '.join(SPLITS)}; got {self.split!r}"
        )
        _check(
            0.0 < self.test_fraction < 1.0,
            f"test_fraction must be in (0, 1), got {self.test_fraction}",
        )


@dataclass(frozen=True)
class ModelConfig:
    """Architecture shared by every model of a run; one model per latent size."""

    latent_dims: tuple[int, ...] = (4, 16, 32)
    widths: tuple[int, ...] = (8, 16, 32, 64)
    batchnorm: bool = True

    def __post_init__(self):
        for name in ("latent_dims", "widths"):  # a single number is a list of one
            value = getattr(self, name)
            value = (value,) if isinstance(value, int) else value
            object.__setattr__(self, name, tuple(int(v) for v in value))
        _check(
            len(self.latent_dims) > 0 and all(d >= 1 for d in self.latent_dims),
            f"latent_dims must be positive integers, got {self.latent_dims}",
        )
        _check(
            len(set(self.latent_dims)) == len(self.latent_dims),
            f"latent_dims must not repeat, got {self.latent_dims}",
        )
        _check(
            len(self.widths) >= 1 and all(w >= 1 for w in self.widths),
            f"widths must be positive integers, got {self.widths}",
        )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: Adam with a one-cycle learning-rate schedule."""

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-2  # peak learning rate of the one-cycle schedule
    beta: float = 1.0
    max_steps: int | None = None  # cap on optimiser steps per epoch (smoke runs, benchmarks)
    device: str = "auto"
    seeds: int = 1  # trainings per latent size, each with its own initial weights and batch order
    repeat: int = 0  # which of them this run folder holds: 0, or one in the run's repeats/

    def __post_init__(self):
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.beta >= 0, f"beta must be >= 0, got {self.beta}")
        _check(
            self.max_steps is None or self.max_steps >= 1,
            f"max_steps must be >= 1, got {self.max_steps}",
        )
        _check(
            self.seeds >= 1, f"seeds must be >= 1 (one training per latent size), got {self.seeds}"
        )
        _check(
            0 <= self.repeat < self.seeds,
            f"repeat must be between 0 and seeds - 1 ({self.seeds - 1}), got {self.repeat}",
        )


@dataclass(frozen=True)
class AnalysisConfig:
    """Latent-space analysis: sample size, clustering, maps and interpolation."""

    n_samples: int = 1000
    n_clusters: int | None = None  # None ("auto"): the K in k_range with the best silhouette
    k_range: tuple[int, int] = (2, 10)  # the Ks that n_clusters = "auto" tries
    n_init: int = 10  # K-means restarts, the best kept
    perplexity: float = 30.0
    n_between: int = 7  # interpolation points strictly between the two endpoints
    n_reconstructions: int = 10  # test images shown with their reconstructions
    n_importance: int = 32  # samples per image of the log-likelihood estimate
    n_likelihood: int = 500  # test images the log-likelihood is estimated on
    n_traversal: int = 6  # latent dimensions drawn in the traversal grid
    traversal_sd: float = 3.0  # the traversal spans -traversal_sd ... +traversal_sd SDs

    def __post_init__(self):
        object.__setattr__(self, "k_range", tuple(int(k) for k in self.k_range))
        object.__setattr__(self, "n_clusters", parse_n_clusters(self.n_clusters))
        _check(self.n_samples >= 10, f"n_samples must be >= 10, got {self.n_samples}")
        _check(
            2 <= self.k_range[0] <= self.k_range[1],
            f"k_range must satisfy 2 <= low <= high, got {self.k_range}",
        )
        _check(self.perplexity > 0, f"perplexity must be > 0, got {self.perplexity}")
        _check(self.n_between >= 1, f"n_between must be >= 1, got {self.n_between}")
        _check(self.n_importance >= 1, f"n_importance must be >= 1, got {self.n_importance}")
        _check(self.n_likelihood >= 1, f"n_likelihood must be >= 1, got {self.n_likelihood}")
        _check(self.n_traversal >= 1, f"n_traversal must be >= 1, got {self.n_traversal}")
        _check(self.traversal_sd > 0, f"traversal_sd must be > 0, got {self.traversal_sd}")


def parse_n_clusters(value) -> int | None:
    """A number of K-means clusters as files, flags or Python give it: ``"auto"`` (or None) is
    None, the K the silhouette chooses; otherwise a whole number of at least 2 (``"3"`` too)."""
    if value is None or value == AUTO:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"n_clusters must be '{AUTO}' or a whole number, got {value!r}")
    _check(value >= 2, f"n_clusters must be '{AUTO}' or >= 2, got {value}")
    return int(value)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; written to ``<run_dir>/config.json``."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def __post_init__(self):
        # Each encoder layer halves the image: the size must survive every halving.
        factor = 2 ** len(self.model.widths)
        _check(
            self.data.image_size % factor == 0,
            f"image_size {self.data.image_size} cannot pass {len(self.model.widths)} stride-2 "
            f"layers (widths {self.model.widths}): it must be a multiple of {factor}; use fewer "
            "widths or another image size",
        )

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Build from nested settings (:meth:`to_dict` output, or part of it: missing fields
        keep their defaults). Unknown keys are an error that names them."""
        kwargs = {}
        for key, value in d.items():
            if key in SECTIONS:
                kwargs[key] = _section(key, value)
            elif key == "seed":
                kwargs[key] = _typed("seed", value, int)
            else:
                raise ConfigError(f"unknown setting {key!r} (known: seed, {', '.join(SECTIONS)})")
        return cls(**kwargs)

    def replace(self, **sections) -> RunConfig:
        """Copy with some sections' fields replaced, e.g. ``replace(train={"epochs": 5})``."""
        new = {}
        for name, changes in sections.items():
            if name == "seed":
                new["seed"] = changes
            else:
                new[name] = dataclasses.replace(getattr(self, name), **changes)
        return dataclasses.replace(self, **new)


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "analysis": AnalysisConfig,
}


def section_of(name: str) -> str | None:
    """The section ("data", "model"...) that has a field ``name``; "" for ``seed``."""
    if name == "seed":
        return ""
    return next((s for s, c in SECTIONS.items() if name in _fields(c)), None)


def _fields(cls) -> dict:
    return {f.name: f for f in dataclasses.fields(cls)}


def _typed(name: str, value, kind):
    # TOML and JSON give ints, floats, strings, bools and lists: check the ones that matter.
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return value


def _section(name: str, values) -> object:
    cls = SECTIONS[name]
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table of settings, got {values!r}")
    values = {RENAMED.get(k, k): v for k, v in values.items()}
    unknown = sorted(set(values) - set(_fields(cls)))
    if unknown:
        raise ConfigError(
            f"unknown setting {name}.{unknown[0]} (the [{name}] settings are "
            f"{', '.join(_fields(cls))})"
        )
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"[{name}]: {e}") from None


def read_config_file(path) -> tuple[dict, str | None]:
    """The settings in a TOML file or in a run's ``config.json``, and the data source it names.

    A TOML file holds ``seed`` and the tables ``[data]``, ``[model]``, ``[train]`` and
    ``[analysis]`` with any of their fields (``n_clusters = "auto"``; leave a field out for its
    default), and optionally ``source = "images.npz"``. A run's ``config.json`` holds the
    resolved settings under ``config`` and the source under ``source``. Returns (nested
    settings, source or None); the settings are checked when a :class:`RunConfig` is built.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"{path}: not valid {kind} ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table of settings")
    raw = {RENAMED.get(k, k): v for k, v in raw.items()}
    if "config" in raw:  # a run's own config.json
        return raw["config"], raw.get("source")
    raw = dict(raw)
    source = raw.pop("source", None)
    return raw, source


def load_config(path, overrides: dict | None = None) -> tuple[RunConfig, str | None]:
    """:class:`RunConfig` from a file (see :func:`read_config_file`), with ``overrides``
    (nested like the file) on top; and the data source the file names, if any."""
    settings, source = read_config_file(path)
    try:
        RunConfig.from_dict(settings)  # the file alone, so that its errors name it
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return RunConfig.from_dict(merge_settings(settings, overrides or {})), source


def merge_settings(base: dict, overrides: dict) -> dict:
    """Nested settings with ``overrides`` replacing fields of ``base``, section by section."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in overrides.items():
        if isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def settings_from_flags(flags: dict) -> dict:
    """Settings given by name (a command line's flags: ``{"epochs": 5, "seed": 1, "out": ...}``)
    nested like a config file (``{"train": {"epochs": 5}, "seed": 1}``); names that are not
    settings are left out."""
    out: dict = {}
    for name, value in flags.items():
        section = section_of(name)
        if section == "":
            out[name] = value
        elif section is not None:
            out.setdefault(section, {})[name] = value
    return out


def configure(path=None, flags: dict | None = None, image_size: int | None = None) -> RunConfig:
    """The settings of a run: the defaults, then the file at ``path`` (TOML, or a run's
    ``config.json``), then ``flags`` (see :func:`settings_from_flags`). ``image_size`` is taken
    where neither sets it (a public set named with a size, ``pneumoniamnist:128``).

    A setting that is wrong is one :class:`ConfigError` naming the file or the field.
    """
    file_settings: dict = {}
    if path:
        file_settings, _ = read_config_file(path)
        try:
            RunConfig.from_dict(file_settings)
        except UsageError as e:
            raise ConfigError(f"{path}: {e}") from None
    settings = merge_settings(file_settings, settings_from_flags(flags or {}))
    if image_size is not None and "image_size" not in settings.get("data", {}):
        settings = merge_settings(settings, {"data": {"image_size": image_size}})
    return RunConfig.from_dict(settings)
