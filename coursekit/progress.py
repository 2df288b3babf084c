"""Self-paced progress: every exercise of the course and whether its visible tests pass.

In a notebook cell: ``from coursekit import show_progress; show_progress()``. In a terminal:
``python -m coursekit.progress [--root DIR] [--json] [--chart FILE.png] [--no-execute]``.

Nothing here grades and nothing here changes your files: each notebook with at least one
started exercise is run as a temporary copy (fast mode, in a fresh kernel of this Python),
and the outputs of its visible-test cells are read. The hidden graders, which give the
grade, are neither used nor revealed. Results are cached by the code of the notebook.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NOT_STARTED = "not started"
PASS = "visible tests pass"
FAIL = "visible tests fail"
NOT_RUN = "not run"

#: Course order of the known notebooks within their assignment; others follow by name.
ORDER = (
    "rnn_language_model", "vanishing_gradients",
    "attention", "embeddings_and_positions", "transformer_block",
    "efficient_attention", "moe", "image_input",
    "tokenization", "training_loop", "generation",
)  # fmt: skip

HIDDEN_GRADERS = (
    "A visible pass is not yet the grade: the hidden graders additionally check values and "
    "gradients on other inputs, other shapes and edge cases."
)
CACHE_VERSION = 1
CACHE_ENTRIES = 200  # the newest results kept in the cache file
RUNNING = "GW_PROGRESS_RUNNING"  # set in the kernel that runs a copy: no progress check inside

_EXERCISE = re.compile(r"\*\*(Exercise\s+\d+)\s*(?:\(([\d.]+)\s*points?\))?[^*]*\*\*(.*)", re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Exercise:
    """One solution cell and its visible-test cell."""

    name: str  # the solution cell's grade_id
    title: str
    points: float
    status: str  # NOT_STARTED, PASS, FAIL or NOT_RUN
    detail: str = ""  # why it fails or did not run: one line


@dataclass
class NotebookProgress:
    assignment: str
    notebook: str  # file name without .ipynb
    title: str
    exercises: list[Exercise] = field(default_factory=list)
    problem: str = ""  # the whole notebook could not be read or run: one line
    checked: str = ""  # "run" (executed now), "cache", or "" (nothing started, or no execution)

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def passing_points(self) -> float:
        return sum(e.points for e in self.exercises if e.status == PASS)


@dataclass(repr=False)
class CourseProgress:
    root: Path
    notebooks: list[NotebookProgress]

    @property
    def points(self) -> float:
        return sum(nb.points for nb in self.notebooks)

    @property
    def passing_points(self) -> float:
        return sum(nb.passing_points for nb in self.notebooks)

    @property
    def next(self) -> tuple[NotebookProgress, Exercise] | None:
        """The first exercise in course order whose visible tests do not pass yet."""
        return next(
            ((nb, e) for nb in self.notebooks for e in nb.exercises if e.status != PASS), None
        )

    def next_line(self) -> str:
        if self.next is None:
            return "next: none, the visible tests pass in every exercise"
        nb, ex = self.next
        return f"next: {nb.assignment}/{nb.notebook} exercise {ex.name}"

    def overall_line(self) -> str:
        exercises = [e for nb in self.notebooks for e in nb.exercises]
        passing = sum(e.status == PASS for e in exercises)
        return (
            f"overall: visible tests pass for {_num(self.passing_points)} of "
            f"{_num(self.points)} points ({passing} of {len(exercises)} exercises)"
        )

    def text(self) -> str:
        """A plain-text table: one block per notebook, the overall line and the next exercise."""
        lines = []
        for nb in self.notebooks:
            lines.append(
                f"{nb.assignment}/{nb.notebook}  {_num(nb.passing_points)}/"
                f"{_num(nb.points)} points  ({nb.title})"
            )
            if nb.problem:
                lines.append(f"    problem: {nb.problem}")
            for ex in nb.exercises:
                status = f"{ex.status}: {ex.detail}" if ex.detail else ex.status
                title = ex.title if len(ex.title) <= 40 else ex.title[:37] + "..."
                lines.append(f"  {ex.name:<22} {title:<40} {_num(ex.points):>3} pts  {status}")
        lines += [self.overall_line(), self.next_line(), HIDDEN_GRADERS]
        return "\n".join(lines)

    def html(self) -> str:
        """The same table as HTML, the next exercise highlighted."""
        colors = {PASS: "#1a7f37", FAIL: "#cf222e", NOT_RUN: "#bc4c00", NOT_STARTED: "#6e7781"}
        nxt = self.next[1] if self.next else None
        rows = []
        for nb in self.notebooks:
            rows.append(
                "<tr style='background:#f0f3f6'>"
                + _td(f"<b>{_h(nb.assignment)}/{_h(nb.notebook)}</b> {_h(nb.title)}", span=3)
                + _td(f"<b>{_num(nb.passing_points)} / {_num(nb.points)}</b>", "right")
                + _td(_h(nb.problem))
                + "</tr>"
            )
            for ex in nb.exercises:
                status = f"<span style='color:{colors[ex.status]}'>{_h(ex.status)}</span>"
                rows.append(
                    ("<tr style='background:#fff8c5'>" if ex is nxt else "<tr>")
                    + _td("&#9654;&nbsp;next" if ex is nxt else "")
                    + _td(f"<code>{_h(ex.name)}</code>")
                    + _td(_h(ex.title))
                    + _td(_num(ex.points), "right")
                    + _td(status + (": " + _h(ex.detail) if ex.detail else ""))
                    + "</tr>"
                )
        head = "".join(f"<th style='text-align:left'>{t}</th>" for t in ("", "exercise", ""))
        return (
            f"<table><thead><tr>{head}<th style='text-align:right'>points</th><th style="
            f"'text-align:left'>status</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p><b>{_h(self.overall_line())}</b><br>{_h(self.next_line())}<br>"
            f"{_h(HIDDEN_GRADERS)}</p>"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "points": self.points,
            "passing_points": self.passing_points,
            "next": None
            if self.next is None
            else {
                "assignment": self.next[0].assignment,
                "notebook": self.next[0].notebook,
                "exercise": self.next[1].name,
            },
            "note": HIDDEN_GRADERS,
            "notebooks": [
                {
                    "assignment": nb.assignment,
                    "notebook": nb.notebook,
                    "title": nb.title,
                    "points": nb.points,
                    "passing_points": nb.passing_points,
                    "problem": nb.problem,
                    "checked": nb.checked,
                    "exercises": [vars(e) for e in nb.exercises],
                }
                for nb in self.notebooks
            ],
        }

    def __repr__(self) -> str:
        return f"CourseProgress({self.overall_line()}; {self.next_line()})"


def _num(x: float) -> str:
    return f"{x:g}"


def _h(text: str) -> str:
    return html.escape(text, quote=False)


def _td(content: str, align: str = "left", span: int = 1) -> str:
    """A table cell, aligned explicitly (JupyterLab right-aligns table cells)."""
    wrap = ";white-space:nowrap" if align == "right" else ""
    return f"<td colspan='{span}' style='text-align:{align}{wrap}'>{content}</td>"


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


def _meta(cell: dict[str, Any]) -> dict[str, Any]:
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def _checksum(cell: dict[str, Any]) -> str:
    """nbgrader's checksum of a cell (``nbgrader.utils.compute_checksum``, 0.9)."""
    meta = _meta(cell)
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
        return bool(_meta(cell)["checksum"] == _checksum(cell))
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
        grade_id = str(_meta(cells[first]).get("grade_id") or f"cell {first + 1}")
        name = grade_id if solution is not None else grade_id.removesuffix("_tests")
        title, md_points = _title(intro if solution is not None else markdown, name)
        points = _meta(cells[test]).get("points") if test is not None else None
        points = float(points) if points is not None else (md_points or 0.0)
        started = solution is None or not _untouched(cells[solution])
        slots.append(_Slot(Exercise(name, title, points, ""), solution, test, started))

    for index, cell in enumerate(cells):
        meta, kind = _meta(cell), cell.get("cell_type")
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


