"""Shared fixtures: deterministic torch, and the course data in ../shared when present."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # pytest -n 2 already uses both cores


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"course data not found at {SHARED_DATA} (only CI has ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def source_report(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The grader test module's SOURCE notebook, graded once (tests/notebook_grading.py)."""
    from .notebook_grading import grade_cells

    return grade_cells(request.module.SOURCE)


@pytest.fixture(scope="module")
def graded_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Runs of the module's EXERCISES' answers (tests/notebook_grading.py)."""
    from .notebook_grading import AnswerRuns

    module = request.module
    return AnswerRuns(
        module.SOURCE, module.EXERCISES, tmp_path_factory, getattr(module, "BUILDS_ON", None)
    )


@pytest.fixture(scope="module")
def exercises(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.module.EXERCISES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One ``answer`` (solution cell, answer name) per answer of the module's EXERCISES."""
    if "answer" in metafunc.fixturenames:
        from .notebook_grading import answer_ids

        answers = answer_ids(metafunc.module.EXERCISES)
        metafunc.parametrize("answer", answers, ids=[f"{c}-{n}" for c, n in answers])


def run_script(
    script: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python scripts/<script> args`` from the repository root, its output captured."""
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard, not a speed test
    )
