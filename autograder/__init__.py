"""Hidden graders of the course (one module per topic) and the harness that runs them.

``python -m autograder NOTEBOOK [--json]`` grades notebook files. In a source notebook's
hidden-test block, ``grade("<topic>.<item>", obj)`` runs the item's checks on ``obj``
and prints the itemized report. When nbgrader autogrades a submission, the course's
preprocessor replaces that cell's output with the result of the trusted grader, which
runs the student's code in a sandbox (``autograder.harness.grade_notebook``).
"""

import os
from typing import Any


def grade(item: str, obj: Any) -> float | None:
    """Check ``obj`` against item ``item``; print the report; fail unless all checks pass.

    While nbgrader autogrades (``NBGRADER_EXECUTION`` is set) this does nothing: the
    trusted grader, outside the student's kernel, scores the cell instead. (Unless
    ``GW_GRADE_IN_KERNEL`` is set: stock nbgrader's way, checks in the student's kernel, which
    bench/bench_grading.py times beside ours.)
    """
    if os.environ.get("NBGRADER_EXECUTION") and not os.environ.get("GW_GRADE_IN_KERNEL"):
        print(f"{item}: graded outside this kernel by the course's trusted grader")
        return None
    from autograder.harness import format_cell, grade_object

    report = grade_object(item, obj)
    print(format_cell(report))
    if report.points < report.max_points:
        raise AssertionError(f"{item}: {report.points:g} / {report.max_points:g} points")
    return report.points
