"""The grader of the efficient_attention notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a message
that names it, and the grader's expected values agree with PyTorch's own attention.

Answers to different exercises share one sandbox run: run k replaces each exercise's solution
cell by its k-th answer (cells are graded independently, which
``test_untouched_cells_keep_full_marks`` checks).
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
from autograder.graders.efficient_attention import (
    ONLINE_SOFTMAX_CHECKS,
    REPEAT_KV_CHECKS,
    SLIDING_WINDOW_CHECKS,
    TILED_CHECKS,
)
from autograder.harness import CellReport, grade_notebook
from autograder.sandbox import Limits

from .conftest import REPO
from .fixtures.efficient_attention_mistakes import (
    ONLINE_SOFTMAX_MISTAKES,
    REPEAT_KV_MISTAKES,
    TILED_MISTAKES,
    WINDOW_MISTAKES,
)

SOURCE = REPO / "source/part3_innovations/efficient_attention.ipynb"
LIMITS = Limits(step_timeout=8.0, memory_bytes=3 << 30)

# solution cell -> (its test cell, its item, the cell's points, answers)
EXERCISES = {
    "online_softmax": ("online_softmax_tests", "efficient_attention.online_softmax", 3.0,
                       ONLINE_SOFTMAX_MISTAKES),
    "tiled_attention": ("tiled_attention_tests", "efficient_attention.tiled_attention", 4.0,
                        TILED_MISTAKES),
    "sliding_window_mask": ("sliding_window_mask_tests", "efficient_attention.sliding_window_mask",
                            3.0, WINDOW_MISTAKES),
    "repeat_kv": ("repeat_kv_tests", "efficient_attention.repeat_kv", 3.0, REPEAT_KV_MISTAKES),
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
            path = Path(tmp_path_factory.mktemp(f"run{k}")) / "efficient_attention.ipynb"
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
    peer = torch.tensor([[(i + s - t - window < j <= i + s - t) if is_causal
                          else abs(i + s - t - j) < window for j in range(s)]
                         for i in range(t)])  # fmt: skip
    assert case.expected.dtype == torch.bool and torch.equal(case.expected, peer)


@pytest.mark.parametrize("check", REPEAT_KV_CHECKS, ids=lambda c: c.name)
def test_repeat_kv_cases_match_gqa_attention(check: Check) -> None:
    """Attention over the repeated heads equals torch's own grouped-query attention."""
    case = check.build()
    x, n_rep = case.args
    q = torch.randn(x.size(0), x.size(1) * n_rep, 5, x.size(-1), dtype=x.dtype)
    ours = F.scaled_dot_product_attention(q, case.expected, case.expected)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, x, x, enable_gqa=True))
