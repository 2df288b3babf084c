"""Scaled dot-product attention and multi-head attention against torch's fused SDPA."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reference_impl.models import (
    ModelConfig,
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
)


def qkv(b: int = 2, h: int = 4, hkv: int = 4, t: int = 7, s: int = 7, d: int = 16):
    q = torch.randn(b, h, t, d, dtype=torch.float64, requires_grad=True)
    k = torch.randn(b, hkv, s, d, dtype=torch.float64, requires_grad=True)
    v = torch.randn(b, hkv, s, d, dtype=torch.float64, requires_grad=True)
    return q, k, v


def assert_same_values_and_grads(ours_fn, theirs_fn, inputs) -> None:
    ours = ours_fn(*inputs)
    grads_ours = torch.autograd.grad(ours, inputs, torch.ones_like(ours))
    theirs = theirs_fn(*inputs)
    grads_theirs = torch.autograd.grad(theirs, inputs, torch.ones_like(theirs))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    for name, g1, g2 in zip("qkv", grads_ours, grads_theirs, strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-9, msg=lambda m, n=name: f"d{n}: {m}")


@pytest.mark.parametrize("use_fused", [False, True])
@pytest.mark.parametrize(
    "case", ["plain", "causal", "bool_mask", "float_mask", "causal_and_mask", "cross_causal"]
)
def test_matches_torch_sdpa(case: str, use_fused: bool) -> None:
    t, s = (3, 7) if case == "cross_causal" else (7, 7)
    inputs = qkv(t=t, s=s)
    mask, causal = None, case in ("causal", "causal_and_mask", "cross_causal")
    if case in ("bool_mask", "causal_and_mask"):
        mask = torch.rand(2, 1, t, s) > 0.3
        mask[..., 0] = True  # keep one key per row: fully masked rows are tested separately
    if case == "float_mask":
        mask = torch.randn(1, 4, t, s, dtype=torch.float64)

    def ours(q, k, v):
        return scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, use_fused=use_fused
        )

    def theirs(q, k, v):
        m = mask
        if causal:  # torch aligns is_causal top-left; build the bottom-right mask explicitly
            c = torch.ones(t, s, dtype=torch.bool).tril(s - t)
            m = c if m is None else m & c
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m)

    assert_same_values_and_grads(ours, theirs, inputs)


@pytest.mark.parametrize("hkv", [1, 2])  # MQA and GQA
@pytest.mark.parametrize("use_fused", [False, True])
def test_grouped_query_broadcast(hkv: int, use_fused: bool) -> None:
    inputs = qkv(h=4, hkv=hkv)
    assert_same_values_and_grads(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True, use_fused=use_fused),
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
        inputs,
    )


def test_scale_argument_and_default() -> None:
    q, k, v = qkv()
    for scale in (None, 0.5):
        torch.testing.assert_close(
            scaled_dot_product_attention(q, k, v, scale=scale),
            F.scaled_dot_product_attention(q, k, v, scale=scale),
        )


def test_fully_masked_row_gives_zeros_and_finite_grads() -> None:
    q, k, v = qkv(t=3, s=3)
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1] = False
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(out[:, :, 1], torch.zeros_like(out[:, :, 1]))
    out.sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in (q, k, v))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_large_logits_stay_finite() -> None:
    q, k, v = (x.detach() * 1e4 for x in qkv())
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_dropout_is_unbiased_and_off_at_zero() -> None:
    q, k, v = (x.detach() for x in qkv(b=1, h=1, hkv=1, t=4, s=4))
    clean = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, dropout_p=0.0), clean)
    dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert not torch.allclose(dropped, clean)
    mean = torch.stack([scaled_dot_product_attention(q, k, v, dropout_p=0.5) for _ in range(4000)])
    torch.testing.assert_close(mean.mean(0), clean, atol=0.1, rtol=0.05)


def test_heads_not_divisible_is_a_clear_error() -> None:
    q, k, v = qkv(h=3, hkv=2)
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        scaled_dot_product_attention(q, k, v)


def test_causal_mask_shapes() -> None:
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool())
    # The last 2 queries of a 4-long sequence see everything up to themselves.
    assert torch.equal(causal_mask(2, 4), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).bool())


def _mha(n_kv_heads: int | None, attn_impl: str = "manual") -> MultiHeadAttention:
    cfg = ModelConfig(
        vocab_size=10,
        context_length=16,
        d_model=32,
        n_heads=4,
        n_layers=1,
        n_kv_heads=n_kv_heads,
        attn_impl=attn_impl,  # type: ignore[arg-type]
    )
    return MultiHeadAttention(cfg)


@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
def test_mha_matches_torch_multihead_attention(n_kv_heads: int | None) -> None:
    """With equal K/V heads, MHA equals nn.MultiheadAttention given the same weights;
    with fewer, it equals a hand-written GQA built on F.scaled_dot_product_attention."""
    mha = _mha(n_kv_heads).double()
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    mask = torch.ones(9, 9, dtype=torch.bool).tril()
    q = mha.q_proj(x).view(2, 9, 4, 8).transpose(1, 2)
    k = mha.k_proj(x).view(2, 9, mha.n_kv_heads, 8).transpose(1, 2)
    v = mha.v_proj(x).view(2, 9, mha.n_kv_heads, 8).transpose(1, 2)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    expected = mha.o_proj(y.transpose(1, 2).reshape(2, 9, 32))
    torch.testing.assert_close(mha(x), expected)
    if n_kv_heads is None:
        ref = torch.nn.MultiheadAttention(32, 4, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            ref.in_proj_weight.copy_(
                torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight])
            )
            ref.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
            ref.out_proj.weight.copy_(mha.o_proj.weight)
            ref.out_proj.bias.copy_(mha.o_proj.bias)
        out, _ = ref(x, x, x, attn_mask=~mask, need_weights=False)
        torch.testing.assert_close(mha(x), out)


@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
def test_mha_fused_and_manual_agree(n_kv_heads: int | None) -> None:
    manual, fused = _mha(n_kv_heads), _mha(n_kv_heads, "sdpa")
    fused.load_state_dict(manual.state_dict())
    x = torch.randn(3, 11, 32)
    torch.testing.assert_close(manual(x), fused(x), atol=1e-6, rtol=1e-5)


def test_kv_heads_shrink_projection() -> None:
    n = {h: sum(p.numel() for p in _mha(h).parameters()) for h in (4, 2, 1)}
    assert n[4] > n[2] > n[1]
    assert _mha(1).k_proj.weight.shape == (8, 32)


def test_mha_padding_mask_hides_keys() -> None:
    mha = _mha(None).eval()
    x = torch.randn(1, 6, 32)
    pad = torch.tensor([True, True, True, True, False, False])  # last two keys are padding
    y1 = mha(x, attn_mask=pad)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(1, 2, 32)
    y2 = mha(x2, attn_mask=pad)
    torch.testing.assert_close(y1[:, :4], y2[:, :4])


def test_unscaled_attention_differs() -> None:
    """Sanity of the tests above: dropping 1/sqrt(d) is caught by the SDPA comparison."""
    q, k, v = qkv()
    wrong = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert not torch.allclose(wrong, F.scaled_dot_product_attention(q, k, v))
    assert math.isclose(1 / math.sqrt(q.size(-1)), 0.25)
