"""Imports run one way: import-linter's contracts (pyproject.toml, [tool.importlinter]) hold,
and an upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

PACKAGES = ("autograder", "reference_impl", "coursekit", "coursedata")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).absolute().with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(exe), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_hold() -> None:
    run = lint_imports(REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 kept, 0 broken" in run.stdout


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """The old cycle (the model importing generation) and the students' helpers importing the
    reference are each reported."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    with open(tmp_path / "reference_impl" / "models" / "model.py", "a") as f:
        f.write("\nfrom reference_impl.generation import generate  # noqa\n")
    with open(tmp_path / "coursekit" / "testing.py", "a") as f:
        f.write("\nimport reference_impl.models  # noqa\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "2 kept, 2 broken" in run.stdout, run.stdout[-3000:]
    assert "reference_impl.models.model -> reference_impl.generation" in run.stdout
    assert "coursekit.testing -> reference_impl.models" in run.stdout


def test_each_notebook_is_graded_by_the_module_of_its_name() -> None:
    """source/<part>/[NN_]<name>.ipynb calls grade("<name>.<item>") and nothing else;
    autograder/graders/<name>.py defines exactly those items."""
    import re

    import nbformat

    from autograder.graders import ITEMS
    from autograder.harness import graded_item

    graded: dict[str, set[str]] = {}
    for path in sorted((REPO / "source").glob("*/*.ipynb")):
        name = re.sub(r"^\d+_", "", path.stem)
        nb = nbformat.read(str(path), as_version=4)
        items = {item for cell in nb.cells if (item := graded_item(cell))}
        assert items, f"{path.name}: no graded item"
        assert {i.split(".")[0] for i in items} == {name}, (path.name, sorted(items))
        assert (REPO / "autograder" / "graders" / f"{name}.py").is_file()
        tests = REPO / "tests" / f"test_grader_{name}.py"
        assert tests.is_file(), f"{path.name}: no grader tests at {tests}"
        graded[name] = items
    by_module: dict[str, set[str]] = {}
    for item_id in ITEMS:
        by_module.setdefault(item_id.split(".")[0], set()).add(item_id)
    assert by_module == graded


def test_the_course_order_lists_every_notebook() -> None:
    from coursekit.progress import ORDER

    assert sorted(ORDER) == sorted(p.stem for p in (REPO / "source").glob("*/*.ipynb"))


def test_a_grader_test_module_must_give_answers_for_every_exercise() -> None:
    import pytest

    from .notebook_grading import exercises_of

    source = REPO / "source/part3_innovations/moe.ipynb"
    table = exercises_of(
        source,
        {
            c: {}
            for c in (
                "router_top_k",
                "gating_weights",
                "load_balancing_loss",
                "capacity_dispatch",
                "moe_layer",
            )
        },
    )
    assert table["moe_layer"][:3] == ("moe_layer_tests", "moe.MoELayer", 4.5)
    with pytest.raises(AssertionError, match="answers for"):
        exercises_of(source, {"router_top_k": {}})
