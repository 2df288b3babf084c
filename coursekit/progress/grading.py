"""The real grade for a student studying alone (``--grade``) and the model answers of the
written questions (``--answer``), both read from a full clone of the course: its
``autograder/`` and ``source/`` beside ``release/``.

The graders run as a separate process, ``python -m autograder --json``: the same trusted path
as nbgrader's autograding (student code in the sandboxed child, compared with the reference
outside it), so the score is the one an instructor would record. Nothing here imports the
graders or the reference, and without them (an instructor's class) this says so in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coursekit.notebooks import grade_id
from coursekit.progress.model import NOT_STARTED, CourseProgress, Exercise, _num
from coursekit.progress.scan import _questions, _source, notebooks

GRADERS_MISSING = (
    "graded: the hidden graders are not in this copy of the course (your instructor grades "
    "it); showing the visible tests only"
)
MISSING_TEST = "its graded test cell is missing: copy it back from a fresh release"
ANSWERS_MISSING = (
    "the model answers are not in this copy of the course (your instructor has them): "
    "ask them, or compare with a classmate"
)


def course_of(release: Path) -> Path:
    """The course folder that holds ``release/`` (and, in a full clone, the graders)."""
    return release.resolve().parent


def graders_available(course: Path) -> bool:
    return (course / "autograder" / "__main__.py").is_file() and (course / "source").is_dir()


def grade_course(
    progress: CourseProgress, *, timeout: float = 60.0, log: Callable[[str], None] | None = None
) -> None:
    """Grade the started notebooks with the hidden graders; set each exercise's graded points
    and one line of feedback, and ``progress.grading``."""
    course = course_of(progress.root)
    if not graders_available(course):
        progress.grading = GRADERS_MISSING
        return
    started = [
        nb for nb in progress.notebooks if any(e.status != NOT_STARTED for e in nb.exercises)
    ]
    if not started:
        progress.grading = "graded: no exercise started yet, nothing to grade"
        return
    paths = [str(progress.root / nb.assignment / f"{nb.notebook}.ipynb") for nb in started]
    (log or (lambda _: None))(f"grading {len(paths)} notebooks with the hidden graders ...")
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(course), os.environ.get("PYTHONPATH", "")])
    }
    command = [sys.executable, "-m", "autograder", "--json", "--step-timeout", str(timeout)]
    done = subprocess.run(
        [*command, *paths], cwd=course, env=env, capture_output=True, text=True, check=False
    )
    try:
        reports = json.loads(done.stdout)
    except ValueError:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        progress.grading = f"graded: the graders failed ({why[:200]})"
        return
    for nb, report in zip(started, reports, strict=True):
        cells = {c["grade_id"]: c for c in report["cells"]}
        for exercise in nb.exercises:
            if exercise.status == NOT_STARTED:
                exercise.graded_points, exercise.graded = 0.0, ""
            else:
                _set_grade(exercise, cells.get(exercise.test_id), report.get("error"))
    progress.grading = f"graded: {len(started)} started notebooks, by the hidden graders"


def _set_grade(exercise: Exercise, cell: dict[str, Any] | None, error: str | None) -> None:
    if cell is None:
        exercise.graded_points = 0.0
        exercise.graded = f"graded 0/{_num(exercise.points)}: {error or MISSING_TEST}"
        return
    exercise.graded_points = float(cell["points"])
    why = [*cell["flags"], cell["error"] or ""]
    why += [f"{c['name']}: {c['message']}" for c in cell["checks"] if not c["passed"]]
    first = next((w for w in why if w), "")
    line = f"graded {_num(cell['points'])}/{_num(cell['max_points'])}"
    line += f": {first}" if first else ", every check passes"
    exercise.graded = line if len(line) <= 240 else line[:237] + "..."


def model_answers(release: Path, name: str) -> str:
    """The written questions of notebook ``name`` (a file or its name) with, for each one the
    student has answered, the model answer from ``source/``; unanswered ones stay hidden."""
    path = Path(name)
    if not path.is_file():
        stem = path.name.removesuffix(".ipynb")
        found = [p for p in notebooks(release) if p.stem == stem]
        if not found:
            raise FileNotFoundError(f"no notebook {name!r} in {release}")
        path = found[0]
    cells = json.loads(path.read_bytes())["cells"]
    questions = _questions(cells)
    if not questions:
        return f"{path.name}: no written questions"
    source = course_of(release) / "source" / path.parent.name / path.name
    answers: dict[str, str] = {}
    if source.is_file():
        for cell in json.loads(source.read_bytes())["cells"]:
            if cell.get("cell_type") == "markdown" and grade_id(cell):
                answers[str(grade_id(cell))] = _source(cell).strip()
    lines = []
    for q in questions:
        lines.append(f"{path.name} [{q.name}] {q.title} ({_num(q.points)} pt)")
        if not q.answered:
            lines.append(
                "  write your own answer in that cell first (and save), then run this again"
            )
        elif q.name in answers:
            lines += ["  model answer:", *(f"    {line}" for line in answers[q.name].splitlines())]
        else:
            lines.append(f"  {ANSWERS_MISSING}")
    return "\n".join(lines)
