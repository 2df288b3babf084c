"""Grading a class on Dask (``autograder.autograde_class``) with real nbgrader, a real
PostgreSQL server and real faults: the gradebook, the exported CSV and the autograded
notebooks must be exactly those of a sequential ``nbgrader autograde`` on SQLite.

The class is a one-exercise assignment (the causal mask, graded by the attention grader), so
that each student costs a kernel start and one trusted run. PostgreSQL runs from Debian's
binaries in a temporary folder (``initdb`` + ``pg_ctl``, a Unix socket, no TCP port); without
them the tests skip, except under CI (``GW_REQUIRE_POSTGRES=1``), where that is a failure.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from autograder.autograde_class import GRADED_MARK, IN_PROGRESS

from .conftest import REPO
from .nbgrader_cli import nbgrader, nbgrader_env

ASSIGNMENT, NOTEBOOK = "scale", "scale.ipynb"
CORRECT = "def causal_mask(t):\n    return torch.ones(t, t, dtype=torch.bool).tril()\n"
OFF_BY_ONE = "def causal_mask(t):\n    return torch.ones(t, t, dtype=torch.bool).tril(-1)\n"
STUDENTS = {"ada": CORRECT, "ben": OFF_BY_ONE, "cy": None}  # None: the untouched release


# --- PostgreSQL in a temporary folder -----------------------------------------------------------


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:  # Debian links some of the binaries into PATH: the folder holding all of them
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@dataclass
class Postgres:
    """A PostgreSQL server of our own: its data folder, socket folder and binaries."""

    bin: Path
    folder: Path

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # The server refuses to run as root: then it runs as Debian's `postgres` user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.folder / "data"),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            f"-k {self.folder} -c listen_addresses='' -c fsync=off -c max_connections=50",
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "stop")

    def database(self, name: str) -> str:
        """A new, empty database: its SQLAlchemy URL."""
        self._run(str(self.bin / "createdb"), "-h", str(self.folder), "-U", "gw", name)
        return f"postgresql+psycopg://gw@/{name}?host={self.folder}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    binaries = postgres_bin()
    if binaries is None:
        message = "PostgreSQL's initdb not found (Debian: apt-get install postgresql)"
        if os.environ.get("GW_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's tmp_path: that is private to root, and the server may run as
    # `postgres`; a short path also keeps the socket's name under its length limit.
    folder = Path(tempfile.mkdtemp(prefix="gw-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    server = Postgres(binaries, folder)
    try:
        server._run(
            str(binaries / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "gw",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        server.start()
        yield server
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the class ----------------------------------------------------------------------------------


def source_notebook() -> nbformat.NotebookNode:
    def meta(grade_id: str, *, solution: bool, points: float = 0) -> dict:
        cell = {"grade_id": grade_id, "solution": solution, "grade": not solution}
        cell |= {"locked": not solution, "schema_version": 3}
        return {"nbgrader": cell | ({"points": points} if points else {})}

    new = nbformat.v4
    return new.new_notebook(
        cells=[
            new.new_markdown_cell("# The causal mask"),
            new.new_code_cell("import torch", metadata={"tags": ["gw-setup"]}),
            new.new_code_cell(
                "def causal_mask(t):\n    ### BEGIN SOLUTION\n"
                "    return torch.ones(t, t, dtype=torch.bool).tril()\n    ### END SOLUTION\n",
                metadata=meta("causal", solution=True),
            ),
            new.new_code_cell(
                "assert causal_mask(2).shape == (2, 2)\n### BEGIN HIDDEN TESTS\n"
                "from autograder import grade\ngrade('attention.causal_mask', causal_mask)\n"
                "### END HIDDEN TESTS\n",
                metadata=meta("causal_tests", solution=False, points=2),
            ),
        ]
    )


def new_course(root: Path, db_url: str | None, students: dict[str, str | None]) -> Path:
    """A course with the assignment released into ``db_url`` (default: gradebook.db) and
    ``students``' submissions."""
    root.mkdir(parents=True)
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, root / name)
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), str(root / "source" / ASSIGNMENT / NOTEBOOK))
    db = [f"--CourseDirectory.db_url={db_url}"] if db_url else []
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force", *db)
    for student, answer in students.items():
        nbgrader(root, "db", "student", "add", student, *db)
        nb = nbformat.read(str(root / "release" / ASSIGNMENT / NOTEBOOK), as_version=4)
        for cell in nb.cells:
            if answer and cell.metadata.get("nbgrader", {}).get("grade_id") == "causal":
                cell.source = answer
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / NOTEBOOK))
        (folder / "timestamp.txt").write_text("2026-11-30 12:00:00.000000 UTC")
    return root


