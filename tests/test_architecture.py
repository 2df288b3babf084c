"""Imports run one way: import-linter's contracts (pyproject.toml, [tool.importlinter]) hold,
and an upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

PACKAGES = ("autograder", "reference_impl", "coursekit", "coursedata")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).absolute().with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(exe), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_hold() -> None:
    run = lint_imports(REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 kept, 0 broken" in run.stdout


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """The old cycle (the model importing generation) and the students' helpers importing the
    reference are each reported."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    with open(tmp_path / "reference_impl" / "models" / "model.py", "a") as f:
        f.write("\nfrom reference_impl.generation import generate  # noqa\n")
    with open(tmp_path / "coursekit" / "testing.py", "a") as f:
        f.write("\nimport reference_impl.models  # noqa\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "2 kept, 2 broken" in run.stdout, run.stdout[-3000:]
    assert "reference_impl.models.model -> reference_impl.generation" in run.stdout
    assert "coursekit.testing -> reference_impl.models" in run.stdout
