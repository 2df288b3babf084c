"""Run the graders under pytest: one test per check of every graded cell.

    python -m pytest -p autograder.pytest_plugin --grade path/to/notebook.ipynb [-v]

The notebook is graded once, exactly as ``python -m autograder`` grades it (student code in
the sandbox, comparison here); each check then passes or fails with its message, and the
terminal summary adds the points per cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autograder.harness import CellReport, CheckResult, NotebookReport, grade_notebook


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--grade", action="store_true", help="grade the .ipynb files given on the command line"
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if parent.config.getoption("grade") and file_path.suffix == ".ipynb":
        return GradedNotebook.from_parent(parent, path=file_path)
    return None


class GradedNotebook(pytest.File):
    report: NotebookReport

    def collect(self) -> Iterator[pytest.Item]:
        self.report = grade_notebook(self.path)
        self.config.stash.setdefault(_REPORTS, []).append(self.report)
        if self.report.error:
            yield CheckItem.from_parent(self, name="read notebook", cell=None, check=None)
        for cell in self.report.cells:
            if cell.error or cell.flags:
                yield CheckItem.from_parent(
                    self, name=f"[{cell.grade_id}] integrity", cell=cell, check=None
                )
            for check in cell.checks:
                name = f"[{cell.grade_id}] {check.name} ({check.points:g} pt)"
                yield CheckItem.from_parent(self, name=name, cell=cell, check=check)


class CheckFailed(Exception):
    pass


class CheckItem(pytest.Item):
    def __init__(
        self, *, cell: CellReport | None, check: CheckResult | None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.cell, self.check = cell, check

    def runtest(self) -> None:
        if self.check is not None:
            if not self.check.passed:
                raise CheckFailed(self.check.message)
        elif self.cell is not None:
            raise CheckFailed("; ".join([*self.cell.flags, self.cell.error or ""]).strip("; "))
        else:
            parent = self.parent
            assert isinstance(parent, GradedNotebook)
            raise CheckFailed(parent.report.error)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name


_REPORTS = pytest.StashKey[list[NotebookReport]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for report in config.stash.get(_REPORTS, []):
        terminalreporter.write_sep(
            "-", f"{report.notebook}: {report.points:g} / {report.max_points:g} points"
        )
        for cell in report.cells:
            terminalreporter.write_line(f"{cell.grade_id}: {cell.points:g} / {cell.max_points:g}")
