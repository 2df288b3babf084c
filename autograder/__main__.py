"""``python -m autograder NOTEBOOK [--json]``: grade notebook files without nbgrader."""

from __future__ import annotations

import argparse
import json
import sys

from autograder.harness import format_report, grade_notebook
from autograder.sandbox import Limits


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    p.add_argument("notebooks", nargs="+", help="notebook files (.ipynb)")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    p.add_argument("--step-timeout", type=float, default=60.0, help="seconds per cell or check")
    args = p.parse_args(argv)
    reports = [grade_notebook(nb, Limits(step_timeout=args.step_timeout)) for nb in args.notebooks]
    if args.json:
        json.dump([r.to_dict() for r in reports], sys.stdout, indent=2)
        print()
    else:
        print("\n\n".join(format_report(r) for r in reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
