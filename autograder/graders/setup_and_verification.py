"""Grader of the setup notebook's warm-up (part0_setup): ``causal_average``.

The expected values come from ``reference_impl``'s attention: averaging the past is causal
attention with equal scores (queries and keys of zeros);
tests/test_grader_setup_and_verification.py checks it against a loop and torch's own attention.
"""

from __future__ import annotations

import torch
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, grad_case, seeded_randn
from reference_impl.models.attention import scaled_dot_product_attention


def reference_causal_average(x: Tensor) -> Tensor:
    """(..., T, C) -> (..., T, C): uniform causal attention over the past."""
    zeros = torch.zeros(*x.shape[:-1], 1, dtype=x.dtype)
    return scaled_dot_product_attention(zeros, zeros, x, is_causal=True)


def _case(x: Tensor, grads: bool = False, seed: int = 0) -> Case:
    if grads:
        return grad_case(reference_causal_average, [x], (0,), seed)
    return Case([x], reference_causal_average(x))


def _future_case() -> Case:
    """Huge values after position 3: a leak of the future shows at once."""
    x = seeded_randn(3, 2, 8, 4)
    x[:, 4:] += 1e4
    return Case([x], reference_causal_average(x), atol=1e-6, rtol=1e-6)


CHECKS = [
    Check(
        "values of a (2, 7, 4) batch",
        0.5,
        lambda: _case(seeded_randn(1, 2, 7, 4)),
        "y[..., t, :] is the mean of x[..., :t+1, :]: divide the sum of positions 0..t by "
        "t + 1 (not by T), over the time axis (dim=-2)",
    ),
    Check(
        "one position (T = 1): y equals x",
        0.25,
        lambda: _case(seeded_randn(2, 3, 1, 5)),
        "with a single position the average is that position itself",
    ),
    Check(
        "no future: large values after position 3 leave positions 0..3 unchanged",
        0.25,
        _future_case,
        "position t may only average positions 0..t: a mean over the whole sequence "
        "leaks later tokens",
    ),
    Check(
        "gradients flow back to x",
        0.5,
        lambda: _case(seeded_randn(4, 2, 6, 3), grads=True, seed=4),
        "build y with differentiable tensor operations on x (no .detach(), no NumPy, no "
        "torch.no_grad())",
    ),
    Check(
        "float32 input of a longer sequence (1, 64, 8): dtype kept",
        0.25,
        lambda: _case(seeded_randn(5, 1, 64, 8, dtype=torch.float32)),
        "make the weights with x's dtype (dtype=x.dtype) so that the output keeps it",
    ),
    Check(
        "two leading dimensions (3, 2, 6, 5): time is dim -2",
        0.25,
        lambda: _case(seeded_randn(6, 3, 2, 6, 5)),
        "average over dim=-2 (time), whatever the number of leading dimensions; not over "
        "dim=1 or the batch",
    ),
]

ITEMS = {
    "setup_and_verification.causal_average": Item(
        "causal_average", CHECKS, Signature("x", shapes={"x": "(*L, T, d)", "return": "(*L, T, d)"})
    )
}
