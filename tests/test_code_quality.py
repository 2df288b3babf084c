"""ruff (lint and format) and mypy are part of the test suite."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "args", [("check", "."), ("format", "--check", ".")], ids=["lint", "format"]
)
def test_ruff(args: tuple[str, ...]) -> None:
    # no cache: a cached pass can hide what a fresh clone (CI) reports, e.g. an import
    # sorted as first-party because of a new top-level folder
    result = run(sys.executable, "-m", "ruff", *args, "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_clean() -> None:
    result = run(sys.executable, "-m", "mypy")  # files and strictness from pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr
