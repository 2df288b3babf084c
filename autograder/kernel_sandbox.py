"""The student's Jupyter kernel, while nbgrader autogrades, inside Linux namespaces.

nbgrader runs each submission in a kernel (for the feedback's outputs; grades come from
``TrustedGrades``), in the course folder as the grading user. ``SafeExecute`` starts it
with :class:`SandboxedKernelManager`, which launches ``ipykernel`` through bubblewrap
(``namespace.py``) with, besides the Python installation and the student helpers:

- the submission's own folder (the kernel's working folder), writable;
- read-only: the course data a notebook legitimately reads (``tokenizers/``, ``data/`` of
  the course, ``../shared``, the Hugging Face caches of models and datasets, but not its
  token) and, of the ``autograder`` package, only ``__init__.py`` (``grade()``, which
  does nothing while nbgrader runs) and ``kernel_guard.py`` (the audit hook, kept as a
  second line);
- a 64 MiB home folder of its own, and a private folder with the connection file.

The connection uses ZeroMQ's ``ipc`` transport: the sockets are files in that private
folder, bound into the sandbox, so the kernel needs no network at all (``--unshare-net``:
it cannot reach a Jupyter server, a database or another student's kernel on this
machine, as a shared network namespace with TCP would allow). Interrupts go as messages
on the control socket, since a signal to ``bwrap`` would not reach the kernel. Without
bubblewrap the kernel starts as before, under the audit hook alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from autograder import namespace
from autograder.sandbox import Limits, check_namespace

HOME = "/tmp/gw-home"  # inside the sandbox only
HOME_BYTES = 64 << 20


def hf_home() -> str:
    return os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")


def course_data(root: Path) -> list[str]:
    """Read-only folders a notebook may read: the course's data and the offline caches of
    models and datasets (not the rest of the Hugging Face folder, which holds the token)."""
    hf = hf_home()
    data = [root / "tokenizers", root / "data", root.parent / "shared"]
    return [str(p) for p in data] + [os.path.join(hf, "hub"), os.path.join(hf, "datasets")]


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel in namespaces when bubblewrap works (see the module's docstring)."""

    _private: str | None = None

    @property
    def kernel_spec(self) -> KernelSpec | None:
        spec = super().kernel_spec
        if spec is not None and self._private is not None:
            spec.interrupt_mode = "message"
        return spec

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        if self._private is None and check_namespace(Limits()):
            self._private = tempfile.mkdtemp(prefix="gw-kernel-")
            self.transport = "ipc"
            self.connection_file = os.path.join(self._private, "kernel.json")
            self.ip = os.path.join(self._private, "ipc")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if self._private is not None:
            folder = os.path.abspath(kw.get("cwd") or os.getcwd())
            root = Path(os.environ.get("GW_COURSE_ROOT") or os.getcwd())
            if (str(root.resolve()) + os.sep).startswith(os.path.realpath(folder) + os.sep):
                raise namespace.SandboxUnavailable(f"the kernel's folder {folder} holds {root}")
            package = Path(namespace.__file__).parent
            guard = [
                str(package / name) for name in ("__init__.py", "kernel_guard.py", "seccomp.py")
            ]
            kernel_cmd = namespace.command(
                kernel_cmd,
                folder,
                tmpfs={HOME: HOME_BYTES},
                writable=[folder, self._private],
                readonly=guard + course_data(root),
                setenv={"HOME": HOME, "TMPDIR": HOME, "HF_HOME": hf_home()},
                unsetenv=["JPY_PARENT_PID"],  # its parent inside is bwrap: no poller
            )
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart)
        if self._private is not None and not restart:
            shutil.rmtree(self._private, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources  # (the base's alias skips this override)
