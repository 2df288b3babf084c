"""Authoring checks of master notebooks: ``python -m autograder.authoring [source/ ...]``.

Each problem is reported as ``notebook: cell N (grade_id): problem``:

- every solution code cell carries ``### BEGIN SOLUTION`` / ``### END SOLUTION`` and is
  followed, before the next solution cell, by a graded test cell;
- every graded test cell has points and a hidden block that calls
  ``grade("<notebook>.<item>", obj)`` for a known item of the notebook's own grader module
  (``autograder/graders/<notebook>.py``) whose checks are worth the cell's points;
- grade ids are unique within a notebook; begin/end markers are balanced and in order;
- each graded object's parameters, in the source solution and in the release stub
  (``release/`` beside ``source/``), are those its item's ``Signature`` declares, and its
  checks' inputs and expected outputs have the declared shapes;
- with ``--execute``, the notebook runs top to bottom (fast mode).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat

from autograder.graders import ITEMS
from autograder.harness import GRADE_CALL
from autograder.signatures import declared_problems, shape_problems
from coursekit.notebooks import nbgrader_meta

MARKERS = [
    ("### BEGIN SOLUTION", "### END SOLUTION"),
    ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"),
]


def _markers_balanced(source: str, begin: str, end: str) -> str | None:
    depth = 0
    for line in source.splitlines():
        if begin in line:
            depth += 1
            if depth > 1:
                return f"nested {begin!r}"
        elif end in line:
            depth -= 1
            if depth < 0:
                return f"{end!r} without {begin!r}"
    return f"{begin!r} without {end!r}" if depth else None


def grader_module(notebook: Path) -> str:
    """The grader module of a notebook: its name without a leading ``NN_`` (``00_setup.ipynb``
    is graded by ``autograder/graders/setup.py``)."""
    return re.sub(r"^\d+_", "", notebook.stem)


def release_of(source: Path) -> Path | None:
    """The release notebook of a source notebook (``source/`` replaced by ``release/``), if
    it exists."""
    parts = list(source.parts)
    if "source" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("source")
    release = Path(*parts[:i], "release", *parts[i + 1 :])
    return release if release.exists() else None


def check_notebook(path: Path, release: Path | None = None) -> list[str]:
    """Every authoring problem of one master notebook (empty when it is fine); with
    ``release``, its release notebook's stubs are checked against the signatures too."""
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:
        return [f"{path}: cannot be read: {e}"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    graded: list[str] = []
    waiting_for_tests: tuple[int, str] | None = None

    def report(index: int, grade_id: str, problem: str) -> None:
        problems.append(f"{path}: cell {index} ({grade_id or 'no grade_id'}): {problem}")

    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        grade_id = str(meta.get("grade_id", ""))
        for begin, end in MARKERS:
            problem = _markers_balanced(cell.source, begin, end)
            if problem:
                report(index, grade_id, problem)
        if not meta:
            if any(m in cell.source for pair in MARKERS for m in pair):
                report(index, grade_id, "has nbgrader markers but no nbgrader metadata")
            continue
        if grade_id in seen:
            report(index, grade_id, f"grade_id also used by cell {seen[grade_id]}")
        seen[grade_id] = index
        is_code = cell.cell_type == "code"
        if meta.get("solution") and is_code:
            if "### BEGIN SOLUTION" not in cell.source:
                report(index, grade_id, "solution cell without '### BEGIN SOLUTION'")
            if waiting_for_tests is not None:
                report(*waiting_for_tests, "solution cell not followed by a graded test cell")
            waiting_for_tests = (index, grade_id)
        elif meta.get("grade") and is_code:
            waiting_for_tests = None
            points = float(meta.get("points", 0))
            item_id = _check_test_cell(
                cell.source, points, grader_module(path), index, grade_id, report
            )
            if item_id:
                graded.append(item_id)
    if waiting_for_tests is not None:
        report(*waiting_for_tests, "solution cell not followed by a graded test cell")
    released = None
    if release is not None:
        try:
            released = nbformat.read(str(release), as_version=4)
        except Exception as e:
            problems.append(f"{release}: cannot be read: {e}")
    for item_id in graded:
        item = ITEMS[item_id]
        found = declared_problems(nb, item_id, item, "the source solution")
        if released is not None:
            found += declared_problems(released, item_id, item, f"the release stub ({release})")
        problems += [f"{path}: {problem}" for problem in found + shape_problems(item_id, item)]
    return problems


def _check_test_cell(
    source: str, points: float, module: str, index: int, grade_id: str, report: Any
) -> str | None:
    """Report the test cell's problems; the id of the item it grades, if one of this
    notebook's."""
    if points <= 0:
        report(index, grade_id, "graded test cell without points")
    if "### BEGIN HIDDEN TESTS" not in source:
        report(index, grade_id, "graded test cell without a hidden-test block")
        return None
    hidden = source.split("### BEGIN HIDDEN TESTS", 1)[1]
    match = GRADE_CALL.search(hidden)
    if match is None:
        report(index, grade_id, "hidden block does not call grade('<topic>.<item>', obj)")
        return None
    if match[1] not in ITEMS:
        report(index, grade_id, f"hidden block grades unknown item {match[1]!r}")
        return None
    if match[1].split(".")[0] != module:
        report(
            index,
            grade_id,
            f"grades {match[1]!r}: this notebook's items are {module}.<item>, "
            f"defined in autograder/graders/{module}.py",
        )
        return None
    if not math.isclose(ITEMS[match[1]].points, points):
        report(
            index,
            grade_id,
            f"cell is worth {points:g} points, item {match[1]!r} {ITEMS[match[1]].points:g}",
        )
    return str(match[1])


def execute_problems(path: Path) -> list[str]:
    """Run the notebook top to bottom in fast mode; report the first failing cell."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(path), as_version=4)
    os.environ.setdefault("GW_FAST", "1")
    client = NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as e:
        return [f"{path}: does not run top to bottom: {str(e).splitlines()[-1][:300]}"]
    return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m autograder.authoring",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", default=["source"], help="notebooks or folders")
    p.add_argument("--execute", action="store_true", help="also run each notebook")
    args = p.parse_args(argv)
    notebooks: list[Path] = []
    for name in args.paths:
        path = Path(name)
        notebooks += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
    notebooks = [nb for nb in notebooks if ".ipynb_checkpoints" not in nb.parts]
    problems = [problem for nb in notebooks for problem in check_notebook(nb, release_of(nb))]
    if args.execute:
        problems += [problem for nb in notebooks for problem in execute_problems(nb)]
    for problem in problems:
        print(problem)
    print(f"{len(notebooks)} notebook(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
