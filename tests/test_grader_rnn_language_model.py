"""The grader of the rnn_language_model notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a message
that names it, and the grader's expected values agree with torch's own RNN modules.

Answers to different exercises share one sandbox run (run k puts each exercise's k-th answer
in place); the answers for ``RNN`` bring their own cell, so that no answer depends on another.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.checks import Check
from autograder.graders.rnn_language_model import (
    RNN_CELL_CHECKS,
    RNN_CHECKS,
    SAMPLE_CHECKS,
    TBPTT_CHECKS,
)

from .conftest import REPO
from .fixtures.rnn_language_model_mistakes import (
    RNN_CELL_MISTAKES,
    RNN_MISTAKES,
    SAMPLE_MISTAKES,
    TBPTT_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part1_evolution/rnn_language_model.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "rnn_cell": RNN_CELL_MISTAKES,
        "rnn_forward": RNN_MISTAKES,
        "tbptt": TBPTT_MISTAKES,
        "sample": SAMPLE_MISTAKES,
    },
)


# --- the grader's expected values against torch's modules ----------------------------------

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@pytest.mark.parametrize("check", RNN_CELL_CHECKS, ids=lambda c: c.name)
def test_cell_cases_match_torch_rnn_cell(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    peer = nn.RNNCell(*case.module.args)
    peer.load_state_dict(case.module.state_dict)
    torch.testing.assert_close(peer(*case.args), case.expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("check", RNN_CHECKS, ids=lambda c: c.name)
def test_sequence_cases_match_torch_rnn(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    peer = nn.RNN(*case.module.args, **case.module.kwargs)
    peer.load_state_dict({f"{n}_l0": case.module.state_dict[f"cell.{n}"] for n in NAMES})
    h0 = case.args[1][None] if len(case.args) > 1 else None
    out, h_n = peer(case.args[0], h0)
    torch.testing.assert_close(out, case.expected[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h_n[0], case.expected[1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("check", TBPTT_CHECKS, ids=lambda c: c.name)
def test_chunk_values_match_one_torch_rnn_pass(check: Check) -> None:
    """Truncation changes gradients, never values: one pass of nn.RNN gives the outputs."""
    case = check.build()
    x, h0, *weights = case.args
    peer = nn.RNN(x.shape[-1], h0.shape[-1]).double()
    peer.load_state_dict({f"{n}_l0": w for n, w in zip(NAMES, weights, strict=True)})
    torch.testing.assert_close(peer(x, h0[None])[0], case.expected[0])


@pytest.mark.parametrize("check", SAMPLE_CHECKS, ids=lambda c: c.name)
def test_samples_are_likely_tokens(check: Check) -> None:
    """Every sampled id has non-negligible probability under softmax(logits / T)."""
    case = check.build()
    logits, temperature, _ = case.args
    ids = case.expected
    assert ids.shape == logits.shape[:1] and ids.dtype == torch.int64
    if temperature == 0:
        assert torch.equal(ids, logits.argmax(-1))
    else:
        probs = torch.softmax(logits.double() / temperature, -1)
        assert (probs.gather(1, ids[:, None]) > 1e-9).all()
