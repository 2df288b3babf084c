"""Whole-model parity with Hugging Face GPT-2 and Llama (random weights, no download)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from reference_impl.models import UnsupportedHFModel, from_hf_gpt2, from_hf_llama
from reference_impl.models import attention as attention_mod
from reference_impl.models import positions as positions_mod

transformers = pytest.importorskip("transformers")
VOCAB = 97


def _spread_weights(model: torch.nn.Module) -> None:
    """Random init gives near-uniform attention and unit norm gains, under which a missing
    scale or a swapped norm hardly moves the logits; spread all weights so they would."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def make_gpt2(**kw: Any) -> torch.nn.Module:
    cfg = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=48,
        n_layer=3,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
        **kw,
    )
    model = transformers.GPT2LMHeadModel(cfg).eval()
    _spread_weights(model)
    return model


def make_llama(**kw: Any) -> torch.nn.Module:
    args = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**(args | kw))).eval()
    _spread_weights(model)
    return model


def max_logit_error(hf: torch.nn.Module, convert: Callable[[Any], torch.nn.Module]) -> float:
    ours = convert(hf)
    assert not ours.training
    idx = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = hf(idx).logits
        got = ours(idx)
    assert got.shape == expected.shape == (2, 24, VOCAB)
    assert expected.abs().max() > 1.0  # logits spread enough for the comparison to mean much
    return (got - expected).abs().max().item()


@pytest.mark.parametrize("kw", [{}, {"n_inner": 80}, {"activation_function": "gelu"}])
def test_gpt2_logits_match(kw: dict[str, Any]) -> None:
    assert max_logit_error(make_gpt2(**kw), from_hf_gpt2) < 1e-5


def test_gpt2_untied_head() -> None:
    hf = make_gpt2(tie_word_embeddings=False)
    assert max_logit_error(hf, from_hf_gpt2) < 1e-5
    assert from_hf_gpt2(hf).lm_head.weight is not from_hf_gpt2(hf).tok_emb.weight


@pytest.mark.parametrize(
    "kw",
    [
        {},  # MHA
        {"num_key_value_heads": 2},  # GQA
        {"num_key_value_heads": 1},  # MQA
        {"head_dim": 32, "num_key_value_heads": 2},  # heads wider than d_model / n_heads
        {"tie_word_embeddings": True},
        {"attention_bias": True, "mlp_bias": True},
        {"rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}},
    ],
    ids=["mha", "gqa", "mqa", "head_dim", "tied", "bias", "theta"],
)
def test_llama_logits_match(kw: dict[str, Any]) -> None:
    assert max_logit_error(make_llama(**kw), from_hf_llama) < 1e-5


def test_llama_gradients_match() -> None:
    hf = make_llama(num_key_value_heads=2)
    ours = from_hf_llama(hf)
    idx = torch.randint(0, VOCAB, (2, 16))
    hf(idx).logits.logsumexp(-1).sum().backward()
    ours(idx).logsumexp(-1).sum().backward()
    g_hf = hf.model.layers[0].self_attn.k_proj.weight.grad
    g_ours = ours.blocks[0].attn.k_proj.weight.grad
    torch.testing.assert_close(g_ours, g_hf, atol=1e-4, rtol=1e-4)


def test_unsupported_options_are_clear_errors() -> None:
    with pytest.raises(UnsupportedHFModel, match="scale_attn_by_inverse_layer_idx"):
        from_hf_gpt2(make_gpt2(scale_attn_by_inverse_layer_idx=True))
    linear = {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}
    with pytest.raises(UnsupportedHFModel, match="linear"):
        from_hf_llama(make_llama(rope_parameters=linear))


# The parity tests must be able to fail: plant plausible bugs and see them caught.


def test_parity_catches_missing_attention_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    original = attention_mod.scaled_dot_product_attention
    monkeypatch.setattr(
        attention_mod,
        "scaled_dot_product_attention",
        lambda *a, **k: original(*a, **(k | {"scale": 1.0})),
    )
    assert max_logit_error(make_gpt2(), from_hf_gpt2) > 1e-3
    assert max_logit_error(make_llama(), from_hf_llama) > 1e-3


def test_parity_catches_rope_rotation_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    original = positions_mod.rotate_half
    monkeypatch.setattr(positions_mod, "rotate_half", lambda x: -original(x))
    assert max_logit_error(make_llama(), from_hf_llama) > 1e-3


def test_parity_catches_swapped_norms() -> None:
    hf = make_llama()
    ours = from_hf_llama(hf)
    block = ours.blocks[1]
    block.attn_norm, block.ffn_norm = block.ffn_norm, block.attn_norm
    assert max_logit_error(hf, lambda _: ours) > 1e-3
