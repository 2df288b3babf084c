"""The self-paced progress view (coursekit/progress.py) on temporary copies of release/.

Two notebook runs in all (about 10 s): a MoE notebook with a correct, a wrong and a
syntactically broken answer and a deleted test cell; and one whose kernel times out and dies.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coursekit import progress
from coursekit.progress import FAIL, NOT_RUN, NOT_STARTED, PASS, CourseProgress, cache, scan
from coursekit.progress import run as runner

from .conftest import REPO

MOE = "part3_innovations/moe.ipynb"
FORBIDDEN = re.compile(r"all tests pass|passed|\bdone\b", re.I)


def copy_release(root: Path, *notebooks: str) -> Path:
    """``root``/release holding copies of the named ``assignment/notebook.ipynb``."""
    for name in notebooks:
        (root / "release" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "release" / name, root / "release" / name)
    return root / "release"


def solution(notebook: str, grade_id: str) -> str:
    """The source notebook's solution, as a student would type it (no marker lines)."""
    cells = json.loads((REPO / "source" / notebook).read_text())["cells"]
    (cell,) = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    return "".join(
        line for line in cell["source"] if "### BEGIN" not in line and "### END" not in line
    )


def edit(path: Path, sources: dict[str, str | None]) -> None:
    """Set the named cells' sources (None: delete the cell), as the student's editor would."""
    nb = json.loads(path.read_text())
    kept = []
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in sources and sources[grade_id] is None:
            continue
        if grade_id in sources:
            cell["source"] = sources[grade_id]
        kept.append(cell)
    nb["cells"] = kept
    path.write_text(json.dumps(nb, indent=1))


def number(grade_id: str) -> int:
    """The MoE notebook's cell with this grade_id, counted from 1."""
    cells = json.loads((REPO / "release" / MOE).read_text())["cells"]
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in cells]
    return ids.index(grade_id) + 1


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def statuses(course: CourseProgress) -> dict[str, tuple[str, str]]:
    return {e.name: (e.status, e.detail) for nb in course.notebooks for e in nb.exercises}


def no_execution(*args: Any) -> None:
    raise AssertionError(f"a notebook was executed: {args}")


def assert_wording(*texts: str) -> None:
    for text in texts:
        assert not FORBIDDEN.search(text), FORBIDDEN.search(text)
        assert "hidden graders additionally check values and gradients" in text


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_PROGRESS_CACHE", str(tmp_path / "cache" / "progress.json"))
    monkeypatch.delenv(progress.RUNNING, raising=False)


