"""Seconds to grade the pilot notebook: the trusted harness alone, and real nbgrader
autograding of one submission and of a class, sequentially and on two workers; then the
whole of part2_fundamentals (three notebooks per student) graded by stock nbgrader beside
ours, per student-notebook, with 1 and ``--workers`` workers.

    python bench/bench_grading.py [--class-size 20] [--workers 2] [--stock-class 6]

Also prints the fixed costs inside each figure: the trusted grader's fork server starting
(once per nbgrader process) and one run forked from it, and a Jupyter kernel starting and
importing torch; and what the namespace sandbox
(bubblewrap) costs: the child's start-up and the trusted run of one notebook, with and
without it (alternating, best of ``--repeats``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder import namespace  # noqa: E402
from autograder.harness import grade_notebook  # noqa: E402
from autograder.sandbox import Limits, _stop_servers, run_steps  # noqa: E402
from tests.fixtures.attention_class import CLASS  # noqa: E402
from tests.test_nbgrader_e2e import ASSIGNMENT, NOTEBOOK, submit  # noqa: E402

# Stock nbgrader on the same notebooks: its default autograde preprocessors (Execute, no
# trusted run, no sandboxed kernel, no kernel guard), the checks run in the student's kernel
# by the hidden cells' grade() calls (GW_GRADE_IN_KERNEL), a failed check failing the cell.
STOCK_CONFIG = """
c = get_config()  # noqa: F821
load_subconfig("course_config.py")  # noqa: F821
from nbgrader.converters.autograde import Autograde
c.Autograde.autograde_preprocessors = Autograde.autograde_preprocessors.default()
c.Autograde.pre_convert_hook = None
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
"""
LIMITS = ["--Execute.timeout=10", "--TrustedGrades.step_timeout=10"]  # the looping student

BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    """This process's environment now (``GW_BWRAP`` included), for nbgrader."""
    return os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GW_FAST": "1"}


QUICK = [s for s in CLASS if s not in ("infinite_loop",)]  # no timeouts in the averages


def timed(*cmd: str, cwd: Path, extra: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env() | (extra or {}), check=False, capture_output=True)
    return time.perf_counter() - start


def kernel_startup() -> float:
    """A kernel as nbgrader starts it (SafeExecute: in the namespace where bubblewrap works)
    becoming ready and importing torch."""
    from autograder.kernel_sandbox import SandboxedKernelManager

    async def start_and_import() -> None:
        km = SandboxedKernelManager(kernel_name="python3")
        with tempfile.TemporaryDirectory() as folder:  # as a submission's folder
            await km.start_kernel(cwd=folder)
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=120)
            await kc.execute_interactive("import torch", timeout=120)
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    return seconds(lambda: asyncio.run(start_and_import()))


def without_namespace(run: Callable[[], object]) -> float:
    """Seconds of ``run()`` with bubblewrap made unavailable (the audit hooks alone)."""
    saved = os.environ.get("GW_BWRAP")
    os.environ["GW_BWRAP"] = "/nonexistent/bwrap"
    try:
        return seconds(run)
    finally:
        if saved is None:
            del os.environ["GW_BWRAP"]
        else:
            os.environ["GW_BWRAP"] = saved


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def namespace_cost(name: str, run: Callable[[], object], repeats: int) -> None:
    """The best of ``repeats`` alternating runs with and without the namespace."""
    why = namespace.unavailable([])
    if why is not None:
        print(f"{name}: {seconds(run):5.2f} s (no namespace here: {why})")
        return
    pairs = [(seconds(run), without_namespace(run)) for _ in range(repeats)]
    inside, outside = min(p[0] for p in pairs), min(p[1] for p in pairs)
    print(
        f"{name}: {inside:5.2f} s in the namespace, {outside:5.2f} s without "
        f"({100 * (inside / outside - 1):+.1f} %)"
    )


def make_course(root: Path, size: int) -> None:
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", ASSIGNMENT, "--force"],
        cwd=root,
        env=env(),
        check=True,
        capture_output=True,
    )
    for i in range(size):
        solutions, tamper, _ = CLASS[QUICK[i % len(QUICK)]]
        submit(root, f"student{i:02d}", solutions, tamper)


def submit_part2(course: Path, student: str, kind: str) -> None:
    """All three notebooks of part2_fundamentals: attention from the fixture class (honest
    mistakes, attacks, a loop), the other two solved (source solutions) or untouched."""
    import nbformat

    solutions, tamper, _ = CLASS[kind]
    submit(course, student, solutions, tamper)
    for name in ("embeddings_and_positions", "transformer_block"):
        nb = nbformat.read(str(course / "release" / ASSIGNMENT / f"{name}.ipynb"), as_version=4)
        if kind in ("correct", "partial", "infinite_loop"):
            src = nbformat.read(str(course / "source" / ASSIGNMENT / f"{name}.ipynb"), 4)
            answers = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in src.cells}
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
                    cell.source = answers[gid]
        nbformat.write(nb, str(course / "submitted" / student / ASSIGNMENT / f"{name}.ipynb"))


