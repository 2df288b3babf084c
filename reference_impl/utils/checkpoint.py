"""Checkpoint files: written atomically, read with ``weights_only=True``, checked on load.

A checkpoint is one ``model.pt`` holding the model's config and weights, the tokenizer
(so generation needs nothing else), and, for resuming, the optimizer state, the number of
completed iterations and the random-number states. This module knows the file, not the
model: :func:`reference_impl.generation.load_model` builds the model from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit; the message says which."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """The checkpoint at ``path`` (a file, or a folder holding ``model.pt``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train one with scripts/train.py")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a gemini-workshop checkpoint")
    return ckpt