# --- running a copy ---------------------------------------------------------------------------


@dataclass
class _Run:
    """What happened to the code cells of a temporary copy."""

    errors: dict[int, str] = field(default_factory=dict)  # cell index -> its error, one line
    reached: int = 0  # the cells before this index ran
    stopped: str = ""  # why the run ended early
    cacheable: bool = True


def _error_line(output: dict[str, Any]) -> str:
    name, value = output.get("ename", "Error"), str(output.get("evalue", "")).strip()
    value = re.sub(r"\((?:\d+\.py|<[^>]*>), line (\d+)\)", r"(line \1)", value)
    if name == "NotImplementedError" and not value:
        value = "a stub still runs (here, or in an exercise this one uses)"
    if not value:  # a bare assert: show the line that failed
        frames = [_ANSI.sub("", line) for line in output.get("traceback", [])]
        arrows = re.findall(r"^-+> *\d+ (.*)$", "\n".join(frames), re.M)
        value = f"at `{arrows[-1].strip()}`" if arrows else ""
    line = f"{name}: {value.splitlines()[0]}" if value else name
    return line if len(line) <= 200 else line[:197] + "..."


def _cell_name(cell: dict[str, Any], index: int) -> str:
    grade_id = _meta(cell).get("grade_id")
    return f"cell {index + 1} ({grade_id})" if grade_id else f"cell {index + 1}"


