"""Seconds to grade one attention notebook and a class of 20 with the trusted harness.

    python bench/bench_grading.py [--class-size 20] [--workers 2]

Prints the start-up share (a child Python importing torch, with no student code) beside
the whole grading time, and a class graded with 1 and with ``--workers`` threads (each
grading runs in its own child processes, so threads use both cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.harness import grade_notebook
from autograder.sandbox import Limits, run_steps
from tests.fixtures.attention_submissions import SUBMISSIONS
from tests.test_autograder import build_notebook

QUICK = [n for n in SUBMISSIONS if "loop" not in n and "exit" not in n and "allocates" not in n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--class-size", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    limits = Limits()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.class_size):
            sdpa, causal = SUBMISSIONS[QUICK[i % len(QUICK)]]
            paths.append(build_notebook(Path(tmp) / f"student{i}.ipynb", sdpa, causal))
        start = time.perf_counter()
        run_steps([{"id": "noop", "kind": "cell", "source": "pass"}], limits)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        grade_notebook(paths[0], limits)
        one = time.perf_counter() - start
        print(f"child start-up (python -I + import torch): {startup:.2f} s")
        print(f"one notebook (2 graded cells, 11 checks):  {one:.2f} s")
        for workers in sorted({1, args.workers}):
            start = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                reports = list(pool.map(lambda p: grade_notebook(p, limits), paths))
            total = time.perf_counter() - start
            assert len(reports) == len(paths)
            print(f"class of {len(paths)}, {workers} worker(s): {total:.1f} s, "
                  f"{total / len(paths):.2f} s per notebook")  # fmt: skip


if __name__ == "__main__":
    main()
