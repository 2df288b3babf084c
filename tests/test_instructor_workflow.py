"""docs/instructors.md, run for real: every ``bash`` block of the page (or a reason it is not
run, in NOT_RUN) on a sample class in a temporary course, with real nbgrader and the
exchange and the students' homes in temporary folders.

The class: ada fetches, solves and submits through the exchange; ben does the same but
works in a "-Copy1" notebook, which nbgrader skips until the submissions check renames it;
cy hands in the untouched notebook through an LMS zip (zip_collect); dan, added late,
never submits. The exported CSV must give ada and ben full marks, cy and dan 0.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from autograder import submissions
from coursekit.notebooks import grade_id, nbgrader_meta

from .conftest import REPO
from .nbgrader_cli import nbgrader_env

DOC = REPO / "docs" / "instructors.md"
ASSIGNMENT = "part0_setup"
# Blocks of the page that this test does not run, and why.
NOT_RUN = {
    "autograde-parallel": "tests/test_nbgrader_e2e.py grades a class with autograde_class",
    "late": "needs a resubmission; its autograde --student --force runs in the regrade block",
}
# The variables the page's commands use; the test sets each of them.
VARIABLES = {"ASSIGNMENT", "EXCHANGE", "DUEDATE", "STUDENT", "LMS_ZIP", "LMS_STUDENTS"}
BLOCK = re.compile(r"<!-- block: ([\w-]+) -->\n```bash\n(.*?)```", re.S)


def doc_blocks() -> dict[str, str]:
    text = DOC.read_text()
    blocks = dict(BLOCK.findall(text))
    assert len(blocks) == text.count("```bash"), "every bash block needs a <!-- block: --> name"
    return blocks


def test_the_page_uses_only_variables_the_test_sets() -> None:
    blocks = doc_blocks()
    used = set(re.findall(r"\$\{?([A-Z_]+)", "".join(blocks.values()))) - {"PATH", "PWD"}
    assert used == VARIABLES  # all of them set by the test


@dataclass
class Course:
    """The temporary course and what each block printed."""

    root: Path
    homes: Path
    blocks: dict[str, str]
    values: dict[str, str]
    out: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def run(self, name: str, student: str | None = None, ok: bool = True, **values: str) -> None:
        """Run the block after its setup block (the test's values override the doc's)."""
        setup = self.blocks["student-setup" if name.startswith("student-") else "setup"]
        values = self.values | values | ({"STUDENT": student} if student else {})
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
        cwd = self.homes / student if name.startswith("student-") and student else self.root
        cwd.mkdir(parents=True, exist_ok=True)
        env = nbgrader_env(GW_FAST="1")
        if cwd != self.root:
            env["HOME"] = str(cwd)  # the student's nbgrader cache and config
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{setup}\n{exports}{self.blocks[name]}"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.out[f"{name}:{student}" if student else name] = result
        if ok and result.returncode != 0:
            raise AssertionError(f"block {name} failed:\n{result.stdout}\n{result.stderr[-3000:]}")


def notebook_name() -> str:
    (notebook,) = sorted((REPO / "source" / ASSIGNMENT).glob("*.ipynb"))
    return notebook.name


def source_cells() -> list[tuple[nbformat.NotebookNode, dict]]:
    nb = nbformat.read(str(REPO / "source" / ASSIGNMENT / notebook_name()), as_version=4)
    return [(c, nbgrader_meta(c)) for c in nb.cells]


def solutions() -> dict[str, str]:
    return {grade_id(c): c.source for c, meta in source_cells() if meta.get("solution")}


def autograded_points() -> float:
    """Full marks: the points of the test cells (the written answers are graded by hand)."""
    tests = [m for _, m in source_cells() if m.get("grade") and not m.get("solution")]
    return float(sum(m.get("points", 0) for m in tests))


def solve(notebook: Path, rename_to: str | None = None) -> None:
    """The student's work: the source's solutions in the solution cells, saved in place or,
    as JupyterLab's "Duplicate" leaves it, in a copy with the original gone."""
    nb = nbformat.read(str(notebook), as_version=4)
    answers = solutions()
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    nbformat.write(nb, str(notebook.with_name(rename_to) if rename_to else notebook))
    if rename_to:
        notebook.unlink()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    tmp = tmp_path_factory.mktemp("workflow")
    root, notebook = tmp / "course", notebook_name()
    root.mkdir()
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    (root / "students.csv").write_text(
        "id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.org\n"
        "ben,Ben,Bitdiddle,\ncy,Cy,Young,\n"
    )
    values = {
        "ASSIGNMENT": ASSIGNMENT,
        "EXCHANGE": str(tmp / "exchange"),
        "DUEDATE": "2100-01-01 17:00:00 UTC",
    }
    c = Course(root, tmp / "homes", doc_blocks(), values)
    c.run("database")
    c.run("add-student", STUDENT="dan")
    c.run("release")
    for student, copy in (("ada", None), ("ben", notebook.replace(".ipynb", "-Copy1.ipynb"))):
        c.run("student-fetch", student)
        solve(c.homes / student / ASSIGNMENT / notebook, copy)
        c.run("student-submit", student)
    c.run("collect")
    lms_zip = tmp / "lms.zip"
    with zipfile.ZipFile(lms_zip, "w") as z:
        z.write(root / "release" / ASSIGNMENT / notebook, f"cy_{notebook}")
    c.run("zip-collect", LMS_ZIP=str(lms_zip))
    c.run("check", ok=False)
    # Graded before the fix, as nbgrader does it: ben's copy is skipped.
    c.run("autograde", ok=False)
    c.run("fix")
    c.run("regrade", STUDENT="ben")
    for student in ("ada", "cy"):  # cy handed in the untouched release notebook
        c.run("inspect", STUDENT=student)
        c.out[f"inspect:{student}"] = c.out.pop("inspect")
    c.run("feedback", LMS_STUDENTS="cy")
    c.run("student-feedback", "ada")
    c.run("export")
    return c


