"""Autograde a whole class: ``python -m autograder.autograde_class ASSIGNMENT``.

    python -m autograder.autograde_class ASSIGNMENT [--workers N | --scheduler ADDRESS]
        [--db URL] [--force] [--root DIR] [nbgrader options...]

One task per student: ``nbgrader autograde ASSIGNMENT --student S --force`` (the course's
preprocessors, sandbox and limits, exactly as a sequential ``nbgrader autograde``), run in a
worker's own process (nbgrader, torch and the trusted grader's fork server start once per
worker, not once per student), on a Dask cluster: ``--workers N`` starts a
``LocalCluster`` of N processes on this machine (the default), ``--scheduler ADDRESS`` uses a
running ``dask.distributed`` scheduler (SLURM, Kubernetes: docs/grading_at_scale.md). Dask
places, retries and reschedules the tasks: a worker that dies mid-student has that student
regraded elsewhere; a student whose grading kills its worker ``--retries`` + 1 times is
reported failed by name, and the others are graded.

The workers must share the course folder (a network file system on a cluster): each task
reads ``submitted/<student>/`` and writes ``autograded/<student>/`` there, as nbgrader does.
The gradebook is nbgrader's ``CourseDirectory.db_url``: SQLite (``gradebook.db``) by default,
whose writers wait for each other instead of failing with "database is locked"; ``--db``
with a PostgreSQL URL (``postgresql+psycopg://user@host/db``) for many machines.

A student already graded from the same submission (``autograded/<student>/<assignment>/
.gw-graded`` holds the submission's fingerprint) is skipped unless ``--force``, so an
interrupted run is resumed by running the same command again. Prints one line per student;
exits 0 when every student was graded, 1 naming those who were not, 3 when the gradebook
cannot be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

GRADED_MARK = ".gw-graded"  # autograded/<student>/<assignment>/: the graded submission's hash
IN_PROGRESS = ".gw-grading"  # <root>/.gw-grading/<assignment>/<student>: the worker's pid
SQLITE_WAIT = 600  # seconds a SQLite writer waits for another instead of failing


@dataclass(frozen=True)
class Graded:
    """What one task reports."""

    student: str
    returncode: int
    seconds: float
    log: str = ""  # nbgrader's output when it failed


def submitted_students(root: Path, assignment: str) -> list[str]:
    folder = root / "submitted"
    return sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir())


def fingerprint(root: Path, student: str, assignment: str) -> str:
    """A hash of the submission's files (names and bytes): the same submission, the same hash."""
    digest = hashlib.sha256()
    folder = root / "submitted" / student / assignment
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def already_graded(root: Path, student: str, assignment: str) -> bool:
    mark = root / "autograded" / student / assignment / GRADED_MARK
    try:
        return mark.read_text() == fingerprint(root, student, assignment)
    except OSError:
        return False


def default_db_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}?timeout={SQLITE_WAIT}"


def redact(url: str) -> str:
    """The URL as given, its password (if any) replaced by ``***``, to print."""
    return re.sub(r"^([\w+]+://[^:/@]*):[^/]*@", r"\1:***@", url)


def check_gradebook(url: str) -> str | None:
    """None if the gradebook database answers, else why not (one line)."""
    import sqlalchemy

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///").split("?")[0])
        if not path.exists():
            return f"{path} does not exist: run `nbgrader generate_assignment` first"
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
    return None


def autograde_here(course: Path, argv: list[str]) -> tuple[int, str]:
    """``nbgrader autograde *argv`` in this process, in ``course``: its exit code and output.

    In the worker's own process, not a new one per student: the worker imports nbgrader and
    torch once, and the trusted grader's fork server (``autograder.sandbox``) started for its
    first student serves every later one -- the per-student start-up that made a class cost
    more than stock nbgrader.
    """
    from nbgrader.apps.autogradeapp import AutogradeApp

    output = io.StringIO()
    path, folder = list(sys.path), Path.cwd()
    os.chdir(course)  # nbgrader reads nbgrader_config.py from the working folder
    try:
        # The app's log handler is made when it is configured: inside, it writes to `output`.
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            app = AutogradeApp()
            app.initialize(argv)
            app.start()
        code = 0
    except SystemExit as e:  # the app's own failures: it has logged why
        code = e.code if isinstance(e.code, int) else 1
    except Exception:  # anything else (a gradebook gone away): the traceback, as nbgrader's
        code = 1
        output.write(traceback.format_exc())
    finally:
        sys.path[:] = path  # the app puts the course folder first on it, each time
        os.chdir(folder)
    return code, output.getvalue()


