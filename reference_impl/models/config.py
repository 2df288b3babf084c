"""ModelConfig: every architectural choice of :class:`TransformerLM` in one typed record."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from reference_impl.utils.config import ConfigError, from_dict, load_yaml

FFNKind = Literal["gelu", "swiglu", "geglu"]
NormKind = Literal["layernorm", "rmsnorm"]
PosKind = Literal["learned", "sinusoidal", "rope", "none"]
AttnImpl = Literal["manual", "sdpa"]
GeluApprox = Literal["none", "tanh"]


@dataclass
class ModelConfig:
    """Architecture of a decoder-only transformer language model.

    Attributes:
        vocab_size: number of token ids.
        context_length: longest sequence the model accepts (size of learned positions).
        d_model: width of the residual stream.
        n_heads: query heads per attention layer.
        n_layers: number of transformer blocks.
        n_kv_heads: key/value heads; ``None`` means ``n_heads`` (MHA), 1 is MQA,
            anything in between that divides ``n_heads`` is GQA.
        head_dim: width of one head; ``None`` means ``d_model // n_heads``.
        d_ff: hidden width of the feed-forward network; ``None`` means ``4 * d_model``
            for ``gelu`` and ``round(8/3 * d_model)`` up to a multiple of 64 for gated FFNs
            (same parameter count as the 4x GELU MLP).
        ffn_kind: ``gelu`` MLP, or the gated ``swiglu`` / ``geglu``.
        gelu_approximate: ``tanh`` is GPT-2's "gelu_new"; used by ``gelu`` and ``geglu``.
        norm_kind: ``layernorm`` (GPT-2) or ``rmsnorm`` (Llama, Gemma).
        norm_eps: epsilon inside the norms.
        pos_kind: ``learned`` / ``sinusoidal`` absolute positions added to the token
            embeddings, ``rope`` rotations inside attention, or ``none``.
        rope_theta: RoPE base frequency.
        dropout: dropout on embeddings, attention weights and residual branches.
        bias: biases in every linear layer and LayerNorm.
        tie_weights: the output projection shares the token-embedding matrix.
        attn_impl: ``manual`` (the from-scratch attention, readable) or ``sdpa``
            (``torch.nn.functional.scaled_dot_product_attention``, fused kernels).
        init_std: standard deviation of the normal initialisation.

    Gemma-style options (all off by default; see ``configs/mini_gemini.yaml``):

    Attributes:
        attn_pattern: the layers' attention kinds, repeated over the layers: ``L`` a local
            (sliding-window) layer, ``G`` a global one; Gemma 2 is ``LG``, Gemma 3 ``LLLLLG``.
        sliding_window: W of the local layers: query i sees key j iff ``i - W < j <= i``.
        rope_local_theta: RoPE base of the local layers; ``None`` means ``rope_theta``.
        query_pre_attn_scalar: scores are scaled by ``query_pre_attn_scalar ** -0.5``;
            ``None`` means ``head_dim`` (the usual ``1 / sqrt(D)``).
        attn_softcap: ``c`` of the attention-logit soft-cap ``c * tanh(s / c)`` (applied
            before the mask); ``None`` for none.
        final_softcap: ``c`` of the same soft-cap on the output logits.
        qk_norm: RMSNorm over each query and key head (after projection, before RoPE).
        sandwich_norm: norms after attention and after the feed-forward too, before the
            residual additions (Gemma 2 and 3).
        embed_scale: multiply token embeddings by ``sqrt(d_model)``.
        ffn_pattern: the layers' feed-forward kinds, repeated: ``D`` dense (``ffn_kind``),
            ``M`` a mixture of experts (Mixtral routing, SwiGLU experts of width ``d_ff``).
        moe_num_experts, moe_top_k, moe_capacity_factor: the MoE layers' experts, experts
            per token and capacity (``None``: no token is dropped).
        moe_aux_loss_coef: weight of the load-balancing loss the trainer adds.
        image_token_id: the placeholder token whose embeddings image features replace; the
            tokens of one run of placeholders attend to each other both ways.
    """

    vocab_size: int
    context_length: int
    d_model: int
    n_heads: int
    n_layers: int
    # None (the default, or null in YAML) is filled in by __post_init__: always an int after.
    n_kv_heads: int = None  # type: ignore[assignment]
    head_dim: int = None  # type: ignore[assignment]
    d_ff: int = None  # type: ignore[assignment]
    ffn_kind: FFNKind = "gelu"
    gelu_approximate: GeluApprox = "none"
    norm_kind: NormKind = "layernorm"
    norm_eps: float = 1e-5
    pos_kind: PosKind = "learned"
    rope_theta: float = 10000.0
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = True
    attn_impl: AttnImpl = "manual"
    init_std: float = 0.02
    attn_pattern: str = "G"
    sliding_window: int | None = None
    rope_local_theta: float | None = None
    query_pre_attn_scalar: float | None = None
    attn_softcap: float | None = None
    final_softcap: float | None = None
    qk_norm: bool = False
    sandwich_norm: bool = False
    embed_scale: bool = False
    ffn_pattern: str = "D"
    moe_num_experts: int = 8
    moe_top_k: int = 2
    moe_capacity_factor: float | None = None
    moe_aux_loss_coef: float = 0.01
    image_token_id: int | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "d_model", "n_heads", "n_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("n_kv_heads", "head_dim", "d_ff"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}: must be >= 1 (or null), got {value}")
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ConfigError(
                f"n_heads: d_model={self.d_model} is not divisible by n_heads={self.n_heads}"
            )
        self._fill_defaults()
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"n_kv_heads: n_heads={self.n_heads} is not divisible by "
                f"n_kv_heads={self.n_kv_heads}"
            )
        if self.pos_kind in ("rope", "sinusoidal") and self.head_dim % 2:
            raise ConfigError(f"head_dim: RoPE needs an even head width, got {self.head_dim}")
        if self.pos_kind == "sinusoidal" and self.d_model % 2:
            raise ConfigError(
                f"d_model: sinusoidal positions need an even width, got {self.d_model}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.norm_eps <= 0 or self.init_std <= 0 or self.rope_theta <= 0:
            raise ConfigError("norm_eps, init_std, rope_theta: must be > 0")
        self._check_gemma_options()

    def _check_gemma_options(self) -> None:
        for name, letters in (("attn_pattern", "LG"), ("ffn_pattern", "DM")):
            pattern = getattr(self, name)
            if not pattern or set(pattern) - set(letters):
                raise ConfigError(f"{name}: a string of {' and '.join(letters)}, got {pattern!r}")
        if "L" in self.attn_pattern and (self.sliding_window is None or self.sliding_window < 1):
            raise ConfigError(
                f"sliding_window: local layers (L in attn_pattern) need a window >= 1, "
                f"got {self.sliding_window}"
            )
        for name in ("attn_softcap", "final_softcap", "query_pre_attn_scalar"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}: must be > 0 (or null), got {value}")
        if "M" in self.ffn_pattern and not 1 <= self.moe_top_k <= self.moe_num_experts:
            raise ConfigError(
                f"moe_top_k: must be in [1, moe_num_experts={self.moe_num_experts}], "
                f"got {self.moe_top_k}"
            )
        if self.image_token_id is not None and not 0 <= self.image_token_id < self.vocab_size:
            raise ConfigError(
                f"image_token_id: must be a token id below vocab_size={self.vocab_size}, "
                f"got {self.image_token_id}"
            )

    def is_local(self, layer: int) -> bool:
        """Whether layer ``layer`` attends within the sliding window."""
        return self.attn_pattern[layer % len(self.attn_pattern)] == "L"

    def is_moe(self, layer: int) -> bool:
        """Whether layer ``layer``'s feed-forward is a mixture of experts."""
        return self.ffn_pattern[layer % len(self.ffn_pattern)] == "M"

    def _fill_defaults(self) -> None:
        """n_kv_heads = n_heads (MHA), head_dim = d_model // n_heads, and d_ff = 4 * d_model
        for GELU or 8/3 * d_model rounded up to a multiple of 64 for gated FFNs."""
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.head_dim is None:
            self.head_dim = self.d_model // self.n_heads
        if self.d_ff is None:
            gated = 64 * math.ceil(8 * self.d_model / 3 / 64)
            self.d_ff = 4 * self.d_model if self.ffn_kind == "gelu" else gated

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for YAML and checkpoints); ``ModelConfig.from_dict`` inverts it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], section: str = "model") -> ModelConfig:
        """Validated construction from a mapping; errors name ``section.key``."""
        return from_dict(cls, data, section)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ModelConfig:
        """Read the ``model:`` section of a YAML config file."""
        data = load_yaml(path)
        if "model" not in data:
            raise ConfigError(f"{path}: no 'model:' section")
        return cls.from_dict(data["model"])
