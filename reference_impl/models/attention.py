"""Scaled dot-product attention from scratch, and multi-head attention with GQA/MQA.

Notation: B batch, H query heads, Hkv key/value heads, T query length, S key length,
D head width. ``softmax(q k^T / sqrt(D) + mask) v`` is computed per head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference_impl.models.cache import LayerKVCache
from reference_impl.models.config import ModelConfig
from reference_impl.models.positions import RotaryEmbedding


def causal_mask(t: int, s: int | None = None, device: torch.device | None = None) -> Tensor:
    """Boolean (t, s) mask, True where query i may attend to key j (j <= i + s - t).

    With ``s > t`` the queries are the last ``t`` positions of an ``s``-long sequence
    (as when decoding with a cache), so query i sits at absolute position ``i + s - t``.
    """
    s = t if s is None else s
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(diagonal=s - t)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, S, D) -> (B, Hkv * n_rep, S, D): each key/value head serves n_rep query heads."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    use_fused: bool = False,
) -> Tensor:
    """Attention of q (..., H, T, D) over keys/values (..., Hkv, S, D) -> (..., H, T, D).

    Same contract as ``torch.nn.functional.scaled_dot_product_attention``:

    - ``attn_mask`` broadcasts to (..., H, T, S); a boolean mask is True where attention
      is allowed, a float mask is added to the scores (use ``-inf`` to block).
    - ``is_causal`` blocks keys after each query (bottom-right aligned when S > T).
    - ``dropout_p`` drops attention weights; pass 0.0 at evaluation time.
    - ``scale`` defaults to ``1 / sqrt(D)``.
    - Hkv may divide H (grouped-query attention): key/value heads are shared.

    A query row whose keys are all masked returns zeros instead of NaN.
    ``use_fused=True`` calls torch's fused kernel with the same arguments.
    """
    if q.dim() < 3 or q.size(-3) % k.size(-3):
        raise ValueError(
            f"query heads must be a multiple of key/value heads: q {tuple(q.shape)}, "
            f"k {tuple(k.shape)} (expected (..., H, T, D) and (..., Hkv, S, D))"
        )
    n_rep = q.size(-3) // k.size(-3)
    if use_fused:
        if is_causal:  # torch takes is_causal or a mask, not both; and aligns top-left
            causal = causal_mask(q.size(-2), k.size(-2), q.device)
            if attn_mask is None:
                attn_mask = causal
            elif attn_mask.dtype == torch.bool:
                attn_mask = attn_mask & causal
            else:
                attn_mask = torch.where(causal, attn_mask, -math.inf)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask, dropout_p, scale=scale, enable_gqa=n_rep > 1
        )
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., H, T, S)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(q.size(-2), k.size(-2), q.device), -math.inf)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, -math.inf)
        else:
            scores = scores + attn_mask
    # A row with every key blocked would be softmax(-inf, ...) = NaN: give it zero weights.
    blocked = scores.isneginf().all(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(blocked, 0.0), dim=-1).masked_fill(blocked, 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v


class MultiHeadAttention(nn.Module):
    """Causal self-attention with ``n_heads`` query heads and ``n_kv_heads`` key/value heads.

    Parameters: ``q_proj`` (d_model -> H*D), ``k_proj`` and ``v_proj`` (d_model -> Hkv*D),
    ``o_proj`` (H*D -> d_model). RoPE, when given, rotates queries and keys.
    """

    def __init__(self, config: ModelConfig, rope: RotaryEmbedding | None = None) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = (
            config.n_heads,
            config.n_kv_heads,
            config.head_dim,
        )
        d, hd, bias = config.d_model, config.head_dim, config.bias
        self.q_proj = nn.Linear(d, self.n_heads * hd, bias=bias)
        self.k_proj = nn.Linear(d, self.n_kv_heads * hd, bias=bias)
        self.v_proj = nn.Linear(d, self.n_kv_heads * hd, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * hd, d, bias=bias)
        self.rope = rope
        self.dropout = config.dropout
        self.use_fused = config.attn_impl == "sdpa"

    def forward(
        self, x: Tensor, attn_mask: Tensor | None = None, cache: LayerKVCache | None = None
    ) -> Tensor:
        """x (B, T, d_model) -> (B, T, d_model), causal.

        ``attn_mask`` (broadcastable to (B, H, T, S)) restricts attention further, e.g. to
        hide padding: boolean True = allowed, or additive floats. S = T without a cache.

        With ``cache``, x holds the tokens at positions ``cache.length .. cache.length+T-1``:
        their keys and values are appended to the cache and the queries attend over all
        S = cache.length + T of them (causal mask aligned bottom-right).
        """
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        offset = 0 if cache is None else cache.length
        if self.rope is not None:
            q, k = self.rope(q, offset), self.rope(k, offset)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, Hkv, S, D)
        y = scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
            use_fused=self.use_fused,
        )
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))
