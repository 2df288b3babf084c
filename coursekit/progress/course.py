"""Checking the whole course: each notebook is read (:mod:`~coursekit.progress.scan`), the
results of its started exercises are taken from the cache (:mod:`~coursekit.progress.cache`)
or found by running a copy (:mod:`~coursekit.progress.run`), and all of it is gathered into
one :class:`~coursekit.progress.model.CourseProgress`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import coursekit.progress.run as runner
from coursekit.progress.cache import _key, _load_cache, _save_cache
from coursekit.progress.model import CourseProgress, NotebookProgress
from coursekit.progress.run import RUNNING, _Run, _status
from coursekit.progress.scan import _layout, _questions, _source, find_release, notebooks


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
    nb.questions = _questions(cells)
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
                run = runner._execute(path, timeout)
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
