"""Normalisation layers: LayerNorm (GPT-2) and RMSNorm (Llama, Gemma)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm(nn.Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased variance).

    x (..., d) -> (..., d). Parameters ``weight`` (d,) and, if ``bias``, ``bias`` (d,).
    ``F.layer_norm`` computes exactly this in one fused kernel.
    """

    def __init__(self, d: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, (x.size(-1),), self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last dim: no centring, no bias.

    x (..., d) -> (..., d), computed in float32 and cast back to x's dtype before the
    weight multiplies it (as Llama does).
    """

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        d = x.size(-1)
        if x.dtype == self.weight.dtype == torch.float32:  # the same numbers, in one call
            return F.rms_norm(x, (d,), self.weight, self.eps)
        y = F.rms_norm(x.float(), (d,), eps=self.eps)  # x / sqrt(mean(x^2) + eps)
        return self.weight * y.to(x.dtype)
