"""The notebook entry point: ``show_progress()`` in a cell checks the course and displays the
HTML table and the bar chart in the cell's output (``from coursekit import show_progress``).
"""

from __future__ import annotations

from pathlib import Path

from coursekit.progress.course import course_progress
from coursekit.progress.grading import grade_course
from coursekit.progress.model import CourseProgress
from coursekit.progress.render import _png, chart


def show_progress(
    root: Path | None = None, *, execute: bool = True, grade: bool = False
) -> CourseProgress:
    """For a notebook cell: the progress table and chart, displayed; returns the progress.
    ``grade=True`` adds the hidden graders' score of each exercise (a full clone only)."""
    from IPython.display import HTML, Image, display

    progress = course_progress(root, execute=execute, log=print)
    if grade and execute:
        grade_course(progress, log=print)
    display(HTML(progress.html()))
    if progress.notebooks:
        display(Image(data=_png(chart(progress))))
    return progress