def _execute(path: Path, timeout: float) -> _Run:
    """Run a temporary copy of ``path``'s folder in a fresh kernel of this Python."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    run = _Run()
    with tempfile.TemporaryDirectory(prefix="gw-progress-") as tmp:
        work = Path(tmp) / "copy" / path.parent.name
        shutil.copytree(path.parent, work, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        nb = nbformat.read(work / path.name, as_version=4)
        spec = Path(tmp) / "kernels" / "python"
        spec.mkdir(parents=True)
        argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--HistoryManager.hist_file=:memory:",
        ]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "language": "python", "display_name": "Python"})
        )
        km = AsyncKernelManager(
            kernel_name="python",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]),
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=int(timeout),
            allow_errors=True,
            interrupt_on_timeout=True,
            shutdown_kernel="immediate",
            error_on_timeout={"ename": "Timeout", "evalue": "", "traceback": []},
        )
        env = {**os.environ, "GW_FAST": "1", RUNNING: "1"}
        try:
            with client.setup_kernel(  # cleanup_kc: shut the kernel down, though km is ours
                env=env,
                cwd=str(work),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cleanup_kc=True,
            ):
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    where = _cell_name(cell, index)
                    start = time.monotonic()
                    try:
                        client.execute_cell(cell, index)
                    except DeadKernelError:
                        run.stopped = f"the kernel died in {where}: out of memory, or a crash"
                        break
                    errors = [o for o in cell.outputs if o.output_type == "error"]
                    if time.monotonic() - start >= timeout:
                        if not any(e.ename == "KeyboardInterrupt" for e in errors):
                            run.stopped = f"{where} ran over the {timeout:g} s limit"
                            break  # the interrupt did not get through: the kernel is stuck
                        run.errors[index] = f"ran over the {timeout:g} s limit, interrupted"
                    elif errors:
                        run.errors[index] = _error_line(errors[0])
                    run.reached = index + 1
        except Exception as e:  # the kernel did not start, or stopped answering
            run.stopped = run.stopped or f"could not run a kernel: {type(e).__name__}: {e}"
            run.cacheable = run.reached > 0
    return run


def _status(slot: _Slot, cells: list[dict[str, Any]], run: _Run | None) -> tuple[str, str]:
    test = slot.test
    if not slot.started:
        return NOT_STARTED, ""
    if test is None:
        return NOT_RUN, "its visible-test cell is missing: copy it back from a fresh release"
    if run is None:
        return NOT_RUN, "not executed (no result cached for this code)"
    if test >= run.reached:
        return NOT_RUN, run.stopped or "not executed"
    if test not in run.errors:
        return PASS, ""
    if run.errors[test].startswith("ran over"):
        return NOT_RUN, f"the visible tests {run.errors[test]}"
    if slot.solution in run.errors:
        return FAIL, f"your code: {run.errors[slot.solution]}"
    given = [
        i
        for i in range(test)
        if i in run.errors and _meta(cells[i]).get("locked") and not _meta(cells[i]).get("grade")
    ]
    if given:
        where = _cell_name(cells[given[0]], given[0])
        return NOT_RUN, f"the given {where} failed: {run.errors[given[0]]}"
    return FAIL, run.errors[test]


# --- the cache --------------------------------------------------------------------------------


def cache_path() -> Path:
    if os.environ.get("GW_PROGRESS_CACHE"):
        return Path(os.environ["GW_PROGRESS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gemini-workshop" / "progress.json"


def _load_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
        if data.get("version") == CACHE_VERSION and isinstance(data.get("entries"), dict):
            return dict(data["entries"])
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def _save_cache(entries: dict[str, Any]) -> None:
    newest = sorted(entries.items(), key=lambda kv: kv[1].get("time", 0))[-CACHE_ENTRIES:]
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": dict(newest)}))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: no cache, still correct


def _environment() -> list[str]:
    """What besides the code decides a result: the Python and the packages' versions (a
    student who fixes their environment gets fresh results)."""
    from importlib.metadata import PackageNotFoundError, version

    found = [sys.executable]
    for name in ("torch", "numpy", "gemini-workshop"):
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    return found


def _key(cells: list[dict[str, Any]], timeout: float) -> str:
    code = [_source(c) for c in cells if c.get("cell_type") == "code"]
    key = [CACHE_VERSION, timeout, _environment(), code]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


# --- the course -------------------------------------------------------------------------------


def _notebook_progress(
    path: Path,
    cache: dict[str, Any],
    execute: bool,
    timeout: float,
    log: Callable[[str], None],
) -> NotebookProgress:
    nb = NotebookProgress(path.parent.name, path.stem, path.stem)
    try:
        cells = json.loads(path.read_bytes())["cells"]
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ValueError("'cells' is not a list of cells")
    except (OSError, ValueError, KeyError, TypeError) as e:
        nb.problem = f"cannot be read: {type(e).__name__}: {str(e).splitlines()[0][:150]}"
        return nb
    titles = [
        line[2:].strip()
        for c in cells
        if c.get("cell_type") == "markdown"
        for line in _source(c).splitlines()
        if line.startswith("# ")
    ]
    nb.title = titles[0] if titles else path.stem
    slots = _layout(cells)
    if not slots:
        nb.problem = "no exercises found (is the nbgrader cell metadata still there?)"
    run: _Run | None = None
    if any(s.started for s in slots):
        cached = cache.get(_key(cells, timeout), {}).get("results", {})
        if all(s.exercise.name in cached for s in slots):
            for slot in slots:
                slot.exercise.status, slot.exercise.detail = cached[slot.exercise.name]
            nb.checked = "cache"
        elif execute:
            log(f"running a copy of {nb.assignment}/{path.name} ...")
            try:
                run = _execute(path, timeout)
            except Exception as e:  # e.g. a notebook that nbformat cannot read
                nb.problem = f"could not be run: {type(e).__name__}: {str(e).splitlines()[0]}"
                run = _Run(stopped="the notebook could not be run", cacheable=False)
            nb.checked = "run"
    for slot in slots:
        if nb.checked != "cache":
            slot.exercise.status, slot.exercise.detail = _status(slot, cells, run)
        nb.exercises.append(slot.exercise)
    if run is not None and run.cacheable:
        results = {e.name: [e.status, e.detail] for e in nb.exercises}
        cache[_key(cells, timeout)] = {"results": results, "time": time.time()}
    return nb


def course_progress(
    root: Path | None = None,
    *,
    execute: bool = True,
    timeout: float = 120.0,
    log: Callable[[str], None] | None = None,
) -> CourseProgress:
    """Every exercise of the course with its points and visible-test status.

    ``root``: the course's release/ folder (default: found from the cwd, see
    :func:`find_release`). ``execute=False`` runs nothing (started exercises not in the
    cache are "not run"). ``timeout``: seconds per cell.
    """
    root = find_release() if root is None else Path(root)
    if (root / "release").is_dir():
        root = root / "release"
    execute = execute and not os.environ.get(RUNNING)  # never from inside a copy being run
    cache = _load_cache()
    before = dict(cache)
    progress = CourseProgress(root, [])
    for path in notebooks(root):
        try:
            nb = _notebook_progress(path, cache, execute, timeout, log or (lambda _: None))
        except Exception as e:  # a notebook this module did not foresee: report, go on
            nb = NotebookProgress(path.parent.name, path.stem, path.stem)
            nb.problem = f"cannot be checked: {type(e).__name__}: {e}".splitlines()[0]
        progress.notebooks.append(nb)
    if cache != before:
        _save_cache(cache)
    return progress


def chart(progress: CourseProgress) -> Figure:
    """Horizontal bars per notebook: points whose visible tests pass, of all its points."""
    from matplotlib.figure import Figure

    nbs = progress.notebooks
    fig = Figure(figsize=(7, 0.8 + 0.32 * len(nbs)), layout="constrained")
    ax = fig.subplots()
    labels = [f"{nb.assignment}/{nb.notebook}" for nb in nbs]
    ax.barh(labels, [nb.points for nb in nbs], color="#d0d7de")
    ax.barh(labels, [nb.passing_points for nb in nbs], color="#2da44e")
    for y, nb in enumerate(nbs):
        ax.text(
            nb.points, y, f" {_num(nb.passing_points)}/{_num(nb.points)}", va="center", fontsize=8
        )
    ax.set_xlim(0, 1.15 * max([nb.points for nb in nbs] + [1.0]))
    ax.invert_yaxis()
    ax.tick_params(labelsize=8)
    ax.set_xlabel("points (green: visible tests pass)", fontsize=8)
    ax.set_title(
        f"Visible tests pass for {_num(progress.passing_points)} of {_num(progress.points)} points",
        fontsize=10,
    )
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def show_progress(root: Path | None = None, *, execute: bool = True) -> CourseProgress:
    """For a notebook cell: the progress table and chart, displayed; returns the progress."""
    from IPython.display import HTML, Image, display

    progress = course_progress(root, execute=execute, log=print)
    display(HTML(progress.html()))
    if progress.notebooks:
        display(Image(data=_png(chart(progress))))
    return progress


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m coursekit.progress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--root",
        type=Path,
        help="the course's release/ folder (default: found "
        "from here upwards, else $GW_COURSE_ROOT/release)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--chart", type=Path, metavar="FILE.png", help="also save the chart")
    p.add_argument("--no-execute", action="store_true", help="run nothing (cache only)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per cell (120)")
    args = p.parse_args(argv)
    try:
        progress = course_progress(
            args.root,
            execute=not args.no_execute,
            timeout=args.timeout,
            log=lambda m: print(m, file=sys.stderr),
        )
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(progress.to_dict(), indent=1) if args.json else progress.text())
    if args.chart:
        chart(progress).savefig(args.chart, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
