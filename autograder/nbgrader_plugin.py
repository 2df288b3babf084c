"""The one seam with nbgrader: preprocessors that ``course_config.py`` puts in the
autograde pipeline.

- :class:`SafeExecute` runs the notebook in a kernel as nbgrader's ``Execute`` does, but a
  kernel that dies (``os._exit``, a crash) or stops answering ends execution instead of
  failing the whole submission, so the student is still graded; the kernel runs in Linux
  namespaces where bubblewrap works (``autograder/kernel_sandbox.py``).
- :class:`TrustedGrades` runs just before ``SaveAutoGrades``. It grades the notebook with
  :func:`autograder.harness.grade_notebook_node` (student code in a sandboxed child, the
  comparison here) and replaces every graded test cell's outputs with the itemized report
  and an ``execute_result`` holding the score, from which ``SaveAutoGrades`` records the
  points. Nothing the student's kernel printed or displayed reaches the gradebook.
- :func:`check_sandbox`, nbgrader's ``pre_convert_hook`` for Autograde: with
  ``TrustedGrades.require_sandbox`` set and no usable bubblewrap, ``nbgrader autograde``
  stops with one line before the first student is touched (not once per student); else it
  starts the trusted grader's fork server, whose ``import torch`` then overlaps the first
  kernel's start.
"""

from __future__ import annotations

from typing import Any

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Float, Integer
from traitlets.config import Application, Config

from autograder.harness import CellReport, format_cell, grade_notebook_node
from autograder.kernel_sandbox import SandboxedKernelManager
from autograder.namespace import SandboxUnavailable
from autograder.sandbox import Limits, prestart
from coursekit.notebooks import nbgrader_meta


class SafeExecute(Execute):
    """nbgrader's Execute that survives a dead or unresponsive kernel, and starts it in
    namespaces where bubblewrap works (:class:`SandboxedKernelManager`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> Any:
        try:
            return super().preprocess(nb, resources)
        except (DeadKernelError, CellTimeoutError) as e:
            self.log.warning("kernel stopped while executing the notebook: %s", e)
            return nb, resources


def _stream(text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name="stdout", text=text + "\n")


def _score(points: float) -> NotebookNode:
    return NotebookNode(
        output_type="execute_result",
        execution_count=None,
        metadata={},
        data={"text/plain": repr(float(points))},
    )


class TrustedGrades(NbGraderPreprocessor):
    """Sets each graded test cell's outputs (and so its score) from the trusted grader."""

    step_timeout = Float(60.0, help="Seconds one student cell or one check may run.").tag(
        config=True
    )
    memory_mb = Integer(4096, help="Address-space cap of the grading child (MiB).").tag(config=True)
    budget = Float(900.0, help="Seconds of wall clock for grading one notebook.").tag(config=True)
    require_sandbox = Bool(
        False, help="Refuse to grade when bubblewrap cannot isolate the students' code."
    ).tag(config=True)

    def limits(self) -> Limits:
        return Limits(
            step_timeout=self.step_timeout,
            memory_bytes=self.memory_mb << 20,
            budget=self.budget,
            require_namespace=self.require_sandbox,
        )

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> Any:
        name = str(resources.get("nbgrader", {}).get("notebook", "notebook"))
        limits = self.limits()
        report = grade_notebook_node(nb, name, limits)
        cells = {c.grade_id: c for c in report.cells}
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
                continue
            max_points = float(meta.get("points", 0))
            graded = cells.get(str(meta.get("grade_id")))
            if graded is None:  # fail closed: no trusted grader, no points
                graded = CellReport(str(meta.get("grade_id")), "?", max_points)
                graded.error = "this test cell has no hidden grader call; it scores 0"
            points = min(max(graded.points, 0.0), max_points)
            cell.outputs = [_stream(format_cell(graded)), _score(points)]
        return nb, resources


def check_sandbox(**_: Any) -> None:
    """nbgrader's pre_convert_hook: stop the whole command (``SystemExit`` passes nbgrader's
    per-student ``except Exception``) when the sandbox is required and unavailable."""
    config = Application.instance().config if Application.initialized() else Config()
    try:
        prestart(TrustedGrades(config=config).limits())
    except SandboxUnavailable as e:
        raise SystemExit(f"error: {e}") from None
