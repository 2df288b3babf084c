"""Training: experiment configs, the schedule and the trainer (checkpoints that resume)."""

from reference_impl.training.config import (
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    load_experiment,
)
from reference_impl.training.loop import (
    TrainError,
    TrainResult,
    make_optimizer,
    train,
)
from reference_impl.training.schedule import cosine_lr

__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "cosine_lr",
    "load_experiment",
    "make_optimizer",
    "train",
]
