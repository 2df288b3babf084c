"""The trusted graders: full marks for correct answers, exact partial scores for wrong ones,
and zero with a flag for submissions that cheat, exit, hang or hog memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from autograder.graders import ITEMS
from autograder.harness import grade_notebook
from autograder.sandbox import DIED, Limits

from .conftest import REPO
from .fixtures.attention_submissions import SETUP, SUBMISSIONS

LIMITS = Limits(step_timeout=8.0, memory_bytes=3 << 30)


def nbgrader_meta(grade_id: str, *, solution: bool, grade: bool, points: float = 0) -> dict:
    meta = {
        "grade_id": grade_id,
        "solution": solution,
        "grade": grade,
        "locked": not solution,
        "schema_version": 3,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def build_notebook(path: Path, sdpa: str, causal: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Attention"),
        nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["gw-setup"]}),
        nbformat.v4.new_code_cell(sdpa, metadata=nbgrader_meta("sdpa", solution=True, grade=False)),
        nbformat.v4.new_code_cell(
            "assert scaled_dot_product_attention is not None\n### BEGIN HIDDEN TESTS\n"
            "from autograder import grade\ngrade('attention.scaled_dot_product_attention')\n"
            "### END HIDDEN TESTS\n",
            metadata=nbgrader_meta("sdpa_tests", solution=False, grade=True, points=6),
        ),
        nbformat.v4.new_code_cell(
            causal, metadata=nbgrader_meta("causal", solution=True, grade=False)
        ),
        nbformat.v4.new_code_cell(
            "### BEGIN HIDDEN TESTS\nfrom autograder import grade\ngrade('attention.causal_mask')\n"
            "### END HIDDEN TESTS\n",
            metadata=nbgrader_meta("causal_tests", solution=False, grade=True, points=2),
        ),
    ]
    nbformat.write(nb, str(path))
    return path


def grade_submission(tmp_path: Path, name: str):
    sdpa, causal = SUBMISSIONS[name]
    sdpa = sdpa.replace("{repo}", str(REPO))
    report = grade_notebook(build_notebook(tmp_path / f"{name}.ipynb", sdpa, causal), LIMITS)
    return {c.grade_id: c for c in report.cells}


def failed(cell) -> dict[str, str]:
    return {c.name: c.message for c in cell.checks if not c.passed}


# name -> (sdpa points, causal points, substring of a failure message or flag of the sdpa cell);
# the honest mistakes are graded in tests/test_grader_attention.py, these are the harness's cases
EXPECTED = {
    "correct": (6.0, 2.0, None),
    "unanswered": (0.0, 0.0, "NotImplementedError"),
    "patched_allclose": (0.5, 2.0, "values differ"),
    "lying_tensor_subclass": (0.0, 2.0, "values differ"),
    "imports_reference": (0.0, 2.0, "integrity: import reference_impl"),
    "reads_reference_file": (0.0, 2.0, "integrity: open"),
    "exits": (0.0, 2.0, "integrity: sys.exit()"),
    "os_exit_in_second_cell": (6.0, 0.0, None),
    "infinite_loop_in_second_cell": (6.0, 0.0, None),
    "allocates_without_bound": (6.0, 0.0, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_submission_scores(tmp_path: Path, name: str) -> None:
    cells = grade_submission(tmp_path, name)
    sdpa_points, causal_points, message = EXPECTED[name]
    sdpa, causal = cells["sdpa_tests"], cells["causal_tests"]
    report = (
        f"sdpa: {sdpa.points} {sdpa.flags} {failed(sdpa)}\ncausal: {causal.points} {failed(causal)}"
    )
    assert (sdpa.points, causal.points) == (sdpa_points, causal_points), report
    if message:
        messages = [*sdpa.flags, *failed(sdpa).values(), sdpa.error or "", *failed(causal).values()]
        assert any(message in m for m in messages), report


def test_checks_are_worth_the_cell_points() -> None:
    assert ITEMS["attention.scaled_dot_product_attention"].points == 6.0
    assert ITEMS["attention.causal_mask"].points == 2.0
    assert all(len(item.checks) >= 5 for item in ITEMS.values())


def test_corrupted_notebook_is_a_report_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [ this is not json')
    report = grade_notebook(path, LIMITS)
    assert report.points == 0 and report.error and "could not read" in report.error


def test_cli_json_report(tmp_path: Path) -> None:
    sdpa, causal = SUBMISSIONS["no_scaling"]
    path = build_notebook(tmp_path / "nb.ipynb", sdpa, causal)
    out = subprocess.run(
        [sys.executable, "-m", "autograder", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    (report,) = json.loads(out.stdout)
    assert report["points"] == 2.5 and report["max_points"] == 8.0
    checks = report["cells"][0]["checks"]
    assert len(checks) == len(ITEMS["attention.scaled_dot_product_attention"].checks)
    assert {c["name"] for c in checks if not c["passed"]} >= {"scaling by 1/sqrt(d)"}


def test_grading_is_deterministic(tmp_path: Path) -> None:
    first = grade_submission(tmp_path, "causal_leaks_next_token")
    second = grade_submission(tmp_path, "causal_leaks_next_token")
    assert {k: (v.points, [c.passed for c in v.checks]) for k, v in first.items()} == {
        k: (v.points, [c.passed for c in v.checks]) for k, v in second.items()
    }


SENT_DTYPES = [  # what the graders send (float64, float32, int64, bool) or a student may return
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
]


@pytest.mark.parametrize("dtype", SENT_DTYPES, ids=str)
def test_tensors_of_every_dtype_cross_the_sandbox_both_ways(dtype: torch.dtype) -> None:
    from autograder import _child
    from autograder.sandbox import decode_value, encode_tensor

    t = (torch.arange(12.0).reshape(3, 4) % 5 * 7.25).to(dtype)  # 0 to 29, some fractions
    there = _child.decode(json.loads(json.dumps(encode_tensor(t))))
    back = decode_value(json.loads(json.dumps(_child.encode(there))))
    for got in (there, back):
        assert got.dtype == dtype and got.shape == t.shape and torch.equal(got, t)


def test_graders_run_under_pytest(tmp_path: Path) -> None:
    def run(notebook: Path) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "autograder.pytest_plugin",
                "--grade",
                str(notebook),
                "-p",
                "no:cacheprovider",
                "-q",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return out.stdout

    source = REPO / "source/part2_fundamentals/attention.ipynb"
    assert "19 passed" in run(source)
    sdpa, causal = SUBMISSIONS["mask_ignored"]
    output = run(build_notebook(tmp_path / "nb.ipynb", sdpa, causal))
    assert "1 failed, 13 passed" in output
    assert "[sdpa_tests] boolean padding mask (1 pt)" in output
    assert "sdpa_tests: 5 / 6" in output


PLAIN_VALUES = [
    {0: b"\x00", 256: b"<|endoftext|>", 300: b" the"},
    [(b" ", b"t"), (b"h", b"e")],
    {(104, 101): 3, (101, 108): 1},
    ["caf\u00e9 \U0001f642", 3, 2.5, None, True],
    (1, [2, (3, b"4")]),
]


@pytest.mark.parametrize("value", PLAIN_VALUES, ids=range(len(PLAIN_VALUES)))
def test_plain_values_cross_the_sandbox_both_ways(value) -> None:
    from autograder import _child
    from autograder.checks import _encode
    from autograder.sandbox import decode_value

    assert decode_value(json.loads(json.dumps(_child.encode(value)))) == value
    assert _child.decode(json.loads(json.dumps(_encode(value)))) == value


def test_plain_differences_are_located() -> None:
    from autograder.checks import describe_plain_difference as diff

    assert diff("out", [(b"a", b"b")], [(b"a", b"b")]) is None
    assert diff("out", [(b"a", b"c")], [(b"a", b"b")]) == "out[0][1]: got b'c', expected b'b'"
    assert diff("out", [1, 2], [1, 2, 3]) == "out: length 2, expected 3"
    assert diff("out", {1: 2}, {1: 2, 5: 6}) == "out: 1 keys missing, e.g. 5"
    assert diff("out", [[1]], [(1,)]) == "out[0]: expected a tuple, got a list"
    assert diff("out", {(1, 2): 4}, {(1, 2): 3}) == "out[(1, 2)]: got 4, expected 3"
    t = torch.tensor([1.0, 2.0])
    assert diff("out", (t + 1e-8, 0.1 + 1e-9), (t, 0.1)) is None
    assert diff("out", (t, 0.2), (t, 0.1)) == "out[1]: got 0.2, expected 0.1"
    assert "out[0]: 1 of 2 values differ" in str(diff("out", (t * 0 + 1, 1.0), (t, 1.0)))


def test_visible_test_comparisons_treat_equal_infinities_as_equal() -> None:
    from coursekit import describe_difference

    inf = float("inf")
    masked = torch.tensor([1.0, -inf, inf])
    assert describe_difference("out", masked.clone(), masked) is None
    problem = describe_difference("out", torch.tensor([1.0, 0.0, inf]), masked)
    assert problem is not None and "at index (1,) got 0, expected -inf" in problem
    assert describe_difference("out", torch.tensor([-inf]), torch.tensor([inf])) is not None


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def test_cli_grades_a_release_notebook_by_its_source_hidden_tests(tmp_path: Path) -> None:
    """A student's copy of release/ has no hidden grade() calls: the source's decide, by grade
    id, and its points, not the copy's metadata (which the student can edit)."""
    source = nbformat.read(str(REPO / "source/part2_fundamentals/attention.ipynb"), as_version=4)
    answers = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in source.cells}
    nb = nbformat.read(str(REPO / "release/part2_fundamentals/attention.ipynb"), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") in {"sdpa", "mha"}:
            cell.source = answers[meta["grade_id"]]
        if meta.get("grade_id") == "causal_tests":
            meta["points"] = 100  # an edited copy gains nothing
    student = tmp_path / "submitted" / "ada" / "part2_fundamentals" / "attention.ipynb"
    student.parent.mkdir(parents=True)
    nbformat.write(nb, str(student))
    out = run_cli(str(student))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{student}: 10.5 / 12.5 points\n")
    assert "graded by the hidden tests of" in out.stdout
    assert "source/part2_fundamentals/attention.ipynb" in out.stdout
    assert "[causal_tests] attention.causal_mask: 0 / 2 points" in out.stdout
    assert "[mha_tests] attention.MultiHeadAttention: 4.5 / 4.5 points" in out.stdout


def test_cli_says_when_a_notebook_has_nothing_to_grade(tmp_path: Path) -> None:
    path = tmp_path / "notes.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), path)
    out = run_cli(str(path))
    assert out.returncode == 2
    assert "no gradable cells" in out.stdout and f"{path} was not graded" in out.stderr


def test_a_check_that_loops_fails_the_rest_of_its_item_at_once(tmp_path: Path) -> None:
    """One timeout per item, not one per check (a looping __init__ cost ~9 minutes before)."""
    looping = "def causal_mask(t):\n    while True:\n        pass\n"
    path = build_notebook(tmp_path / "loops.ipynb", SUBMISSIONS["correct"][0], looping)
    limits = Limits(step_timeout=5.0, memory_bytes=3 << 30)
    start = time.perf_counter()
    cells = {c.grade_id: c for c in grade_notebook(path, limits).cells}
    elapsed = time.perf_counter() - start
    causal = cells["causal_tests"]
    assert cells["sdpa_tests"].points == 6 and causal.points == 0
    first, *rest = [c.message for c in causal.checks]
    assert first.startswith(DIED) and len(rest) == len(ITEMS["attention.causal_mask"].checks) - 1
    assert all(m.startswith("ran past the time limit of 5 s in an earlier check") for m in rest)
    # each later check would have waited 5 s more, plus a fresh child each
    assert elapsed < 5.0 * len(rest), f"{elapsed:.1f} s: the later checks waited too"


def test_the_notebook_budget_stops_the_run(tmp_path: Path) -> None:
    looping = "import time\ntime.sleep(30)\n"  # a cell, not a check: no item to cut short
    path = build_notebook(tmp_path / "slow.ipynb", SUBMISSIONS["correct"][0], looping)
    limits = Limits(step_timeout=20.0, memory_bytes=3 << 30, budget=8.0)
    start = time.perf_counter()
    cells = {c.grade_id: c for c in grade_notebook(path, limits).cells}
    assert time.perf_counter() - start < 20
    messages = [c.message for c in cells["causal_tests"].checks]
    assert cells["causal_tests"].points == 0
    assert all("grading time budget of 8 s for this notebook ran out" in m for m in messages)
