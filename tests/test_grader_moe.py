"""The grader of the mixture-of-experts notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a
message that names it, and the grader's expected values agree with independent peers
(loops, a dense all-experts computation, Hugging Face's Mixtral load-balancing loss).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer (the MoELayer answers do not call the other exercises).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Check
from autograder.graders.moe import CAPACITY_CHECKS, LAYER_CHECKS, LB_CHECKS

from .conftest import REPO
from .fixtures.moe_mistakes import (
    CAPACITY_MISTAKES,
    GATING_MISTAKES,
    LAYER_MISTAKES,
    LB_MISTAKES,
    ROUTER_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part3_innovations/moe.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "router_top_k": ROUTER_MISTAKES,
        "gating_weights": GATING_MISTAKES,
        "load_balancing_loss": LB_MISTAKES,
        "capacity_dispatch": CAPACITY_MISTAKES,
        "moe_layer": LAYER_MISTAKES,
    },
)


# --- the grader's expected values against independent peers ---------------------------------


@pytest.mark.parametrize("check", LB_CHECKS, ids=lambda c: c.name)
def test_load_balancing_matches_transformers(check: Check) -> None:
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    case = check.build()
    logits, e, k = case.args
    peer = load_balancing_loss_func((logits.reshape(-1, e).float(),), e, k)
    assert torch.allclose(case.expected.float(), peer, atol=1e-5)


@pytest.mark.parametrize("check", CAPACITY_CHECKS, ids=lambda c: c.name)
def test_capacity_matches_a_loop(check: Check) -> None:
    case = check.build()
    indices, e, factor = case.args
    n, k = indices.shape
    capacity = -(-round(factor * n * k * 1000) // (e * 1000))  # exact ceil for these factors
    used, keep = [0] * e, torch.zeros(n, k, dtype=torch.bool)
    for j in range(k):
        for t in range(n):
            keep[t, j] = used[int(indices[t, j])] < capacity
            used[int(indices[t, j])] += 1
    assert case.expected[0] == capacity and torch.equal(case.expected[1], keep)


@pytest.mark.parametrize("check", LAYER_CHECKS, ids=lambda c: c.name)
def test_layer_matches_dense_computation(check: Check) -> None:
    """Every expert on every token, weighted by a dense (N, E) gate matrix."""
    case = check.build()
    assert case.module is not None
    (x,) = case.args
    d, _, e, k = case.module.args
    sd = case.module.state_dict
    factor = case.module.kwargs.get("capacity_factor")
    normalize = case.module.kwargs.get("normalize", True)
    tokens = x.reshape(-1, d)
    logits = tokens @ sd["router.weight"].T
    weights, indices = logits.softmax(-1).topk(k, dim=-1)
    if normalize:
        weights = weights / weights.sum(-1, keepdim=True)
    if factor is not None:
        n = tokens.shape[0]
        capacity = -(-round(factor * n * k * 1000) // (e * 1000))
        used = [0] * e
        for j in range(k):
            for t in range(n):
                if used[int(indices[t, j])] >= capacity:
                    weights[t, j] = 0.0
                used[int(indices[t, j])] += 1
    gates = torch.zeros(tokens.shape[0], e).scatter_add(1, indices, weights)
    outs = []
    for i in range(e):
        w1, w3 = sd[f"experts.{i}.gate_proj.weight"], sd[f"experts.{i}.up_proj.weight"]
        w2 = sd[f"experts.{i}.down_proj.weight"]
        outs.append((F.silu(tokens @ w1.T) * (tokens @ w3.T)) @ w2.T)
    y = (gates[..., None] * torch.stack(outs, 1)).sum(1).reshape(x.shape)
    got_y, got_logits = case.expected
    assert torch.allclose(got_y, y, atol=1e-5) and torch.allclose(got_logits, logits, atol=1e-6)
