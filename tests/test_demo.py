"""The main job runs end to end (with a short training) and reports the bundled class."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_demo_autogrades_the_class_and_trains(tmp_path: Path) -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [sys.executable, "scripts/demo.py", "--iters", "20", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ada    12.5 / 13.5" in out.stdout  # the written answer waits for manual grading
    assert "ben     2.5 / 13.5" in out.stdout and "cleo    6.0 / 13.5" in out.stdout
    assert "validation loss" in out.stdout and "sample: Once upon a time" in out.stdout
    assert (tmp_path / "run" / "loss.png").is_file() and (tmp_path / "run" / "model.pt").is_file()
