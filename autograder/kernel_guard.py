"""Installed in the student's kernel while nbgrader autogrades (see ``course_config.py``).

Grades never come from this kernel (``autograder.nbgrader_plugin.TrustedGrades`` sets them
from a sandboxed run), but the kernel runs in the course folder as the grading user, so
without a guard a submission could read the hidden tests and the reference, or change the
gradebook and the graders for everyone graded after it. An audit hook, which cannot be
removed once installed, refuses:

- reading or writing the course's own files (sources, gradebook, graders, reference,
  configuration, other students' submissions), except this submission's folder;
- writing anywhere else inside the course folder;
- importing the reference or nbgrader, and starting processes (a child process would
  not carry the hook).

This is a second line of defence; code that reaches C (``ctypes``, already loaded by torch;
``torch.from_file``, ``torch.save``) gets past an audit hook. The first line, where
bubblewrap works, is ``kernel_sandbox.py``: the kernel runs in Linux namespaces where the
course's files do not exist. The course root comes from ``GW_COURSE_ROOT``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from autograder.seccomp import deny_new_processes

BLOCKED_IMPORTS = {"reference_impl", "nbgrader"}
BLOCKED_EVENTS = {
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "subprocess.Popen",
    "pty.spawn",
}
PRIVATE = [
    "source",
    "submitted",
    "autograded",
    "feedback",
    "autograder",
    "reference_impl",
    "gradebook.db",
    "course_config.py",
    "nbgrader_config.py",
]


def install(course_root: str | None = None) -> None:
    root = os.path.realpath(course_root or os.environ.get("GW_COURSE_ROOT") or os.getcwd())
    own = os.path.realpath(os.getcwd()) + os.sep
    private = [os.path.join(root, name) for name in PRIVATE]
    for package in ("autograder", "reference_impl"):  # wherever they are installed
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            private.append(os.path.dirname(os.path.realpath(spec.origin)))
    inside_root = root + os.sep

    def is_private(path: str) -> bool:
        return any(path == p or path.startswith(p + os.sep) for p in private)

    def refuse(what: str) -> None:
        raise PermissionError(f"not allowed while grading: {what}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "import" and str(args[0]).split(".")[0] in BLOCKED_IMPORTS:
            refuse(f"import {args[0]}")
        elif event in BLOCKED_EVENTS:
            refuse(event)
        elif event == "open" and not isinstance(args[0], int) and args[0] is not None:
            path = os.path.realpath(os.fsdecode(args[0]))
            if (path + os.sep).startswith(own):
                return
            if is_private(path):
                refuse(f"open {path!r}")
            writing = isinstance(args[1], str) and any(c in args[1] for c in "wax+")
            if writing and path.startswith(inside_root):
                refuse(f"write {path!r}")

    sys.addaudithook(hook)
    deny_new_processes()  # the same for C (ctypes' fork and execve): a seccomp filter
