"""Visible tests guide; they must not hand over the answer.

A helper defined in a visible test cell (a loop version of the exercise, the formula written
out) would be a complete answer a student could submit, since the hidden graders check values
and gradients. For every graded test cell, its item's grader runs on every function and class
defined at the top level of the cell's visible part; none may score full marks.
"""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder.harness import GRADE_CALL, grade_object, graded_item
from coursekit.notebooks import grade_id

from .conftest import REPO

SOURCES = sorted((REPO / "source").rglob("*.ipynb"))
HIDDEN = "### BEGIN HIDDEN TESTS"
KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)


def _definitions(source: str) -> list[ast.stmt]:
    """The imports, defs, classes and constant assignments at the top level of ``source``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics
        return []
    return [
        node
        for node in tree.body
        if isinstance(node, KEPT)
        or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant))
    ]


def _run(nodes: list[ast.stmt], namespace: dict[str, Any]) -> None:
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module in {"autograder", "reference_impl"}:
            continue
        with contextlib.suppress(Exception):
            exec(compile(ast.Module(body=[node], type_ignores=[]), "<cell>", "exec"), namespace)


def leaking_helpers(nb: Any) -> list[str]:
    """``"<grade id>: <name> scores p / p"`` for each visible-test helper that gets full marks."""
    namespace: dict[str, Any] = {}
    visible = [cell.source.split(HIDDEN)[0] for cell in nb.cells if cell.cell_type == "code"]
    _run([node for text in visible for node in _definitions(text)], namespace)
    leaks = []
    for cell in nb.cells:
        item = graded_item(cell)
        if item is None or not GRADE_CALL.search(cell.source):
            continue
        local = dict(namespace)
        helpers = [
            n for n in _definitions(cell.source.split(HIDDEN)[0]) if not isinstance(n, ast.Assign)
        ]
        _run(helpers, local)
        for node in helpers:
            if isinstance(node, (ast.Import, ast.ImportFrom)) or node.name not in local:
                continue
            with contextlib.redirect_stdout(io.StringIO()):
                report = grade_object(item, local[node.name])
            if report.points >= report.max_points:
                leaks.append(
                    f"{grade_id(cell)}: {node.name} scores {report.points:g} / "
                    f"{report.max_points:g} on {item}"
                )
    return leaks


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_visible_test_helper_is_a_complete_answer(source: Path) -> None:
    leaks = leaking_helpers(nbformat.read(str(source), as_version=4))
    assert not leaks, (
        f"{source.name}: a visible test defines a complete answer (test properties and "
        f"hand-checked cases instead): {leaks}"
    )


def test_the_leak_test_catches_an_answer_in_a_visible_test() -> None:
    nb = nbformat.read(str(REPO / "source/part2_fundamentals/attention.ipynb"), as_version=4)
    by_id = {grade_id(c): c for c in nb.cells}
    solution = by_id["causal"].source.replace("def causal_mask(", "def by_loop(")
    solution = "\n".join(line for line in solution.splitlines() if "###" not in line)
    tests = by_id["causal_tests"]
    tests.source = solution + "\n\n" + tests.source
    assert leaking_helpers(nb) == ["causal_tests: by_loop scores 2 / 2 on attention.causal_mask"]
