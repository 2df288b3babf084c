"""Training: experiment configs, the learning-rate schedule and the training loop."""

from reference_impl.training.config import (
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    load_experiment,
)
from reference_impl.training.loop import make_optimizer, resolve_device, train
from reference_impl.training.schedule import cosine_lr

__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "TrainConfig",
    "cosine_lr",
    "load_experiment",
    "make_optimizer",
    "resolve_device",
    "train",
]
