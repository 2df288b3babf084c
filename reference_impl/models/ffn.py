"""Position-wise feed-forward networks: the GELU MLP and the gated SwiGLU / GeGLU."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from reference_impl.models.config import ModelConfig


class MLP(nn.Module):
    """down_proj(gelu(up_proj(x))): (B, T, d_model) -> (B, T, d_model) via width d_ff."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, h = config.d_model, config.d_ff
        self.up_proj = nn.Linear(d, h, bias=config.bias)
        self.down_proj = nn.Linear(h, d, bias=config.bias)
        self.approximate = config.gelu_approximate

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.gelu(self.up_proj(x), approximate=self.approximate))


class GatedMLP(nn.Module):
    """down_proj(act(gate_proj(x)) * up_proj(x)): SwiGLU with act=SiLU, GeGLU with act=GELU.

    (B, T, d_model) -> (B, T, d_model) via width d_ff (Shazeer, "GLU Variants Improve
    Transformer", 2020).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, h = config.d_model, config.d_ff
        self.gate_proj = nn.Linear(d, h, bias=config.bias)
        self.up_proj = nn.Linear(d, h, bias=config.bias)
        self.down_proj = nn.Linear(h, d, bias=config.bias)
        self.kind = config.ffn_kind
        self.approximate = config.gelu_approximate

    def forward(self, x: Tensor) -> Tensor:
        gate = self.gate_proj(x)
        swish = self.kind == "swiglu"
        act = F.silu(gate) if swish else F.gelu(gate, approximate=self.approximate)
        return self.down_proj(act * self.up_proj(x))


def build_ffn(config: ModelConfig) -> MLP | GatedMLP:
    """The feed-forward network ``config.ffn_kind`` names."""
    return MLP(config) if config.ffn_kind == "gelu" else GatedMLP(config)
