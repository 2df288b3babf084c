"""Grader of the attention notebook (part2_fundamentals): SDPA and the causal mask."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.base import Item
from reference_impl.models import causal_mask, scaled_dot_product_attention


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


def _finite(out: Tensor) -> str | None:
    return None if bool(torch.isfinite(out).all()) else "output has inf or NaN for large scores"


SDPA_CHECKS = [
    Check("values on random inputs", 1.0, lambda: _sdpa_case(1),
          "compute softmax(q k^T / sqrt(d)) v"),
    Check("gradients flow to q, k and v", 1.0, lambda: _sdpa_case(2, grads=True),
          "use torch operations only, without .detach(), .item() or numpy"),
    Check("scaling by 1/sqrt(d)", 0.5, lambda: _sdpa_case(4, shape={"d": 32}),
          "divide the scores by sqrt of the head width d (q.size(-1))"),
    Check("boolean padding mask", 1.0, _padding_mask,
          "where attn_mask is False, the score must be -inf before the softmax"),
    Check("causal: no future tokens leak", 1.0, _no_future_leak,
          "with is_causal=True, query i may only see keys j <= i"),
    Check("causal: values", 0.5, lambda: _sdpa_case(5, is_causal=True),
          "mask with torch.tril / the causal mask, including the diagonal"),
    Check("stable for large scores", 0.5,
          lambda: _sdpa_case(6, shape={"scale": 300.0}, extra=_finite),
          "softmax over the last dim (keys); torch.softmax is stable"),
    Check("queries and keys of different lengths", 0.5,
          lambda: _sdpa_case(8, shape={"t": 3, "s": 7}),
          "scores are (..., T, S): softmax over S"),
]  # fmt: skip


CAUSAL_CHECKS = [
    Check("5x5 lower-triangular, diagonal included", 1.0, lambda: _causal_case(5),
          "True on and below the diagonal: torch.ones(T, T, dtype=torch.bool).tril()"),
    Check("length 1", 0.5, lambda: _causal_case(1), "a single True"),
    Check("length 64", 0.5, lambda: _causal_case(64), "build it from T, with no fixed size"),
]  # fmt: skip

ITEMS = {
    "attention.scaled_dot_product_attention": Item("scaled_dot_product_attention", SDPA_CHECKS),
    "attention.causal_mask": Item("causal_mask", CAUSAL_CHECKS),
}
