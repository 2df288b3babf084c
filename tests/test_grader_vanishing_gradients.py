"""The grader of the vanishing_gradients notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a message
that names it, and the grader's expected values agree with independent peers (torch's
LSTMCell, a Jacobian product written out by hand, slicing and counting).

Answers to different exercises share one sandbox run (run k puts each exercise's k-th answer
in place); no answer calls another exercise's function.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.checks import Check
from autograder.graders.vanishing_gradients import (
    ACCURACY_CHECKS,
    GRAD_NORMS_CHECKS,
    LSTM_CHECKS,
    RECALL_CHECKS,
)

from .conftest import REPO
from .fixtures.vanishing_gradients_mistakes import (
    ACCURACY_MISTAKES,
    LSTM_MISTAKES,
    NORMS_MISTAKES,
    RECALL_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part1_evolution/vanishing_gradients.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "grad_norms": NORMS_MISTAKES,
        "lstm_cell": LSTM_MISTAKES,
        "recall_task": RECALL_MISTAKES,
        "accuracy": ACCURACY_MISTAKES,
    },
)


# --- the grader's expected values against independent peers ---------------------------------


@pytest.mark.parametrize("check", GRAD_NORMS_CHECKS, ids=lambda c: c.name)
def test_norms_match_jacobian_products(check: Check) -> None:
    """Backward by hand: dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) W_hh, from dL/dh_{T-1} = 1."""
    case = check.build()
    x, h, w_ih, w_hh, b_ih, b_hh = case.args
    states = []
    for x_t in x:
        h = torch.tanh(x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        states.append(h)
    grad, peer = torch.ones_like(h), []
    for t in range(len(states) - 1, -1, -1):
        peer.append(grad.norm())
        grad = (grad * (1 - states[t] ** 2)) @ w_hh
    torch.testing.assert_close(torch.stack(peer), case.expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("check", LSTM_CHECKS, ids=lambda c: c.name)
def test_lstm_cases_match_torch_lstm_cell(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    peer = nn.LSTMCell(*case.module.args)
    peer.load_state_dict(case.module.state_dict)
    for got, expected in zip(peer(*case.args), case.expected, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("check", RECALL_CHECKS, ids=lambda c: c.name)
def test_recall_targets_by_position(check: Check) -> None:
    case = check.build()
    n, length, distance, vocab_size, seed = case.args
    x, y = case.expected
    assert x.shape == y.shape == (n, length) and x.dtype == y.dtype == torch.int64
    assert int(x.min()) >= 0 and int(x.max()) < vocab_size
    peer = torch.randint(0, vocab_size, (n, length), generator=torch.Generator().manual_seed(seed))
    assert torch.equal(x, peer)
    for t in range(length):
        assert (y[:, t] == (x[:, t - distance] if t >= distance else -100)).all()


@pytest.mark.parametrize("check", ACCURACY_CHECKS, ids=lambda c: c.name)
def test_accuracy_by_counting(check: Check) -> None:
    case = check.build()
    logits, targets = case.args
    ignore = case.kwargs.get("ignore_index", -100)
    pairs = [
        (row.argmax().item(), t.item())
        for row, t in zip(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), strict=True)
        if t.item() != ignore
    ]
    peer = sum(a == t for a, t in pairs) / len(pairs) if pairs else 0.0
    assert isinstance(case.expected, float) and abs(case.expected - peer) < 1e-12
