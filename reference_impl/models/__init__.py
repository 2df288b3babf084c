"""The transformer core: attention, positions, norms, feed-forward networks, blocks, LM."""

from reference_impl.models.attention import (
    MultiHeadAttention,
    causal_mask,
    repeat_kv,
    scaled_dot_product_attention,
)
from reference_impl.models.block import TransformerBlock, build_norm
from reference_impl.models.cache import KVCache, LayerKVCache
from reference_impl.models.config import ModelConfig
from reference_impl.models.ffn import MLP, GatedMLP, build_ffn
from reference_impl.models.hf import UnsupportedHFModel, from_hf_gpt2, from_hf_llama
from reference_impl.models.model import TransformerLM
from reference_impl.models.norms import LayerNorm, RMSNorm
from reference_impl.models.positions import (
    RotaryEmbedding,
    apply_rope,
    rope_tables,
    rotate_half,
    sinusoidal_positions,
)

__all__ = [
    "MLP",
    "GatedMLP",
    "KVCache",
    "LayerKVCache",
    "LayerNorm",
    "ModelConfig",
    "MultiHeadAttention",
    "RMSNorm",
    "RotaryEmbedding",
    "TransformerBlock",
    "TransformerLM",
    "UnsupportedHFModel",
    "apply_rope",
    "build_ffn",
    "build_norm",
    "causal_mask",
    "from_hf_gpt2",
    "from_hf_llama",
    "repeat_kv",
    "rope_tables",
    "rotate_half",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
]
