"""The grader of the transformer-block notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a message
that names it, the given attention is the reference's, and the grader's expected values agree
with torch's own layers.

To stay within the time budget, answers to different exercises share one sandbox run: run k
replaces each exercise's solution cell by its k-th answer. The block and the GPT build on the
student's norms, SwiGLU and block, so their cells are prefixed with the source's solutions of
those (defined after the earlier cells were graded): each cell's score is its own.
(``reference_impl``'s LayerNorm and RMSNorm against torch: tests/test_layers.py.)
"""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Check
from autograder.graders.transformer_block import LAYERNORM_CHECKS, RMSNORM_CHECKS, SWIGLU_CHECKS
from autograder.harness import is_student_cell
from coursekit import assert_close
from coursekit.notebooks import grade_id
from reference_impl.models import ModelConfig, MultiHeadAttention

from .conftest import REPO
from .fixtures.transformer_block_mistakes import (
    BLOCK_MISTAKES,
    GPT_MISTAKES,
    LAYERNORM_MISTAKES,
    RMSNORM_MISTAKES,
    SWIGLU_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part2_fundamentals/transformer_block.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "layernorm": LAYERNORM_MISTAKES,
        "rmsnorm": RMSNORM_MISTAKES,
        "swiglu": SWIGLU_MISTAKES,
        "block": BLOCK_MISTAKES,
        "gpt": GPT_MISTAKES,
    },
)
BUILDS_ON = {"block": ["rmsnorm", "swiglu"], "gpt": ["rmsnorm", "swiglu", "block"]}


# --- the given attention ---------------------------------------------------------------------


def test_given_attention_is_the_reference_one() -> None:
    """The locked setup cell's MultiHeadAttention runs in the sandbox and equals the reference's
    (no biases) with the same weights, values and gradients."""
    nb = nbformat.read(str(SOURCE), as_version=4)
    setup = [c for c in nb.cells if is_student_cell(c) and "gw-setup" in c.metadata.get("tags", [])]
    assert [grade_id(c) for c in setup] == ["setup", "provided_mha"]
    meta = setup[1].metadata["nbgrader"]
    assert (meta["solution"], meta["grade"], meta["locked"]) == (False, False, True)
    namespace: dict[str, Any] = {}
    for cell in setup:
        exec(cell.source, namespace)
    cfg = ModelConfig(
        vocab_size=1, context_length=16, d_model=48, n_heads=6, n_layers=1, bias=False
    )
    # float64: the two sum in different orders, and a float32 gradient of 0.04 can differ by
    # 1e-5 (1 ulp of the largest terms) on another CPU; in float64 they agree to 1e-12.
    reference = MultiHeadAttention(cfg).double()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0.0, 0.3)
    given = namespace["MultiHeadAttention"](48, 6).double()
    given.load_state_dict(reference.state_dict())  # strict: the same names and shapes
    x = torch.randn(2, 9, 48, dtype=torch.float64, requires_grad=True)
    ours, theirs = given(x), reference(x)
    assert_close(ours, theirs, "output", atol=1e-12, rtol=1e-10)
    g = torch.randn_like(theirs)
    (grad_ours,) = torch.autograd.grad(ours, x, g)
    (grad_theirs,) = torch.autograd.grad(theirs, x, g)
    assert_close(grad_ours, grad_theirs, "input gradient", atol=1e-12, rtol=1e-10)


# --- the grader's expected values against torch's own layers ---------------------------------


@pytest.mark.parametrize("check", LAYERNORM_CHECKS, ids=lambda c: c.name)
def test_layernorm_expected_matches_torch(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    (x,) = case.args
    state, eps = case.module.state_dict, case.module.kwargs.get("eps", 1e-5)
    peer = F.layer_norm(
        x.double(), x.shape[-1:], state["weight"].double(), state["bias"].double(), eps=eps
    )
    assert_close(case.expected, peer.float(), check.name, atol=max(case.atol / 2, 1e-5))


@pytest.mark.parametrize("check", RMSNORM_CHECKS, ids=lambda c: c.name)
def test_rmsnorm_expected_matches_torch(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    (x,) = case.args
    norm = torch.nn.RMSNorm(x.shape[-1], eps=1e-6)
    norm.load_state_dict(case.module.state_dict)
    assert_close(case.expected, norm(x).detach(), check.name, atol=1e-5)


@pytest.mark.parametrize("check", SWIGLU_CHECKS, ids=lambda c: c.name)
def test_swiglu_expected_matches_the_formula(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    (x,) = case.args
    w = {k.removesuffix(".weight"): v.double() for k, v in case.module.state_dict.items()}
    x64 = x.double()
    peer = (F.silu(x64 @ w["gate_proj"].T) * (x64 @ w["up_proj"].T)) @ w["down_proj"].T
    assert_close(case.expected, peer.float(), check.name, atol=1e-4, rtol=1e-5)
