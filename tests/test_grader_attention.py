"""The grader of the attention notebook: the source notebook gets full marks, and each
realistic mistake in scaled_dot_product_attention, causal_mask and MultiHeadAttention loses
exactly the points it should, with a message that names it. (Submissions that cheat, exit,
hang or hog memory are the harness's business: tests/test_autograder.py.)
"""

from __future__ import annotations

from .conftest import REPO
from .fixtures.attention_class import MHA_MISTAKES
from .fixtures.attention_submissions import SUBMISSIONS
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part2_fundamentals/attention.ipynb"

# mistake -> (the cell's exact score, a substring of a failure message)
SDPA_SCORES = {
    "no_scaling": (0.5, "values differ"),
    "softmax_wrong_axis": (0.0, "values differ"),
    "causal_leaks_next_token": (4.5, "values differ"),
    "no_gradient_flow": (5.0, "no gradient flowed back"),
    "mask_ignored": (5.0, "values differ"),
}
CAUSAL_SCORES = {
    "mask_excludes_diagonal": (1.0, "query i must see key i"),
    "mask_upper_triangular": (0.75, "the future leaks"),
    "mask_float_ones": (1.25, "dtype torch.float32, expected torch.bool"),
    "mask_fixed_size": (0.25, "causal_mask(7) gave (5, 5)"),
}
MHA_MESSAGES = {
    "not_causal": "self-attention here is causal",
    "input_detached": "no gradient flowed back",
}

EXERCISES = exercises_of(
    SOURCE,
    {
        "sdpa": {n: (SUBMISSIONS[n][0], *SDPA_SCORES[n]) for n in SDPA_SCORES},
        "causal": {n: (SUBMISSIONS[n][1], *CAUSAL_SCORES[n]) for n in CAUSAL_SCORES},
        "mha": {n: (code, pts, MHA_MESSAGES.get(n)) for n, (code, pts) in MHA_MISTAKES.items()},
    },
)
