"""course_config.py: nbgrader runs notebooks in fast mode, and loading the configuration (as
JupyterLab's Validate button does, inside the student's server) leaves the loading process's
environment alone, so the student's later kernels keep their own mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from .conftest import REPO

BIN = Path(sys.executable).parent


def test_loading_the_configuration_does_not_set_fast_mode() -> None:
    code = (
        "import os, runpy; os.environ.pop('GW_FAST', None)\n"
        "from traitlets.config import Config\n"
        f"runpy.run_path({str(REPO / 'course_config.py')!r}, "
        "init_globals={'get_config': lambda: Config()})\n"
        "print(os.environ.get('GW_FAST'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


def test_nbgrader_validate_runs_the_kernel_in_fast_mode(tmp_path: Path) -> None:
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, tmp_path / name)
    cell = new_code_cell("import os\nassert os.environ.get('GW_FAST') == '1', 'not fast'")
    meta = {"grade": True, "grade_id": "fast", "points": 1, "solution": False, "locked": True}
    cell.metadata["nbgrader"] = {**meta, "schema_version": 3}
    nb = tmp_path / "probe.ipynb"
    nbformat.write(new_notebook(cells=[cell]), str(nb))
    env = {k: v for k, v in os.environ.items() if k != "GW_FAST"}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    out = subprocess.run(
        [str(BIN / "nbgrader"), "validate", str(nb)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Success! Your notebook passes all the tests." in out.stdout, out.stdout + out.stderr
