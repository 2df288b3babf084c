"""Start a process that runs students' code inside Linux namespaces, with bubblewrap: the
trusted grading child (``sandbox.py``) and the student's kernel (``kernel_sandbox.py``).

Why: the audit hooks in ``_child.py`` and ``kernel_guard.py`` see only what Python reports,
and code that reaches C (``ctypes``, already loaded by torch; ``torch.from_file``,
``torch.save``) gets past them. Inside ``bwrap`` the course folder, the reference, the
graders, the gradebook, other submissions and the home folder do not exist at all:

- a new mount namespace holding, read-only, the system's ``/usr`` (and the ``/lib``-style
  links to it), the dynamic loader's cache, the Python installation (``sys.base_prefix``,
  ``sys.prefix``: the environment's site-packages) and the student helper packages
  (``coursekit``, ``coursedata``): each bound alone, never the repository around them,
  so the editable install's mapping to the repository finds nothing;
- writable: size-capped tmpfs folders (the grading child's working folder, at its path
  on the host) and the folders a caller binds (the kernel's submission folder); the rest
  of the root, ``/dev`` included, is read-only;
- new user, PID, network (loopback only), IPC, UTS and cgroup namespaces, uid and gid
  65534 (nobody), no capabilities, a new session (no terminal to inject into), and
  ``--die-with-parent``.

``GW_BWRAP`` names the ``bwrap`` to use (default: the one on PATH); pointing it at a
missing file simulates a machine without bubblewrap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NOBODY = "65534"
# The loader's configuration: all of /etc that Python and torch need.
ETC = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"]
TOP_LINKS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
FALLBACK = "sandbox: bubblewrap not available ({}); falling back to the audit-hook guard"

_probed: dict[str, str | None] = {}  # bwrap path -> why it cannot be used (None: it can)
_announced: set[str] = set()


class SandboxUnavailable(RuntimeError):
    """Bubblewrap is required (``--require-sandbox``) but cannot be used here."""


def bwrap() -> str:
    """The bwrap executable to use (it may not exist)."""
    return os.environ.get("GW_BWRAP") or shutil.which("bwrap") or "bwrap"


def readonly_paths() -> list[str]:
    """What a student's code may read: the Python installation and the helper packages."""
    import coursedata
    import coursekit

    paths = [sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix]
    paths += [str(Path(m.__file__ or "").parent) for m in (coursekit, coursedata)]
    return list(dict.fromkeys(os.path.abspath(p) for p in paths))


def command(
    argv: list[str],
    chdir: str,
    *,
    tmpfs: dict[str, int] | None = None,
    writable: list[str] | None = None,
    readonly: list[str] | None = None,
    setenv: dict[str, str] | None = None,
    unsetenv: list[str] | None = None,
) -> list[str]:
    """``argv`` run by bwrap in the sandbox, in ``chdir``, with fresh size-capped ``tmpfs``
    folders (path -> bytes), host folders bound ``writable`` and more ``readonly`` ones
    (skipped when missing) beside the Python installation."""
    cmd = [bwrap(), "--unshare-all", "--uid", NOBODY, "--gid", NOBODY, "--cap-drop", "ALL"]
    cmd += ["--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for top in TOP_LINKS:
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        else:
            cmd += ["--ro-bind-try", top, top]
    for path in ETC + (readonly or []):
        cmd += ["--ro-bind-try", path, path]
    for path in readonly_paths():
        cmd += ["--ro-bind", path, path]
    for path in writable or []:
        cmd += ["--bind", path, path]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    for path, size in (tmpfs or {}).items():
        cmd += ["--size", str(size), "--tmpfs", path]
    for name, value in (setenv or {}).items():
        cmd += ["--setenv", name, value]
    for name in unsetenv or []:
        cmd += ["--unsetenv", name]
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", chdir, "--", *argv]
    return cmd


def unavailable(private: list[str]) -> str | None:
    """Why the sandbox cannot be used here (None when it can); probed once per bwrap.

    ``private``: folders that must stay invisible; a Python installation that holds one
    (a virtual environment created in the course folder itself) cannot be bound.
    """
    for path in readonly_paths():
        for secret in private:
            if (os.path.realpath(secret) + os.sep).startswith(os.path.realpath(path) + os.sep):
                return f"{path} would expose {secret}"
    exe = bwrap()
    if exe not in _probed:
        _probed[exe] = _probe(exe)
    return _probed[exe]


def _probe(exe: str) -> str | None:
    if not os.path.isfile(exe):
        return f"no bwrap at {exe!r}" if os.sep in exe else "no bwrap on PATH"
    with tempfile.TemporaryDirectory(prefix="gw-probe-") as workdir:
        argv = [sys.executable, "-I", "-c", "import os; os.getcwd()"]
        try:
            out = subprocess.run(
                command(argv, workdir, tmpfs={workdir: 1 << 20}),
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{exe}: {e}"
    if out.returncode:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        return f"{exe}: {lines[-1]}"
    return None


def check(private: list[str], required: bool) -> bool:
    """Whether to use the sandbox. When it cannot be used: raise if ``required``, else say
    so once (one line on stderr) and return False (the audit-hook guard alone)."""
    why = unavailable(private)
    if why is None:
        return True
    if required:
        raise SandboxUnavailable(
            f"sandbox: bubblewrap not available ({why}) and the sandbox is required "
            "(--require-sandbox, TrustedGrades.require_sandbox)"
        )
    if why not in _announced:
        _announced.add(why)
        print(FALLBACK.format(why), file=sys.stderr, flush=True)
    return False
