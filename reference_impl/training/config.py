"""Experiment configuration: the ``model``, ``train`` and ``data`` sections of a YAML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reference_impl.models.config import ModelConfig
from reference_impl.utils.config import ConfigError, from_dict, load_yaml


@dataclass
class TrainConfig:
    """Optimisation settings.

    The learning rate warms up linearly for ``warmup_iters``, then follows a cosine down to
    ``min_lr`` at ``max_iters``: the schedule's length. A run may stop earlier
    (``--max-iters``) and resume later on exactly the same path.

    With ``time_limit`` (seconds) the schedule follows the clock instead: its ``max_iters``
    positions are spread over ``time_limit`` seconds, counted from the end of the first
    iteration (which holds any compilation), and the run stops when they have passed, at
    however many iterations the machine managed ("the best model in 3 minutes"). Such a run
    depends on the machine's speed, so it cannot be resumed exactly, nor run on several
    processes.
    """

    max_iters: int = 1000
    batch_size: int = 16
    grad_accum_steps: int = 1  # micro-batches of batch_size per optimizer step
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    # muon: Muon on the blocks' weight matrices (updates scaled to AdamW's size, so the same
    # lr), AdamW on embeddings, norms and biases
    optimizer: Literal["adamw", "muon"] = "adamw"
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 turns clipping off
    log_interval: int = 50
    eval_interval: int = 250  # also where checkpoints are written
    eval_iters: int = 20  # validation batches per evaluation
    seed: int = 1337
    device: str = "auto"
    dtype: Literal["float32", "bfloat16"] = "float32"  # bfloat16: autocast (GPU path)
    compile: bool = False  # torch.compile the model (GPU path)
    wandb: bool = False  # also log to Weights & Biases, offline mode
    init_from: str | None = None  # a checkpoint whose weights start the run (fine-tuning)
    time_limit: float | None = None  # seconds: the schedule follows the clock (see above)

    def __post_init__(self) -> None:
        positive = (
            "max_iters",
            "batch_size",
            "grad_accum_steps",
            "log_interval",
            "eval_interval",
            "eval_iters",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.warmup_iters < 0:
            raise ConfigError(f"warmup_iters: must be >= 0, got {self.warmup_iters}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"min_lr: must be in [0, lr={self.lr}], got {self.min_lr}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ConfigError(f"time_limit: must be > 0 seconds, got {self.time_limit}")
        if self.grad_clip < 0:
            raise ConfigError(f"grad_clip: must be >= 0 (0 = off), got {self.grad_clip}")


@dataclass
class DataConfig:
    """Where the training text comes from and how it becomes token ids.

    ``dataset``: ``builtin`` (the offline stories), ``tinystories``, or a path to a text
    file or a folder of them; or ``instructions``, the offline chat conversations for
    supervised fine-tuning (rendered in the chat format, trained on the assistant's turns).
    ``size``: tiny, small, medium or full (stories, or conversations, per split).
    ``tokenizer``: ``bytes`` or a folder with ``vocab.json`` and ``merges.txt``. Token files
    are built once under ``data_dir``.
    """

    dataset: str = "builtin"
    size: Literal["tiny", "small", "medium", "full"] = "small"
    tokenizer: str = "bytes"
    data_dir: str = "data"


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
