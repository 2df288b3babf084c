"""Scaled dot-product attention from scratch, and multi-head attention with GQA/MQA.

Notation: B batch, H query heads, Hkv key/value heads, T query length, S key length,
D head width. ``softmax(q k^T / sqrt(D) + mask) v`` is computed per head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference_impl.models.cache import LayerKVCache, SlidingKVCache
from reference_impl.models.config import ModelConfig
from reference_impl.models.norms import RMSNorm
from reference_impl.models.positions import RotaryEmbedding, apply_rope


def causal_mask(t: int, s: int | None = None, device: torch.device | None = None) -> Tensor:
    """Boolean (t, s) mask, True where query i may attend to key j (j <= i + s - t).

    With ``s > t`` the queries are the last ``t`` positions of an ``s``-long sequence
    (as when decoding with a cache), so query i sits at absolute position ``i + s - t``.
    """
    s = t if s is None else s
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(diagonal=s - t)


def window_mask(
    q_pos: Tensor, k_pos: Tensor, window: int | None = None, blocks: Tensor | None = None
) -> Tensor:
    """Boolean (..., T, S) mask of queries at positions ``q_pos`` (T,) over keys at
    ``k_pos`` (S,): True where key position j may be seen from query position i.

    Causal (``0 <= j <= i``), or, with ``blocks`` (B, T) of image-block ids (-1: text;
    queries and keys are then the same T tokens), also ``j`` in the same block as ``i``;
    with a ``window`` W, in either case only ``j > i - W`` (W keys including itself, as in
    transformers' Gemma 2 and 3).
    """
    i, j = q_pos[:, None], k_pos[None, :]
    allowed = (j <= i) & (j >= 0)
    if blocks is not None:
        same = (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)
        allowed = allowed | same  # (B, T, T)
    if window is not None:
        allowed = allowed & (j > i - window)
    return allowed


def soft_cap(x: Tensor, cap: float | None) -> Tensor:
    """``cap * tanh(x / cap)``: x squashed smoothly into (-cap, cap); x itself for None."""
    return x if cap is None else cap * torch.tanh(x / cap)


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
    softcap: float | None = None,
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
    ``use_fused=True`` calls torch's fused kernel with the same arguments. ``softcap``
    squashes the scaled scores with :func:`soft_cap` before the mask (Gemma 2); torch's
    kernel cannot, so it is computed here then.
    """
    if q.dim() < 3 or q.size(-3) % k.size(-3):
        raise ValueError(
            f"query heads must be a multiple of key/value heads: q {tuple(q.shape)}, "
            f"k {tuple(k.shape)} (expected (..., H, T, D) and (..., Hkv, S, D))"
        )
    n_rep = q.size(-3) // k.size(-3)
    if use_fused and softcap is None:
        t, s = q.size(-2), k.size(-2)
        is_causal = is_causal and t > 1  # one query (decoding) is the last: it sees every key
        if is_causal and (t != s or attn_mask is not None):
            # torch takes is_causal or a mask, not both; and aligns top-left
            causal = causal_mask(t, s, q.device)
            if attn_mask is None:
                attn_mask = causal
            elif attn_mask.dtype == torch.bool:
                attn_mask = attn_mask & causal
            else:
                attn_mask = torch.where(causal, attn_mask, -math.inf)
            is_causal = False
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=n_rep > 1
        )
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = soft_cap((q @ k.transpose(-2, -1)) * scale, softcap)  # (..., H, T, S)
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
    ``o_proj`` (H*D -> d_model); with ``config.qk_norm``, ``q_norm`` and ``k_norm`` (RMSNorm
    over D). RoPE, when given, rotates queries and keys. ``window`` (the config's
    ``sliding_window`` for a local layer) limits each query to its last W keys.
    """

    def __init__(
        self,
        config: ModelConfig,
        rope: RotaryEmbedding | None = None,
        window: int | None = None,
    ) -> None:
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
        self.q_norm = RMSNorm(hd, config.norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(hd, config.norm_eps) if config.qk_norm else None
        self.rope = rope
        self.window = window
        self.dropout = config.dropout
        self.use_fused = config.attn_impl == "sdpa"
        self.softcap = config.attn_softcap
        scalar = config.query_pre_attn_scalar
        self.scale = None if scalar is None else scalar**-0.5

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cache: LayerKVCache | SlidingKVCache | None = None,
        blocks: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, d_model) -> (B, T, d_model), causal.

        ``attn_mask`` (broadcastable to (B, H, T, S)) restricts attention further, e.g. to
        hide padding: boolean True = allowed, or additive floats. S = T without a cache.

        With ``cache``, x holds the tokens at positions ``cache.length .. cache.length+T-1``:
        their keys and values are appended to the cache and the queries attend over all
        S = cache.length + T of them (causal mask aligned bottom-right), or over those in
        the window. A tensor ``cache.length`` (a static cache, see :class:`LayerKVCache`)
        gives S = max_len keys, masked by their positions.

        ``blocks`` (B, T) gives image-block ids (-1 for text; see :func:`window_mask`):
        the tokens of one block see each other both ways. Only with no tokens cached.
        """
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        offset = 0 if cache is None else cache.length
        static = isinstance(offset, Tensor)  # a 0-d tensor: a compiled step's fixed shapes
        if blocks is not None and offset:
            raise ValueError("image blocks must come with the first tokens (an empty cache)")
        q_pos = None  # (T,) the queries' positions, where a mask or a static cache needs them
        if self.window is not None or blocks is not None or static:
            q_pos = offset + torch.arange(t, device=x.device)
        if self.rope is not None:  # queries and keys rotated in one call: fewer small ops
            qk = torch.cat((q, k), dim=1)  # (B, H + Hkv, T, D)
            if not static:
                qk = self.rope(qk, offset)
            else:  # the tables' rows gathered at tensor positions (a slice would need ints)
                cos, sin = self.rope.cos[q_pos].to(x.dtype), self.rope.sin[q_pos].to(x.dtype)
                qk = apply_rope(qk, cos, sin)
            q, k = qk.split((self.n_heads, self.n_kv_heads), dim=1)
        k_pos = None
        if cache is not None:
            k, v, k_pos = cache.update(k, v)  # (B, Hkv, S, D), (S,)
        mask = attn_mask
        if q_pos is not None:
            allowed = window_mask(q_pos, q_pos if k_pos is None else k_pos, self.window, blocks)
            allowed = allowed[:, None] if allowed.dim() == 3 else allowed  # (B, 1, T, S)
            if mask is None:
                mask = allowed
            elif mask.dtype == torch.bool:
                mask = mask & allowed
            else:
                mask = mask.masked_fill(~allowed, -math.inf)
        y = scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.window is None and blocks is None and not static,
            scale=self.scale,
            use_fused=self.use_fused,
            softcap=self.softcap,
        )
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))
