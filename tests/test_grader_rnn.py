"""The grader of the rnn_language_model notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a message
that names it, and the grader's expected values agree with torch's own RNN modules.

Answers to different exercises share one sandbox run (run k puts each exercise's k-th answer
in place); the answers for ``RNN`` bring their own cell, so that no answer depends on another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from autograder.checks import Check
from autograder.graders import ITEMS
from autograder.graders.rnn import RNN_CELL_CHECKS, RNN_CHECKS, SAMPLE_CHECKS, TBPTT_CHECKS
from autograder.harness import CellReport, grade_notebook
from autograder.sandbox import Limits

from .conftest import REPO
from .fixtures.rnn_mistakes import RNN_CELL_MISTAKES, RNN_MISTAKES, SAMPLE_MISTAKES, TBPTT_MISTAKES

SOURCE = REPO / "source/part1_evolution/rnn_language_model.ipynb"
LIMITS = Limits(step_timeout=8.0, memory_bytes=3 << 30)

# solution cell -> (its test cell, its item, the cell's points, answers)
EXERCISES = {
    "rnn_cell": ("rnn_cell_tests", "rnn.rnn_cell", 3.0, RNN_CELL_MISTAKES),
    "rnn_forward": ("rnn_forward_tests", "rnn.rnn_forward", 3.0, RNN_MISTAKES),
    "tbptt": ("tbptt_tests", "rnn.tbptt", 3.0, TBPTT_MISTAKES),
    "sample": ("sample_tests", "rnn.sample", 3.0, SAMPLE_MISTAKES),
}
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
            path = Path(tmp_path_factory.mktemp(f"run{k}")) / SOURCE.name
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
