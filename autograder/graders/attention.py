"""Grader of the attention notebook (part2_fundamentals): SDPA and the causal mask."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, module_case
from reference_impl.models import (
    ModelConfig,
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
)


def _qkv(
    seed: int, t: int = 5, s: int = 5, d: int = 8, scale: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded float64 q (2, 3, t, d), k and v (2, 3, s, d)."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (scale * torch.randn(2, 3, n, d, generator=g, dtype=torch.float64) for n in (t, s, s))
    return q, k, v


def _sdpa_case(
    seed: int,
    grads: bool = False,
    shape: dict[str, float] | None = None,
    extra: Callable[[Tensor], str | None] | None = None,
    **kw: bool,
) -> Case:
    q, k, v = _qkv(seed, **(shape or {}))  # type: ignore[arg-type]
    inputs = [x.clone().requires_grad_(grads) for x in (q, k, v)]
    out = scaled_dot_product_attention(inputs[0], inputs[1], inputs[2], **kw)  # type: ignore[arg-type]
    case = Case([q, k, v], out.detach(), dict(kw), atol=1e-8, rtol=1e-7, extra=extra)
    if grads:
        g_out = torch.randn(
            out.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=out.dtype
        )
        case.grad_args, case.grad_output = (0, 1, 2), g_out
        case.expected_grads = list(torch.autograd.grad(out, inputs, g_out))
    return case


def _no_future_leak() -> Case:
    """Changing keys/values after position t must not change outputs at or before t."""
    q, k, v = _qkv(7, t=6, s=6)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 4:], v2[:, :, 4:] = 100.0, -100.0
    expected = scaled_dot_product_attention(q, k2, v2, is_causal=True)
    return Case(
        args=[q, k2, v2], kwargs={"is_causal": True}, expected=expected, atol=1e-8, rtol=1e-7
    )


def _padding_mask() -> Case:
    q, k, v = _qkv(3, t=4, s=6)
    mask = torch.ones(2, 1, 4, 6, dtype=torch.bool)
    mask[0, :, :, 4:] = False  # the first sequence has two padding keys
    expected = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return Case(args=[q, k, v], kwargs={"attn_mask": mask}, expected=expected, atol=1e-8, rtol=1e-7)


def _causal_case(t: int) -> Case:
    return Case(args=[t], expected=causal_mask(t))


def _mask_property(t: int, region: str) -> Case:
    """Judge one region of the mask causal_mask(t) returns, read as "nonzero = allowed"."""

    def judge(out: Tensor) -> str | None:
        if not isinstance(out, Tensor) or tuple(out.shape) != (t, t):
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            return f"causal_mask({t}) gave {shape}, expected a ({t}, {t}) tensor"
        allowed, ones = out != 0, torch.ones(t, t, dtype=torch.bool)
        if region == "dtype" and out.dtype != torch.bool:
            return f"dtype {out.dtype}, expected torch.bool (True = may attend)"
        if region == "diagonal" and not bool(allowed.diagonal().all()):
            return "some diagonal entries are False: query i must see key i (itself)"
        if region == "future" and bool(allowed.triu(1).any()):
            i, j = (int(n) for n in allowed.triu(1).nonzero()[0])
            return f"query {i} may attend to the later key {j}: the future leaks"
        if region == "past" and not bool(allowed[ones.tril(-1)].all()):
            i, j = (int(n) for n in (~allowed & ones.tril(-1)).nonzero()[0])
            return f"query {i} may not attend to the earlier key {j}"
        return None

    return Case(args=[t], expected=None, extra=judge)


def _finite(out: Tensor) -> str | None:
    return None if bool(torch.isfinite(out).all()) else "output has inf or NaN for large scores"


SDPA_CHECKS = [
    Check(
        "values on random inputs", 1.0, lambda: _sdpa_case(1), "compute softmax(q k^T / sqrt(d)) v"
    ),
    Check(
        "gradients flow to q, k and v",
        1.0,
        lambda: _sdpa_case(2, grads=True),
        "use torch operations only, without .detach(), .item() or numpy",
    ),
    Check(
        "scaling by 1/sqrt(d)",
        0.5,
        lambda: _sdpa_case(4, shape={"d": 32}),
        "divide the scores by sqrt of the head width d (q.size(-1))",
    ),
    Check(
        "boolean padding mask",
        1.0,
        _padding_mask,
        "where attn_mask is False, the score must be -inf before the softmax",
    ),
    Check(
        "causal: no future tokens leak",
        1.0,
        _no_future_leak,
        "with is_causal=True, query i may only see keys j <= i",
    ),
    Check(
        "causal: values",
        0.5,
        lambda: _sdpa_case(5, is_causal=True),
        "mask with torch.tril / the causal mask, including the diagonal",
    ),
    Check(
        "stable for large scores",
        0.5,
        lambda: _sdpa_case(6, shape={"scale": 300.0}, extra=_finite),
        "softmax over the last dim (keys); torch.softmax is stable",
    ),
    Check(
        "queries and keys of different lengths",
        0.5,
        lambda: _sdpa_case(8, shape={"t": 3, "s": 7}),
        "scores are (..., T, S): softmax over S",
    ),
]


CAUSAL_CHECKS = [
    Check(
        "boolean (t, t) tensor",
        0.25,
        lambda: _mask_property(7, "dtype"),
        "torch.ones(t, t, dtype=torch.bool): True = allowed, as attn_mask expects",
    ),
    Check(
        "diagonal included: a token sees itself",
        0.5,
        lambda: _mask_property(6, "diagonal"),
        "tril() keeps the diagonal; tril(-1) drops it",
    ),
    Check(
        "no future keys above the diagonal",
        0.5,
        lambda: _mask_property(6, "future"),
        "lower triangle (tril), not upper (triu)",
    ),
    Check(
        "every earlier key allowed",
        0.25,
        lambda: _mask_property(6, "past"),
        "below the diagonal everything is True",
    ),
    Check(
        "exact 5x5 mask",
        0.25,
        lambda: _causal_case(5),
        "True on and below the diagonal: torch.ones(T, T, dtype=torch.bool).tril()",
    ),
    Check("length 64", 0.25, lambda: _causal_case(64), "build it from t, with no fixed size"),
]


def _reference_mha(d_model: int, n_heads: int, seed: int) -> MultiHeadAttention:
    cfg = ModelConfig(vocab_size=1, context_length=64, d_model=d_model, n_heads=n_heads, n_layers=1)
    torch.manual_seed(seed)
    mha = MultiHeadAttention(cfg).eval()  # float32, the dtype of a student's fresh module
    with torch.no_grad():  # spread the weights so attention is far from uniform
        for p in mha.parameters():
            p.normal_(0.0, 0.3)
    return mha


def _mha_case(
    seed: int,
    d_model: int = 32,
    n_heads: int = 4,
    b: int = 2,
    t: int = 7,
    grads: bool = False,
    scale: float = 1.0,
    x: Tensor | None = None,
) -> Case:
    mha = _reference_mha(d_model, n_heads, seed)
    g = torch.Generator().manual_seed(seed)
    if x is None:
        x = scale * torch.randn(b, t, d_model, generator=g)
    return module_case(
        mha, [x], [d_model, n_heads], grad_args=(0,) if grads else (), params=grads, grad_seed=g
    )


def _mha_no_future_leak() -> Case:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 8, 32, generator=g)
    x[:, 5:] = 50.0  # wild future tokens: any leak shows at positions < 5
    return _mha_case(11, x=x)


MHA_CHECKS = [
    Check(
        "loads the reference weights and computes the same output",
        1.5,
        lambda: _mha_case(1),
        "q_proj, k_proj, v_proj, o_proj: nn.Linear(d_model, d_model) with bias; split heads "
        "with view(B, T, n_heads, d_head).transpose(1, 2)",
    ),
    Check(
        "gradients for the input and every parameter",
        1.0,
        lambda: _mha_case(2, grads=True),
        "no .detach() or .data; use the projections inside forward",
    ),
    Check(
        "causal: no future tokens leak",
        1.0,
        _mha_no_future_leak,
        "self-attention here is causal: use is_causal=True or the causal mask",
    ),
    Check(
        "other sizes: 6 heads of width 8, one sequence of length 1",
        0.5,
        lambda: _mha_case(3, d_model=48, n_heads=6, b=1, t=1),
        "derive d_head = d_model // n_heads; merge heads back with transpose + reshape",
    ),
    Check(
        "stable for large inputs",
        0.5,
        lambda: _mha_case(4, scale=30.0),
        "scale scores by 1/sqrt(d_head), not 1/sqrt(d_model)",
    ),
]

ITEMS = {
    "attention.scaled_dot_product_attention": Item(
        "scaled_dot_product_attention",
        SDPA_CHECKS,
        Signature(
            "q, k, v, attn_mask=None, is_causal=False",
            shapes={
                "q": "(*L, T, d)",
                "k": "(*L, S, d)",
                "v": "(*L, S, d)",
                "attn_mask": "(..., T, S)",
                "return": "(*L, T, d)",
            },
        ),
    ),
    "attention.causal_mask": Item(
        "causal_mask", CAUSAL_CHECKS, Signature("t", shapes={"return": "(t, t)"})
    ),
    "attention.MultiHeadAttention": Item(
        "MultiHeadAttention",
        MHA_CHECKS,
        Signature(
            "d_model, n_heads",
            forward="x",
            shapes={"x": "(B, T, d_model)", "return": "(B, T, d_model)"},
        ),
    ),
}
