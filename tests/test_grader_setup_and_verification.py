"""The grader of the setup notebook's warm-up: full marks for the source and other correct
answers, each realistic mistake loses exactly the points it should with a message that names
it, and the grader's expected values agree with a loop and with torch's own attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.graders.setup_and_verification import CHECKS, reference_causal_average

from .conftest import REPO
from .fixtures.setup_and_verification_mistakes import AVERAGE_MISTAKES
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part0_setup/00_setup_and_verification.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "causal_average": AVERAGE_MISTAKES,
    },
)


@pytest.mark.parametrize("shape", [(2, 5, 3), (1, 1, 4), (3, 2, 9, 2)])
def test_reference_is_a_running_mean_and_uniform_causal_attention(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    loop = torch.stack([x[..., : t + 1, :].mean(-2) for t in range(shape[-2])], dim=-2)
    zeros = torch.zeros(*shape[:-1], 1, dtype=x.dtype)
    peer = F.scaled_dot_product_attention(zeros, zeros, x, is_causal=True)
    torch.testing.assert_close(reference_causal_average(x), loop)
    torch.testing.assert_close(reference_causal_average(x), peer)


def test_checks_are_independent_inputs() -> None:
    """Each check builds its own input (no two checks can be passed by one memorised output)."""
    shapes = [tuple(c.build().args[0].shape) for c in CHECKS]
    assert len(CHECKS) >= 5 and len(set(shapes)) >= 5, shapes
