"""Finding the course's notebooks and reading one: the release/ folder, its notebooks in course
order, and each notebook's exercises (solution cell, visible-test cell, title, points) and
whether the student has started them; this reads files only and runs nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.notebooks import nbgrader_meta
from coursekit.progress.model import Exercise, Question

#: Course order of the known notebooks within their assignment; others follow by name.
ORDER = (
    "00_setup_and_verification",
    "rnn_language_model",
    "vanishing_gradients",
    "attention",
    "embeddings_and_positions",
    "transformer_block",
    "efficient_attention",
    "moe",
    "image_input",
    "tokenization",
    "training_loop",
    "generation",
    "mini_gemini",
    "train_and_chat",
    "image_prefix",
    "assistant",
)

_QUESTION = re.compile(r"\*\*(Question[^*]*)\*\*(.*)", re.S)
STUB_ANSWER = "YOUR ANSWER HERE"  # nbgrader's stub for a written answer
_EXERCISE = re.compile(r"\*\*(Exercise\s+\d+)\s*(?:\(([\d.]+)\s*points?\))?[^*]*\*\*(.*)", re.S)


# --- finding the notebooks --------------------------------------------------------------------


def find_release(start: Path | None = None) -> Path:
    """The nearest ``release/`` from ``start`` (the cwd) upwards, else $GW_COURSE_ROOT/release."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if folder.name == "release" and folder.is_dir():
            return folder
        if (folder / "release").is_dir():
            return folder / "release"
    env = os.environ.get("GW_COURSE_ROOT")
    if env and (Path(env) / "release").is_dir():
        return Path(env) / "release"
    raise FileNotFoundError(
        f"no release/ folder in {here} or above, and GW_COURSE_ROOT is not "
        "set: pass the course's release/ folder (root=..., --root)"
    )


def notebooks(root: Path) -> list[Path]:
    """The notebooks of ``root`` (a release/ folder) in course order."""

    def rank(path: Path) -> tuple[int, str]:
        known = path.stem in ORDER
        return (ORDER.index(path.stem) if known else len(ORDER), "" if known else path.stem)

    found = []
    for assignment in sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] != "."):
        found += sorted((p for p in assignment.glob("*.ipynb") if p.name[0] != "."), key=rank)
    return found


# --- reading one notebook ---------------------------------------------------------------------


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _checksum(cell: dict[str, Any]) -> str:
    """nbgrader's checksum of a cell (``nbgrader.utils.compute_checksum``, 0.9)."""
    meta = nbgrader_meta(cell)
    grade, solution = bool(meta.get("grade", False)), bool(meta.get("solution", False))
    locked = False if solution else (True if grade else bool(meta.get("locked", False)))
    parts = [
        _source(cell),
        cell["cell_type"],
        str(meta.get("grade", False)),
        str(meta.get("solution", False)),
        str(locked),
        meta["grade_id"],
    ]
    if grade:
        parts.append(str(float(meta["points"])))
    return hashlib.md5("".join(parts).encode()).hexdigest()


def _untouched(cell: dict[str, Any]) -> bool:
    """The solution cell is still the release's stub."""
    try:  # as nbgrader sees "no answer"
        return bool(nbgrader_meta(cell)["checksum"] == _checksum(cell))
    except (KeyError, TypeError, ValueError):  # no checksum: is the stub still there?
        source = _source(cell)
        return "# YOUR CODE HERE" in source and "raise NotImplementedError()" in source


@dataclass
class _Slot:
    """Where an exercise lives: its solution cell and its visible-test cell (indices)."""

    exercise: Exercise
    solution: int | None
    test: int | None
    started: bool


def _title(markdown: list[str], fallback: str) -> tuple[str, float | None]:
    """The exercise's title and points from the markdown before its solution cell."""
    for text in reversed(markdown):
        match = _EXERCISE.search(text)
        if match:
            paragraph = match[3].split("\n\n")[0]
            code = re.search(r"`([^`]+)`", paragraph)
            what = code[1] if code else re.split(r"(?<=\.)\s", paragraph.strip())[0]
            what = " ".join(what.split())
            what = what if len(what) <= 70 else what[:67] + "..."
            return f"{match[1]}: {what}", float(match[2]) if match[2] else None
    for text in reversed(markdown):
        headings = [line.lstrip("#").strip() for line in text.splitlines() if line[:1] == "#"]
        if headings:
            return re.sub(r"^\d+\.\s*", "", headings[-1]), None
    return fallback, None


def _layout(cells: list[dict[str, Any]]) -> list[_Slot]:
    """The exercises of a notebook: a solution code cell, closed by a graded test cell."""
    slots: list[_Slot] = []
    solution: int | None = None
    markdown: list[str] = []  # since the last exercise
    intro: list[str] = []  # the markdown before the open solution cell

    def close(test: int | None) -> None:
        first = solution if solution is not None else test
        assert first is not None
        grade_id = str(nbgrader_meta(cells[first]).get("grade_id") or f"cell {first + 1}")
        name = grade_id if solution is not None else grade_id.removesuffix("_tests")
        title, md_points = _title(intro if solution is not None else markdown, name)
        points = nbgrader_meta(cells[test]).get("points") if test is not None else None
        points = float(points) if points is not None else (md_points or 0.0)
        started = solution is None or not _untouched(cells[solution])
        test_id = str(nbgrader_meta(cells[test]).get("grade_id", "")) if test is not None else ""
        exercise = Exercise(name, title, points, "", test_id=test_id)
        slots.append(_Slot(exercise, solution, test, started))

    for index, cell in enumerate(cells):
        meta, kind = nbgrader_meta(cell), cell.get("cell_type")
        if kind == "markdown" and not meta.get("grade"):
            markdown.append(_source(cell))
        elif kind == "code" and meta.get("solution"):
            if solution is not None:  # two solution cells, no test cell between: it was deleted
                close(None)
            solution, intro, markdown = index, markdown, []
        elif kind == "code" and meta.get("grade"):
            close(index)
            solution, markdown = None, []
    if solution is not None:
        close(None)
    return slots


def _questions(cells: list[dict[str, Any]]) -> list[Question]:
    """The written questions: markdown answer cells (nbgrader solution + grade) and the
    question above each; answered unless the cell is still nbgrader's stub."""
    found = []
    for index, cell in enumerate(cells):
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "markdown" or not (meta.get("solution") and meta.get("grade")):
            continue
        name = str(meta.get("grade_id") or f"cell {index + 1}")
        title = name
        for before in reversed(cells[:index]):
            match = (
                _QUESTION.search(_source(before)) if before.get("cell_type") == "markdown" else None
            )
            if match:
                sentence = re.split(r"(?<=[.?])\s", " ".join(match[2].split()))[0]
                title = sentence if len(sentence) <= 70 else sentence[:67] + "..."
                break
        source = _source(cell).strip()
        answered = bool(source) and source != STUB_ANSWER and not _untouched(cell)
        found.append(Question(name, title, float(meta.get("points", 0)), answered))
    return found
