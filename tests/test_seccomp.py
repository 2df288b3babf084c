"""The seccomp filter (autograder/seccomp.py) that refuses new processes to students' code.

Each case runs in a fresh Python: fork works there before the filter (so the test can fail)
and is refused after it, from Python and from C; threads, torch's thread pool and autograd
still work; and the trusted child and the nbgrader kernel install it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autograder import seccomp

from .conftest import REPO

pytestmark = pytest.mark.skipif(seccomp.unsupported() is not None, reason="Linux x86-64 only")

SCRIPT = r"""
import ctypes, os, subprocess, threading
import torch
from autograder.seccomp import deny_new_processes

def try_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return "forked"

def outcome(what):
    try:
        return what()
    except OSError as e:
        return f"refused: {e.strerror}"

libc = ctypes.CDLL(None, use_errno=True)
print("before", outcome(try_fork))
print("install", deny_new_processes())
print("os.fork", outcome(try_fork))
print("libc.fork", libc.fork(), os.strerror(ctypes.get_errno()))
argv = (ctypes.c_char_p * 2)(b"/bin/true", None)
print("libc.execve", libc.execve(b"/bin/true", argv, None), os.strerror(ctypes.get_errno()))
print("subprocess", outcome(lambda: subprocess.run(["/bin/true"]) and "ran"))
box = []
thread = threading.Thread(target=lambda: box.append("ran"))
thread.start(); thread.join()
print("thread", box[0])
torch.set_num_threads(2)
x = torch.randn(256, 256, requires_grad=True)
(x @ x).sum().backward()
print("torch", tuple(x.grad.shape))
"""


def test_fork_and_execve_are_refused_and_threads_still_run() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "before forked",
        "install None",
        "os.fork refused: Operation not permitted",
        "libc.fork -1 Operation not permitted",
        "libc.execve -1 Operation not permitted",
        "subprocess refused: Operation not permitted",
        "thread ran",
        "torch (256, 256)",
    ]


def seccomp_mode_of_the_child(job_extra: dict[str, object]) -> str:
    """Run one job in the trusted child's fork server, started as sandbox.py starts it (here
    without namespaces): one cell that reports its own seccomp mode from /proc (the job lets
    it read /proc)."""
    from autograder import sandbox

    cell = "raise RuntimeError([l for l in open('/proc/self/status') if 'Seccomp:' in l][0])"
    job = {"steps": [{"id": "c", "kind": "cell", "source": cell, "cell": 0}], "threads": 1}
    job |= {"secret": [], "private": [], "public": ["/proc", sys.prefix, sys.base_prefix]}
    job |= {"memory_bytes": 4 << 30, "cpu_seconds": 60}
    server = sandbox._Server(isolate=False, limits=sandbox.Limits())
    try:
        assert server.ready and server.send({"job": job | job_extra})
        assert server.wait_control(120) == "exited"
        out = server.drain().decode()
    finally:
        server.stop()
    (step,) = [json.loads(line) for line in out.splitlines() if '"step"' in line]
    return str(step["error"]).split("Seccomp:")[1].split()[0]


def test_the_trusted_child_installs_it_before_student_code() -> None:
    from autograder import sandbox

    assert seccomp_mode_of_the_child({}) == "0"  # the check can tell
    assert seccomp_mode_of_the_child({"seccomp": sandbox.SECCOMP_SOURCE}) == "2"  # a filter


def test_the_kernel_guard_installs_it() -> None:
    script = (
        "import autograder.kernel_guard as g, os\n"
        "g.install(os.getcwd())\n"
        "print([l for l in open('/proc/self/status') if 'Seccomp:' in l][0].split()[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "2", out.stderr
