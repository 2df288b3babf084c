"""Grade a notebook file: run its student cells in the sandbox, check each graded item.

Which cells are the student's: nbgrader solution cells, plus code cells tagged
``gw-setup`` (imports and constants the solutions need). Which cells are graded: nbgrader
test cells whose hidden block calls ``grade("<topic>.<item>")``. A test cell owns the
solution cells since the previous test cell; a violation in one of them (an import of the
reference, a file read outside the folder, an exit) zeroes that test cell and flags it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from autograder import _child
from autograder.checks import Case, Check, call_step, verify
from autograder.graders import ITEMS, Item
from autograder.sandbox import Limits, run_steps
from coursekit.notebooks import nbgrader_meta

GRADE_CALL = re.compile(r"""\bgrade\(\s*["']([\w.]+)["']""")
SETUP_TAG = "gw-setup"
#: The course this autograder belongs to; its ``source/`` holds the notebooks with hidden tests.
COURSE_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CheckResult:
    name: str
    points: float
    passed: bool
    message: str


@dataclass
class CellReport:
    """The trusted result of one graded test cell."""

    grade_id: str
    item: str
    max_points: float
    points: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class NotebookReport:
    notebook: str
    cells: list[CellReport] = field(default_factory=list)
    error: str | None = None
    source: str | None = None  # the source notebook whose hidden tests decided the items

    @property
    def points(self) -> float:
        return sum(c.points for c in self.cells)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"points": self.points, "max_points": self.max_points}


def graded_item(cell: Any) -> str | None:
    """The item a test cell grades (from its hidden block), or None for other cells."""
    meta = nbgrader_meta(cell)
    if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
        return None
    match = GRADE_CALL.search(cell.get("source", ""))
    return match[1] if match else None


@dataclass(frozen=True)
class GradedCell:
    """What a graded test cell of the source notebook checks, and for how many points."""

    item: str
    points: float


def graded_cells(nb: Any) -> dict[str, GradedCell]:
    """``grade_id -> GradedCell`` for the test cells of a notebook with hidden tests."""
    found = {}
    for index, cell in enumerate(nb.cells):
        item = graded_item(cell)
        if item is not None:
            meta = nbgrader_meta(cell)
            found[str(meta.get("grade_id", f"cell{index}"))] = GradedCell(
                item, float(meta.get("points", 0))
            )
    return found


def source_of(path: str | Path, root: Path = COURSE_ROOT) -> Path | None:
    """The source notebook ``path`` was released from: ``source/<assignment>/<its name>`` of
    the course at ``root``, the assignment taken from the notebook's folder when it is one."""
    path = Path(path)
    source = root / "source"
    preferred = source / path.parent.name / path.name
    if preferred.is_file():
        return preferred
    matches = sorted(source.glob(f"*/{path.name}"))
    return matches[0] if len(matches) == 1 else None


def is_student_cell(cell: Any) -> bool:
    if cell.get("cell_type") != "code":
        return False
    tags = cell.get("metadata", {}).get("tags", [])
    return bool(nbgrader_meta(cell).get("solution")) or SETUP_TAG in tags


def grade_notebook(
    path: str | Path, limits: Limits | None = None, source: str | Path | None = None
) -> NotebookReport:
    """Grade every graded test cell of the notebook at ``path``; never raises for bad input.

    With ``source`` (a notebook with hidden tests, e.g. from :func:`source_of`), the graded
    cells, their items and points are the source's, matched by grade id: a notebook from
    ``release/`` carries no hidden tests, and nothing the student edits changes what is graded.
    Without it, the hidden ``grade()`` calls in the notebook itself decide.
    """
    report = NotebookReport(notebook=str(path), source=str(source) if source else None)
    try:
        nb = nbformat.read(str(path), as_version=4)
        graded = graded_cells(nbformat.read(str(source), as_version=4)) if source else None
    except Exception as e:  # a corrupted or unreadable file is a report, not a crash
        report.error = f"could not read the notebook: {type(e).__name__}: {e}"[:500]
        return report
    return grade_notebook_node(nb, str(path), limits, graded, report)


def grade_notebook_node(
    nb: Any,
    name: str,
    limits: Limits | None = None,
    graded: Mapping[str, GradedCell] | None = None,
    report: NotebookReport | None = None,
) -> NotebookReport:
    """Grade an already-read notebook (an ``nbformat`` node); ``name`` labels the report.

    ``graded``: the test cells to grade by grade id (see :func:`grade_notebook`); a cell of it
    missing from the notebook scores 0 with an error saying so.
    """
    report = report or NotebookReport(notebook=name)
    steps: list[dict[str, Any]] = []
    owned: list[tuple[CellReport, set[str], list[tuple[str, Any]]]] = []
    since_last: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if is_student_cell(cell):
            sid = f"cell:{index}"
            steps.append({"id": sid, "kind": "cell", "source": cell.source, "cell": index})
            since_last.add(sid)
            continue
        grade_id = str(nbgrader_meta(cell).get("grade_id", f"cell{index}"))
        if graded is None:
            item_id = graded_item(cell)
            points = float(nbgrader_meta(cell).get("points", 0))
        elif grade_id in graded and cell.get("cell_type") == "code":
            item_id, points = graded[grade_id].item, graded[grade_id].points
        else:
            item_id = None
        if item_id is None:
            continue
        item = ITEMS.get(item_id)
        cell_report = CellReport(grade_id, item_id, points)
        report.cells.append(cell_report)
        if item is None:
            cell_report.error = f"unknown grader item {item_id!r} (an authoring error)"
            continue
        if cell_report.max_points <= 0:
            cell_report.max_points = item.points
        calls = []
        for n, check in enumerate(item.checks):
            case = check.build()
            sid = f"check:{grade_id}:{n}"
            steps.append(call_step(sid, item.function, case) | {"group": grade_id})
            calls.append((sid, case))
        owned.append((cell_report, since_last | {sid for sid, _ in calls}, calls))
        since_last = set()
    for grade_id, cell in (graded or {}).items():
        if grade_id not in {c.grade_id for c in report.cells}:
            missing = CellReport(grade_id, cell.item, cell.points)
            missing.error = "this graded test cell is missing from the notebook: 0 points"
            report.cells.append(missing)
    if not owned:
        return report
    run = run_steps(steps, limits)
    for cell_report, step_ids, calls in owned:
        for step_id, what in run.violations:
            if step_id is None or step_id in step_ids:
                cell_report.flags.append(f"integrity: {what}")
        for sid in sorted(step_ids):
            res = run.results.get(sid)
            if sid.startswith("cell:") and res is not None and not res.ok:
                where = f"cell {sid.removeprefix('cell:')}"
                cell_report.error = f"your code in {where} failed: {res.error}"
        item = ITEMS[cell_report.item]
        for (sid, case), check in zip(calls, item.checks, strict=True):
            res = run.results.get(sid)
            error = None if res is not None and res.ok else (res.error if res else "not run")
            cell_report.checks.append(
                _check_result(check, case, res.result if res else None, error)
            )
        _score(cell_report, item)
    return report


def _check_result(
    check: Check, case: Case, result: dict[str, Any] | None, error: str | None
) -> CheckResult:
    message = error or verify(case, result) or ""
    if message and check.hint:
        message += f" (hint: {check.hint})"
    return CheckResult(check.name, check.points, not message, message)


def _score(cell: CellReport, item: Item) -> None:
    """Partial credit scaled to the cell's points; a flagged cell scores zero."""
    if cell.flags:
        cell.points = 0.0
    else:
        earned = sum(c.points for c in cell.checks if c.passed)
        cell.points = round(cell.max_points * earned / item.points, 4)


def grade_object(item_id: str, obj: Any) -> CellReport:
    """Run item ``item_id``'s checks on ``obj`` in this process.

    For instructors and authoring (source notebooks, tests): nothing here defends against
    the object, so grading of submissions always goes through :func:`grade_notebook`.
    Inputs and outputs still pass through the same encoding as in the sandbox.
    """
    item = ITEMS[item_id]
    report = CellReport(grade_id=item_id, item=item_id, max_points=item.points)
    for check in item.checks:
        case = check.build()
        try:
            result, error = _child.evaluate(obj, call_step("local", item.function, case)), None
        except Exception as e:
            result, error = None, f"{type(e).__name__}: {e}"
        report.checks.append(_check_result(check, case, result, error))
    _score(report, item)
    return report


def format_cell(cell: CellReport) -> str:
    """One graded cell's report: its score, then one line per check."""
    lines = [f"[{cell.grade_id}] {cell.item}: {cell.points:g} / {cell.max_points:g} points"]
    if cell.error:
        lines.append(f"  ERROR {cell.error}")
    for flag in cell.flags:
        lines.append(f"  FLAG  {flag} -> 0 points for this cell")
    for check in cell.checks:
        mark = "PASS" if check.passed else "FAIL"
        detail = f": {check.message}" if check.message else ""
        lines.append(f"  {mark}  {check.name} ({check.points:g} pt){detail}")
    return "\n".join(lines)


def format_report(report: NotebookReport) -> str:
    """The itemized report of a notebook."""
    lines = [f"{report.notebook}: {report.points:g} / {report.max_points:g} points"]
    if report.source:
        lines.append(f"  (graded by the hidden tests of {report.source})")
    if report.error:
        lines.append(f"  ERROR {report.error}")
    lines += [format_cell(cell) for cell in report.cells]
    return "\n".join(lines)
