"""The grader of the efficient_attention notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a message
that names it, and the grader's expected values agree with PyTorch's own attention.

Answers to different exercises share one sandbox run: run k replaces each exercise's solution
cell by its k-th answer (cells are graded independently, which
``test_untouched_cells_keep_full_marks`` checks).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Check
from autograder.graders.efficient_attention import (
    ONLINE_SOFTMAX_CHECKS,
    REPEAT_KV_CHECKS,
    SLIDING_WINDOW_CHECKS,
    TILED_CHECKS,
)

from .conftest import REPO
from .fixtures.efficient_attention_mistakes import (
    ONLINE_SOFTMAX_MISTAKES,
    REPEAT_KV_MISTAKES,
    TILED_MISTAKES,
    WINDOW_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part3_innovations/efficient_attention.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "online_softmax": ONLINE_SOFTMAX_MISTAKES,
        "tiled_attention": TILED_MISTAKES,
        "sliding_window_mask": WINDOW_MISTAKES,
        "repeat_kv": REPEAT_KV_MISTAKES,
    },
)


# --- the grader's expected values against independent peers ---------------------------------


@pytest.mark.parametrize("check", ONLINE_SOFTMAX_CHECKS, ids=lambda c: c.name)
def test_online_softmax_cases_match_torch_softmax(check: Check) -> None:
    case = check.build()
    x, _ = case.args
    torch.testing.assert_close(case.expected, torch.softmax(x, -1), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("check", TILED_CHECKS, ids=lambda c: c.name)
def test_tiled_cases_match_torch_sdpa(check: Check) -> None:
    case = check.build()
    q, k, v = (x.clone().requires_grad_() for x in case.args)
    t, s = q.size(-2), k.size(-2)
    mask = torch.ones(t, s, dtype=torch.bool).tril(s - t) if case.kwargs["is_causal"] else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(case.expected, out.detach(), atol=1e-5, rtol=1e-4)
    if case.grad_args:
        grads = torch.autograd.grad(out, (q, k, v), case.grad_output)
        for got, want in zip(case.expected_grads, grads, strict=True):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("check", SLIDING_WINDOW_CHECKS, ids=lambda c: c.name)
def test_window_cases_match_a_loop(check: Check) -> None:
    case = check.build()
    t, s, window, is_causal = case.args
    peer = torch.tensor(
        [
            [
                (i + s - t - window < j <= i + s - t) if is_causal else abs(i + s - t - j) < window
                for j in range(s)
            ]
            for i in range(t)
        ]
    )
    assert case.expected.dtype == torch.bool and torch.equal(case.expected, peer)


@pytest.mark.parametrize("check", REPEAT_KV_CHECKS, ids=lambda c: c.name)
def test_repeat_kv_cases_match_gqa_attention(check: Check) -> None:
    """Attention over the repeated heads equals torch's own grouped-query attention."""
    case = check.build()
    x, n_rep = case.args
    q = torch.randn(x.size(0), x.size(1) * n_rep, 5, x.size(-1), dtype=x.dtype)
    ours = F.scaled_dot_product_attention(q, case.expected, case.expected)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, x, x, enable_gqa=True))
