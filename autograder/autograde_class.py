"""Autograde a whole class on several cores: ``python -m autograder.autograde_class ASSIGNMENT``.

Runs ``nbgrader autograde ASSIGNMENT --student S`` for every submitted student, ``--workers``
at a time, from the course root (extra arguments go to nbgrader, e.g. ``--force``). Each
student is one nbgrader process, so a student whose submission fails never stops the
others; the SQLite gradebook is shared, which is safe because no two processes write the
same student's rows (tests/test_nbgrader_e2e.py grades a class this way and compares
with a sequential run). Prints one line per student and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def submitted_students(root: Path, assignment: str) -> list[str]:
    folder = root / "submitted"
    return sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir())


def nbgrader_command() -> list[str]:
    """nbgrader from this environment; its bin/ must also be on PATH (alembic)."""
    found = Path(sys.executable).with_name("nbgrader")
    return [str(found)] if found.exists() else [shutil.which("nbgrader") or "nbgrader"]


def autograde_student(
    root: Path, assignment: str, student: str, extra: list[str], threads: int
) -> tuple[str, int, float]:
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # Kernels that each use every core slow each other down: share the cores out.
        "OMP_NUM_THREADS": str(threads),
    }
    start = time.perf_counter()
    result = subprocess.run(
        [*nbgrader_command(), "autograde", assignment, "--student", student, *extra],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        (root / f"autograde-{student}.log").write_text(result.stdout + result.stderr)
    return student, result.returncode, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m autograder.autograde_class",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("assignment")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--root", default=".", help="course root (where nbgrader_config.py is)")
    args, extra = p.parse_known_args(argv)
    root = Path(args.root).resolve()
    if not (root / "gradebook.db").exists():
        print("no gradebook.db: run `nbgrader generate_assignment` first", file=sys.stderr)
        return 2
    students = submitted_students(root, args.assignment)
    start = time.perf_counter()
    workers = max(1, args.workers)
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ThreadPoolExecutor(workers) as pool:
        results = list(
            pool.map(
                lambda s: autograde_student(root, args.assignment, s, extra, threads), students
            )
        )
    failed = 0
    for student, code, seconds in results:
        status = "ok" if code == 0 else f"FAILED (see autograde-{student}.log)"
        failed += code != 0
        print(f"{student:30s} {seconds:6.1f} s  {status}")
    total = time.perf_counter() - start
    print(f"{len(students)} students in {total:.1f} s with {workers} workers; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
