"""Tiled (flash-style) attention against torch's fused attention, and its memory.

Values and gradients equal ``F.scaled_dot_product_attention`` (given the same mask
explicitly) for causal and non-causal attention, odd lengths, lengths not divisible by the
tile, T_q != T_k, sliding windows and grouped-query heads. The memory tests show that
neither the forward nor the backward ever holds a (T, S) tensor, and that autograd keeps
only linear-size tensors for the backward.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from reference_impl.models import (
    online_softmax,
    repeat_kv,
    scaled_dot_product_attention,
    sliding_window_mask,
    tiled_attention,
)
from reference_impl.utils.memory import LiveTensorMemory


def _qkv(t: int, s: int, h: int = 2, hkv: int = 2, d: int = 8, seed: int = 0) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, h, t, d), (2, hkv, s, d), (2, hkv, s, d)]
    return [torch.randn(*shape, generator=g).requires_grad_() for shape in shapes]


def _mask(t: int, s: int, is_causal: bool, window: int | None) -> Tensor | None:
    if window is not None:
        return sliding_window_mask(t, s, window, is_causal)
    return torch.ones(t, s, dtype=torch.bool).tril(s - t) if is_causal else None


def _compare(t: int, s: int, is_causal: bool, window: int | None, tile: int, **kw: int) -> None:
    q, k, v = _qkv(t, s, **kw)
    n_rep = q.size(1) // k.size(1)
    out = tiled_attention(q, k, v, is_causal=is_causal, window=window, tile_size=tile)
    expected = F.scaled_dot_product_attention(
        q, k, v, attn_mask=_mask(t, s, is_causal, window), enable_gqa=n_rep > 1
    )
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), g)
    want = torch.autograd.grad(expected, (q, k, v), g)
    for name, a, b in zip("qkv", got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=f"gradient of {name}")


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize(
    ("t", "s", "tile"),
    [(1, 1, 4), (7, 7, 3), (33, 33, 8), (64, 64, 16), (5, 19, 4), (13, 29, 7), (17, 100, 32)],
)
def test_matches_torch_sdpa(t: int, s: int, tile: int, is_causal: bool) -> None:
    _compare(t, s, is_causal, None, tile)


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize(
    ("t", "s", "window", "tile"), [(33, 33, 1, 8), (33, 33, 5, 8), (20, 31, 4, 6), (9, 9, 50, 4)]
)
def test_sliding_window_matches_explicit_mask(
    t: int, s: int, window: int, tile: int, is_causal: bool
) -> None:
    _compare(t, s, is_causal, window, tile)


@pytest.mark.parametrize(("h", "hkv"), [(4, 2), (6, 1), (3, 3)])
def test_grouped_query_heads(h: int, hkv: int) -> None:
    _compare(11, 23, True, None, 5, h=h, hkv=hkv)


def test_tile_larger_than_sequence_and_one_column_tiles() -> None:
    _compare(6, 6, True, None, 1000)
    _compare(6, 9, False, None, 1)


def test_float64_is_exact_and_large_scores_stay_finite() -> None:
    q, k, v = (x.detach().double() * 30 for x in _qkv(21, 21))
    out = tiled_attention(q, k, v, is_causal=True, tile_size=4)
    expected = scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)


def test_fully_masked_rows_give_zeros_not_nan() -> None:
    q, k, v = _qkv(4, 6)
    out = tiled_attention(q, k, v, window=1, is_causal=True, tile_size=2)
    assert torch.isfinite(out).all()
    # a window of 1 attends to the key at the query's own position only
    torch.testing.assert_close(out, v[:, :, 2:].detach().expand_as(out), atol=1e-6, rtol=0)


def test_sliding_window_mask_by_hand() -> None:
    causal = sliding_window_mask(4, 4, 2, is_causal=True).int().tolist()
    assert causal == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    both = sliding_window_mask(3, 3, 2, is_causal=False).int().tolist()
    assert both == [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    shifted = sliding_window_mask(2, 5, 3, is_causal=True).int().tolist()  # bottom-right
    assert shifted == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]
    big = sliding_window_mask(7, 7, 100, is_causal=True)
    assert torch.equal(big, torch.ones(7, 7, dtype=torch.bool).tril())
    with pytest.raises(ValueError):
        sliding_window_mask(3, 3, 0)


@pytest.mark.parametrize("block", [1, 3, 8, 100])
def test_online_softmax(block: int) -> None:
    x = torch.randn(4, 37, dtype=torch.float64) * 50
    x[0, 30:] = 900.0  # the max arrives late: the running sum must be rescaled
    x[1] = -math.inf
    x[2, :5] = -math.inf
    got = online_softmax(x, block)
    expected = torch.softmax(x, -1).nan_to_num(0.0)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


def test_repeat_kv_gives_groups_of_consecutive_query_heads() -> None:
    x = torch.arange(3.0).view(1, 3, 1, 1)
    assert repeat_kv(x, 2).flatten().tolist() == [0, 0, 1, 1, 2, 2]


# --- memory ------------------------------------------------------------------------------


def _peaks(fn: str, t: int, tile: int = 64) -> tuple[int, int, int]:
    """(forward peak, forward + backward peak, largest storage) in bytes, one head of 64."""
    q, k, v = (torch.randn(1, 1, t, 64).requires_grad_() for _ in range(3))
    with LiveTensorMemory() as mem:
        if fn == "naive":
            out = scaled_dot_product_attention(q, k, v, is_causal=True)  # the naive one
        else:
            out = tiled_attention(q, k, v, is_causal=True, tile_size=tile)
        forward = mem.peak
        out.backward(torch.ones_like(out))
    return forward, mem.peak, mem.largest


def test_tiled_never_holds_a_t_by_t_tensor() -> None:
    t, tile = 1024, 64
    forward, total, largest = _peaks("tiled", t, tile)
    square = t * t * 4
    assert largest <= t * tile * 4, largest  # one (T, tile) score tile at most
    assert forward <= total < square, (total, square)  # less than one (T, T) float32 matrix
    n_forward, n_total, n_largest = _peaks("naive", t)
    assert n_largest >= square and n_forward > 2 * square  # the naive one does
    assert total < n_total / 3


def test_memory_grows_linearly() -> None:
    small, large = _peaks("tiled", 512)[1], _peaks("tiled", 2048)[1]
    n_small, n_large = _peaks("naive", 512)[1], _peaks("naive", 2048)[1]
    assert large / small < 5  # 4x the length: about 4x the memory
    assert n_large / n_small > 12  # about 16x


def test_saved_for_backward_is_linear() -> None:
    """Autograd keeps only q, k, v, the output and the logsumexp (no tile of probabilities)."""
    t = 300
    q, k, v = (torch.randn(1, 1, t, 16).requires_grad_() for _ in range(3))
    saved: list[int] = []

    def pack(x: Tensor) -> Tensor:
        saved.append(x.numel())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = tiled_attention(q, k, v, is_causal=True, tile_size=32)
    out.sum().backward()
    assert saved and max(saved) <= t * 16 and sum(saved) <= 5 * t * 16, saved
    assert q.grad is not None and k.grad is not None and v.grad is not None
