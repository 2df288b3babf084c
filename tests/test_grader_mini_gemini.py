"""The grader of the mini-gemini model notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a
message that names it, and the grader's expected values agree with independent peers
(Hugging Face's Gemma 2 and Gemma 3 modules, torch's own RMSNorm, a loop over the keys).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer. The attention, block and model answers build on the
earlier exercises, so their cells are prefixed with the source's solutions of those
(``BUILDS_ON``); the source's own attention, block and model call the other exercises
(``DEPENDS_ON_OTHERS``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Case, Check
from autograder.graders.mini_gemini import (
    ATTN_CHECKS,
    BLOCK_CHECKS,
    MASK_CHECKS,
    MODEL_CHECKS,
    NORM_CHECKS,
    SOFTCAP_CHECKS,
)

from .conftest import REPO
from .fixtures.mini_gemini_mistakes import (
    ATTN_MISTAKES,
    BLOCK_MISTAKES,
    MASK_MISTAKES,
    MODEL_MISTAKES,
    NORM_MISTAKES,
    SOFTCAP_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part5_integration/mini_gemini.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "local_global_mask": MASK_MISTAKES,
        "soft_cap": SOFTCAP_MISTAKES,
        "gemma_rms_norm": NORM_MISTAKES,
        "gemma_attention": ATTN_MISTAKES,
        "gemma_block": BLOCK_MISTAKES,
        "mini_gemini": MODEL_MISTAKES,
    },
)
BASICS = ["local_global_mask", "soft_cap", "gemma_rms_norm"]
BUILDS_ON = {
    "gemma_attention": BASICS,
    "gemma_block": [*BASICS, "gemma_attention"],
    "mini_gemini": [*BASICS, "gemma_attention", "gemma_block"],
}
DEPENDS_ON_OTHERS = ("gemma_attention", "gemma_block", "mini_gemini")


# --- the grader's expected values against independent peers ---------------------------------


@pytest.mark.parametrize("check", MASK_CHECKS, ids=lambda c: c.name)
def test_mask_matches_a_loop(check: Check) -> None:
    case = check.build()
    (t,), window = case.args, case.kwargs.get("window")
    loop = torch.zeros(t, t, dtype=torch.bool)
    for i in range(t):
        for j in range(t):
            loop[i, j] = j <= i and (window is None or i - j < window)
    assert torch.equal(case.expected, loop)


@pytest.mark.parametrize("check", SOFTCAP_CHECKS, ids=lambda c: c.name)
def test_soft_cap_matches_the_formula(check: Check) -> None:
    case = check.build()
    x, cap = case.args
    peer = x if cap is None else cap * torch.tanh(x / cap)
    assert torch.allclose(case.expected, peer, atol=1e-12)
    if cap is not None:
        assert case.expected.abs().max() <= cap


@pytest.mark.parametrize("check", NORM_CHECKS, ids=lambda c: c.name)
def test_norm_matches_torch_rms_norm_with_one_plus_w(check: Check) -> None:
    """torch's F.rms_norm in float32 with the gain 1 + w, cast back to the input's dtype."""
    case = check.build()
    assert case.module is not None
    (x,) = case.args
    w, eps = case.module.state_dict["weight"], case.module.kwargs.get("eps", 1e-6)
    peer = F.rms_norm(x.float(), (x.shape[-1],), 1.0 + w, eps=eps).to(x.dtype)
    atol = 1e-5 if x.dtype == torch.float32 else 1e-3
    assert torch.allclose(case.expected, peer, atol=atol, rtol=1e-3)


def _attn_kwargs(case: Case) -> dict[str, Any]:
    assert case.module is not None
    d, h, kv, hd = case.module.args
    return dict(hidden_size=d, num_attention_heads=h, num_key_value_heads=kv, head_dim=hd)


def _hf_attention(case: Case) -> torch.Tensor:
    """transformers' Gemma 2 attention (or Gemma 3's, with QK-norm) loaded with the case's
    weights, on the case's input."""
    transformers = pytest.importorskip("transformers")
    assert case.module is not None
    kw = case.module.kwargs
    window, theta = kw["window"], kw["rope_theta"]
    common = _attn_kwargs(case) | dict(
        vocab_size=8,
        intermediate_size=8,
        num_hidden_layers=1,
        query_pre_attn_scalar=kw["query_pre_attn_scalar"] or case.module.args[3],
        sliding_window=window or 4096,
        layer_types=["sliding_attention" if window else "full_attention"],
        attn_implementation="eager",
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
    )
    if kw["qk_norm"]:
        from transformers.models.gemma3 import modeling_gemma3 as m

        config = transformers.Gemma3TextConfig(
            **common, rope_theta=theta, rope_local_base_freq=theta, final_logit_softcapping=None
        )
        attn, rope_cls, mask_kind = m.Gemma3Attention(config, 0), m.Gemma3RotaryEmbedding, True
    else:
        from transformers.models.gemma2 import modeling_gemma2 as m

        config = transformers.Gemma2Config(
            **common, rope_theta=theta, attn_logit_softcapping=kw["softcap"]
        )
        attn, rope_cls, mask_kind = m.Gemma2Attention(config, 0), m.Gemma2RotaryEmbedding, False
    attn.load_state_dict(case.module.state_dict)
    (x,) = case.args
    t = x.shape[1]
    pos = torch.arange(t)[None]
    rope = rope_cls(config)
    cos_sin = rope(x, pos, "sliding_attention") if mask_kind else rope(x, pos)
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    allowed = (j <= i) & (True if window is None else j > i - window)
    mask = torch.zeros(t, t).masked_fill(~allowed, torch.finfo(torch.float32).min)
    with torch.no_grad():
        out, _ = attn(x, cos_sin, mask[None, None])
    return out


