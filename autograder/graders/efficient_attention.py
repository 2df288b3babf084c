"""Grader of the efficient_attention notebook (part3_innovations): online softmax, tiled
attention (values and gradients), the sliding-window mask and GQA head sharing.

Every exercise is a plain function of tensors and ints. Expected values come from
``reference_impl.models`` (``online_softmax``, ``tiled_attention``, ``sliding_window_mask``,
``repeat_kv``), which ``tests/test_tiled_attention.py`` checks against
``F.scaled_dot_product_attention``. Attention cases are float32 (the tolerance is float32's:
the student's loop and the reference sum in different orders).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, seeded_randn
from reference_impl.models import online_softmax, repeat_kv, sliding_window_mask, tiled_attention

# --- online softmax -------------------------------------------------------------------------


def _softmax_case(x: Tensor, block_size: int) -> Case:
    return Case([x, block_size], online_softmax(x, block_size), atol=1e-10, rtol=1e-8)


def _late_max() -> Tensor:
    """Rows whose maximum sits in the last blocks: the running sum must be rescaled."""
    x = seeded_randn(3, 3, 20) * 3
    x[:, 15:] += torch.tensor([10.0, 40.0, 200.0], dtype=torch.float64)[:, None]
    return x


def _masked_first_block() -> Tensor:
    x = seeded_randn(4, 3, 12)
    x[0, :4] = -math.inf  # the whole first block of row 0
    x[1, ::3] = -math.inf
    return x


ONLINE_SOFTMAX_CHECKS = [
    Check(
        "blocks that divide the row",
        0.5,
        lambda: _softmax_case(seeded_randn(0, 4, 12), 4),
        "per block: m_new = max(m, block max); l = l * exp(m - m_new) + sum(exp(block - "
        "m_new)); at the end softmax = exp(x - m) / l",
    ),
    Check(
        "a last partial block (length 13, blocks of 4)",
        0.5,
        lambda: _softmax_case(seeded_randn(1, 5, 13), 4),
        "loop with range(0, n, block_size): the last block is shorter, it must not be dropped",
    ),
    Check(
        "the maximum arrives in a late block",
        0.5,
        lambda: _softmax_case(_late_max(), 5),
        "when the max grows, the sum so far was taken relative to the old max: multiply "
        "it by exp(m_old - m_new) before adding the new block",
    ),
    Check(
        "large inputs (up to 1e4) stay finite",
        0.5,
        lambda: _softmax_case(seeded_randn(2, 3, 17) * 1e4, 6),
        "subtract the running max before exp: exp(1e4) overflows to inf",
    ),
    Check(
        "batch dimensions and blocks of 1",
        0.5,
        lambda: _softmax_case(seeded_randn(5, 2, 3, 9), 1),
        "work on the last dim only, keepdim=True for m and l; any block size >= 1",
    ),
    Check(
        "a first block that is entirely -inf (masked)",
        0.5,
        lambda: _softmax_case(_masked_first_block(), 4),
        "with m = -inf, exp(m - m_new) is exp(-inf - -inf) = nan: use 0 instead of -inf "
        "as the reference while the running max is still -inf",
    ),
]


# --- tiled attention ------------------------------------------------------------------------


def _attention_case(
    seed: int,
    t: int,
    s: int,
    is_causal: bool,
    tile_size: int,
    grads: bool = False,
    scale: float = 1.0,
    d: int = 8,
) -> Case:
    q, k, v = (
        seeded_randn(seed + i, 2, 2, n, d, dtype=torch.float32) for i, n in enumerate((t, s, s))
    )
    q = q * scale
    inputs = [x.clone().requires_grad_(grads) for x in (q, k, v)]
    out = tiled_attention(inputs[0], inputs[1], inputs[2], is_causal=is_causal, tile_size=tile_size)
    kwargs = {"is_causal": is_causal, "tile_size": tile_size}
    case = Case([q, k, v], out.detach(), kwargs, atol=2e-5, rtol=1e-4)
    if grads:
        g_out = seeded_randn(seed + 9, *out.shape, dtype=torch.float32)
        case.grad_args, case.grad_output = (0, 1, 2), g_out
        case.expected_grads = list(torch.autograd.grad(out, inputs, g_out))
    return case


TILED_CHECKS = [
    Check(
        "non-causal, length 16 in tiles of 4",
        0.5,
        lambda: _attention_case(0, 16, 16, False, 4),
        "per key tile: scores = q @ k_tile^T / sqrt(D); update m, l, and acc = acc * "
        "exp(m_old - m_new) + exp(scores - m_new) @ v_tile; return acc / l",
    ),
    Check(
        "non-causal, length 13 not divisible by the tile of 4",
        0.5,
        lambda: _attention_case(1, 13, 13, False, 4),
        "range(0, S, tile_size) and k[..., start:start + tile_size, :]: the last tile "
        "is shorter and must be kept",
    ),
    Check(
        "causal, length 11 in tiles of 4",
        0.5,
        lambda: _attention_case(2, 11, 11, True, 4),
        "mask each tile with its absolute key indices: key j is allowed for query i "
        "when j <= i (+ S - T)",
    ),
    Check(
        "causal with 5 queries over 12 keys (bottom-right)",
        0.5,
        lambda: _attention_case(3, 5, 12, True, 5),
        "with T < S the queries are the last T positions: query i sees keys "
        "j <= i + S - T (bottom-right, like a KV cache), not j <= i",
    ),
    Check(
        "the running output is rescaled when the max grows",
        0.5,
        lambda: _attention_case(4, 9, 21, False, 3, scale=8.0),
        "when m grows, rescale both l and the accumulated output acc by exp(m_old - m_new)",
    ),
    Check(
        "gradients, non-causal, odd lengths",
        0.5,
        lambda: _attention_case(5, 7, 10, False, 3, grads=True),
        "use differentiable torch ops only (no .item(), no in-place writes into a tensor "
        "that requires grad, no .detach())",
    ),
    Check(
        "gradients, causal, 15 positions in tiles of 4",
        0.5,
        lambda: _attention_case(6, 15, 15, True, 4, grads=True),
        "masked scores must be -inf before the max and exp (masked_fill), so that they "
        "get zero weight and zero gradient",
    ),
    Check(
        "large scores in one-column tiles",
        0.5,
        lambda: _attention_case(7, 6, 6, True, 1, scale=60.0),
        "subtract the running max before exp; tile_size may be 1",
    ),
]


# --- sliding-window mask --------------------------------------------------------------------


def _mask_case(t: int, s: int, window: int, is_causal: bool) -> Case:
    return Case([t, s, window, is_causal], sliding_window_mask(t, s, window, is_causal))


SLIDING_WINDOW_CHECKS = [
    Check(
        "causal, 8 positions, window 3",
        0.5,
        lambda: _mask_case(8, 8, 3, True),
        "query i sees the last `window` keys including itself: i - window < j <= i "
        "(a window of 3 is 3 keys, not 4)",
    ),
    Check(
        "window 1: each query sees itself only",
        0.5,
        lambda: _mask_case(6, 6, 1, True),
        "window counts keys including the query's own position: window 1 is the diagonal",
    ),
    Check(
        "a window longer than the sequence is the causal mask",
        0.5,
        lambda: _mask_case(7, 7, 50, True),
        "j > p - window is always true then: only j <= p remains",
    ),
    Check(
        "4 queries over 10 keys (bottom-right), window 3",
        0.5,
        lambda: _mask_case(4, 10, 3, True),
        "query i sits at position p = i + s - t: allowed p - window < j <= p",
    ),
    Check(
        "non-causal, 9 positions, window 3",
        0.5,
        lambda: _mask_case(9, 9, 3, False),
        "not causal: keys on both sides within distance window - 1, |p - j| < window",
    ),
    Check(
        "non-causal, 3 queries over 7 keys, window 2",
        0.5,
        lambda: _mask_case(3, 7, 2, False),
        "p = i + s - t also when not causal; return a bool tensor of shape (t, s)",
    ),
]


# --- GQA head sharing -----------------------------------------------------------------------


def _heads(b: int, hkv: int, s: int = 3, d: int = 2) -> Tensor:
    """Each head holds its own number (batch * 100 + head), plus noise in the last dim."""
    base = torch.arange(b)[:, None] * 100.0 + torch.arange(hkv)[None, :]
    return base[:, :, None, None].double() + 0.01 * seeded_randn(b * 10 + hkv, b, hkv, s, d)


def _repeat_case(x: Tensor, n_rep: int, grads: bool = False) -> Case:
    inp = x.clone().requires_grad_(grads)
    out = repeat_kv(inp, n_rep)
    case = Case([x, n_rep], out.detach(), atol=1e-12, rtol=1e-12)
    if grads:
        g_out = seeded_randn(99, *out.shape)
        case.grad_args, case.grad_output = (0,), g_out
        case.expected_grads = list(torch.autograd.grad(out, [inp], g_out))
    return case


REPEAT_KV_CHECKS = [
    Check(
        "2 key/value heads shared by 4 query heads",
        0.5,
        lambda: _repeat_case(_heads(1, 2), 2),
        "output (B, Hkv * n_rep, S, D): query head h reads key/value head h // n_rep",
    ),
    Check(
        "n_rep = 1 leaves the tensor as it is",
        0.5,
        lambda: _repeat_case(_heads(2, 3), 1),
        "with one query head per key/value head nothing is repeated",
    ),
    Check(
        "multi-query: 1 key/value head for 4 query heads",
        0.5,
        lambda: _repeat_case(_heads(2, 1), 4),
        "MQA is n_rep = H: every query head reads the single key/value head",
    ),
    Check(
        "groups are consecutive query heads (3 kv heads, n_rep 2)",
        0.5,
        lambda: _repeat_case(_heads(1, 3), 2),
        "heads 0, 0, 1, 1, 2, 2 (repeat_interleave on dim 1), not 0, 1, 2, 0, 1, 2 (repeat / tile)",
    ),
    Check(
        "batch entries stay apart (batch 3, n_rep 3)",
        0.5,
        lambda: _repeat_case(_heads(3, 2), 3),
        "repeat along the head dim (dim 1), never along the batch dim (dim 0)",
    ),
    Check(
        "gradients sum over each group of query heads",
        0.5,
        lambda: _repeat_case(_heads(2, 2), 3, grads=True),
        "use differentiable ops (repeat_interleave, or expand then reshape)",
    ),
]


ITEMS: dict[str, Item] = {
    "efficient_attention.online_softmax": Item(
        "online_softmax",
        ONLINE_SOFTMAX_CHECKS,
        Signature("x, block_size", shapes={"x": "(*L, N)", "return": "(*L, N)"}),
    ),
    "efficient_attention.tiled_attention": Item(
        "tiled_attention",
        TILED_CHECKS,
        Signature(
            "q, k, v, is_causal=False, tile_size=32",
            shapes={
                "q": "(B, H, T, d)",
                "k": "(B, H, S, d)",
                "v": "(B, H, S, d)",
                "return": "(B, H, T, d)",
            },
        ),
    ),
    "efficient_attention.sliding_window_mask": Item(
        "sliding_window_mask",
        SLIDING_WINDOW_CHECKS,
        Signature("t, s, window, is_causal=True", shapes={"return": "(t, s)"}),
    ),
    "efficient_attention.repeat_kv": Item(
        "repeat_kv",
        REPEAT_KV_CHECKS,
        Signature("x, n_rep", shapes={"x": "(B, H_kv, T, d)", "return": "(B, H_kv * n_rep, T, d)"}),
    ),
}
