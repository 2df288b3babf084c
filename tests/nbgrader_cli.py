"""The real nbgrader, run from tests: the venv's ``bin/`` first on PATH (nbgrader shells out to
``alembic``, which lives beside the venv's python)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def nbgrader_env(**extra: str) -> dict[str, str]:
    """This process's environment with the venv's ``bin/`` first on PATH, plus ``extra``."""
    return os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"} | extra


def nbgrader(
    course: Path, *args: str, check: bool = True, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """``nbgrader *args`` in ``course`` (fast mode); with ``check``, a failure raises with its
    stderr."""
    result = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env=nbgrader_env(GW_FAST="1"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result
