"""The command line, ``python -m coursekit.progress``: parses the options, checks the course,
prints the table (or the JSON with ``--json``) and saves the chart with ``--chart``; its help
text is the package's docstring.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import coursekit.progress as _package
from coursekit.progress.course import course_progress
from coursekit.progress.grading import grade_course, model_answers
from coursekit.progress.render import chart
from coursekit.progress.scan import find_release


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m coursekit.progress",
        description=_package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--root",
        type=Path,
        help="the course's release/ folder (default: found "
        "from here upwards, else $GW_COURSE_ROOT/release)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--chart", type=Path, metavar="FILE.png", help="also save the chart")
    p.add_argument("--no-execute", action="store_true", help="run nothing (cache only)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per cell (120)")
    p.add_argument(
        "--grade",
        action="store_true",
        help="also grade the started notebooks with the hidden graders (a full clone only)",
    )
    p.add_argument(
        "--answer",
        metavar="NOTEBOOK",
        help="show the model answers of NOTEBOOK's written questions you have answered",
    )
    args = p.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    try:
        if args.answer:
            print(model_answers(args.root or find_release(), args.answer))
            return 0
        progress = course_progress(
            args.root, execute=not args.no_execute, timeout=args.timeout, log=log
        )
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.grade:
        grade_course(progress, log=log)
    print(json.dumps(progress.to_dict(), indent=1) if args.json else progress.text())
    if args.chart:
        chart(progress).savefig(args.chart, dpi=100)
    return 0
