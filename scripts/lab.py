"""Start JupyterLab for the course, opening on ``release/``, with nbgrader's extensions.

    python scripts/lab.py [--port N] [--no-browser] [any other `jupyter lab` option]

(``make lab`` runs it with the course's ``.venv``.) The server's root is the course folder,
so that nbgrader finds ``nbgrader_config.py``: students get the Validate button in each
notebook's toolbar, instructors the Formgrader and the create-assignment toolbar (Nbgrader
menu). A student working alone needs no exchange and no instructor.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def lab_command(extra: list[str]) -> list[str]:
    """The ``jupyter lab`` command line: the course root as the server's root, opening on
    release/."""
    root_user = ["--allow-root"] if os.geteuid() == 0 else []  # containers often run as root
    return [
        str(BIN / "jupyter"),
        "lab",
        f"--ServerApp.root_dir={ROOT}",
        "--LabApp.default_url=/lab/tree/release",
        *root_user,
        *extra,
    ]


def lab_env() -> dict[str, str]:
    """nbgrader calls ``alembic`` and the kernel runs ``python``: the venv's bin/ goes first."""
    return os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    os.chdir(ROOT)  # nbgrader reads nbgrader_config.py from the server's working directory
    command = lab_command(args)
    os.execve(command[0], command, lab_env())


if __name__ == "__main__":
    main()
