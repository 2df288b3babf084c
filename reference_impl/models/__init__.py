"""The transformer core: attention, positions, norms, feed-forward networks, blocks, LM."""

from reference_impl.models.attention import (
    MultiHeadAttention,
    causal_mask,
    repeat_kv,
    scaled_dot_product_attention,
    soft_cap,
    window_mask,
)
from reference_impl.models.block import TransformerBlock, build_norm
from reference_impl.models.cache import KVCache, LayerKVCache, SlidingKVCache
from reference_impl.models.config import ModelConfig
from reference_impl.models.ffn import MLP, GatedMLP, build_ffn
from reference_impl.models.hf import (
    UnsupportedHFModel,
    from_hf_gemma2,
    from_hf_gemma3,
    from_hf_gpt2,
    from_hf_llama,
)
from reference_impl.models.model import TransformerLM, image_blocks, lm_loss
from reference_impl.models.moe import MoELayer, from_hf_mixtral_moe
from reference_impl.models.norms import LayerNorm, RMSNorm
from reference_impl.models.positions import (
    RotaryEmbedding,
    apply_rope,
    rope_tables,
    rotate_half,
    sinusoidal_positions,
)
from reference_impl.models.recurrent import LSTM, RNN, LSTMCell, RNNCell, RNNLanguageModel
from reference_impl.models.tiled_attention import (
    TiledAttentionFunction,
    online_softmax,
    sliding_window_mask,
    tiled_attention,
)
from reference_impl.models.vision import (
    ImageCaptioner,
    ImageProjector,
    PatchEmbedding,
    VisionConfig,
    ViTBlock,
    ViTEncoder,
    from_hf_vit,
    patchify,
    prefix_lm_loss,
)

__all__ = [
    "LSTM",
    "MLP",
    "RNN",
    "GatedMLP",
    "ImageCaptioner",
    "ImageProjector",
    "KVCache",
    "LSTMCell",
    "LayerKVCache",
    "LayerNorm",
    "MoELayer",
    "ModelConfig",
    "MultiHeadAttention",
    "PatchEmbedding",
    "RMSNorm",
    "RNNCell",
    "RNNLanguageModel",
    "RotaryEmbedding",
    "SlidingKVCache",
    "TiledAttentionFunction",
    "TransformerBlock",
    "TransformerLM",
    "UnsupportedHFModel",
    "ViTBlock",
    "ViTEncoder",
    "VisionConfig",
    "apply_rope",
    "build_ffn",
    "build_norm",
    "causal_mask",
    "from_hf_gemma2",
    "from_hf_gemma3",
    "from_hf_gpt2",
    "from_hf_llama",
    "from_hf_mixtral_moe",
    "from_hf_vit",
    "image_blocks",
    "lm_loss",
    "online_softmax",
    "patchify",
    "prefix_lm_loss",
    "repeat_kv",
    "rope_tables",
    "rotate_half",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
    "sliding_window_mask",
    "soft_cap",
    "tiled_attention",
    "window_mask",
]
