"""The grader of the embeddings-and-positions notebook: the source notebook gets full marks,
other correct answers too, each realistic mistake loses exactly the points it should with a
message that names it, and the grader's expected values agree with independent peers.

To stay within the time budget, answers to different exercises share one sandbox run: run
k replaces each exercise's solution cell by its k-th answer (cells are graded independently,
which ``test_untouched_cells_keep_full_marks`` checks).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.embeddings_and_positions import (
    ROPE_CHECKS,
    SINUSOIDAL_CHECKS,
    TOKEN_POSITION_CHECKS,
)
from coursekit import assert_close
from reference_impl.models import RotaryEmbedding, apply_rope, rope_tables

from .conftest import REPO
from .fixtures.embeddings_and_positions_mistakes import (
    ROPE_MISTAKES,
    SINUSOIDAL_MISTAKES,
    TOKEN_POSITION_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part2_fundamentals/embeddings_and_positions.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "sinusoidal": SINUSOIDAL_MISTAKES,
        "token_position": TOKEN_POSITION_MISTAKES,
        "rope": ROPE_MISTAKES,
    },
)


# --- the grader's expected values against independent peers ---------------------------------


def sinusoidal_by_formula(t: int, d: int, base: float) -> Tensor:
    """The table entry by entry, in Python floats."""
    rows = [
        [(math.sin if j % 2 == 0 else math.cos)(p / base ** (2 * (j // 2) / d)) for j in range(d)]
        for p in range(t)
    ]
    return torch.tensor(rows, dtype=torch.float64).reshape(t, d)


def rope_by_complex(x: Tensor, positions: Tensor, theta: float) -> Tensor:
    """Rotate-half RoPE as complex products: pair i = x[i] + j x[i + d/2], times e^(j p w_i)."""
    d = x.size(-1)
    pairs = torch.stack(x.double().chunk(2, dim=-1), dim=-1).contiguous()  # (..., d/2, 2)
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    turn = torch.polar(
        torch.ones(len(positions), d // 2, dtype=torch.float64), positions.double()[:, None] * freqs
    )
    z = torch.view_as_real(torch.view_as_complex(pairs) * turn)
    return torch.cat((z[..., 0], z[..., 1]), dim=-1)


@pytest.mark.parametrize("check", SINUSOIDAL_CHECKS, ids=lambda c: c.name)
def test_sinusoidal_expected_matches_the_formula(check: Check) -> None:
    case = check.build()
    t, d = case.args
    peer = sinusoidal_by_formula(t, d, case.kwargs.get("base", 10000.0)).float()
    assert_close(case.expected, peer, check.name, atol=case.atol / 5, rtol=0.0)


def _theta(case: Case) -> float:
    return float(case.kwargs.get("theta", 10000.0))


@pytest.mark.parametrize("check", ROPE_CHECKS, ids=lambda c: c.name)
def test_rope_expected_matches_complex_rotation(check: Check) -> None:
    case = check.build()
    x, positions = case.args
    peer = rope_by_complex(x, positions, _theta(case)).to(x.dtype)
    assert_close(case.expected, peer, check.name, atol=case.atol / 5, rtol=0.0)
    if case.grad_output is not None:  # the gradient of a rotation is the inverse rotation
        back = rope_by_complex(case.grad_output, -positions, _theta(case))
        assert_close(case.expected_grads[0], back, "gradient", atol=case.atol, rtol=0.0)


def test_reference_rope_is_a_relative_rotation() -> None:
    """The reference cache module with an offset equals the tables indexed by position."""
    x = torch.randn(2, 3, 4, 16, dtype=torch.float64)
    rope = RotaryEmbedding(16, 64)
    cos, sin = rope_tables(64, 16)
    by_index = apply_rope(x, cos[10:14].double(), sin[10:14].double())
    assert_close(rope(x, offset=10), by_index, "offset 10", atol=1e-12)
    assert_close(by_index, rope_by_complex(x, torch.arange(10, 14), 10000.0), "complex", atol=1e-5)


@pytest.mark.parametrize("check", TOKEN_POSITION_CHECKS, ids=lambda c: c.name)
def test_embedding_expected_matches_one_hot_products(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    (idx,) = case.args
    tok, pos = case.module.state_dict["tok_emb.weight"], case.module.state_dict["pos_emb.weight"]
    one_hot = F.one_hot(idx, tok.size(0)).to(tok.dtype)  # (B, T, V)
    t = idx.size(1)
    assert_close(case.expected, one_hot @ tok + pos[:t], check.name, atol=1e-6)
    if case.grad_output is not None:
        g = case.grad_output
        grads = case.expected_param_grads
        assert_close(
            grads["tok_emb.weight"],
            torch.einsum("btv,btd->vd", one_hot, g),
            "tok_emb grad",
            atol=1e-5,
        )
        pos_grad = torch.cat((g.sum(0), torch.zeros(pos.size(0) - t, pos.size(1))))
        assert_close(grads["pos_emb.weight"], pos_grad, "pos_emb grad", atol=1e-5)
