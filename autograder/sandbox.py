"""Run a student's cells and the graders' calls in a separate, resource-limited process.

The parent (this module) never executes student code. It starts ``_child.py`` in a fresh
interpreter (``python -I``: no user site, no PYTHONPATH, no script folder on sys.path) in
an empty temporary folder, with a memory cap, a CPU-time cap and a per-step wall-clock
timeout, and reads back plain data only. When a step kills the process (``os._exit``,
a crash, the memory cap) or runs past its timeout, the step is recorded as failed and a
new child replays the remaining steps without it, so one bad cell never stops the
grading of the others.

Looping code is paid for once: when a call step of a ``group`` (the checks of one graded
item) runs past its timeout, the group's remaining calls fail at once with the same
message, and the whole run has a wall-clock ``budget``, after which every step not yet
done fails saying so.

Where bubblewrap works, the child runs inside Linux namespaces (see ``namespace.py``):
the course's files do not exist there, whatever the code reaches; the audit hooks in
``_child.py`` stay as a second line. Elsewhere the hooks alone guard, as said once on
stderr, or grading stops when ``Limits.require_namespace`` says so. Either way the child
dies with the process that started it (``--die-with-parent``, ``PR_SET_PDEATHSIG``): a
killed grading run leaves no student code running.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
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


def _limit(limits: Limits, parent: int) -> None:  # runs in the child between fork and exec
    os.setsid()
    if _PRCTL is not None:  # killed with the grading process: never an orphan at 100 %
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl: nobody is waiting for this child
        os._exit(1)
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
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
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"}
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


def _run_once(
    steps: list[dict[str, Any]],
    limits: Limits,
    run: SandboxRun,
    workdir: str,
    budget_end: float,
    isolate: bool,
) -> _Stop | None:
    """Run ``steps`` in one child (in namespaces if ``isolate``); fill ``run``; return why
    it stopped early, if it did."""
    secret, private, public = _private_and_public(workdir)
    job = {"steps": steps, "threads": limits.threads}
    job |= {"secret": secret, "private": private, "public": public, "seccomp": SECCOMP_SOURCE}
    argv = [sys.executable, "-I", "-c", CHILD_SOURCE]
    if isolate:
        argv = namespace.command(argv, workdir, tmpfs={workdir: limits.disk_bytes})
    parent = os.getpid()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
        env=_child_env(workdir, limits.threads),
        preexec_fn=lambda: _limit(limits, parent),
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(job).encode())
    proc.stdin.close()
    current: str | None = None
    deadline = time.monotonic() + limits.startup_timeout
    buffer = b""
    try:
        while True:
            now = time.monotonic()
            if now >= budget_end:
                return _Stop(current or "__startup__", out_of_budget=True)
            if now >= deadline:
                return _Stop(current or "__startup__", timed_out=current is not None)
            ready, _, _ = select.select([proc.stdout], [], [], min(deadline, budget_end) - now)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:  # the child is gone
                return _Stop(current or "__startup__")
            buffer += chunk
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
                    return None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()


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
    skipped: set[str] = set()
    budget_end = time.monotonic() + limits.budget
    with tempfile.TemporaryDirectory(prefix="gw-grade-") as workdir:
        isolate = check_namespace(limits)
        while True:
            # Cells always rerun (later calls need their definitions); calls run once.
            todo = [
                s
                for s in steps
                if s["id"] not in skipped and (s["kind"] == "cell" or s["id"] not in run.results)
            ]
            if all(s["id"] in run.results for s in todo):
                break
            stop = _run_once(todo, limits, run, workdir, budget_end, isolate)
            if stop is None:
                break
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
    return run
