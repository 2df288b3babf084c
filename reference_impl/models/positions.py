"""Positional information: sinusoidal tables and rotary position embeddings (RoPE).

Learned absolute positions need no code of their own: they are an ``nn.Embedding``
indexed by position (see :class:`~reference_impl.models.model.TransformerLM`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def sinusoidal_positions(t: int, d: int, base: float = 10000.0) -> Tensor:
    """(t, d) table from "Attention Is All You Need".

    ``pe[p, 2i] = sin(p / base^(2i/d))`` and ``pe[p, 2i+1] = cos(p / base^(2i/d))``.
    """
    if d % 2:
        raise ValueError(f"sinusoidal positions need an even width, got d={d}")
    pos = torch.arange(t, dtype=torch.float64)[:, None]  # (t, 1)
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    angles = pos * inv_freq  # (t, d/2)
    pe = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(1)  # interleave
    return pe.float()


def rope_tables(t: int, d: int, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin tables, each (t, d), for RoPE on heads of width ``d``.

    Frequency ``theta^(-2i/d)`` for i < d/2, repeated for both halves of the head
    (the "rotate half" layout of GPT-NeoX and Llama).
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    angles = torch.outer(torch.arange(t).float(), inv_freq)  # (t, d/2)
    angles = torch.cat((angles, angles), dim=-1)  # (t, d)
    return angles.cos(), angles.sin()


def rotate_half(x: Tensor) -> Tensor:
    """(..., d) -> (..., d): [x1, x2] -> [-x2, x1], a 90 degree turn of each pair (x1_i, x2_i)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (..., T, d) by position: pair i of token p turns by angle p * theta^(-2i/d).

    ``cos`` and ``sin`` are (T, d) (from :func:`rope_tables`) or broadcastable to x.
    Dot products of rotated queries and keys then depend only on their distance.
    """
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """Applies RoPE to (B, H, T, D) queries or keys, with tables cached up to ``max_len``."""

    cos: Tensor
    sin: Tensor

    def __init__(self, head_dim: int, max_len: int, theta: float = 10000.0) -> None:
        super().__init__()
        cos, sin = rope_tables(max_len, head_dim, theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (B, H, T, D) at positions offset .. offset+T-1 -> rotated x, same shape and dtype."""
        t = x.size(-2)
        cos = self.cos[offset : offset + t].to(x.dtype)
        sin = self.sin[offset : offset + t].to(x.dtype)
        return apply_rope(x, cos, sin)
