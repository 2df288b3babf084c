"""release/ is exactly what nbgrader generates from source/, and leaks nothing;
source/ passes the authoring checks, which catch what they promise to."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import check_notebook, release_of
from coursekit.notebooks import grade_id, nbgrader_meta

from .conftest import REPO
from .nbgrader_cli import BIN, nbgrader_env

SOURCES = sorted((REPO / "source").rglob("*.ipynb"))
RELEASES = sorted((REPO / "release").rglob("*.ipynb"))
ASSIGNMENTS = sorted(p.name for p in (REPO / "source").iterdir() if p.is_dir())


def generate(release_dir: Path, assignment: str) -> None:
    subprocess.run(
        [
            str(BIN / "nbgrader"),
            "generate_assignment",
            assignment,
            "--force",
            "--no-db",
            f"--CourseDirectory.release_directory={release_dir}",
            "--log-level=WARN",
        ],
        cwd=REPO,
        env=nbgrader_env(),
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_every_source_notebook_is_released() -> None:
    assert SOURCES, "no source notebooks"
    rel = {p.relative_to(REPO / "release") for p in RELEASES}
    assert rel == {p.relative_to(REPO / "source") for p in SOURCES}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_in_sync_with_source(tmp_path: Path, assignment: str) -> None:
    generate(tmp_path, assignment)
    fresh = sorted(
        p.relative_to(tmp_path) for p in (tmp_path / assignment).rglob("*") if p.is_file()
    )
    committed_dir = REPO / "release" / assignment
    committed = sorted(
        p.relative_to(REPO / "release") for p in committed_dir.rglob("*") if p.is_file()
    )
    assert fresh == committed, (
        "release/ has other files than nbgrader generates: run `make release`"
    )
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (REPO / "release" / name).read_bytes(), (
            f"release/{name} differs from what nbgrader generates from source/: run `make release`"
        )


LEAKS = re.compile(
    r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|"
    r"^\s*(from|import)\s+(autograder|reference_impl)\b",
    re.M,
)


def solution_lines(source: str) -> set[str]:
    """Distinctive lines between the solution or hidden-test markers of a source cell."""
    found, inside = set(), False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
            inside = False
        elif inside and len(line.strip()) >= 12:
            found.add(line.strip())
    return found


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_release_leaks_no_solution(source: Path) -> None:
    release = REPO / "release" / source.relative_to(REPO / "source")
    released = nbformat.read(str(release), as_version=4)
    text = "\n".join(cell.source for cell in released.cells)
    leak = LEAKS.search(text)
    assert leak is None, f"{release.name} leaks {leak[0]!r} (a forgotten marker?)"
    secret = set()
    for cell in nbformat.read(str(source), as_version=4).cells:
        secret |= solution_lines(cell.source)
        if cell.cell_type == "markdown" and nbgrader_meta(cell).get("solution"):
            secret.add(cell.source.strip())  # a model answer to a written question
    leaked = [line for line in secret if line in text]
    assert not leaked, f"{release.name} contains solution lines: {leaked[:3]}"

    def is_solution(c: nbformat.NotebookNode) -> bool:
        return c.cell_type == "code" and bool(nbgrader_meta(c).get("solution"))

    stubs = sum(
        c.source.count("raise NotImplementedError()") for c in released.cells if is_solution(c)
    )
    cells = nbformat.read(str(source), as_version=4).cells
    # One stub per solution block (a class may have several).
    solutions = sum(c.source.count("### BEGIN SOLUTION") for c in cells if is_solution(c))
    assert stubs == solutions >= 1, f"{release.name}: {stubs} stubs, {solutions} solution blocks"


def test_leak_test_would_catch_a_forgotten_marker(tmp_path: Path) -> None:
    assert LEAKS.search("x = 1\n### END SOLUTION\n")
    assert LEAKS.search("from autograder import grade\n")
    assert not LEAKS.search("# the autograder checks more\n")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_passes_authoring_checks(source: Path) -> None:
    release = release_of(source)
    assert release is not None, f"{source} has no release notebook"
    assert check_notebook(source, release) == []


def _replace(cell, old: str, new: str) -> None:
    cell.source = cell.source.replace(old, new)


def _authoring_problems(tmp_path: Path, edit) -> list[str]:
    nb = nbformat.read(str(REPO / "source/part2_fundamentals/attention.ipynb"), as_version=4)
    edit(nb.cells, {grade_id(c): c for c in nb.cells})
    path = tmp_path / "attention.ipynb"  # the name decides the grader module
    nbformat.write(nb, str(path))
    return check_notebook(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda cells, by: by["causal"].metadata["nbgrader"].update(grade_id="sdpa"),
            "grade_id also used by cell",
        ),
        (
            lambda cells, by: _replace(by["sdpa"], "### END SOLUTION", ""),
            "'### BEGIN SOLUTION' without '### END SOLUTION'",
        ),
        (
            lambda cells, by: _replace(by["sdpa_tests"], "### BEGIN HIDDEN TESTS", "#"),
            "graded test cell without a hidden-test block",
        ),
        (
            lambda cells, by: by["mha_tests"].metadata["nbgrader"].update(points=3),
            "cell is worth 3 points, item 'attention.MultiHeadAttention' 4.5",
        ),
        (
            lambda cells, by: _replace(
                by["causal_tests"], "attention.causal_mask", "attention.nope"
            ),
            "unknown item 'attention.nope'",
        ),
        (
            lambda cells, by: cells.remove(by["causal_tests"]),
            "(causal): solution cell not followed by a graded test cell",
        ),
        (
            lambda cells, by: (
                _replace(by["mha_tests"], "attention.MultiHeadAttention", "moe.MoELayer")
                or by["mha_tests"].metadata["nbgrader"].update(points=4.5)
            ),
            "grades 'moe.MoELayer': this notebook's items are attention.<item>",
        ),
        (
            lambda cells, by: _replace(
                by["sdpa"], "(q, k, v, attn_mask=None", "(q, k, v, mask=None"
            ),
            "attention.scaled_dot_product_attention: the source solution writes "
            "scaled_dot_product_attention(q, k, v, mask=None, is_causal=False), the grader "
            "declares (q, k, v, attn_mask=None, is_causal=False)",
        ),
        (
            lambda cells, by: _replace(
                by["mha"], "def forward(self, x)", "def forward(self, x, m)"
            ),
            "attention.MultiHeadAttention: the source solution writes forward(x, m), the "
            "grader declares (x)",
        ),
        (
            lambda cells, by: _replace(by["causal"], "def causal_mask(t)", "def causal(t)"),
            "attention.causal_mask: the source solution defines no 'causal_mask'",
        ),
    ],
    ids=[
        "duplicate-id",
        "unbalanced",
        "no-hidden",
        "points",
        "unknown-item",
        "no-tests",
        "other-notebook",
        "parameter-renamed",
        "forward-changed",
        "not-defined",
    ],
)
def test_authoring_checks_catch_mistakes(tmp_path: Path, edit, message: str) -> None:
    problems = _authoring_problems(tmp_path, edit)
    assert any(message in p for p in problems), problems


def test_authoring_checks_compare_the_release_stub(tmp_path: Path) -> None:
    """A stub edited in release/ alone (its signature no longer the grader's) is reported."""
    source = REPO / "source/part2_fundamentals/attention.ipynb"
    released = nbformat.read(str(REPO / "release/part2_fundamentals/attention.ipynb"), 4)
    by = {grade_id(c): c for c in released.cells}
    _replace(by["sdpa"], "is_causal=False):", "causal=False):")
    release = tmp_path / "attention.ipynb"
    nbformat.write(released, str(release))
    assert check_notebook(source, release) == [
        f"{source}: attention.scaled_dot_product_attention: the release stub ({release}) writes "
        "scaled_dot_product_attention(q, k, v, attn_mask=None, causal=False), the grader "
        "declares (q, k, v, attn_mask=None, is_causal=False)"
    ]


TIME_LINE = re.compile(r"^\*\*Time:\*\* about (.+?)(?:\n\n|\Z)", re.M | re.S)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_notebook_says_at_the_top_how_long_it_takes(source: Path) -> None:
    first = nbformat.read(str(source), as_version=4).cells[0]
    found = TIME_LINE.search(first.source) if first.cell_type == "markdown" else None
    said = " ".join(found[1].split()) if found else ""
    assert all(part in said for part in ("of reading", "exercise", "Run All takes about")), (
        f"{source.name}: the first cell needs a paragraph '**Time:** about ... of reading, ... "
        "of exercises; Run All takes about ...' (reading, exercises, a full-mode run)"
    )
