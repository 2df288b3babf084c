"""The pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x)); with
``sandwich_norm`` (Gemma 2 and 3) each branch is normalised again before it is added."""

from __future__ import annotations

from torch import Tensor, nn

from reference_impl.models.attention import MultiHeadAttention
from reference_impl.models.cache import LayerKVCache, SlidingKVCache
from reference_impl.models.config import ModelConfig
from reference_impl.models.ffn import build_ffn
from reference_impl.models.moe import MoELayer
from reference_impl.models.norms import LayerNorm, RMSNorm
from reference_impl.models.positions import RotaryEmbedding


def build_norm(config: ModelConfig) -> LayerNorm | RMSNorm:
    """The normalisation ``config.norm_kind`` names, over d_model features."""
    if config.norm_kind == "rmsnorm":
        return RMSNorm(config.d_model, config.norm_eps)
    return LayerNorm(config.d_model, config.norm_eps, bias=config.bias)


class TransformerBlock(nn.Module):
    """Block ``layer`` of the model; the residual stream x (B, T, d_model) keeps its shape.

    Submodules: ``attn_norm``, ``attn`` (sliding-window if the layer is local), ``ffn_norm``,
    ``ffn`` (a :class:`MoELayer` if the layer is MoE); with ``sandwich_norm`` also
    ``post_attn_norm`` and ``post_ffn_norm``.
    """

    def __init__(
        self, config: ModelConfig, rope: RotaryEmbedding | None = None, layer: int = 0
    ) -> None:
        super().__init__()
        window = config.sliding_window if config.is_local(layer) else None
        self.attn_norm = build_norm(config)
        self.attn = MultiHeadAttention(config, rope, window)
        self.ffn_norm = build_norm(config)
        self.ffn: nn.Module = build_ffn(config)
        if config.is_moe(layer):
            self.ffn = MoELayer(
                config.d_model,
                config.d_ff,
                config.moe_num_experts,
                config.moe_top_k,
                config.moe_capacity_factor,
            )
        self.post_attn_norm = build_norm(config) if config.sandwich_norm else None
        self.post_ffn_norm = build_norm(config) if config.sandwich_norm else None
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cache: LayerKVCache | SlidingKVCache | None = None,
        blocks: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, d_model) -> (B, T, d_model); ``attn_mask``, ``cache`` and ``blocks``
        as in :meth:`MultiHeadAttention.forward`."""
        h = self.attn(self.attn_norm(x), attn_mask, cache, blocks)
        if self.post_attn_norm is not None:
            h = self.post_attn_norm(h)
        x = x + self.resid_dropout(h)
        h = self.ffn(self.ffn_norm(x))
        if isinstance(self.ffn, MoELayer):
            h = h[0]  # the router logits stay on the layer for the load-balancing loss
        if self.post_ffn_norm is not None:
            h = self.post_ffn_norm(h)
        return x + self.resid_dropout(h)
