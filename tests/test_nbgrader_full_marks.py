"""Real nbgrader on every assignment of the course: the source solutions, submitted into the
generated release notebooks, get full marks on every autograded cell."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from coursekit.notebooks import grade_id, nbgrader_meta

from .conftest import REPO
from .nbgrader_cli import nbgrader

ASSIGNMENTS = sorted(p.name for p in (REPO / "source").iterdir() if p.is_dir())
STUDENT = "model_student"


def submit_solutions(course: Path, assignment: str) -> None:
    for source in sorted((course / "source" / assignment).glob("*.ipynb")):
        solutions = {
            grade_id(cell): cell.source
            for cell in nbformat.read(str(source), as_version=4).cells
            if nbgrader_meta(cell).get("solution")
        }
        nb = nbformat.read(str(course / "release" / assignment / source.name), as_version=4)
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid in solutions:
                cell.source = solutions[gid]
        folder = course / "submitted" / STUDENT / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(folder / source.name))


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("course")
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "source", root / "source")
    nbgrader(root, "db", "student", "add", STUDENT)
    for assignment in ASSIGNMENTS:
        nbgrader(root, "generate_assignment", assignment, "--force")
        submit_solutions(root, assignment)
        nbgrader(root, "autograde", assignment)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_solutions_get_full_marks(course: Path, assignment: str) -> None:
    notebooks = sorted(p.stem for p in (REPO / "source" / assignment).glob("*.ipynb"))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name in notebooks:
            source = nbformat.read(str(REPO / "source" / assignment / f"{name}.ipynb"), 4)
            graded = {
                grade_id(c)
                for c in source.cells
                if nbgrader_meta(c).get("grade") and c.cell_type == "code"
            }
            nb = gb.find_submission_notebook(name, assignment, STUDENT)
            auto = [g for g in nb.grades if g.auto_score is not None]
            assert graded and {g.name for g in auto} == graded, name
            lost = {
                g.name: (g.auto_score, g.max_score) for g in auto if g.auto_score != g.max_score
            }
            assert not lost, f"{assignment}/{name}: {lost}"