def gradebook(db_url: str) -> dict[str, dict[str, tuple[float | None, float]]]:
    """Every student's every graded cell: (auto score, max score)."""
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[str, dict[str, tuple[float | None, float]]] = {}
    with Gradebook(db_url) as gb:
        for student in gb.students:
            try:
                notebook = gb.find_submission_notebook("scale", ASSIGNMENT, student.id)
            except MissingEntry:
                out[student.id] = {}
                continue
            out[student.id] = {g.name: (g.auto_score, g.max_score) for g in notebook.grades}
    return out


def exported(root: Path, db_url: str | None) -> list[dict[str, str]]:
    db = [f"--CourseDirectory.db_url={db_url}"] if db_url else []
    nbgrader(root, "export", *db)
    with open(root / "grades.csv") as f:
        return sorted(csv.DictReader(f), key=lambda row: row["student_id"])


def graded_outputs(root: Path) -> dict[str, list[str]]:
    """The autograded notebooks' graded-cell outputs (the itemized reports and scores)."""
    out = {}
    for path in sorted((root / "autograded").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}")):
        nb = nbformat.read(str(path), as_version=4)
        cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        out[path.parts[-3]] = [
            o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
            for c in cells
            for o in c.get("outputs", [])
        ]
    return out


def _interruptible() -> None:  # runs in the child between fork and exec
    # A suite started in the background (`cmd &`) inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: Ctrl-C would not reach the coordinator.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def autograde_class(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autograder.autograde_class", ASSIGNMENT, *args],
        cwd=root,
        env=nbgrader_env(GW_FAST="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_interruptible,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def on_grading(root: Path, student: str, act: Callable[[int], None], times: int = 1) -> None:
    """In a thread: each time a worker starts grading ``student``, ``act(worker pid)``."""

    def watch() -> None:
        marker = root / IN_PROGRESS / ASSIGNMENT / student
        seen: set[int] = set()
        deadline = time.monotonic() + 600
        while len(seen) < times and time.monotonic() < deadline:
            try:
                pid = int(marker.read_text())
            except (OSError, ValueError):
                pid = 0
            if pid and pid not in seen:
                time.sleep(1.0)  # let nbgrader start: the kill lands mid-student
                seen.add(pid)
                act(pid)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The reference: plain `nbgrader autograde` of the class, one student after another."""
    root = new_course(tmp_path_factory.mktemp("seq") / "course", None, STUDENTS)
    nbgrader(root, "autograde", ASSIGNMENT)
    url = f"sqlite:///{root / 'gradebook.db'}"
    return {
        "gradebook": gradebook(url),
        "csv": exported(root, None),
        "graded": graded_outputs(root),
    }


def test_the_reference_run_scores_each_answer(sequential: dict[str, object]) -> None:
    assert sequential["gradebook"] == {
        "ada": {"causal_tests": (2.0, 2.0)},
        "ben": {"causal_tests": (1.0, 2.0)},
        "cy": {"causal_tests": (0.0, 2.0)},
    }


def test_two_dask_workers_on_postgres_give_the_sequential_sqlite_result(
    tmp_path: Path, postgres: Postgres, sequential: dict[str, object]
) -> None:
    url = postgres.database("parallel")
    root = new_course(tmp_path / "course", url, STUDENTS)
    code, out = finish(autograde_class(root, "--workers", "2", "--db", url))
    assert code == 0, out
    assert "3 students in" in out and "0 failed" in out
    assert gradebook(url) == sequential["gradebook"]
    assert exported(root, url) == sequential["csv"]
    assert graded_outputs(root) == sequential["graded"]
    assert not list((root / IN_PROGRESS).rglob("*/*"))  # no task left half-done


def test_a_killed_worker_has_its_student_regraded_elsewhere(
    tmp_path: Path, postgres: Postgres, sequential: dict[str, object]
) -> None:
    url = postgres.database("killed")
    root = new_course(tmp_path / "course", url, STUDENTS)
    on_grading(root, "ben", kill)
    code, out = finish(autograde_class(root, "--workers", "2", "--db", url))
    assert code == 0, out
    assert gradebook(url) == sequential["gradebook"]
    assert graded_outputs(root) == sequential["graded"]
    assert exported(root, url) == sequential["csv"]


def test_a_poison_submission_is_reported_and_the_others_graded(
    tmp_path: Path, postgres: Postgres, sequential: dict[str, object]
) -> None:
    """Every worker that grades cy dies: after --retries 1 (two tries) cy is reported."""
    url = postgres.database("poison")
    root = new_course(tmp_path / "course", url, STUDENTS)
    on_grading(root, "cy", kill, times=2)
    code, out = finish(autograde_class(root, "--workers", "2", "--db", url, "--retries", "1"))
    assert code == 1, out
    assert "cy" in out.split("not graded: ")[1] and "KilledWorker" in out, out
    expected = dict(sequential["gradebook"])  # type: ignore[call-overload]
    expected["cy"] = {}
    assert gradebook(url) == expected
    assert not (root / "autograded" / "cy" / ASSIGNMENT / GRADED_MARK).exists()


def test_an_interrupted_run_resumes_where_it_stopped(
    tmp_path: Path, sequential: dict[str, object]
) -> None:
    """Ctrl-C after the first student: the rerun skips who was graded (SQLite, 2 workers).
    Six students (each answer twice): a worker asked to close may finish the student in hand
    (distributed's nanny waits 4 s before it kills it), and some must still be left."""
    twins = {"dee": "ada", "eve": "ben", "fay": "cy"}
    students = STUDENTS | {twin: STUDENTS[of] for twin, of in twins.items()}
    expected = {}
    for key in ("gradebook", "graded"):
        seen = dict(sequential[key])  # type: ignore[call-overload]
        expected[key] = seen | {twin: seen[of] for twin, of in twins.items()}
    root = new_course(tmp_path / "course", None, students)
    proc = autograde_class(root, "--workers", "2")
    marks = [root / "autograded" / s / ASSIGNMENT / GRADED_MARK for s in students]
    deadline = time.monotonic() + 300
    while not any(m.exists() for m in marks) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    finish(proc)
    done = {m.parts[-3] for m in marks if m.exists()}
    assert done and done != set(students), "interrupt after some students, before all"
    code, out = finish(autograde_class(root, "--workers", "2"))
    assert code == 0, out
    for student in done:
        assert f"{student} " in out and "skipped: already graded" in out
    assert f"{len(students) - len(done)} students in" in out
    assert gradebook(f"sqlite:///{root / 'gradebook.db'}") == expected["gradebook"]
    assert graded_outputs(root) == expected["graded"]


def test_a_gradebook_that_goes_away_is_named_and_a_rerun_completes(
    tmp_path: Path, postgres: Postgres, sequential: dict[str, object]
) -> None:
    url = postgres.database("goes_away")
    root = new_course(tmp_path / "course", url, STUDENTS)
    on_grading(root, "ben", lambda pid: postgres.stop())
    code, out = finish(autograde_class(root, "--workers", "1", "--db", url))
    postgres.start()
    assert code == 3, out
    assert (
        f"the gradebook database postgresql+psycopg://gw@/goes_away?host={postgres.folder}" in out
    )
    assert "run the same command again" in out
    code, out = finish(autograde_class(root, "--workers", "2", "--db", url))
    assert code == 0, out
    assert gradebook(url) == sequential["gradebook"]
    assert exported(root, url) == sequential["csv"]


def test_a_worker_grades_student_after_student_with_one_trusted_grader_server(
    tmp_path: Path, sequential: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each Dask worker does, without Dask: the tasks one after another in one process.
    Each student gets the sequential run's grades; one fork server serves them all; nothing
    of the process (sys.path, PATH, its working folder) drifts from student to student."""
    from autograder import sandbox
    from autograder.autograde_class import default_db_url, grade_student

    root = new_course(tmp_path / "course", None, STUDENTS)
    for name in ("GW_FAST", "GW_COURSE_ROOT", "OMP_NUM_THREADS", "PATH"):
        monkeypatch.setenv(name, os.environ.get(name, "1"))  # put back after the test
    monkeypatch.chdir(tmp_path)
    sandbox._stop_servers()
    path = list(sys.path)
    after = []  # per student: the live servers' pids and PATH
    try:
        for student in STUDENTS:
            graded = grade_student(str(root), ASSIGNMENT, student, default_db_url(root), [], 1)
            assert graded.returncode == 0, graded.log
            assert sys.path == path and Path.cwd() == tmp_path
            live = frozenset(s.proc.pid for s in sandbox._servers.values() if s.proc.poll() is None)
            after.append((live, os.environ["PATH"]))
    finally:
        sandbox._stop_servers()
    assert len(after[0][0]) == 1 and len(set(after)) == 1
    assert gradebook(f"sqlite:///{root / 'gradebook.db'}") == sequential["gradebook"]
    assert graded_outputs(root) == sequential["graded"]
    assert all((root / "autograded" / s / ASSIGNMENT / GRADED_MARK).exists() for s in STUDENTS)


def test_printed_database_urls_hide_the_password() -> None:
    from autograder.autograde_class import redact

    assert redact("postgresql+psycopg://gw:s3cr@t@db.example.org/gb") == (
        "postgresql+psycopg://gw:***@db.example.org/gb"
    )
    assert (
        redact("postgresql+psycopg://gw@/gb?host=/tmp/x")
        == "postgresql+psycopg://gw@/gb?host=/tmp/x"
    )
