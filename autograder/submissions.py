"""Submitted notebooks that nbgrader would skip: ``python -m autograder.submissions ASSIGNMENT``.

nbgrader grades a submitted notebook only under the name it was released with: a student's
``attention-Copy1.ipynb``, ``attention (1).ipynb``, ``Attention.ipynb`` or a notebook in a
subfolder is skipped without a word, and the student scores 0. For every folder
submitted/<student>/<assignment>/ this compares the notebooks with release/<assignment>/*.ipynb
and prints one line per finding: a misnamed notebook and the exact rename to do, a missing
or unreadable notebook, a copy next to the graded one, and (when gradebook.db exists) a
student folder that is not in the gradebook. Exits 1 when anything needs the instructor.

``--fix`` does the renames that are unambiguous and whose target does not exist; it never
overwrites or deletes a file, and says what it did and what it left.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shlex
import sqlite3
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from coursekit.notebooks import nbgrader_meta

SIMILAR = 0.7  # the least name similarity (0..1) for a notebook to be taken for a released one


@dataclass(frozen=True)
class Finding:
    """One line of the report; ``rename`` (paths relative to the course root) is what --fix
    may do, and ``problem`` is False for notes that need no action."""

    student: str
    text: str
    problem: bool = True
    rename: tuple[Path, Path] | None = None


def normalize(name: str) -> str:
    """The part of a notebook's name a student keeps: ``Copy of Attention (1)`` -> attention."""
    stem = Path(name).stem.lower()
    stem = re.sub(r"^copy of ", "", stem)
    stem = re.sub(r"([-_ ]?copy\d*| ?\(\d+\)|-\d+)+$", "", stem)
    return re.sub(r"[\s_-]+", "_", stem).strip("_")


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, normalize(a), normalize(b)).ratio()


def read_notebook(path: Path) -> dict | None:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return nb if isinstance(nb, dict) and isinstance(nb.get("cells"), list) else None


def answers(nb: dict) -> dict[str, str]:
    """The source of each solution cell, by grade_id."""
    out = {}
    for cell in nb["cells"]:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            source = cell.get("source", "")
            out[meta.get("grade_id", "")] = "".join(source) if isinstance(source, list) else source
    return out


def notebooks(folder: Path) -> list[str]:
    """Notebooks under folder (relative, posix), leaving out hidden folders (checkpoints)."""
    found = (p.relative_to(folder) for p in folder.rglob("*.ipynb") if p.is_file())
    return sorted(p.as_posix() for p in found if not any(s.startswith(".") for s in p.parts))


def mv(src: Path, dst: Path) -> str:
    return f"mv {shlex.quote(str(src))} {shlex.quote(str(dst))}"


def unchanged(path: Path, release: Path) -> bool:
    """Whether the notebook's solution cells are still those of the release (stubs)."""
    nb, released = read_notebook(path), read_notebook(release)
    return nb is not None and released is not None and answers(nb) == answers(released)


def check_student(root: Path, folder: Path, released: dict[str, Path]) -> list[Finding]:
    """Findings for one submitted/<student>/<assignment> folder; released: name -> path."""
    student = folder.parent.name
    present = notebooks(folder)

    def rel(name: str) -> Path:
        return (folder / name).relative_to(root)

    out: list[Finding] = []
    for name in present:
        if read_notebook(folder / name) is None:
            text = f"{rel(name)} is not a readable notebook (invalid JSON): it scores 0"
            out.append(Finding(student, text + "; ask the student to submit it again"))
    extras = [n for n in present if n not in released]
    best: dict[str, str] = {}
    for extra in extras:
        score, target = max((similarity(extra, r), r) for r in released)
        if score >= SIMILAR:
            best[extra] = target
    for target in released:
        candidates = [e for e in extras if best.get(e) == target]
        src, dst = rel(candidates[0]) if candidates else None, rel(target)
        if target in present:
            for extra in candidates:
                same = unchanged(folder / target, released[target])
                state = "the untouched release" if same else "edited"
                swap = f"{mv(dst, dst.with_name(target + '.orig'))} && {mv(rel(extra), dst)}"
                text = f"{rel(extra)} is not graded, {target} ({state}) is: if the copy holds"
                out.append(Finding(student, f"{text} the work, {swap}"))
        elif src is not None and len(candidates) == 1:
            text = f"{src} is not graded (nbgrader skips it): {mv(src, dst)}"
            out.append(Finding(student, text, rename=(src, dst)))
        elif candidates:
            names = ", ".join(str(rel(c)) for c in candidates)
            text = f"{dst} is missing and {len(candidates)} notebooks could be it: {names}"
            out.append(Finding(student, f"{text}: rename the one with the work to {target}"))
        else:
            out.append(Finding(student, f"{dst} is missing: it scores 0"))
    for extra in extras:
        if extra not in best:
            text = f"{rel(extra)} is not a notebook of the assignment (not graded)"
            out.append(Finding(student, text, problem=False))
    return out


def gradebook_students(db: Path) -> list[str] | None:
    if not db.exists():
        return None
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        return sorted(row[0] for row in con.execute("SELECT id FROM student"))


def check(root: Path, assignment: str) -> list[Finding]:
    """Every finding for the assignment's submissions under the course root."""
    release = root / "release" / assignment
    released = {p.name: p for p in sorted(release.glob("*.ipynb"))}
    if not released:
        raise FileNotFoundError(f"no notebooks in {release}: run `nbgrader generate_assignment`")
    folders = sorted(p for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())
    out = [f for folder in folders for f in check_student(root, folder, released)]
    enrolled = gradebook_students(root / "gradebook.db")
    if enrolled is not None:
        submitted = [f.parent.name for f in folders]
        for student in submitted:
            if student not in enrolled:
                close = difflib.get_close_matches(student, enrolled, n=1)
                hint = f" (a typo of {close[0]}?)" if close else ""
                add = f"`nbgrader db student add {shlex.quote(student)}`"
                text = f"submitted/{student} is not in the gradebook{hint}: {add}"
                out.append(Finding(student, f"{text}, or rename the folder"))
        absent = [s for s in enrolled if s not in submitted]
        if absent:
            out.append(Finding("", f"no submission (scores 0): {', '.join(absent)}", False))
    return sorted(out, key=lambda f: (not f.student, f.student))


def fix(root: Path, findings: list[Finding]) -> list[Finding]:
    """Do the renames whose target does not exist; return the findings still open."""
    left = []
    for f in findings:
        if f.rename is None or (root / f.rename[1]).exists():
            left.append(f)
            continue
        (root / f.rename[0]).rename(root / f.rename[1])
        print(f"{f.student}: renamed {f.rename[0]} -> {f.rename[1]}")
    return left


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m autograder.submissions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("assignment")
    p.add_argument("--root", default=".", help="course root (where nbgrader_config.py is)")
    p.add_argument("--fix", action="store_true", help="do the unambiguous renames")
    args = p.parse_args(argv)
    root = Path(args.root).resolve()
    try:
        findings = check(root, args.assignment)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    if args.fix:
        findings = fix(root, findings)
    for f in findings:
        line = f"{f.student}: {f.text}" if f.student else f.text
        print(line if f.problem else f"note: {line}")
    problems = sum(f.problem for f in findings)
    left = " left" if args.fix else ""
    print(f"{problems} problem(s){left} in the submissions of {args.assignment}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
