"""Seconds to grade the pilot notebook: the trusted harness alone, and real nbgrader
autograding of one submission and of a class, sequentially and on two workers.

    python bench/bench_grading.py [--class-size 20] [--workers 2]

Also prints the fixed costs inside each figure: a sandbox child starting and importing
torch, and a Jupyter kernel starting and importing torch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.harness import grade_notebook  # noqa: E402
from autograder.sandbox import Limits, run_steps  # noqa: E402
from tests.fixtures.attention_class import CLASS  # noqa: E402
from tests.test_nbgrader_e2e import ASSIGNMENT, NOTEBOOK, submit  # noqa: E402

BIN = Path(sys.executable).parent
ENV = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GW_FAST": "1"}
QUICK = [s for s in CLASS if s not in ("infinite_loop",)]  # no timeouts in the averages


def timed(*cmd: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=False, capture_output=True)
    return time.perf_counter() - start


def kernel_startup() -> float:
    from jupyter_client.manager import start_new_kernel

    start = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3")
    kc.execute_interactive("import torch", timeout=120)
    elapsed = time.perf_counter() - start
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return elapsed


def make_course(root: Path, size: int) -> None:
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", ASSIGNMENT, "--force"],
        cwd=root,
        env=ENV,
        check=True,
        capture_output=True,
    )
    for i in range(size):
        solutions, tamper, _ = CLASS[QUICK[i % len(QUICK)]]
        submit(root, f"student{i:02d}", solutions, tamper)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--class-size", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_course(root, args.class_size)
        start = time.perf_counter()
        run_steps([{"id": "noop", "kind": "cell", "source": "pass"}], Limits())
        child = time.perf_counter() - start
        print(f"sandbox child start-up (python -I + import torch): {child:5.2f} s")
        print(f"Jupyter kernel start-up + import torch:            {kernel_startup():5.2f} s")
        start = time.perf_counter()  # the master notebook: every item graded, all passing
        grade_notebook(REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", Limits())
        harness = time.perf_counter() - start
        print(f"trusted harness, one notebook (3 items, 16 checks): {harness:5.2f} s")
        nbg = str(BIN / "nbgrader")
        t = timed(nbg, "autograde", ASSIGNMENT, "--student", "student00", cwd=root)
        print(f"nbgrader autograde, one student:                   {t:5.2f} s")
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
