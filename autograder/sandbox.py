"""Run a student's cells and the graders' calls in a separate, resource-limited process.

The parent (this module) never executes student code. It starts ``_child.py``, a fork
server, in a fresh interpreter (``python -I``: no user site, no PYTHONPATH, no script folder
on sys.path) with torch imported, once per grading process (and per setting that changes
the process: namespaces or not, threads, the folder's size cap). Each run is a child forked
from it, in a fresh folder, with a memory cap, a CPU-time cap and a per-step wall-clock
timeout, and reads back plain data only; the server empties the folder after each run. So
``import torch`` (about a second) is paid once per nbgrader process, not once per notebook.
When a step kills the child (``os._exit``, a crash, the memory cap) or runs past its
timeout, the step is recorded as failed and a new child replays the remaining steps
without it, so one bad cell never stops the grading of the others.

Looping code is paid for once: when a call step of a ``group`` (the checks of one graded
item) runs past its timeout, the group's remaining calls fail at once with the same
message, and the whole run has a wall-clock ``budget``, after which every step not yet
done fails saying so.

Where bubblewrap works, the server and its children run inside Linux namespaces (see
``namespace.py``): the course's files do not exist there, whatever the code reaches; the
audit hooks in ``_child.py`` stay as a second line. Elsewhere the hooks alone guard, as said
once on stderr, or grading stops when ``Limits.require_namespace`` says so. Either way the
server dies with the process that started it (``--die-with-parent``,
``PR_SET_PDEATHSIG``) and each child with the server: a killed grading run leaves no
student code running.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autograder import namespace
from autograder._child import DTYPES  # the child's own table: one for both sides

# Read once, at import: the child runs this text, so a later change to the file on disk
# (by code that ran before, e.g. a student's kernel) cannot change what grading runs.
CHILD_SOURCE = Path(__file__).with_name("_child.py").read_text(encoding="utf-8")
SECCOMP_SOURCE = Path(__file__).with_name("seccomp.py").read_text(encoding="utf-8")
DIED = (
    "the process died or ran past the time limit during this step "
    "(an infinite loop, os._exit, a crash, or too much memory)"
)
TIMED_OUT = (
    "ran past the time limit of {:g} s in an earlier check of this exercise (an infinite loop?)"
)
OUT_OF_BUDGET = "not run: the grading time budget of {:g} s for this notebook ran out"
PR_SET_PDEATHSIG = 1
# Looked up before any fork: the child calls it between fork and exec (Linux only).
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)


@dataclass
class Limits:
    """Resource limits of one child process."""

    step_timeout: float = 60.0  # seconds of wall clock per step (a cell or a call)
    startup_timeout: float = 120.0  # seconds to start Python and import torch
    memory_bytes: int = 4 << 30  # address-space cap (RLIMIT_AS)
    cpu_seconds: int = 600  # CPU-time cap of the whole child (RLIMIT_CPU)
    threads: int = 1
    budget: float = 900.0  # seconds of wall clock for all the steps of one run
    disk_bytes: int = 256 << 20  # size of the writable folder inside the namespace
    require_namespace: bool = False  # no bubblewrap: raise instead of the hooks alone


@dataclass
class StepResult:
    """What became of one step: ``ok`` with an optional ``result``, or an ``error``."""

    ok: bool
    result: Any = None
    error: str | None = None


@dataclass
class SandboxRun:
    results: dict[str, StepResult] = field(default_factory=dict)
    violations: list[tuple[str | None, str]] = field(default_factory=list)  # (step id, what)
    restarts: int = 0


def encode_tensor(t: torch.Tensor, requires_grad: bool = False) -> dict[str, Any]:
    """A tensor as plain JSON for the child."""
    t = t.detach().cpu().contiguous()
    data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    spec = {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "data": base64.b64encode(data).decode(),
        "requires_grad": requires_grad,
    }
    return {"__tensor__": spec}


def decode_value(obj: Any) -> Any:
    """Plain JSON from the child -> tensors (fresh, plain ``torch.Tensor``), lists, numbers.

    Anything malformed becomes an :class:`Unsupported` describing it.
    """
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            try:
                spec = obj["__tensor__"]
                dtype = DTYPES[spec["dtype"]]
                shape = [int(s) for s in spec["shape"]]
                raw = np.frombuffer(base64.b64decode(spec["data"]), dtype=np.uint8).copy()
                flat = torch.from_numpy(raw).view(dtype)
                return flat.reshape(shape).clone()
            except (KeyError, ValueError, TypeError, RuntimeError) as e:
                return Unsupported(f"a malformed tensor ({e})")
        if "__unsupported__" in obj:
            return Unsupported(str(obj["__unsupported__"]))
        try:
            if "__bytes__" in obj:
                return base64.b64decode(obj["__bytes__"])
            if "__tuple__" in obj:
                return tuple(decode_value(x) for x in obj["__tuple__"])
            if "__dict__" in obj:
                return {_hashable(decode_value(k)): decode_value(v) for k, v in obj["__dict__"]}
        except (ValueError, TypeError) as e:
            return Unsupported(f"a malformed value ({e})")
        return {str(k): decode_value(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_value(x) for x in obj]
    return obj


def _hashable(key: Any) -> Any:
    """A decoded dict key (a list where the student used one) made usable as a key."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, (dict, Unsupported)):
        return repr(key)
    return key


