"""The grader of the training-loop notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a
message that names it, and the grader's expected values agree with independent peers
(``torch.optim.AdamW`` over many steps, ``clip_grad_norm_`` and ``F.cross_entropy`` against
formulas written out here).

To stay within the time budget, answers to different exercises share one sandbox run: run
k replaces each exercise's solution cell by its k-th answer (cells are graded independently,
which ``test_untouched_cells_keep_full_marks`` checks; no answer calls another exercise's
function).
"""

from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch

from autograder.checks import Check
from autograder.graders.training_loop import (
    ADAMW_CHECKS,
    BATCH_CHECKS,
    CLIP_CHECKS,
    CROSS_ENTROPY_CHECKS,
    LR_CHECKS,
    torch_adamw_step,
)
from autograder.harness import grade_notebook
from coursekit.notebooks import grade_id

from .conftest import REPO
from .fixtures.training_loop_mistakes import (
    ADAMW_MISTAKES,
    CLIP_MISTAKES,
    CROSS_ENTROPY_MISTAKES,
    GET_BATCH_MISTAKES,
    LR_AT_MISTAKES,
    TRAIN_STEP_MISTAKES,
    TRAINING_BUDGET_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    LIMITS,
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part4_training/training_loop.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "cross_entropy": CROSS_ENTROPY_MISTAKES,
        "get_batch": GET_BATCH_MISTAKES,
        "adamw_step": ADAMW_MISTAKES,
        "lr_at": LR_AT_MISTAKES,
        "clip_grad_norm": CLIP_MISTAKES,
        "train_step": TRAIN_STEP_MISTAKES,
        "training_budget": TRAINING_BUDGET_MISTAKES,
    },
)
DEPENDS_ON_OTHERS = ("train_step",)  # its source solution calls the other exercises


