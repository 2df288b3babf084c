"""The pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x))."""

from __future__ import annotations

from torch import Tensor, nn

from reference_impl.models.attention import MultiHeadAttention
from reference_impl.models.cache import LayerKVCache
from reference_impl.models.config import ModelConfig
from reference_impl.models.ffn import build_ffn
from reference_impl.models.norms import LayerNorm, RMSNorm
from reference_impl.models.positions import RotaryEmbedding


def build_norm(config: ModelConfig) -> LayerNorm | RMSNorm:
    """The normalisation ``config.norm_kind`` names, over d_model features."""
    if config.norm_kind == "rmsnorm":
        return RMSNorm(config.d_model, config.norm_eps)
    return LayerNorm(config.d_model, config.norm_eps, bias=config.bias)


class TransformerBlock(nn.Module):
    """One pre-norm block; the residual stream x (B, T, d_model) keeps its shape.

    Submodules: ``attn_norm``, ``attn``, ``ffn_norm``, ``ffn``.
    """

    def __init__(self, config: ModelConfig, rope: RotaryEmbedding | None = None) -> None:
        super().__init__()
        self.attn_norm = build_norm(config)
        self.attn = MultiHeadAttention(config, rope)
        self.ffn_norm = build_norm(config)
        self.ffn = build_ffn(config)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: Tensor, attn_mask: Tensor | None = None, cache: LayerKVCache | None = None
    ) -> Tensor:
        x = x + self.resid_dropout(self.attn(self.attn_norm(x), attn_mask, cache))
        return x + self.resid_dropout(self.ffn(self.ffn_norm(x)))