@dataclass
class Unsupported:
    """A value the child could not (or would not) send as plain data."""

    what: str


def _limit(parent: int) -> None:  # runs in the server between fork and exec
    os.setsid()
    if _PRCTL is not None:  # killed with the grading process: never an orphan at 100 %
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl: nobody is waiting for this child
        os._exit(1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _private_and_public(workdir: str) -> tuple[list[str], list[str], list[str]]:
    """What the child may not read: the graders and the reference (ever), and the course
    and repository folders (except the ``public`` folders inside them)."""
    import coursedata
    import coursekit
    import reference_impl

    package_dir = Path(__file__).resolve().parent
    secret = [str(package_dir), str(Path(reference_impl.__file__).resolve().parent)]
    private = []
    if (package_dir.parent / "pyproject.toml").exists():
        private.append(str(package_dir.parent))  # a checkout of the course repository
    cwd = Path.cwd()
    if (cwd / "nbgrader_config.py").exists() or (cwd / "gradebook.db").exists():
        private.append(str(cwd))  # the course root nbgrader runs in
    public = [sys.prefix, sys.base_prefix, sys.exec_prefix, workdir]
    public.append(str(Path(coursekit.__file__).resolve().parent))
    public.append(str(Path(coursedata.__file__).resolve().parent))
    return secret, private, public


def _child_env(workdir: str, threads: int) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8", "MPLBACKEND": "Agg"}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


@dataclass
class _Stop:
    """Why a child stopped early: the step it was running (or ``__startup__``), and whether
    that step ran past its time limit (rather than killing the process)."""

    step: str
    timed_out: bool = False
    out_of_budget: bool = False
    server_lost: bool = False  # the server went away (not the child): try a new one


class _Server:
    """A fork server (``_child.py``) with torch imported, in namespaces if ``isolate``; its
    children run the jobs, one at a time, in folders of ``root`` (a tmpfs in the
    namespace). Started on first use and kept for this process: see :func:`_server`."""

    def __init__(self, isolate: bool, limits: Limits) -> None:
        self.root = tempfile.mkdtemp(prefix="gw-grade-")
        control, self.control_w = os.pipe()
        argv = [sys.executable, "-I", "-c", CHILD_SOURCE, str(self.control_w)]
        if isolate:
            argv = namespace.command(argv, self.root, tmpfs={self.root: limits.disk_bytes})
        parent = os.getpid()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.root,
            env=_child_env(self.root, limits.threads),
            pass_fds=(self.control_w,),
            preexec_fn=lambda: _limit(parent),
        )
        os.close(self.control_w)
        assert self.proc.stdout is not None
        self.events = self.proc.stdout.fileno()
        self.control = control
        os.set_blocking(self.events, False)
        self.startup_timeout = limits.startup_timeout
        self.stopped = False
        self._ready: bool | None = None  # not asked yet: it starts while the caller works

    @property
    def ready(self) -> bool:
        """Whether the server started (waits for it the first time)."""
        if self._ready is None:
            self._ready = self.wait_control(self.startup_timeout) == "ready"
        return self._ready

    def wait_control(self, timeout: float) -> str | None:
        """The next word from the server on its control pipe (None: gone or silent)."""
        ready, _, _ = select.select([self.control], [], [], timeout)
        line = b""
        while ready and not line.endswith(b"\n"):
            chunk = os.read(self.control, 4096)  # the server writes one short line at a time
            if not chunk:
                return None
            line += chunk
        try:
            return str(json.loads(line)["event"]) if line else None
        except (ValueError, KeyError, TypeError):
            return None

    def send(self, message: dict[str, Any]) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            return False
        return True

    def drain(self) -> bytes:
        """What the children wrote that was not read yet."""
        data = b""
        while True:
            try:
                chunk = os.read(self.events, 1 << 16)
            except BlockingIOError:
                return data
            if not chunk:
                return data
            data += chunk

    def stop(self) -> None:
        """Kill the server (and so its child) and remove its folder; once is enough."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        os.close(self.control)
        shutil.rmtree(self.root, ignore_errors=True)


_servers: dict[tuple[bool, int, int], _Server] = {}
_one_run_at_a_time = threading.Lock()  # a server runs one job at a time


def _server(isolate: bool, limits: Limits) -> _Server:
    """This process's running server for these settings, started when there is none."""
    key = (isolate, limits.threads, limits.disk_bytes)
    server = _servers.get(key)
    if server is not None and not server.stopped and server.proc.poll() is None:
        return server
    if server is not None:
        server.stop()
    server = _servers[key] = _Server(isolate, limits)
    return server


