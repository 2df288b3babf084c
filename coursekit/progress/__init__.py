"""Self-paced progress: every exercise of the course and whether its visible tests pass.

In a notebook cell: ``from coursekit import show_progress; show_progress()``. In a terminal:
``python -m coursekit.progress [--root DIR] [--json] [--chart FILE.png] [--no-execute]``.

Nothing here grades and nothing here changes your files: each notebook with at least one
started exercise is run as a temporary copy (fast mode, in a fresh kernel of this Python),
and the outputs of its visible-test cells are read. The hidden graders, which give the
grade, are neither used nor revealed. Results are cached by the code of the notebook.
"""

# (This docstring is also the --help text of ``python -m coursekit.progress``.)
# One job per module: model (what a report holds), scan (finding and reading the notebooks),
# run (running a copy), cache (the results cache), course (checking the course), render (text,
# HTML, chart), show (show_progress, for a notebook), cli (the command line).

from coursekit.progress.cache import CACHE_ENTRIES, CACHE_VERSION, cache_path
from coursekit.progress.cli import main
from coursekit.progress.course import course_progress
from coursekit.progress.model import (
    FAIL,
    HIDDEN_GRADERS,
    NOT_RUN,
    NOT_STARTED,
    PASS,
    CourseProgress,
    Exercise,
    NotebookProgress,
)
from coursekit.progress.render import chart
from coursekit.progress.run import RUNNING
from coursekit.progress.scan import ORDER, find_release, notebooks
from coursekit.progress.show import show_progress

__all__ = [
    "CACHE_ENTRIES",
    "CACHE_VERSION",
    "FAIL",
    "HIDDEN_GRADERS",
    "NOT_RUN",
    "NOT_STARTED",
    "ORDER",
    "PASS",
    "RUNNING",
    "CourseProgress",
    "Exercise",
    "NotebookProgress",
    "cache_path",
    "chart",
    "course_progress",
    "find_release",
    "main",
    "notebooks",
    "show_progress",
]
