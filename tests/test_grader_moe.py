"""The grader of the mixture-of-experts notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a
message that names it, and the grader's expected values agree with independent peers
(loops, a dense all-experts computation, Hugging Face's Mixtral load-balancing loss).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer (the MoELayer answers do not call the other exercises).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Check
from autograder.graders import ITEMS
from autograder.graders.moe import CAPACITY_CHECKS, LAYER_CHECKS, LB_CHECKS
from autograder.harness import CellReport, grade_notebook
from autograder.sandbox import Limits

from .conftest import REPO
from .fixtures.moe_mistakes import (
    CAPACITY_MISTAKES,
    GATING_MISTAKES,
    LAYER_MISTAKES,
    LB_MISTAKES,
    ROUTER_MISTAKES,
)

SOURCE = REPO / "source/part3_innovations/moe.ipynb"
LIMITS = Limits(step_timeout=8.0, memory_bytes=3 << 30)

# solution cell -> (its test cell, its item, the cell's points, answers)
EXERCISES = {
    "router_top_k": ("router_top_k_tests", "moe.router_top_k", 3.0, ROUTER_MISTAKES),
    "gating_weights": ("gating_weights_tests", "moe.gating_weights", 3.0, GATING_MISTAKES),
    "load_balancing_loss": ("load_balancing_loss_tests", "moe.load_balancing_loss", 3.0,
                            LB_MISTAKES),
    "capacity_dispatch": ("capacity_dispatch_tests", "moe.capacity_dispatch", 3.0,
                          CAPACITY_MISTAKES),
    "moe_layer": ("moe_layer_tests", "moe.MoELayer", 4.5, LAYER_MISTAKES),
}  # fmt: skip
ANSWERS = [(cell, name) for cell, ex in EXERCISES.items() for name in ex[3]]
RUNS = max(len(ex[3]) for ex in EXERCISES.values())

Reports = dict[str, CellReport]


def failed(cell: CellReport) -> dict[str, str]:
    return {c.name: c.message for c in cell.checks if not c.passed}


@pytest.fixture(scope="module")
def source_report() -> Reports:
    return {c.grade_id: c for c in grade_notebook(SOURCE, LIMITS).cells}


@pytest.fixture(scope="module")
def graded_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Reports]:
    """Run k of the answers, graded once and kept for the module."""
    cache: dict[int, Reports] = {}

    def run(k: int) -> Reports:
        if k not in cache:
            nb = nbformat.read(str(SOURCE), as_version=4)
            for cell in nb.cells:
                ex = EXERCISES.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
                if ex is not None and k < len(ex[3]):
                    cell.source = list(ex[3].values())[k][0]
            path = Path(tmp_path_factory.mktemp(f"run{k}")) / "moe.ipynb"
            nbformat.write(nb, str(path))
            cache[k] = {c.grade_id: c for c in grade_notebook(path, LIMITS).cells}
        return cache[k]

    return run


def test_source_notebook_gets_full_marks(source_report: Reports) -> None:
    assert set(source_report) == {ex[0] for ex in EXERCISES.values()}
    for test_cell, item, points, _ in EXERCISES.values():
        cell = source_report[test_cell]
        assert cell.item == item
        assert cell.max_points == points == ITEMS[item].points
        assert cell.points == points and not cell.flags and not cell.error, failed(cell)


def test_items_have_five_checks_or_more() -> None:
    for _, item, _, answers in EXERCISES.values():
        assert len(ITEMS[item].checks) >= 5
        assert all(0.5 <= c.points <= 1.0 and c.hint for c in ITEMS[item].checks)
        assert sum(1 for _, pts, _ in answers.values() if pts < ITEMS[item].points) >= 3


@pytest.mark.parametrize(("cell", "name"), ANSWERS, ids=[f"{c}-{n}" for c, n in ANSWERS])
def test_answers_score_exactly(graded_run: Callable[[int], Reports], cell: str, name: str) -> None:
    test_cell, _, _, answers = EXERCISES[cell]
    _, expected, message = answers[name]
    report = graded_run(list(answers).index(name))[test_cell]
    assert report.points == expected, failed(report)
    assert not report.flags and not report.error, (report.flags, report.error)
    if message is not None:
        assert any(message in m for m in failed(report).values()), failed(report)


def test_untouched_cells_keep_full_marks(graded_run: Callable[[int], Reports]) -> None:
    for k in range(RUNS):
        for test_cell, _, points, answers in EXERCISES.values():
            if k >= len(answers):
                assert graded_run(k)[test_cell].points == points


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
