"""Shared utilities: typed configuration loading, checkpoint files, devices."""

from reference_impl.utils.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from reference_impl.utils.config import ConfigError, from_dict, load_yaml
from reference_impl.utils.devices import resolve_device

__all__ = [
    "CheckpointError",
    "ConfigError",
    "from_dict",
    "load_checkpoint",
    "load_yaml",
    "resolve_device",
    "save_checkpoint",
]