@pytest.mark.parametrize("check", ATTN_CHECKS, ids=lambda c: c.name)
def test_attention_matches_transformers(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    if case.module.kwargs["qk_norm"] and case.module.kwargs["softcap"]:
        pytest.skip("Gemma 3 never applies the attention soft-cap")
    assert torch.allclose(case.expected, _hf_attention(case), atol=1e-5, rtol=1e-4)


def _hf_model(case: Case) -> Any:
    """A transformers Gemma 2 (or, with QK-norm, Gemma 3) causal LM with the case's weights."""
    transformers = pytest.importorskip("transformers")
    assert case.module is not None
    vocab, d, n_layers, h, kv, hd, d_ff = case.module.args
    kw = case.module.kwargs
    pattern = kw["attn_pattern"]
    kinds = [
        "sliding_attention" if pattern[i % len(pattern)] == "L" else "full_attention"
        for i in range(n_layers)
    ]
    common = dict(
        vocab_size=vocab,
        hidden_size=d,
        intermediate_size=d_ff,
        num_hidden_layers=n_layers,
        num_attention_heads=h,
        num_key_value_heads=kv,
        head_dim=hd,
        query_pre_attn_scalar=kw["query_pre_attn_scalar"] or hd,
        sliding_window=kw["window"] or 4096,
        layer_types=kinds,
        final_logit_softcapping=kw["final_softcap"],
        attn_implementation="eager",
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
    )
    if kw["qk_norm"]:
        config = transformers.Gemma3TextConfig(
            **common,
            rope_theta=kw["rope_theta"],
            rope_local_base_freq=kw["rope_local_theta"] or kw["rope_theta"],
        )
        model = transformers.Gemma3ForCausalLM(config)
    else:
        assert kw["rope_local_theta"] in (None, kw["rope_theta"])
        config = transformers.Gemma2Config(
            **common, rope_theta=kw["rope_theta"], attn_logit_softcapping=kw["attn_softcap"]
        )
        model = transformers.Gemma2ForCausalLM(config)
    state = {f"model.{k}": v for k, v in case.module.state_dict.items()}
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state)
    return model.eval()


@pytest.mark.parametrize("check", MODEL_CHECKS, ids=lambda c: c.name)
def test_model_matches_transformers(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    if case.module.kwargs["qk_norm"] and case.module.kwargs["attn_softcap"]:
        pytest.skip("Gemma 3 never applies the attention soft-cap")
    (idx,) = case.args
    with torch.no_grad():
        peer = _hf_model(case)(idx).logits
    assert torch.allclose(case.expected, peer, atol=1e-4, rtol=1e-4)


def _plain(check: Check) -> bool:
    """A block check of a global layer without extras (no window, soft-cap, QK-norm or
    scalar): the cases the formula below covers; transformers covers the others."""
    module = check.build().module
    assert module is not None
    kw = module.kwargs
    return not (kw["window"] or kw["softcap"] or kw["qk_norm"] or kw["query_pre_attn_scalar"])


@pytest.mark.parametrize("check", [c for c in BLOCK_CHECKS if _plain(c)], ids=lambda c: c.name)
def test_block_matches_the_formula(check: Check) -> None:
    """The sandwich formula written out on the case's weights with torch's own RMSNorm,
    GELU and SDPA (a global layer without extras)."""
    case = check.build()
    assert case.module is not None
    d, h, kv, hd, _ = case.module.args
    sd = case.module.state_dict
    (x,) = case.args
    b, t, _ = x.shape

    def norm(name: str, z: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(z, (d,), 1.0 + sd[f"{name}.weight"], eps=1e-6)

    def heads(z: torch.Tensor, n: int) -> torch.Tensor:
        return z.view(b, t, n, hd).transpose(1, 2)

    a = norm("input_layernorm", x)
    angles = torch.outer(
        torch.arange(t).float(), 1e4 ** (-torch.arange(0, hd, 2).float() / hd)
    ).repeat(1, 2)

    def rope(z: torch.Tensor) -> torch.Tensor:
        z1, z2 = z.chunk(2, dim=-1)
        return z * angles.cos() + torch.cat((-z2, z1), -1) * angles.sin()

    q = rope(heads(a @ sd["self_attn.q_proj.weight"].T, h))
    k = rope(heads(a @ sd["self_attn.k_proj.weight"].T, kv))
    v = heads(a @ sd["self_attn.v_proj.weight"].T, kv)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    y = y.transpose(1, 2).reshape(b, t, h * hd) @ sd["self_attn.o_proj.weight"].T
    x = x + norm("post_attention_layernorm", y)
    f = norm("pre_feedforward_layernorm", x)
    g = F.gelu(f @ sd["mlp.gate_proj.weight"].T, approximate="tanh")
    f = (g * (f @ sd["mlp.up_proj.weight"].T)) @ sd["mlp.down_proj.weight"].T
    peer = x + norm("post_feedforward_layernorm", f)
    assert torch.allclose(case.expected, peer, atol=1e-4, rtol=1e-4)
