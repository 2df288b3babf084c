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

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Check
from autograder.graders import ITEMS
from autograder.graders.block import LAYERNORM_CHECKS, RMSNORM_CHECKS, SWIGLU_CHECKS
from autograder.harness import CellReport, grade_notebook, is_student_cell
from autograder.sandbox import Limits
from coursekit import assert_close
from reference_impl.models import ModelConfig, MultiHeadAttention

from .conftest import REPO
from .fixtures.block_mistakes import (
    BLOCK_MISTAKES,
    GPT_MISTAKES,
    LAYERNORM_MISTAKES,
    RMSNORM_MISTAKES,
    SWIGLU_MISTAKES,
)

SOURCE = REPO / "source/part2_fundamentals/transformer_block.ipynb"
LIMITS = Limits(step_timeout=8.0, memory_bytes=3 << 30)

# solution cell -> (its test cell, its item, the cell's points, answers)
EXERCISES = {
    "layernorm": ("layernorm_tests", "block.LayerNorm", 4.0, LAYERNORM_MISTAKES),
    "rmsnorm": ("rmsnorm_tests", "block.RMSNorm", 3.0, RMSNORM_MISTAKES),
    "swiglu": ("swiglu_tests", "block.SwiGLU", 3.0, SWIGLU_MISTAKES),
    "block": ("block_tests", "block.TransformerBlock", 4.0, BLOCK_MISTAKES),
    "gpt": ("gpt_tests", "block.GPT", 4.0, GPT_MISTAKES),
}
BUILDS_ON = {"block": ["rmsnorm", "swiglu"], "gpt": ["rmsnorm", "swiglu", "block"]}
ANSWERS = [(cell, name) for cell, ex in EXERCISES.items() for name in ex[3]]
RUNS = max(len(ex[3]) for ex in EXERCISES.values())

Reports = dict[str, CellReport]


def failed(cell: CellReport) -> dict[str, str]:
    return {c.name: c.message for c in cell.checks if not c.passed}


def grade_id(cell: Any) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


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
            solutions = {grade_id(c): c.source for c in nb.cells if grade_id(c) in EXERCISES}
            for cell in nb.cells:
                gid = grade_id(cell)
                if gid not in EXERCISES:
                    continue
                answers = EXERCISES[gid][3]
                answer = list(answers.values())[k][0] if k < len(answers) else cell.source
                cell.source = "\n\n".join([*(solutions[d] for d in BUILDS_ON.get(gid, [])), answer])
            path = Path(tmp_path_factory.mktemp(f"run{k}")) / "transformer_block.ipynb"
            nbformat.write(nb, str(path))
            cache[k] = {c.grade_id: c for c in grade_notebook(path, LIMITS).cells}
        return cache[k]

    return run


def test_source_notebook_gets_full_marks(source_report: Reports) -> None:
    assert set(source_report) == {ex[0] for ex in EXERCISES.values()}
    for test_cell, item, points, _ in EXERCISES.values():
        cell = source_report[test_cell]
        assert cell.item == item
        assert cell.points == points and not cell.flags and not cell.error, failed(cell)


def test_cell_points_equal_item_points() -> None:
    nb = nbformat.read(str(SOURCE), as_version=4)
    points = {grade_id(c): c.metadata["nbgrader"].get("points") for c in nb.cells if grade_id(c)}
    for test_cell, item, cell_points, answers in EXERCISES.values():
        assert points[test_cell] == cell_points == ITEMS[item].points
        assert len(ITEMS[item].checks) >= 5
        assert all(0.5 <= c.points <= 1.5 for c in ITEMS[item].checks)
        assert sum(1 for _, pts, _ in answers.values() if pts < cell_points) >= 3
    assert points["understanding"] == 1  # the written answer, graded by hand


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
                assert graded_run(k)[test_cell].points == points, (k, test_cell)


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
    cfg = ModelConfig(vocab_size=1, context_length=16, d_model=48, n_heads=6, n_layers=1,
                      bias=False)  # fmt: skip
    reference = MultiHeadAttention(cfg)
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0.0, 0.3)
    given = namespace["MultiHeadAttention"](48, 6)
    given.load_state_dict(reference.state_dict())  # strict: the same names and shapes
    x = torch.randn(2, 9, 48, requires_grad=True)
    ours, theirs = given(x), reference(x)
    assert_close(ours, theirs, "output", atol=1e-5)
    g = torch.randn_like(theirs)
    (grad_ours,) = torch.autograd.grad(ours, x, g)
    (grad_theirs,) = torch.autograd.grad(theirs, x, g)
    assert_close(grad_ours, grad_theirs, "input gradient", atol=1e-5)


# --- the grader's expected values against torch's own layers ---------------------------------


@pytest.mark.parametrize("check", LAYERNORM_CHECKS, ids=lambda c: c.name)
def test_layernorm_expected_matches_torch(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    (x,) = case.args
    state, eps = case.module.state_dict, case.module.kwargs.get("eps", 1e-5)
    peer = F.layer_norm(x.double(), x.shape[-1:], state["weight"].double(),
                        state["bias"].double(), eps=eps)  # fmt: skip
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