def test_train_step_is_built_from_the_students_own_pieces(tmp_path: Path) -> None:
    """The source solution of train_step with a wrong lr_at above it loses the points of
    the iterations whose learning rate that changes: the exercise composes the student's
    functions, as the notebook says."""
    nb = nbformat.read(str(SOURCE), as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "lr_at":
            cell.source = LR_AT_MISTAKES["decays_to_zero"][0]
    path = tmp_path / "training_loop.ipynb"
    nbformat.write(nb, str(path))
    cells = {c.grade_id: c for c in grade_notebook(path, LIMITS).cells}
    assert cells["lr_at_tests"].points == LR_AT_MISTAKES["decays_to_zero"][1]
    assert 0 < cells["train_step_tests"].points < 4.0


# --- the grader's expected values against independent peers ---------------------------------


def _adamw_formula(param, grad, m, v, step, lr, beta1, beta2, eps, wd):  # type: ignore[no-untyped-def]
    """AdamW as written in Loshchilov & Hutter (2019), with PyTorch's order of operations."""
    param = param * (1 - lr * wd)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v


@pytest.mark.parametrize("check", ADAMW_CHECKS, ids=lambda c: c.name)
def test_adamw_expected_matches_the_formula(check: Check) -> None:
    case = check.build()
    peer = _adamw_formula(*case.args)
    for got, want in zip(case.expected, peer, strict=True):
        torch.testing.assert_close(got, want, atol=case.atol, rtol=case.rtol)


def test_adamw_helper_and_formula_follow_torch_for_60_steps() -> None:
    """Repeated single steps from the carried state (grader helper and formula) stay with
    one torch.optim.AdamW run over 60 steps of changing gradients."""
    g = torch.Generator().manual_seed(0)
    p = torch.nn.Parameter(torch.randn(6, 5, generator=g, dtype=torch.float64))
    opt = torch.optim.AdamW([p], lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    mine = helper = (p.detach().clone(), torch.zeros_like(p), torch.zeros_like(p))
    for step in range(1, 61):
        grad = torch.randn(6, 5, generator=g, dtype=torch.float64) * 10 ** (step % 5 - 2)
        p.grad = grad.clone()
        opt.step()
        mine = _adamw_formula(mine[0], grad, mine[1], mine[2], step, 3e-3, 0.9, 0.95, 1e-8, 0.1)
        helper = torch_adamw_step(
            helper[0], grad, helper[1], helper[2], step, 3e-3, 0.9, 0.95, 1e-8, 0.1
        )
        for state in (mine, helper):
            torch.testing.assert_close(state[0], p.detach(), atol=1e-12, rtol=1e-10)
    state = opt.state[p]
    for carried in (mine, helper):
        torch.testing.assert_close(carried[1], state["exp_avg"], atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(carried[2], state["exp_avg_sq"], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("check", CLIP_CHECKS, ids=lambda c: c.name)
def test_clipping_matches_the_formula(check: Check) -> None:
    case = check.build()
    grads, max_norm = case.args
    clipped, norm = case.expected
    total = math.sqrt(sum(float((x.double() ** 2).sum()) for x in grads))
    coef = min(1.0, max_norm / (total + 1e-6))
    assert norm.shape == () and abs(float(norm) - total) <= 1e-5 * total + 1e-9
    for got, x in zip(clipped, grads, strict=True):
        torch.testing.assert_close(got.double(), x.double() * coef, atol=1e-9, rtol=1e-5)
    assert all(a.dtype == b.dtype for a, b in zip(clipped, grads, strict=True))


@pytest.mark.parametrize("check", CROSS_ENTROPY_CHECKS, ids=lambda c: c.name)
def test_cross_entropy_matches_the_formula(check: Check) -> None:
    """The mean of -log p(target), from a log-softmax written out in float64."""
    case = check.build()
    logits, targets = case.args
    z = logits.double().reshape(-1, logits.shape[-1])
    t = targets.reshape(-1)
    m = z.max(dim=1, keepdim=True).values
    log_p = z - m - (z - m).exp().sum(dim=1, keepdim=True).log()
    peer = -log_p[torch.arange(len(t)), t].mean()
    assert torch.isfinite(case.expected)
    torch.testing.assert_close(case.expected.double(), peer, atol=case.atol, rtol=1e-6)
    if case.grad_args:
        one_hot = torch.nn.functional.one_hot(t, z.shape[1]).double()
        grad = (log_p.exp() - one_hot) / len(t)
        torch.testing.assert_close(
            case.expected_grads[0].reshape(grad.shape).double(), grad, atol=1e-12, rtol=1e-9
        )


@pytest.mark.parametrize("check", LR_CHECKS, ids=lambda c: c.name)
def test_schedule_matches_the_formula(check: Check) -> None:
    case = check.build()
    it, max_lr, min_lr, warmup, max_iters = case.args
    if it < warmup:
        peer = max_lr * (it + 1) / warmup
    elif it >= max_iters:
        peer = min_lr
    else:
        angle = math.pi * (it - warmup) / (max_iters - warmup)
        peer = min_lr + (max_lr - min_lr) * math.cos(angle / 2) ** 2
    assert isinstance(case.expected, float) and case.expected == pytest.approx(peer, rel=1e-12)


@pytest.mark.parametrize("check", BATCH_CHECKS, ids=lambda c: c.name)
def test_batches_are_the_drawn_windows(check: Check) -> None:
    case = check.build()
    data, batch_size, block_size, seed = case.args
    x, y = case.expected
    starts = torch.randint(
        len(data) - block_size, (batch_size,), generator=torch.Generator().manual_seed(seed)
    )
    assert x.shape == y.shape == (batch_size, block_size)
    assert x.dtype == y.dtype == torch.int64
    for i, s in enumerate(starts.tolist()):
        assert x[i].tolist() == data[s : s + block_size].tolist()
        assert y[i].tolist() == data[s + 1 : s + 1 + block_size].tolist()