def prestart(limits: Limits) -> None:
    """Start this process's server now, without waiting for it: its Python and torch start
    while the caller goes on (nbgrader starts the first kernel)."""
    _server(check_namespace(limits), limits)


@atexit.register
def _stop_servers() -> None:
    for server in _servers.values():
        server.stop()
    _servers.clear()


def _run_once(
    steps: list[dict[str, Any]],
    limits: Limits,
    run: SandboxRun,
    budget_end: float,
    isolate: bool,
) -> _Stop | None:
    """Run ``steps`` in one child of the server (in namespaces if ``isolate``); fill
    ``run``; return why it stopped early, if it did."""
    server = _server(isolate, limits)
    secret, private, public = _private_and_public(server.root)
    job = {"steps": steps, "threads": limits.threads, "seccomp": SECCOMP_SOURCE}
    job |= {"secret": secret, "private": private, "public": public}
    job |= {"memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds}
    if not server.ready or not server.send({"job": job}):
        server.stop()
        return _Stop("__startup__", server_lost=server.ready)
    current: str | None = None
    deadline = time.monotonic() + limits.startup_timeout
    buffer = b""
    exited = done = False

    def read(data: bytes) -> None:
        nonlocal buffer, current, deadline, done
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            event = msg.get("event") if isinstance(msg, dict) else None
            if event == "start":
                current = str(msg.get("id"))
                deadline = time.monotonic() + limits.step_timeout
            elif event == "step":
                sid = str(msg.get("id"))
                if sid not in run.results:  # the first word on a step is final
                    res = msg.get("result")
                    run.results[sid] = StepResult(
                        ok=bool(msg.get("ok")),
                        result=res if isinstance(res, dict) else None,
                        error=str(msg["error"]) if msg.get("error") else None,
                    )
                current = None
            elif event == "violation":
                step = msg.get("step")
                entry = (str(step) if step is not None else None, str(msg.get("what"))[:500])
                if entry not in run.violations:
                    run.violations.append(entry)
            elif event == "done":
                done = True

    while not exited:
        now = time.monotonic()
        if now >= budget_end or now >= deadline:
            if not server.send({"kill": True}) or server.wait_control(10.0) != "exited":
                server.stop()  # stopped or killed by its child: the next run starts another
            else:
                server.drain()  # what the killed child wrote last: not this run's word
            if now >= budget_end:
                return _Stop(current or "__startup__", out_of_budget=True)
            return _Stop(current or "__startup__", timed_out=current is not None)
        wait = min(deadline, budget_end) - now
        ready, _, _ = select.select([server.events, server.control], [], [], wait)
        if server.events in ready:
            read(server.drain())
        if server.control in ready:
            exited = server.wait_control(0) == "exited"
            read(server.drain())  # the child is gone: all it wrote is in the pipe
            if not exited:  # the server itself is gone
                server.stop()
                return _Stop(current or "__startup__", server_lost=True)
    return None if done else _Stop(current or "__startup__")


def check_namespace(limits: Limits) -> bool:
    """Whether children will run in namespaces; raises :class:`namespace.SandboxUnavailable`
    when they cannot and ``limits.require_namespace`` is set (see :func:`namespace.check`)."""
    secret, private, _ = _private_and_public(tempfile.gettempdir())
    return namespace.check(secret + private, limits.require_namespace)


def run_steps(steps: list[dict[str, Any]], limits: Limits | None = None) -> SandboxRun:
    """Run cell and call steps (see ``_child.py``) in order in a sandboxed child.

    A step that kills the child or times out gets an error result, and the steps after it
    run again in a fresh child (without it); calls whose cells were skipped will fail with
    a NameError of their own. A call that times out fails the rest of its ``group`` with it;
    past ``limits.budget`` seconds every step without a result fails.

    Raises :class:`namespace.SandboxUnavailable` (before running anything) when
    ``limits.require_namespace`` is set and bubblewrap cannot be used.
    """
    limits = limits or Limits()
    run = SandboxRun()
    budget_end = time.monotonic() + limits.budget
    isolate = check_namespace(limits)
    with _one_run_at_a_time:
        _run_all(steps, limits, run, budget_end, isolate)
    return run


def _run_all(
    steps: list[dict[str, Any]], limits: Limits, run: SandboxRun, budget_end: float, isolate: bool
) -> None:
    """Run ``steps`` in children until each has a result (see :func:`run_steps`)."""
    skipped: set[str] = set()
    retried = False
    while True:
        # Cells always rerun (later calls need their definitions); calls run once.
        todo = [
            s
            for s in steps
            if s["id"] not in skipped and (s["kind"] == "cell" or s["id"] not in run.results)
        ]
        if all(s["id"] in run.results for s in todo):
            break
        stop = _run_once(todo, limits, run, budget_end, isolate)
        if stop is None:
            break
        if stop.server_lost and stop.step == "__startup__" and not retried:
            retried = True  # it died between runs (killed, or out of memory): start another
            continue
        if stop.out_of_budget or stop.step == "__startup__":
            why = "the grading process did not start"
            if stop.out_of_budget:
                why = OUT_OF_BUDGET.format(limits.budget)
            for step in todo:
                run.results.setdefault(step["id"], StepResult(False, error=why))
            break
        run.results.setdefault(stop.step, StepResult(False, error=DIED))
        skipped.add(stop.step)
        group = next((s.get("group") for s in todo if s["id"] == stop.step), None)
        if stop.timed_out and group is not None:
            message = TIMED_OUT.format(limits.step_timeout)
            for step in todo:
                if step.get("group") == group and step["kind"] == "call":
                    run.results.setdefault(step["id"], StepResult(False, error=message))
                    skipped.add(step["id"])
        run.restarts += 1
