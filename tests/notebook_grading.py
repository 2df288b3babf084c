"""What every grader test checks of its notebook, in one place.

A grader test module defines ``SOURCE`` (the master notebook), ``EXERCISES`` (solution cell
-> (its test cell, its item, the cell's points, answers), built by :func:`exercises_of` from
the notebook's nbgrader metadata and the module's answers), where answers map a name to
(code, exact score, a substring of a failure message or None), and optionally ``BUILDS_ON``
(solution cell -> the solution cells whose source code its answers need first). The
``source_report``, ``graded_run`` and ``exercises`` fixtures (tests/conftest.py) read them,
and the module gets the four standard tests below by importing them (``STANDARD_TESTS``);
``DEPENDS_ON_OTHERS`` names solution cells whose source calls the other exercises.

To stay within the time budget, answers to different exercises share one sandbox run: run k
replaces each exercise's solution cell by its k-th answer; each cell's score is its own,
which ``assert_untouched_cells_keep_full_marks`` checks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.graders import ITEMS
from autograder.harness import CellReport, grade_notebook, graded_item
from autograder.sandbox import Limits
from coursekit.notebooks import grade_id, nbgrader_meta

# 20 s, not 8: a CI rehearsal on a slower 2-core EPYC (the suite in 1,543 s instead of 950)
# saw one correct-but-slow answer's step pass 8 s under the two pytest workers' load.
LIMITS = Limits(step_timeout=20.0, memory_bytes=3 << 30)
Answers = dict[str, tuple[str, float, str | None]]
Exercises = dict[str, tuple[str, str, float, Answers]]
Reports = dict[str, CellReport]


def failed(cell: CellReport) -> dict[str, str]:
    return {c.name: c.message for c in cell.checks if not c.passed}


def grade_cells(path: Path) -> Reports:
    return {c.grade_id: c for c in grade_notebook(path, LIMITS).cells}


def exercises_of(source: Path, answers: dict[str, Answers]) -> Exercises:
    """Each exercise of the notebook (a solution code cell) -> (the graded test cell after it,
    the item that cell grades, its points, ``answers[solution cell]``), read from the notebook;
    every exercise needs answers."""
    nb = nbformat.read(str(source), as_version=4)
    table: Exercises = {}
    solution: str | None = None
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            solution = grade_id(cell)
        elif solution is not None and (item := graded_item(cell)):
            table[solution] = (str(grade_id(cell)), item, float(meta["points"]), {})
            solution = None
    assert set(answers) == set(table), f"answers for {sorted(answers)}, exercises {sorted(table)}"
    return {cell: (*table[cell][:3], answers[cell]) for cell in table}


def answer_ids(exercises: Exercises) -> list[tuple[str, str]]:
    return [(cell, name) for cell, ex in exercises.items() for name in ex[3]]


class AnswerRuns:
    """``runs(k)``: the reports of the source notebook with every exercise's k-th answer in
    place (cells with fewer answers keep the source), graded once and kept."""

    def __init__(
        self,
        source: Path,
        exercises: Exercises,
        tmp: pytest.TempPathFactory,
        builds_on: dict[str, list[str]] | None = None,
    ) -> None:
        self.source, self.exercises, self.tmp = source, exercises, tmp
        self.builds_on = builds_on or {}
        self.count = max(len(ex[3]) for ex in exercises.values())
        self._cache: dict[int, Reports] = {}

    def __call__(self, k: int) -> Reports:
        if k not in self._cache:
            nb = nbformat.read(str(self.source), as_version=4)
            solutions = {grade_id(c): c.source for c in nb.cells if grade_id(c) in self.exercises}
            for cell in nb.cells:
                gid = grade_id(cell)
                if gid not in self.exercises:
                    continue
                answers = list(self.exercises[gid][3].values())
                answer = answers[k][0] if k < len(answers) else cell.source
                needs = [solutions[d] for d in self.builds_on.get(gid, [])]
                cell.source = "\n\n".join([*needs, answer])
            path = Path(self.tmp.mktemp(f"run{k}")) / self.source.name
            nbformat.write(nb, str(path))
            self._cache[k] = grade_cells(path)
        return self._cache[k]


def assert_source_gets_full_marks(report: Reports, exercises: Exercises) -> None:
    assert set(report) == {ex[0] for ex in exercises.values()}
    for test_cell, item, points, _ in exercises.values():
        cell = report[test_cell]
        assert cell.item == item
        assert cell.points == points and not cell.flags and not cell.error, failed(cell)


def assert_items_are_graded_fairly(source: Path, exercises: Exercises) -> None:
    """Cell points = item points; five checks or more, each with a hint; three wrong answers
    or more that score below full marks."""
    nb = nbformat.read(str(source), as_version=4)
    points = {grade_id(c): nbgrader_meta(c).get("points") for c in nb.cells if grade_id(c)}
    for test_cell, item, cell_points, answers in exercises.values():
        checks = ITEMS[item].checks
        assert points[test_cell] == cell_points == ITEMS[item].points, item
        assert len(checks) >= 5 and all(c.hint and 0.25 <= c.points <= 1.5 for c in checks), item
        assert sum(1 for _, pts, _ in answers.values() if pts < cell_points) >= 3, item


def assert_answer_scores(runs: AnswerRuns, exercises: Exercises, cell: str, name: str) -> None:
    test_cell, _, _, answers = exercises[cell]
    _, expected, message = answers[name]
    report = runs(list(answers).index(name))[test_cell]
    assert report.points == expected, failed(report)
    assert not report.flags and not report.error, (report.flags, report.error)
    if message is not None:
        assert any(message in m for m in failed(report).values()), failed(report)


def assert_untouched_cells_keep_full_marks(
    runs: AnswerRuns, exercises: Exercises, depends_on_others: tuple[str, ...] = ()
) -> None:
    """Cells left with the source solution keep full marks whatever the other cells hold
    (except ``depends_on_others``, whose source solution calls the other exercises)."""
    for k in range(runs.count):
        for gid, (test_cell, _, points, answers) in exercises.items():
            if k >= len(answers) and gid not in depends_on_others:
                assert runs(k)[test_cell].points == points, (k, test_cell)


# --- the standard tests, collected by every grader test module that imports them ----------


def test_source_notebook_gets_full_marks(source_report: Reports, exercises: Exercises) -> None:
    assert_source_gets_full_marks(source_report, exercises)


def test_items_are_graded_fairly(request: pytest.FixtureRequest, exercises: Exercises) -> None:
    assert_items_are_graded_fairly(request.module.SOURCE, exercises)


def test_answers_score_exactly(
    graded_run: AnswerRuns, exercises: Exercises, answer: tuple[str, str]
) -> None:  # ``answer`` is parametrized from the module's EXERCISES (tests/conftest.py)
    assert_answer_scores(graded_run, exercises, *answer)


def test_untouched_cells_keep_full_marks(
    request: pytest.FixtureRequest, graded_run: AnswerRuns, exercises: Exercises
) -> None:
    depends = getattr(request.module, "DEPENDS_ON_OTHERS", ())
    assert_untouched_cells_keep_full_marks(graded_run, exercises, depends)