def test_untouched_release_is_not_started_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [
        "part4_training/generation.ipynb",
        "part4_training/tokenization.ipynb",
        "part1_evolution/rnn_language_model.ipynb",
    ]
    root = copy_release(tmp_path, *names)
    shutil.copy(root / names[0], root / "part4_training" / "a_extra.ipynb")  # unknown: last
    monkeypatch.setattr(runner, "_execute", no_execution)
    course = progress.course_progress(root)
    order = [f"{nb.assignment}/{nb.notebook}" for nb in course.notebooks]
    assert order == [
        "part1_evolution/rnn_language_model",
        "part4_training/tokenization",
        "part4_training/generation",
        "part4_training/a_extra",
    ]
    assert {s for s, _ in statuses(course).values()} == {NOT_STARTED}
    total = 0.0
    for nb in course.notebooks:  # points: the test cells' points, titles from the markdown
        cells = json.loads((root / nb.assignment / f"{nb.notebook}.ipynb").read_text())["cells"]
        meta = [c["metadata"].get("nbgrader", {}) for c in cells if c["cell_type"] == "code"]
        tests = [m for m in meta if m.get("grade") and not m.get("solution")]
        assert [e.points for e in nb.exercises] == [m["points"] for m in tests]
        total += sum(m["points"] for m in tests)
        assert [e.name for e in nb.exercises] == [m["grade_id"] for m in meta if m.get("solution")]
        assert all(re.match(rf"Exercise {i + 1}: \S", e.title) for i, e in enumerate(nb.exercises))
        assert nb.title.startswith("Part ") and not nb.checked
    assert course.next is not None and course.next[1].name == "rnn_cell"
    assert course.passing_points == 0 and course.points == total > 0
    # the command line, as a student runs it
    cli = subprocess.run(
        [sys.executable, "-m", "coursekit.progress", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert cli.stderr == ""  # nothing was run, and no warning
    data = json.loads(cli.stdout)
    assert data["next"] == {
        "assignment": "part1_evolution",
        "notebook": "rnn_language_model",
        "exercise": "rnn_cell",
    }
    assert data["points"] == total and data["passing_points"] == 0
    assert_wording(cli.stdout, course.text(), course.html())


@pytest.fixture(scope="module")
def worked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A student's course: the MoE notebook with a right, a wrong and a broken answer and a
    deleted test cell, and an attention notebook that is no longer valid JSON; checked once."""
    home = tmp_path_factory.mktemp("student")
    root = copy_release(home, MOE, "part2_fundamentals/attention.ipynb")
    wrong = solution(MOE, "gating_weights").replace("weights.sum(dim=-1, keepdim=True)", "2")
    edit(
        root / MOE,
        {
            "router_top_k": solution(MOE, "router_top_k"),
            "gating_weights": wrong,
            "load_balancing_loss": "def load_balancing_loss(logits, k)\n    pass\n",
            "capacity_dispatch": solution(MOE, "capacity_dispatch"),
            "capacity_dispatch_tests": None,
        },
    )
    broken = root / "part2_fundamentals" / "attention.ipynb"
    broken.write_bytes(broken.read_bytes()[:5000])  # a half-saved file
    before = fingerprint(root)
    runs: list[Path] = []

    def counted(path: Path, timeout: float) -> Any:
        runs.append(path)
        return real(path, timeout)

    real = runner._execute
    # patched for this one check only: the fixture lives as long as the module, and other
    # tests of the module (in any order) run notebooks too
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GW_PROGRESS_CACHE", str(home / "cache.json"))
        mp.setattr(runner, "_execute", counted)
        course = progress.course_progress(root)
    return {
        "root": root,
        "course": course,
        "runs": runs,
        "before": before,
        "cache": home / "cache.json",
    }


def test_a_correct_answer_passes_its_visible_tests_and_the_next_moves_on(
    worked: dict[str, Any],
) -> None:
    course = worked["course"]
    assert [p.name for p in worked["runs"]] == ["moe.ipynb"]  # the attention file is unreadable
    assert statuses(course)["router_top_k"] == (PASS, "")
    assert course.passing_points == 3 and course.points == 16.5
    assert course.next is not None and course.next[1].name == "gating_weights"
    assert course.next_line() == "next: part3_innovations/moe exercise gating_weights"
    assert statuses(course)["moe_layer"] == (NOT_STARTED, "")


def test_wrong_and_broken_answers_are_reported_in_their_rows(worked: dict[str, Any]) -> None:
    rows = statuses(worked["course"])
    assert rows["gating_weights"][0] == FAIL
    assert rows["gating_weights"][1].startswith(
        "AssertionError: renormalised weights: 0.4 / 0.7 and 0.3 / 0.7: 4 of 4 values differ"
    )
    assert rows["load_balancing_loss"] == (FAIL, "your code: SyntaxError: expected ':' (line 1)")
    assert (
        rows["capacity_dispatch"][0] == NOT_RUN
        and "test cell is missing" in rows["capacity_dispatch"][1]
    )
    (attention,) = [nb for nb in worked["course"].notebooks if nb.notebook == "attention"]
    assert attention.problem.startswith("cannot be read: JSONDecodeError")
    assert attention.exercises == []


def test_the_students_files_are_untouched(worked: dict[str, Any]) -> None:
    assert fingerprint(worked["root"]) == worked["before"]


def test_a_second_look_comes_from_the_cache(
    worked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_PROGRESS_CACHE", str(worked["cache"]))
    monkeypatch.setattr(runner, "_execute", no_execution)
    again = progress.course_progress(worked["root"])
    assert statuses(again) == statuses(worked["course"])
    assert [nb.checked for nb in again.notebooks] == ["", "cache"]
    assert [nb.checked for nb in worked["course"].notebooks] == ["", "run"]


def test_command_line_and_notebook_views(
    worked: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GW_PROGRESS_CACHE", str(worked["cache"]))
    monkeypatch.setattr(runner, "_execute", no_execution)
    assert progress.main(["--root", str(worked["root"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passing_points"] == 3 and data["next"]["exercise"] == "gating_weights"
    moe = data["notebooks"][1]
    assert [e["status"] for e in moe["exercises"]] == [PASS, FAIL, FAIL, NOT_RUN, NOT_STARTED]
    chart = tmp_path / "chart.png"
    assert progress.main(["--root", str(worked["root"]), "--chart", str(chart)]) == 0
    text = capsys.readouterr().out
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert "\nnext: part3_innovations/moe exercise gating_weights\n" in text
    assert "overall: visible tests pass for 3 of 16.5 points (1 of 5 exercises)" in text
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    from coursekit import show_progress  # what a notebook cell imports

    course = show_progress(worked["root"])
    table, image = shown
    (highlighted,) = re.findall(r"<tr style='background:#fff8c5'>.*?</tr>", table.data)
    assert "next" in highlighted and "<code>gating_weights</code>" in highlighted
    assert image.data[:4] == b"\x89PNG" and "3 of 16.5 points" in repr(course)
    bars = progress.chart(course).axes[0].patches
    assert [b.get_width() for b in bars] == [0, 16.5, 0, 3]  # totals, then passing points
    assert_wording(text, table.data, json.dumps(data))


def test_a_timeout_and_a_dead_kernel_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_release(tmp_path, MOE)
    edit(
        root / MOE,
        {
            "setup": "raise ImportError('the course environment is not installed')",
            "router_top_k": solution(MOE, "router_top_k"),
            "gating_weights": "import time\nwhile True:\n    time.sleep(0.05)\n",
            "load_balancing_loss": "import os\nos._exit(1)\n",
            "capacity_dispatch": solution(MOE, "capacity_dispatch"),
        },
    )
    rows = statuses(progress.course_progress(root, timeout=2))
    assert rows["router_top_k"] == (
        NOT_RUN,
        f"the given cell {number('setup')} (setup) failed: ImportError: the course environment "
        "is not installed",
    )
    assert rows["gating_weights"] == (FAIL, "your code: ran over the 2 s limit, interrupted")
    died = (
        f"the kernel died in cell {number('load_balancing_loss')} (load_balancing_loss): "
        "out of memory, or a crash"
    )
    assert rows["load_balancing_loss"] == rows["capacity_dispatch"] == (NOT_RUN, died)
    assert rows["moe_layer"] == (NOT_STARTED, "")


def test_where_the_course_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_release(tmp_path / "course", MOE)
    monkeypatch.chdir(root / "part3_innovations")  # a notebook kernel's cwd
    assert progress.find_release() == root.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GW_COURSE_ROOT", str(tmp_path / "course"))
    assert progress.find_release() == tmp_path / "course" / "release"
    monkeypatch.delenv("GW_COURSE_ROOT")
    with pytest.raises(FileNotFoundError, match="GW_COURSE_ROOT"):
        progress.find_release()


def test_nothing_runs_inside_a_copy_being_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``show_progress()`` cell in a notebook must not start checks of its own."""
    root = copy_release(tmp_path, MOE)
    edit(root / MOE, {"router_top_k": solution(MOE, "router_top_k")})
    monkeypatch.setattr(runner, "_execute", no_execution)
    monkeypatch.setenv(progress.RUNNING, "1")
    rows = statuses(progress.course_progress(root))
    assert rows["router_top_k"] == (NOT_RUN, "not executed (no result cached for this code)")


def test_checksum_is_nbgraders() -> None:
    import nbformat
    from nbgrader.utils import compute_checksum

    nb = nbformat.read(REPO / "release" / MOE, as_version=4)
    cells = [c for c in nb.cells if "checksum" in c.metadata.get("nbgrader", {})]
    assert len(cells) > 10
    for cell in cells:
        assert scan._checksum(cell) == compute_checksum(cell) == cell.metadata.nbgrader.checksum


def test_error_lines_say_what_failed() -> None:
    tb = [
        "\x1b[31m---------\x1b[39m",
        "Cell \x1b[32mIn[6], line 3\x1b[39m\n      1 x = 1\n"
        "\x1b[32m----> 3\x1b[39m assert capacity == 6\n",
    ]
    cases = [
        (
            {"ename": "AssertionError", "evalue": "", "traceback": tb},
            "AssertionError: at `assert capacity == 6`",
        ),
        (
            {"ename": "NotImplementedError", "evalue": ""},
            "NotImplementedError: a stub still runs (here, or in an exercise this one uses)",
        ),
        (
            {"ename": "SyntaxError", "evalue": "invalid syntax (1063758517.py, line 4)"},
            "SyntaxError: invalid syntax (line 4)",
        ),
        ({"ename": "ValueError", "evalue": "first\nsecond " + "x" * 300}, "ValueError: first"),
    ]
    for output, line in cases:
        assert runner._error_line(output) == line
    assert len(runner._error_line({"ename": "E", "evalue": "y" * 500})) == 200


def test_a_changed_environment_is_not_served_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cells = [{"cell_type": "code", "source": "x = 1", "metadata": {}}]
    before = cache._key(cells, 60.0)
    assert cache._key(cells, 60.0) == before
    env = cache._environment()
    assert any(e.startswith("torch==") for e in env), env
    other = [("torch==0.0.1" if e.startswith("torch==") else e) for e in env]
    monkeypatch.setattr(cache, "_environment", lambda: other)
    assert cache._key(cells, 60.0) != before


def full_clone(root: Path) -> None:
    """Make the course folder holding ``root`` (a release/) a full clone: graders and sources."""
    for name in ("autograder", "source"):
        (root.parent / name).symlink_to(REPO / name)


def test_graded_view_of_a_student_studying_alone(
    worked: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--grade runs the hidden graders in a separate process, through the trusted path."""
    monkeypatch.setenv("GW_PROGRESS_CACHE", str(worked["cache"]))
    monkeypatch.setattr(runner, "_execute", no_execution)  # the visible view comes from the cache
    root = worked["root"]
    assert progress.main(["--root", str(root), "--grade"]) == 0
    assert "graded: the hidden graders are not in this copy" in capsys.readouterr().out
    full_clone(root)
    assert progress.main(["--root", str(root), "--grade", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    moe = {e["name"]: e for e in data["notebooks"][1]["exercises"]}
    assert moe["router_top_k"]["graded"] == "graded 3/3, every check passes"
    wrong = moe["gating_weights"]
    assert 0 < wrong["graded_points"] < 3 and "values differ" in wrong["graded"]
    assert moe["load_balancing_loss"]["graded_points"] == 0
    assert "SyntaxError" in moe["load_balancing_loss"]["graded"]
    assert moe["capacity_dispatch"]["graded"] == (
        "graded 0/3: its graded test cell is missing: copy it back from a fresh release"
    )
    assert moe["moe_layer"]["graded_points"] == 0 and moe["moe_layer"]["graded"] == ""
    assert data["graded_points"] == 3 + wrong["graded_points"]
    assert data["grading"].startswith(f"graded: {data['graded_points']:g} of 16.5 points")
    assert fingerprint(root) == worked["before"]  # grading changed none of the student's files


def test_written_questions_are_listed_and_model_answers_shown_after_answering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_release(tmp_path, MOE)
    monkeypatch.setattr(runner, "_execute", no_execution)
    (nb,) = progress.course_progress(root).notebooks
    assert [(q.name, q.points, q.answered) for q in nb.questions] == [("understanding", 1, False)]
    assert progress.main(["--root", str(root), "--answer", "moe"]) == 0
    shown = capsys.readouterr().out
    assert "write your own answer in that cell first" in shown and "model answer" not in shown
    edit(root / MOE, {"understanding": "The router gets no gradient, I think."})
    progress.main(["--root", str(root), "--no-execute"])
    assert "understanding" in capsys.readouterr().out.split("written: answered")[0]
    progress.main(["--root", str(root), "--answer", str(root / MOE)])
    assert "the model answers are not in this copy" in capsys.readouterr().out
    full_clone(root)
    progress.main(["--root", str(root), "--answer", "moe"])
    model = solution(MOE, "understanding").strip().splitlines()[0]
    assert f"model answer:\n    {model}" in capsys.readouterr().out