@pytest.mark.slow
def test_every_block_of_the_page_ran(course: Course) -> None:
    ran = {key.split(":")[0] for key in course.out} | {"setup", "student-setup"}  # as prefixes
    assert ran | set(NOT_RUN) == set(course.blocks) and not ran & set(NOT_RUN)


@pytest.mark.slow
def test_check_names_the_student_the_file_and_the_rename(course: Course) -> None:
    check, notebook = course.out["check"], notebook_name()
    copy = f"submitted/ben/{ASSIGNMENT}/{notebook.replace('.ipynb', '-Copy1.ipynb')}"
    assert check.returncode == 1, check.stdout + check.stderr
    assert check.stdout.splitlines() == [
        f"ben: {copy} is not graded (nbgrader skips it): "
        f"mv {copy} submitted/ben/{ASSIGNMENT}/{notebook}",
        "note: no submission (scores 0): dan",
        f"1 problem(s) in the submissions of {ASSIGNMENT}",
    ]
    fixed = course.out["fix"].stdout
    assert f"ben: renamed {copy} -> submitted/ben/{ASSIGNMENT}/{notebook}" in fixed
    assert f"0 problem(s) left in the submissions of {ASSIGNMENT}" in fixed


@pytest.mark.slow
def test_nbgrader_skipped_the_misnamed_notebook(course: Course) -> None:
    autograde, notebook = course.out["autograde"], notebook_name()
    copy = f"submitted/ben/{ASSIGNMENT}/{notebook.replace('.ipynb', '-Copy1.ipynb')}"
    skipped = [line for line in autograde.stderr.splitlines() if "Skipping unknown" in line]
    assert len(skipped) == 1 and skipped[0].endswith(copy), autograde.stderr
    assert autograde.returncode != 0 and "No notebooks found" in autograde.stderr
    for student in ("ada", "cy"):  # ...and grades the others
        assert (course.root / "autograded" / student / ASSIGNMENT / notebook).exists()