def grade_student(
    root: str, assignment: str, student: str, db_url: str, extra: list[str], threads: int
) -> Graded:
    """One task: grade one student's submission with nbgrader, in this (worker) process."""
    course = Path(root)
    marker = course / IN_PROGRESS / assignment / student
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    # The kernels this worker starts inherit these; the ones that each use every core slow
    # each other down: share the cores out.
    bin_dir = f"{Path(sys.executable).parent}{os.pathsep}"  # nbgrader runs alembic from it
    if not os.environ["PATH"].startswith(bin_dir):
        os.environ["PATH"] = bin_dir + os.environ["PATH"]
    os.environ["OMP_NUM_THREADS"] = str(threads)
    fingerprint_before = fingerprint(course, student, assignment)
    argv = [assignment, "--student", student, "--force", f"--CourseDirectory.db_url={db_url}"]
    start = time.perf_counter()
    code, log = autograde_here(course, [*argv, *extra])
    seconds = time.perf_counter() - start
    if code == 0:
        mark = course / "autograded" / student / assignment / GRADED_MARK
        partial = mark.with_suffix(f".{os.getpid()}")
        partial.write_text(fingerprint_before)
        partial.replace(mark)  # all or nothing: a half-written mark never says "graded"
    marker.unlink(missing_ok=True)
    return Graded(student, code, seconds, log if code else "")


def discard_partial(root: Path, assignment: str, student: str, db_url: str) -> None:
    """Remove what tasks killed mid-student left (the autograded folder, the gradebook's
    submission, the in-progress marker): a student given up on reads as not graded, not as
    half-graded. A gradebook that cannot be reached is left for the rerun to overwrite."""
    from nbgrader.api import Gradebook

    shutil.rmtree(root / "autograded" / student / assignment, ignore_errors=True)
    (root / IN_PROGRESS / assignment / student).unlink(missing_ok=True)
    with contextlib.suppress(Exception), Gradebook(db_url) as gb:  # MissingEntry: none yet
        gb.remove_submission(assignment, student)


def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import dask
    from distributed import Client, LocalCluster

    if args.scheduler:
        return Client(args.scheduler), None
    # A worker that dies while grading is restarted by its nanny and the task rescheduled;
    # a task that took down --retries + 1 workers is given up (KilledWorker).
    dask.config.set({"distributed.scheduler.allowed-failures": args.retries})
    cluster = LocalCluster(
        n_workers=max(1, args.workers),
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit=0,  # nbgrader and its kernels are children: the worker's own size is small
    )
    return Client(cluster), cluster


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m autograder.autograde_class",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("assignment")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler")
    p.add_argument("--db", metavar="URL", help="the gradebook (default: gradebook.db, SQLite)")
    p.add_argument("--force", action="store_true", help="regrade students already graded")
    p.add_argument("--retries", type=int, default=2, help="reruns after a worker dies (2)")
    p.add_argument("--root", default=".", help="course root (where nbgrader_config.py is)")
    args, extra = p.parse_known_args(argv)
    root = Path(args.root).resolve()
    db_url = args.db or default_db_url(root)
    problem = check_gradebook(db_url)
    if problem:
        print(f"error: the gradebook database {redact(db_url)} is not reachable: {problem}")
        return 3
    students = submitted_students(root, args.assignment)
    todo = [s for s in students if args.force or not already_graded(root, s, args.assignment)]
    for student in sorted(set(students) - set(todo)):
        print(f"{student:30s} skipped: already graded from this submission (--force regrades)")
    start = time.perf_counter()
    workers = max(1, args.workers)
    # On this machine the cores are shared out between the workers' kernels; a cluster's
    # workers are sized one core each (docs/grading_at_scale.md).
    threads = 1 if args.scheduler else max(1, (os.cpu_count() or 1) // workers)
    failed: dict[str, str] = {}
    if todo:
        from distributed import as_completed

        # By its module's name, not __main__'s: the workers import it from the package.
        from autograder.autograde_class import grade_student as task

        client, cluster = _client(args)
        try:
            futures = {
                client.submit(
                    task,
                    str(root),
                    args.assignment,
                    student,
                    db_url,
                    extra,
                    threads,
                    key=f"autograde-{args.assignment}-{student}",
                    pure=False,
                ): student
                for student in todo
            }
            for future in as_completed(futures):
                student = futures[future]
                try:
                    graded: Graded = future.result()
                except Exception as e:  # KilledWorker: it took down every worker it ran on
                    failed[student] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                    discard_partial(root, args.assignment, student, db_url)
                    print(f"{student:30s} FAILED: {failed[student]}", flush=True)
                    continue
                if graded.returncode == 0:
                    print(f"{student:30s} {graded.seconds:6.1f} s  ok", flush=True)
                else:
                    log = root / f"autograde-{student}.log"
                    log.write_text(graded.log)
                    failed[student] = f"nbgrader failed (see {log.name})"
                    print(f"{student:30s} {graded.seconds:6.1f} s  FAILED (see {log.name})")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    total = time.perf_counter() - start
    on = f"the cluster at {args.scheduler}" if args.scheduler else f"{workers} workers"
    print(
        f"{len(todo)} students in {total:.1f} s on {on} ({len(students) - len(todo)} skipped); "
        f"{len(failed)} failed"
    )
    if failed:
        problem = check_gradebook(db_url)
        if problem:
            print(
                f"error: the gradebook database {redact(db_url)} went away: {problem}; "
                "run the same command again once it is back"
            )
            return 3
        print(f"not graded: {', '.join(sorted(failed))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
