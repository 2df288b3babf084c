"""A trained model to generate from: its checkpoint's weights, config and tokenizer."""

from __future__ import annotations

import os
from typing import Any

import torch

from reference_impl.models import ModelConfig, TransformerLM
from reference_impl.tokenizer import ByteTokenizer, Tokenizer, tokenizer_from_state
from reference_impl.utils import load_checkpoint


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[TransformerLM, ByteTokenizer | Tokenizer, dict[str, Any]]:
    """The trained model (in eval mode, on ``device``), its tokenizer, and the checkpoint."""
    ckpt = load_checkpoint(path, device)
    model = TransformerLM(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, tokenizer_from_state(ckpt.get("tokenizer", {"kind": "bytes"})), ckpt
