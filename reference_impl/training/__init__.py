"""Training: experiment configs, the schedule, the trainer and its checkpoints."""

from reference_impl.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from reference_impl.training.config import (
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    load_experiment,
)
from reference_impl.training.loop import (
    TrainError,
    TrainResult,
    lm_loss,
    make_optimizer,
    resolve_device,
    train,
)
from reference_impl.training.schedule import cosine_lr

__all__ = [
    "CheckpointError", "DataConfig", "ExperimentConfig", "TrainConfig", "TrainError",
    "TrainResult", "cosine_lr", "lm_loss", "load_checkpoint", "load_experiment", "load_model",
    "make_optimizer", "resolve_device", "save_checkpoint", "train",
]  # fmt: skip