@pytest.mark.slow
def test_export_has_one_row_per_student_with_the_exact_score(course: Course) -> None:
    with open(course.root / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    full = autograded_points()
    assert full > 0
    expected = {"ada": full, "ben": full, "cy": 0.0, "dan": 0.0}
    assert {s: float(r["raw_score"]) for s, r in rows.items()} == expected
    assert {r["assignment"] for r in rows.values()} == {ASSIGNMENT}
    assert rows["ada"]["last_name"] == "Lovelace" and rows["ada"]["timestamp"]
    assert not rows["dan"]["timestamp"] and not rows["cy"]["timestamp"]


@pytest.mark.slow
def test_inspect_grades_a_submission_cell_by_cell(course: Course) -> None:
    """`python -m autograder` on submitted notebooks (copies of release/, without hidden tests)
    grades them by the source's hidden tests: the same points as the gradebook."""
    full, notebook = autograded_points(), notebook_name()
    tests = [
        (grade_id(c), m["points"])
        for c, m in source_cells()
        if m.get("grade") and not m.get("solution")
    ]
    for student, score in (("ada", full), ("cy", 0.0)):
        out = course.out[f"inspect:{student}"].stdout
        path = f"submitted/{student}/{ASSIGNMENT}/{notebook}"
        assert out.startswith(f"{path}: {score:g} / {full:g} points\n"), out
        for test_id, points in tests:
            earned = points if student == "ada" else 0
            assert re.search(rf"^\[{test_id}\] \S+: {earned:g} / {points:g} points$", out, re.M)
        assert ("FAIL" in out) == (student == "cy"), out


@pytest.mark.slow
def test_feedback_reaches_the_students(course: Course) -> None:
    page, full = notebook_name().replace(".ipynb", ".html"), autograded_points()
    for student, score in (("ada", full), ("ben", full), ("cy", 0.0)):
        html = (course.root / "feedback" / student / ASSIGNMENT / page).read_text()
        assert f"Score: {score} / {full}" in html
    (fetched,) = (course.homes / "ada" / ASSIGNMENT / "feedback").glob(f"*/{page}")
    assert f"Score: {full} / {full}" in fetched.read_text()


# autograder.submissions on fake course folders (no nbgrader).
STUB, WORK = "raise NotImplementedError()", "return x"


def fake_notebook(path: Path, answer: str = STUB) -> None:
    cell = {
        "cell_type": "code",
        "metadata": {"nbgrader": {"solution": True, "grade_id": "a"}},
        "source": answer,
        "outputs": [],
        "execution_count": None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )


@pytest.fixture
def fake_course(tmp_path: Path) -> Path:
    for name in ("attention.ipynb", "embeddings.ipynb"):
        fake_notebook(tmp_path / "release" / "a1" / name)
    return tmp_path


def submit_files(root: Path, student: str, files: dict[str, str]) -> Path:
    folder = root / "submitted" / student / "a1"
    for name, answer in files.items():
        fake_notebook(folder / name, answer)
    return folder


def report(root: Path, *args: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = submissions.main(["a1", "--root", str(root), *args])
    return code, out.getvalue().splitlines()


def test_correct_names_and_checkpoints_pass(fake_course: Path) -> None:
    folder = submit_files(fake_course, "ada", {"attention.ipynb": WORK, "embeddings.ipynb": WORK})
    fake_notebook(folder / ".ipynb_checkpoints" / "attention-checkpoint.ipynb")
    fake_notebook(folder / "Untitled.ipynb")  # a scratch notebook: a note, not a problem
    code, lines = report(fake_course)
    assert code == 0
    assert lines == [
        "note: ada: submitted/ada/a1/Untitled.ipynb is not a notebook of the assignment "
        "(not graded)",
        "0 problem(s) in the submissions of a1",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "attention-Copy1.ipynb",
        "attention (1).ipynb",
        "Attention.ipynb",
        "Copy of attention.ipynb",
        "attention-2.ipynb",
        "a1/attention.ipynb",
        "attention_copy.ipynb",
    ],
)
def test_a_misnamed_notebook_gets_its_exact_rename_and_fix_does_it(
    fake_course: Path, name: str
) -> None:
    folder = submit_files(fake_course, "ben", {name: WORK, "embeddings.ipynb": WORK})
    src = f"submitted/ben/a1/{name}"
    code, lines = report(fake_course)
    assert code == 1
    assert lines == [
        f"ben: {src} is not graded (nbgrader skips it): "
        f"mv {shlex.quote(src)} submitted/ben/a1/attention.ipynb",
        "1 problem(s) in the submissions of a1",
    ]
    code, lines = report(fake_course, "--fix")
    assert code == 0
    assert lines[0] == f"ben: renamed {src} -> submitted/ben/a1/attention.ipynb"
    assert json.loads((folder / "attention.ipynb").read_text())["cells"][0]["source"] == WORK
    assert not (folder / name).exists()
    assert report(fake_course)[0] == 0


def test_fix_never_overwrites_nor_guesses(fake_course: Path) -> None:
    shadow = submit_files(
        fake_course, "cy", {"attention.ipynb": STUB, "attention-Copy1.ipynb": WORK}
    )
    twins = submit_files(
        fake_course, "dee", {"attention-Copy1.ipynb": WORK, "attention (1).ipynb": STUB}
    )
    submit_files(
        fake_course,
        "eve",
        {"attention.ipynb": WORK, "attention-Copy1.ipynb": WORK, "embeddings.ipynb": WORK},
    )
    before = {p: p.read_bytes() for p in fake_course.rglob("*.ipynb")}
    code, lines = report(fake_course, "--fix")
    assert code == 1
    assert before == {p: p.read_bytes() for p in fake_course.rglob("*.ipynb")}
    cy = "submitted/cy/a1"
    assert lines == [
        f"cy: {cy}/attention-Copy1.ipynb is not graded, attention.ipynb (the untouched release) "
        f"is: if the copy holds the work, mv {cy}/attention.ipynb {cy}/attention.ipynb.orig && "
        f"mv {cy}/attention-Copy1.ipynb {cy}/attention.ipynb",
        f"cy: {cy}/embeddings.ipynb is missing: it scores 0",
        "dee: submitted/dee/a1/attention.ipynb is missing and 2 notebooks could be it: "
        "submitted/dee/a1/attention (1).ipynb, submitted/dee/a1/attention-Copy1.ipynb: "
        "rename the one with the work to attention.ipynb",
        "dee: submitted/dee/a1/embeddings.ipynb is missing: it scores 0",
        "eve: submitted/eve/a1/attention-Copy1.ipynb is not graded, attention.ipynb (edited) is: "
        "if the copy holds the work, mv submitted/eve/a1/attention.ipynb "
        "submitted/eve/a1/attention.ipynb.orig && mv submitted/eve/a1/attention-Copy1.ipynb "
        "submitted/eve/a1/attention.ipynb",
        "5 problem(s) left in the submissions of a1",
    ]
    assert shadow.is_dir() and twins.is_dir()


def test_unreadable_notebooks_and_students_not_in_the_gradebook(fake_course: Path) -> None:
    with contextlib.closing(sqlite3.connect(fake_course / "gradebook.db")) as db:
        db.execute("CREATE TABLE student (id VARCHAR(128) PRIMARY KEY)")
        db.executemany("INSERT INTO student VALUES (?)", [("alice",), ("bob",), ("zoe",)])
        db.commit()
    folder = submit_files(fake_course, "alcie", {"embeddings.ipynb": WORK})
    (folder / "attention.ipynb").write_text('{"cells": [ not json')
    submit_files(fake_course, "bob", {"attention.ipynb": WORK, "embeddings.ipynb": WORK})
    code, lines = report(fake_course)
    assert code == 1
    assert lines == [
        "alcie: submitted/alcie/a1/attention.ipynb is not a readable notebook (invalid JSON): "
        "it scores 0; ask the student to submit it again",
        "alcie: submitted/alcie is not in the gradebook (a typo of alice?): "
        "`nbgrader db student add alcie`, or rename the folder",
        "note: no submission (scores 0): alice, zoe",
        "2 problem(s) in the submissions of a1",
    ]


def test_an_assignment_without_release_is_an_error(tmp_path: Path) -> None:
    assert report(tmp_path)[0] == 2
