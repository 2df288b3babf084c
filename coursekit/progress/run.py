"""Running a temporary copy of a notebook's folder in a fresh kernel of this Python (nbclient,
fast mode, a time limit per cell), and turning what its cells raised into each exercise's
status and a one-line reason; the student's own files are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.notebooks import nbgrader_meta
from coursekit.progress.model import FAIL, NOT_RUN, NOT_STARTED, PASS
from coursekit.progress.scan import _Slot

RUNNING = "GW_PROGRESS_RUNNING"  # set in the kernel that runs a copy: no progress check inside

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class _Run:
    """What happened to the code cells of a temporary copy."""

    errors: dict[int, str] = field(default_factory=dict)  # cell index -> its error, one line
    reached: int = 0  # the cells before this index ran
    stopped: str = ""  # why the run ended early
    cacheable: bool = True


def _error_line(output: dict[str, Any]) -> str:
    name, value = output.get("ename", "Error"), str(output.get("evalue", "")).strip()
    value = re.sub(r"\((?:\d+\.py|<[^>]*>), line (\d+)\)", r"(line \1)", value)
    if name == "NotImplementedError" and not value:
        value = "a stub still runs (here, or in an exercise this one uses)"
    if not value:  # a bare assert: show the line that failed
        frames = [_ANSI.sub("", line) for line in output.get("traceback", [])]
        arrows = re.findall(r"^-+> *\d+ (.*)$", "\n".join(frames), re.M)
        value = f"at `{arrows[-1].strip()}`" if arrows else ""
    line = f"{name}: {value.splitlines()[0]}" if value else name
    return line if len(line) <= 200 else line[:197] + "..."


def _cell_name(cell: dict[str, Any], index: int) -> str:
    grade_id = nbgrader_meta(cell).get("grade_id")
    return f"cell {index + 1} ({grade_id})" if grade_id else f"cell {index + 1}"


def _execute(path: Path, timeout: float) -> _Run:
    """Run a temporary copy of ``path``'s folder in a fresh kernel of this Python."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    run = _Run()
    with tempfile.TemporaryDirectory(prefix="gw-progress-") as tmp:
        work = Path(tmp) / "copy" / path.parent.name
        shutil.copytree(path.parent, work, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        nb = nbformat.read(work / path.name, as_version=4)
        spec = Path(tmp) / "kernels" / "python"
        spec.mkdir(parents=True)
        argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--HistoryManager.hist_file=:memory:",
        ]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "language": "python", "display_name": "Python"})
        )
        km = AsyncKernelManager(
            kernel_name="python",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]),
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=int(timeout),
            allow_errors=True,
            interrupt_on_timeout=True,
            shutdown_kernel="immediate",
            error_on_timeout={"ename": "Timeout", "evalue": "", "traceback": []},
        )
        env = {**os.environ, "GW_FAST": "1", RUNNING: "1"}
        try:
            with client.setup_kernel(  # cleanup_kc: shut the kernel down, though km is ours
                env=env,
                cwd=str(work),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cleanup_kc=True,
            ):
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    where = _cell_name(cell, index)
                    start = time.monotonic()
                    try:
                        client.execute_cell(cell, index)
                    except DeadKernelError:
                        run.stopped = f"the kernel died in {where}: out of memory, or a crash"
                        break
                    errors = [o for o in cell.outputs if o.output_type == "error"]
                    if time.monotonic() - start >= timeout:
                        if not any(e.ename == "KeyboardInterrupt" for e in errors):
                            run.stopped = f"{where} ran over the {timeout:g} s limit"
                            break  # the interrupt did not get through: the kernel is stuck
                        run.errors[index] = f"ran over the {timeout:g} s limit, interrupted"
                    elif errors:
                        run.errors[index] = _error_line(errors[0])
                    run.reached = index + 1
        except Exception as e:  # the kernel did not start, or stopped answering
            run.stopped = run.stopped or f"could not run a kernel: {type(e).__name__}: {e}"
            run.cacheable = run.reached > 0
    return run


def _status(slot: _Slot, cells: list[dict[str, Any]], run: _Run | None) -> tuple[str, str]:
    test = slot.test
    if not slot.started:
        return NOT_STARTED, ""
    if test is None:
        return NOT_RUN, "its visible-test cell is missing: copy it back from a fresh release"
    if run is None:
        return NOT_RUN, "not executed (no result cached for this code)"
    if test >= run.reached:
        return NOT_RUN, run.stopped or "not executed"
    if test not in run.errors:
        return PASS, ""
    if run.errors[test].startswith("ran over"):
        return NOT_RUN, f"the visible tests {run.errors[test]}"
    if slot.solution in run.errors:
        return FAIL, f"your code: {run.errors[slot.solution]}"
    given = [
        i
        for i in range(test)
        if i in run.errors
        and nbgrader_meta(cells[i]).get("locked")
        and not nbgrader_meta(cells[i]).get("grade")
    ]
    if given:
        where = _cell_name(cells[given[0]], given[0])
        return NOT_RUN, f"the given {where} failed: {run.errors[given[0]]}"
    return FAIL, run.errors[test]
