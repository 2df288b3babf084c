"""Experiment configuration: the ``model``, ``train`` and ``data`` sections of a YAML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reference_impl.models.config import ModelConfig
from reference_impl.utils.config import ConfigError, from_dict, load_yaml


@dataclass
class TrainConfig:
    """Optimisation settings. ``lr`` warms up linearly for ``warmup_steps``, then follows a
    cosine down to ``min_lr`` at ``max_steps``."""

    max_steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    log_interval: int = 50
    seed: int = 1337
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "log_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps: must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"min_lr: must be in [0, lr={self.lr}], got {self.min_lr}")


@dataclass
class DataConfig:
    """Where the training text comes from and how it becomes token ids."""

    dataset: Literal["stories"] = "stories"
    num_stories: int = 2000
    tokenizer: Literal["bytes"] = "bytes"
    seed: int = 0


@dataclass
class ExperimentConfig:
    model: ModelConfig
    train: TrainConfig
    data: DataConfig


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML experiment config; every error names its key."""
    raw = load_yaml(path)
    unknown = set(raw) - {"model", "train", "data"}
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown section; known: model, train, data")
    if "model" not in raw:
        raise ConfigError(f"{path}: no 'model:' section")
    exp = ExperimentConfig(
        model=ModelConfig.from_dict(raw["model"]),
        train=from_dict(TrainConfig, raw.get("train"), "train"),
        data=from_dict(DataConfig, raw.get("data"), "data"),
    )
    if exp.data.tokenizer == "bytes" and exp.model.vocab_size < 256:
        raise ConfigError("model.vocab_size: the byte tokenizer needs at least 256")
    return exp
