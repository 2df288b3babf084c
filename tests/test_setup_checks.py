"""The setup notebook's checks: each passes on this machine, each fails on a broken one with
one line saying exactly what to run, and nothing raises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coursekit import setup_checks as checks

from .conftest import REPO


def test_this_machine_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    results = checks.run_all(train=False)
    assert checks.report(results), capsys.readouterr().out
    assert {r.name for r in results} >= {
        "python",
        "packages",
        "kernel",
        "device",
        "offline corpus",
        "TinyStories",
        "reference_impl",
    }


def test_wrong_python_says_how_to_fix() -> None:
    result = checks.check_python((3, 10))
    assert result.ok is False and "3.10" in result.detail
    assert "python3.11" in result.fix and "\n" not in result.fix


def test_wrong_and_missing_packages_are_named(tmp_path: Path) -> None:
    text = (REPO / "pyproject.toml").read_text()
    text = text.replace('"numpy==2.4.6"', '"numpy==1.0.0"').replace(
        '"pytest==9.2.0"', '"pytest==9.2.0",\n    "not-a-package-gw==1.0"'
    )
    (tmp_path / "pyproject.toml").write_text(text)
    result = checks.check_packages(tmp_path)
    assert result.ok is False
    assert "numpy 2.4.6 (pinned 1.0.0)" in result.detail
    assert "not-a-package-gw missing (pinned 1.0)" in result.detail
    assert "pip install -e" in result.fix and str(tmp_path) in result.fix


def test_no_course_files_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    result = checks.check_packages(tmp_path)
    assert result.ok is False and "pyproject.toml" in result.detail and result.fix


def test_reference_impl_visibility_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    assert checks.check_reference_impl().ok is None  # installed here: a self-study clone
    monkeypatch.setattr(checks.importlib.util, "find_spec", lambda name: None)
    assert checks.check_reference_impl().ok is True


def test_smoke_training_loss_falls() -> None:
    result, losses = checks.smoke_training(seconds=0.5)
    assert result.ok is True, result.detail
    assert losses[-1] < losses[0] and not result.fix


def test_smoke_training_that_does_not_learn_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        checks.torch.optim, "AdamW", lambda params, lr: torch.optim.SGD(params, lr=0.0)
    )
    result, _ = checks.smoke_training(seconds=0.2)
    assert result.ok is False and "torch==2.13.0" in result.fix


def test_report_gives_one_fix_line_per_failure(capsys: pytest.CaptureFixture[str]) -> None:
    results = [
        checks.Result("a", True, "fine"),
        checks.Result("b", False, "broken", "run X"),
        checks.Result("c", None, "note"),
    ]
    assert checks.report(results) is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "[ok  ] a: fine",
        "[FAIL] b: broken",
        "       fix: run X",
        "[info] c: note",
    ]
    assert "1 failed: b" in lines[-1]


def test_command_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "coursekit.setup_checks"],
        capture_output=True,
        text=True,
        timeout=600,
        env={"GW_FAST": "1", "PATH": "/usr/bin"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "smoke training" in out.stdout and "all checks passed" in out.stdout