def all_graded(root: Path, name: str, n: int) -> None:
    """Fail unless the run left all ``n`` autograded notebooks (then clear them for the next
    run): a run that failed early must not pass for a fast one."""
    graded = list((root / "autograded").glob(f"*/{ASSIGNMENT}/*.ipynb"))
    if len(graded) != n:
        raise SystemExit(f"{name}: {len(graded)} of {n} notebooks autograded")
    shutil.rmtree(root / "autograded")


def stock_versus_ours(tmp: Path, size: int, workers: int) -> None:
    """The same class of part2_fundamentals graded by stock nbgrader and by the course."""
    ours, stock = tmp / "ours", tmp / "stock"
    for root in (ours, stock):
        root.mkdir()
        make_course(root, 0)
        kinds = ["correct", "partial", "wrong_scaling", "reference_import", "infinite_loop"]
        for i in range(size):
            submit_part2(root, f"s{i:02d}", kinds[i % len(kinds)])
    (stock / "nbgrader_config.py").write_text(STOCK_CONFIG)
    stock_env = {"GW_GRADE_IN_KERNEL": "1"}
    n = size * 3
    rows = []
    for name, root, extra in (("stock nbgrader", stock, stock_env), ("ours", ours, {})):
        seq = timed(str(BIN / "nbgrader"), "autograde", ASSIGNMENT, "--force", *LIMITS, cwd=root,
                    extra=extra)  # fmt: skip
        all_graded(root, name, n)
        par = timed(sys.executable, "-m", "autograder.autograde_class", ASSIGNMENT, "--force",
                    "--workers", str(workers), *LIMITS, cwd=root, extra=extra)  # fmt: skip
        all_graded(root, name, n)
        rows.append((name, seq, par))
        print(
            f"{name:15s} class of {size} x 3 notebooks: 1 worker {seq:6.1f} s "
            f"({seq / n:5.2f} s per student-notebook), {workers} workers {par:6.1f} s "
            f"({par / n:5.2f} s per student-notebook)"
        )
    (_, s1, s2), (_, o1, o2) = rows
    print(f"ours / stock: {o1 / s1:.2f}x with 1 worker, {o2 / s2:.2f}x with {workers} workers")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--class-size", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="of the namespace's cost")
    p.add_argument("--stock-class", type=int, default=6, help="students of the stock-vs-ours run")
    p.add_argument("--only-stock", action="store_true", help="run the stock-vs-ours part only")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stock_versus_ours(Path(tmp), args.stock_class, args.workers)
    if args.only_stock:
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_course(root, args.class_size)
        noop = [{"id": "noop", "kind": "cell", "source": "pass"}]
        cold = "trusted grader's server start-up (python -I + torch, pyplot, sympy; once)"
        namespace_cost(cold, lambda: (_stop_servers(), run_steps(noop)), args.repeats)
        warm = "a trusted run on the started server (fork, limits, filters; per run)"
        namespace_cost(warm, lambda: run_steps(noop), args.repeats)
        kernel = "Jupyter kernel start-up + import torch"
        namespace_cost(kernel, kernel_startup, args.repeats)
        # the master notebook: every item graded (3 items, 16 checks), all passing
        source = REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        harness = "trusted harness, one notebook"
        namespace_cost(harness, lambda: grade_notebook(source, Limits()), args.repeats)
        nbg = str(BIN / "nbgrader")
        one = [nbg, "autograde", ASSIGNMENT, "--student", "student00", "--force"]
        one.append("--TrustedGrades.require_sandbox=False")  # for the run without it
        namespace_cost("nbgrader autograde, one student", lambda: timed(*one, cwd=root), 1)
        t = timed(nbg, "autograde", ASSIGNMENT, "--force", cwd=root)
        n = args.class_size
        print(f"nbgrader autograde, class of {n}, one process:     {t:6.1f} s ({t / n:.2f} s each)")
        t = timed(
            sys.executable,
            "-m",
            "autograder.autograde_class",
            ASSIGNMENT,
            "--force",
            "--workers",
            str(args.workers),
            cwd=root,
        )
        print(
            f"autograde_class, class of {n}, {args.workers} workers:      {t:6.1f} s "
            f"({t / n:.2f} s each)"
        )


if __name__ == "__main__":
    main()
