"""``python -m autograder NOTEBOOK... [--json]``: grade notebook files without nbgrader.

A notebook of this course (a student's copy of ``release/<assignment>/<name>.ipynb``, a
submission in ``submitted/<student>/<assignment>/``) is graded by the hidden tests of its
source notebook, ``source/<assignment>/<name>.ipynb``, matched by the cells' grade ids. Any
other notebook is graded by the hidden ``grade()`` calls it holds. Exit status: 0 when every
notebook was graded, 2 when one could not be read or has no gradable cells, or when
``--require-sandbox`` is given and bubblewrap cannot be used (then nothing is graded).
"""

from __future__ import annotations

import argparse
import json
import sys

from autograder.harness import COURSE_ROOT, format_report, grade_notebook, source_of
from autograder.namespace import SandboxUnavailable
from autograder.sandbox import Limits, check_namespace


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m autograder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("notebooks", nargs="+", help="notebook files (.ipynb)")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    p.add_argument("--step-timeout", type=float, default=60.0, help="seconds per cell or check")
    p.add_argument(
        "--require-sandbox",
        action="store_true",
        help="fail when bubblewrap cannot isolate the students' code (no audit-hook fallback)",
    )
    args = p.parse_args(argv)
    limits = Limits(step_timeout=args.step_timeout, require_namespace=args.require_sandbox)
    try:
        check_namespace(limits)
    except SandboxUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    reports = [grade_notebook(nb, limits, source_of(nb)) for nb in args.notebooks]
    for report in reports:
        if not report.cells and not report.error:
            report.error = (
                "no gradable cells: no source notebook of the same name in "
                f"{COURSE_ROOT / 'source'}, and no hidden grade() calls in the notebook"
            )
    if args.json:
        json.dump([r.to_dict() for r in reports], sys.stdout, indent=2)
        print()
    else:
        print("\n\n".join(format_report(r) for r in reports))
    failed = [r.notebook for r in reports if r.error]
    for name in failed:
        print(f"error: {name} was not graded (see its report)", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
