"""Run configuration: frozen dataclasses, validated on creation, saved as JSON. No torch here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import ConfigError

IMAGE_SIZES = (32, 64, 128, 256)
NORMALIZE = ("global", "per-image")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """How images are loaded: target size, normalisation and the train/test split."""

    image_size: int = 64
    normalize: str = "global"  # "global": min-max over the whole set; "per-image": each image
    test_fraction: float = 0.2
    drop_invalid: bool = False  # drop images with NaN/inf instead of refusing the file

    def __post_init__(self):
        _check(
            self.image_size in IMAGE_SIZES,
            f"image_size must be one of {IMAGE_SIZES}, got {self.image_size}",
        )
        _check(
            self.normalize in NORMALIZE,
            f"normalize must be one of {NORMALIZE}, got {self.normalize!r}",
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
        object.__setattr__(self, "latent_dims", tuple(int(d) for d in self.latent_dims))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
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

    def __post_init__(self):
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.beta >= 0, f"beta must be >= 0, got {self.beta}")
        _check(
            self.max_steps is None or self.max_steps >= 1,
            f"max_steps must be >= 1, got {self.max_steps}",
        )


@dataclass(frozen=True)
class AnalysisConfig:
    """Latent-space analysis: sample size, clustering, maps and interpolation."""

    n_samples: int = 1000
    clusters: int | None = None  # None: the K in k_range with the best silhouette
    k_range: tuple[int, int] = (2, 10)
    n_init: int = 10
    perplexity: float = 30.0
    n_between: int = 7  # interpolation points strictly between the two endpoints
    n_reconstructions: int = 10

    def __post_init__(self):
        object.__setattr__(self, "k_range", tuple(int(k) for k in self.k_range))
        _check(self.n_samples >= 10, f"n_samples must be >= 10, got {self.n_samples}")
        _check(
            self.clusters is None or self.clusters >= 2,
            f"clusters must be >= 2, got {self.clusters}",
        )
        _check(
            2 <= self.k_range[0] <= self.k_range[1],
            f"k_range must satisfy 2 <= low <= high, got {self.k_range}",
        )
        _check(self.perplexity > 0, f"perplexity must be > 0, got {self.perplexity}")
        _check(self.n_between >= 1, f"n_between must be >= 1, got {self.n_between}")


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
        """Rebuild from :meth:`to_dict` output; unknown keys are an error."""
        parts = {
            "data": DataConfig,
            "model": ModelConfig,
            "train": TrainConfig,
            "analysis": AnalysisConfig,
        }
        kwargs = {}
        for key, value in d.items():
            if key in parts:
                kwargs[key] = parts[key](**value)
            elif key == "seed":
                kwargs[key] = int(value)
            else:
                raise ConfigError(f"unknown configuration key {key!r}")
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
