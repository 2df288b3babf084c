"""Memory-efficient (tiled, flash-style) attention: online softmax, sliding windows, GQA.

Notation as in :mod:`reference_impl.models.attention`: q (..., H, T, D), k and v
(..., Hkv, S, D). Masks are aligned bottom-right: query i sits at absolute position
``p_i = i + S - T`` (the last T of S positions, as when decoding with a cache).

The tiled forward loops over key tiles of ``tile_size`` columns and keeps, per query row,
a running maximum ``m``, a running normaliser ``l`` and an unnormalised output ``acc``;
each tile rescales them by ``exp(m_old - m_new)``. No (T, S) matrix is ever built: the
largest temporary is (T, tile_size). :class:`TiledAttentionFunction` saves only q, k, v,
the output and the per-row logsumexp, and its backward recomputes each tile's
probabilities from the logsumexp, so training memory stays linear in T as well.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from reference_impl.models.attention import repeat_kv


def online_softmax(x: Tensor, block_size: int) -> Tensor:
    """Softmax over the last dim, read in blocks of ``block_size`` columns (one pass for
    the running max and sum, rescaling the sum whenever the max grows, then one pass to
    normalise). Equal to ``torch.softmax(x, -1)``; fully ``-inf`` rows give zeros."""
    n = x.size(-1)
    m = torch.full((*x.shape[:-1], 1), -math.inf, dtype=x.dtype, device=x.device)
    l = torch.zeros_like(m)  # noqa: E741
    for start in range(0, n, block_size):
        block = x[..., start : start + block_size]
        m_new = torch.maximum(m, block.amax(-1, keepdim=True))
        safe = torch.where(m_new.isneginf(), 0.0, m_new)
        l = l * torch.exp(m - safe) + torch.exp(block - safe).sum(-1, keepdim=True)  # noqa: E741
        m = m_new
    safe = torch.where(m.isneginf(), 0.0, m)
    return torch.where(l > 0, torch.exp(x - safe) / l.clamp_min(1e-300), 0.0)


def sliding_window_mask(
    t: int, s: int, window: int, is_causal: bool = True, device: torch.device | None = None
) -> Tensor:
    """Boolean (t, s) mask, True where query i may attend to key j.

    Query i sits at position ``p = i + s - t``. Causal: the last ``window`` keys up to and
    including p (``p - window < j <= p``). Not causal: keys within distance ``window - 1``
    on either side (``|p - j| < window``). ``window >= 1``.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    p = torch.arange(t, device=device)[:, None] + (s - t)
    j = torch.arange(s, device=device)[None, :]
    allowed = j > p - window
    return allowed & (j <= p) if is_causal else allowed & (j < p + window)


def _tile_mask(
    t: int, s: int, start: int, stop: int, is_causal: bool, window: int | None, device: Any
) -> Tensor | None:
    """The (t, stop - start) slice of the attention mask for keys start..stop-1 (None: all)."""
    if not is_causal and window is None:
        return None
    p = torch.arange(t, device=device)[:, None] + (s - t)
    j = torch.arange(start, stop, device=device)[None, :]
    allowed = torch.ones(t, stop - start, dtype=torch.bool, device=device)
    if is_causal:
        allowed = allowed & (j <= p)
    if window is not None:
        allowed = allowed & (j > p - window)
        if not is_causal:
            allowed = allowed & (j < p + window)
    return allowed


def _forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    is_causal: bool,
    window: int | None,
    tile_size: int,
    scale: float,
) -> tuple[Tensor, Tensor]:
    """Output (..., T, D) and per-row logsumexp (..., T) of attention, key tile by key tile."""
    t, s = q.size(-2), k.size(-2)
    m = torch.full((*q.shape[:-1], 1), -math.inf, dtype=q.dtype, device=q.device)
    l = torch.zeros_like(m)  # noqa: E741
    acc = torch.zeros((*q.shape[:-1], v.size(-1)), dtype=q.dtype, device=q.device)
    for start in range(0, s, tile_size):
        stop = min(start + tile_size, s)
        scores = (q @ k[..., start:stop, :].transpose(-2, -1)) * scale  # (..., T, tile)
        mask = _tile_mask(t, s, start, stop, is_causal, window, q.device)
        if mask is not None:
            scores = scores.masked_fill(~mask, -math.inf)
        m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
        safe = torch.where(m_new.isneginf(), 0.0, m_new)
        p = torch.exp(scores - safe)
        alpha = torch.exp(m - safe)
        l = alpha * l + p.sum(-1, keepdim=True)  # noqa: E741
        acc = alpha * acc + p @ v[..., start:stop, :]
        m = m_new
    out = torch.where(l > 0, acc / l.clamp_min(1e-300), 0.0)
    lse = (m + torch.log(l)).squeeze(-1)  # -inf for rows with every key masked
    return out, lse


class TiledAttentionFunction(torch.autograd.Function):
    """Tiled attention whose backward recomputes each tile: saves q, k, v, out, logsumexp."""

    @staticmethod
    def forward(
        ctx: Any,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        is_causal: bool,
        window: int | None,
        tile_size: int,
        scale: float,
    ) -> Tensor:
        out, lse = _forward(q, k, v, is_causal, window, tile_size, scale)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.options = (is_causal, window, tile_size, scale)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, out, lse = ctx.saved_tensors
        is_causal, window, tile_size, scale = ctx.options
        t, s = q.size(-2), k.size(-2)
        lse = torch.where(lse.isneginf(), 0.0, lse).unsqueeze(-1)  # masked rows: p = 0 below
        delta = (grad_out * out).sum(-1, keepdim=True)  # rowsum(dO * O) = sum_j P_ij dP_ij
        dq = torch.zeros_like(q)
        dk = torch.zeros_like(k)
        dv = torch.zeros_like(v)
        for start in range(0, s, tile_size):
            stop = min(start + tile_size, s)
            kj, vj = k[..., start:stop, :], v[..., start:stop, :]
            scores = (q @ kj.transpose(-2, -1)) * scale
            mask = _tile_mask(t, s, start, stop, is_causal, window, q.device)
            if mask is not None:
                scores = scores.masked_fill(~mask, -math.inf)
            p = torch.exp(scores - lse)  # the tile's probabilities, recomputed
            dv[..., start:stop, :] = p.transpose(-2, -1) @ grad_out
            dp = grad_out @ vj.transpose(-2, -1)
            ds = p * (dp - delta)  # softmax backward
            dq += (ds @ kj) * scale
            dk[..., start:stop, :] = (ds.transpose(-2, -1) @ q) * scale
        return dq, dk, dv, None, None, None, None


def tiled_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    is_causal: bool = False,
    window: int | None = None,
    tile_size: int = 128,
    scale: float | None = None,
) -> Tensor:
    """Attention of q (..., H, T, D) over k, v (..., Hkv, S, D) -> (..., H, T, D), tiled.

    Equal to ``F.scaled_dot_product_attention`` (with a bottom-right causal mask and, when
    ``window`` is given, :func:`sliding_window_mask`), in memory linear in T and S forward
    and backward. Hkv must divide H (grouped-query attention); rows with every key masked
    give zeros.
    """
    if q.dim() < 3 or q.size(-3) % k.size(-3):
        raise ValueError(
            f"query heads must be a multiple of key/value heads: q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}"
        )
    if tile_size < 1:
        raise ValueError(f"tile_size must be positive, got {tile_size}")
    n_rep = q.size(-3) // k.size(-3)
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    out: Tensor = TiledAttentionFunction.apply(q, k, v, is_causal, window, tile_size, scale)
    return out
