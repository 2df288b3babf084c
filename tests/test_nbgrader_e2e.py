"""Real nbgrader, end to end: generate the pilot assignment, autograde a class of fixture
submissions twice, and check every student's exact scores in the gradebook, the feedback
HTML and the exported CSV."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry

from coursekit.notebooks import grade_id

from .conftest import REPO
from .fixtures.attention_class import CLASS, CORRUPTED, DELETE
from .nbgrader_cli import nbgrader

ASSIGNMENT, NOTEBOOK = "part2_fundamentals", "attention"


def submit(course: Path, student: str, solutions: dict[str, str], tamper: dict[str, str]) -> None:
    nb = nbformat.read(str(course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"), as_version=4)
    for cell in list(nb.cells):
        gid = grade_id(cell)
        if gid in solutions:
            cell.source = solutions[gid]
        if tamper.get(gid) == DELETE:
            nb.cells.remove(cell)
        elif gid in tamper:
            cell.source = tamper[gid]
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, str(folder / f"{NOTEBOOK}.ipynb"))


def scores(course: Path) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in gb.students:
            try:
                notebook = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student.id)
            except MissingEntry:
                out[student.id] = {}
                continue
            out[student.id] = {g.name: g.auto_score for g in notebook.grades}
    return out


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("course")
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    for student, (solutions, tamper, _) in CLASS.items():
        submit(root, student, solutions, tamper)
        nbgrader(root, "db", "student", "add", student)
    corrupted = root / "submitted" / CORRUPTED / ASSIGNMENT
    corrupted.mkdir(parents=True)
    (corrupted / f"{NOTEBOOK}.ipynb").write_text('{"cells": [ not json')
    nbgrader(root, "db", "student", "add", CORRUPTED)
    limits = ["--Execute.timeout=10", "--TrustedGrades.step_timeout=10"]
    first = nbgrader(root, "autograde", ASSIGNMENT, *limits, check=False)
    root.joinpath("first_scores.txt").write_text(repr(scores(root)))
    # Again, one nbgrader process per student, two at a time, on the same gradebook.
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder.autograde_class",
            ASSIGNMENT,
            "--workers",
            "2",
            "--force",
            *limits,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1200,
        env=os.environ | {"GW_FAST": "1"},
    )
    root.joinpath("logs.txt").write_text(first.stderr + "\n=====\n" + second.stdout)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(CLASS))
def test_gradebook_holds_the_exact_score(course: Path, student: str) -> None:
    expected = CLASS[student][2]
    got = scores(course)[student]
    assert {k: got.get(k) for k in expected} == expected, got
    assert got.get("understanding", "missing") in (None, 0.0)  # graded by hand, later


@pytest.mark.slow
def test_every_student_is_in_the_gradebook(course: Path) -> None:
    all_scores = scores(course)
    assert set(all_scores) == set(CLASS) | {CORRUPTED}
    assert not any(all_scores[CORRUPTED].values())  # nothing, or zeros: never full marks
    first, parallel = (course / "logs.txt").read_text().split("\n=====\n")
    assert CORRUPTED in first  # nbgrader names the student whose file it could not read
    assert f"{CORRUPTED}" in parallel and "1 failed" in parallel  # ...and only that one
    assert "correct" in parallel


@pytest.mark.slow
def test_kernel_could_not_touch_course_files(course: Path) -> None:
    assert not (course / "hacked.txt").exists()
    feedback = course / "autograded" / "writes_course_files" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert "refused: not allowed while grading: write" in feedback.read_text()
    assert "FLAG  integrity: write" in feedback.read_text()


@pytest.mark.slow
def test_grading_twice_gives_identical_scores(course: Path) -> None:
    """The second run graded the class in parallel: the gradebook lost nothing."""
    assert (course / "first_scores.txt").read_text() == repr(scores(course))


@pytest.mark.slow
def test_feedback_shows_the_itemized_checks(course: Path) -> None:
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    html = (course / "feedback" / "wrong_scaling" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
    assert "FAIL  scaling by 1/sqrt(d)" in html
    assert "PASS  stable for large scores" in html
    assert "0.5 / 6 points" in html
    flagged = (
        course / "feedback" / "reference_import" / ASSIGNMENT / f"{NOTEBOOK}.html"
    ).read_text()
    assert "FLAG  integrity: import reference_impl" in flagged


@pytest.mark.slow
def test_export_writes_every_student(course: Path) -> None:
    nbgrader(course, "export")
    with open(course / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(CLASS) | {CORRUPTED}
    assert float(rows["correct"]["raw_score"]) == 12.5
    assert float(rows["wrong_scaling"]["raw_score"]) == 3.5
