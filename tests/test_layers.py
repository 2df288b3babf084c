"""Norms, feed-forward networks and positions against torch and Hugging Face peers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reference_impl.models import (
    GatedMLP,
    LayerNorm,
    ModelConfig,
    RMSNorm,
    RotaryEmbedding,
    apply_rope,
    rope_tables,
    sinusoidal_positions,
)


def _randomise(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(1.0, 0.5)


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_matches_torch(bias: bool) -> None:
    ours, theirs = LayerNorm(24, eps=1e-5, bias=bias), torch.nn.LayerNorm(24, bias=bias)
    _randomise(ours)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 5, 24, requires_grad=True) * 10 + 3
    y1, y2 = ours(x), theirs(x)
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-5)
    g1 = torch.autograd.grad(y1.pow(2).sum(), [x, *ours.parameters()])
    g2 = torch.autograd.grad(y2.pow(2).sum(), [x, *theirs.parameters()])
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_layernorm_is_the_formula_of_its_docstring() -> None:
    """(x - mean) / sqrt(var + eps) * weight + bias with the biased variance, written out."""
    norm = LayerNorm(24, eps=1e-3)
    _randomise(norm)
    x = torch.randn(3, 5, 24, dtype=torch.float64) * 10 + 3
    norm = norm.double()
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-3) * norm.weight + norm.bias
    torch.testing.assert_close(norm(x), expected)


def test_rmsnorm_matches_torch() -> None:
    ours, theirs = RMSNorm(24, eps=1e-6), torch.nn.RMSNorm(24, eps=1e-6)
    _randomise(ours)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 5, 24, requires_grad=True)
    y1, y2 = ours(x), theirs(x)
    torch.testing.assert_close(y1, y2)
    g1 = torch.autograd.grad(y1.pow(2).sum(), [x, ours.weight])
    g2 = torch.autograd.grad(y2.pow(2).sum(), [x, theirs.weight])
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


def test_rmsnorm_bf16_computes_in_float32() -> None:
    norm = RMSNorm(8)
    x = torch.randn(4, 8) * 300
    y = RMSNorm(8).bfloat16()(x.bfloat16())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), norm(x), atol=2e-2, rtol=2e-2)


def _cfg(**kw: object) -> ModelConfig:
    base = dict(vocab_size=10, context_length=32, d_model=16, n_heads=2, n_layers=1, d_ff=40)
    return ModelConfig(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["swiglu", "geglu"])
def test_gated_mlp_formula(kind: str) -> None:
    mlp = GatedMLP(_cfg(ffn_kind=kind, bias=False))
    x = torch.randn(2, 3, 16)
    act = F.silu if kind == "swiglu" else F.gelu
    expected = (
        act(x @ mlp.gate_proj.weight.T) * (x @ mlp.up_proj.weight.T)
    ) @ mlp.down_proj.weight.T
    torch.testing.assert_close(mlp(x), expected)


def test_swiglu_matches_hf_llama_mlp() -> None:
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    hf = llama.LlamaMLP(LlamaConfig(hidden_size=16, intermediate_size=40, num_attention_heads=2))
    ours = GatedMLP(_cfg(ffn_kind="swiglu", bias=False))
    ours.load_state_dict(hf.state_dict())
    x = torch.randn(2, 3, 16)
    torch.testing.assert_close(ours(x), hf(x))


def test_default_ffn_widths() -> None:
    assert _cfg(d_ff=None).d_ff == 64
    # Gated: 8/3 * d rounded up to a multiple of 64 keeps the parameter count of the 4x MLP.
    assert _cfg(d_ff=None, d_model=96, n_heads=2, ffn_kind="swiglu").d_ff == 256


def test_sinusoidal_formula() -> None:
    pe = sinusoidal_positions(50, 16)
    p, i = 37, 3
    assert pe.shape == (50, 16)
    assert math.isclose(pe[p, 2 * i].item(), math.sin(p / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert math.isclose(pe[p, 2 * i + 1].item(), math.cos(p / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert torch.equal(pe[0, 0::2], torch.zeros(8)) and torch.equal(pe[0, 1::2], torch.ones(8))


def test_rope_matches_hf_llama() -> None:
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=32)
    rotary = llama.LlamaRotaryEmbedding(cfg)
    q, k = torch.randn(2, 4, 32, 16), torch.randn(2, 2, 32, 16)
    pos = torch.arange(32)[None]
    cos, sin = rotary(q, pos)
    hf_q, hf_k = llama.apply_rotary_pos_emb(q, k, cos, sin)
    ours = RotaryEmbedding(16, 32)
    torch.testing.assert_close(ours(q), hf_q)
    torch.testing.assert_close(ours(k), hf_k)


def test_rope_dot_product_depends_only_on_distance() -> None:
    cos, sin = rope_tables(64, 32)
    q, k = torch.randn(32), torch.randn(32)

    def score(m: int, n: int) -> float:
        qm = apply_rope(q, cos[m], sin[m])
        kn = apply_rope(k, cos[n], sin[n])
        return float(qm @ kn)

    assert math.isclose(score(10, 7), score(40, 37), rel_tol=1e-4, abs_tol=1e-4)
    assert math.isclose(score(5, 5), float(q @ k), rel_tol=1e-4, abs_tol=1e-4)
    assert not math.isclose(score(10, 7), score(10, 3), rel_tol=1e-3)


def test_rope_preserves_norm_and_offset() -> None:
    rope = RotaryEmbedding(8, 20)
    x = torch.randn(1, 2, 20, 8)
    y = rope(x)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rope(x[:, :, 5:9], offset=5), y[:, :, 5:9])
