"""What a progress report holds: the status of each exercise (one of four), the points of each
notebook and of the course, the next exercise to work on, the overall and next lines, and the
report as a dict for ``--json``; how it is drawn for people is :mod:`coursekit.progress.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOT_STARTED = "not started"
PASS = "visible tests pass"
FAIL = "visible tests fail"
NOT_RUN = "not run"

HIDDEN_GRADERS = (
    "A visible pass is not yet the grade: the hidden graders additionally check values and "
    "gradients on other inputs, other shapes and edge cases."
)


@dataclass
class Exercise:
    """One solution cell and its visible-test cell."""

    name: str  # the solution cell's grade_id
    title: str
    points: float
    status: str  # NOT_STARTED, PASS, FAIL or NOT_RUN
    detail: str = ""  # why it fails or did not run: one line
    test_id: str = ""  # the grade_id of its graded test cell
    graded_points: float | None = None  # from the hidden graders (``--grade``), else None
    graded: str = ""  # "graded 5.5/6: <the first failed check>", with ``--grade``


@dataclass
class Question:
    """A written "check your understanding" question: answered, or still the stub."""

    name: str  # the answer cell's grade_id
    title: str
    points: float
    answered: bool


@dataclass
class NotebookProgress:
    assignment: str
    notebook: str  # file name without .ipynb
    title: str
    exercises: list[Exercise] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    problem: str = ""  # the whole notebook could not be read or run: one line
    checked: str = ""  # "run" (executed now), "cache", or "" (nothing started, or no execution)

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def passing_points(self) -> float:
        return sum(e.points for e in self.exercises if e.status == PASS)


@dataclass(repr=False)
class CourseProgress:
    root: Path
    notebooks: list[NotebookProgress]
    grading: str = ""  # with ``--grade``: what the hidden graders did, one line

    @property
    def graded(self) -> bool:
        return any(e.graded_points is not None for nb in self.notebooks for e in nb.exercises)

    @property
    def graded_points(self) -> float:
        return sum(e.graded_points or 0.0 for nb in self.notebooks for e in nb.exercises)

    @property
    def points(self) -> float:
        return sum(nb.points for nb in self.notebooks)

    @property
    def passing_points(self) -> float:
        return sum(nb.passing_points for nb in self.notebooks)

    @property
    def next(self) -> tuple[NotebookProgress, Exercise] | None:
        """The first exercise in course order whose visible tests do not pass yet."""
        return next(
            ((nb, e) for nb in self.notebooks for e in nb.exercises if e.status != PASS), None
        )

    def next_line(self) -> str:
        if self.next is None:
            return "next: none, the visible tests pass in every exercise"
        nb, ex = self.next
        return f"next: {nb.assignment}/{nb.notebook} exercise {ex.name}"

    def overall_line(self) -> str:
        exercises = [e for nb in self.notebooks for e in nb.exercises]
        passing = sum(e.status == PASS for e in exercises)
        questions = [q for nb in self.notebooks for q in nb.questions]
        answered = sum(q.answered for q in questions)
        return (
            f"overall: visible tests pass for {_num(self.passing_points)} of "
            f"{_num(self.points)} points ({passing} of {len(exercises)} exercises); "
            f"{answered} of {len(questions)} written questions answered"
        )

    def graded_line(self) -> str:
        """The hidden graders' total (``--grade``), or why there is none."""
        if not self.graded:
            return self.grading
        return (
            f"graded: {_num(self.graded_points)} of {_num(self.points)} points by the hidden "
            "graders (written questions are graded by a person)"
        )

    def text(self) -> str:
        """A plain-text table: one block per notebook, the overall line and the next exercise."""
        from coursekit.progress.render import text_table  # render imports this module

        return text_table(self)

    def html(self) -> str:
        """The same table as HTML, the next exercise highlighted."""
        from coursekit.progress.render import html_table  # render imports this module

        return html_table(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "points": self.points,
            "passing_points": self.passing_points,
            "next": None
            if self.next is None
            else {
                "assignment": self.next[0].assignment,
                "notebook": self.next[0].notebook,
                "exercise": self.next[1].name,
            },
            "note": HIDDEN_GRADERS,
            "grading": self.graded_line(),
            "graded_points": self.graded_points if self.graded else None,
            "notebooks": [
                {
                    "assignment": nb.assignment,
                    "notebook": nb.notebook,
                    "title": nb.title,
                    "points": nb.points,
                    "passing_points": nb.passing_points,
                    "problem": nb.problem,
                    "checked": nb.checked,
                    "exercises": [vars(e) for e in nb.exercises],
                    "questions": [vars(q) for q in nb.questions],
                }
                for nb in self.notebooks
            ],
        }

    def __repr__(self) -> str:
        return f"CourseProgress({self.overall_line()}; {self.next_line()})"


def _num(x: float) -> str:
    return f"{x:g}"
