"""The process that runs a student's code for the graders (see ``sandbox.py``).

Run as ``python -I -c <this file's text> CONTROL_FD``: a fork server. It imports only the
standard library, torch and numpy (never ``autograder`` or ``reference_impl``), says
``ready`` on the file descriptor ``CONTROL_FD``, then reads jobs (one JSON line each) on
stdin. For each job it forks a child, which runs the job's steps in order (a student cell,
or a grader call on the student's objects) in a fresh folder and writes one JSON line per
event to stdout, after pointing fd 1 and 2 of its own at a capture file so that nothing
the student prints can mix with them. A ``kill`` line on stdin kills the running child.
When the child is gone the server empties its folder (all of it: the next job may be
another student's) and says ``exited`` on the control descriptor, which no child holds.
So ``import torch`` is paid once per server, not once per notebook or per restart.

Only plain data leaves a child: tensors as (dtype, shape, base64 bytes), numbers,
strings. The comparison happens in the parent, where no student code ever ran; so a
patched ``torch.allclose`` or a lying ``Tensor`` subclass here can only send bytes, and
bytes pass only if they are the right answer.

Before the student's code runs, a child sets its own resource limits, installs the
seccomp filter (no new processes) and an audit hook that refuses imports of the course's
reference and graders (and of ctypes, subprocess, socket), C functions looked up through
ctypes, file access outside its folder and the Python installation, and starting
processes. Each refusal is reported at once as a violation line, so it cannot be taken
back later. The hook is the second line: where bubblewrap works the server runs in
namespaces where the course's files do not exist (``namespace.py``), and C code that
gets past the hook (``torch.from_file``, ``torch.save``) finds nothing to read or write.
The server is not dumpable, so a child cannot ptrace it or write its memory to reach the
next student's run.
"""

import base64
import contextlib
import ctypes
import importlib
import json
import os
import resource
import select
import shutil
import signal
import sys
import traceback
from typing import Any

import torch

BLOCKED_MODULES = {
    "reference_impl",
    "autograder",
    "nbgrader",
    "ctypes",
    "_ctypes",
    "cffi",
    "subprocess",
    "_posixsubprocess",
    "socket",
    "_socket",
    "multiprocessing",
}
BLOCKED_EVENTS = {
    "os.system": "runs a shell command",
    "os.exec": "replaces the process",
    "os.posix_spawn": "starts a process",
    "os.spawn": "starts a process",
    "os.fork": "forks the process",
    "os.forkpty": "forks the process",
    "os.kill": "sends a signal",
    "os.killpg": "sends a signal",
    "builtins.input": "waits for keyboard input",
    "socket.connect": "opens a network connection",
    "pty.spawn": "starts a process",
    # torch has imported ctypes before the hook, so refusing its import is not enough:
    # refuse loading a C library or looking up a function in one.
    "ctypes.dlopen": "loads a C library",
    "ctypes.dlsym": "calls into C",
    "ctypes.dlsym/handle": "calls into C",
}
# The tensor dtypes that cross between the processes, by the name both sides send
# (``str(dtype)`` without ``torch.``). The parent (sandbox.py) imports this table.
DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
MAX_TEXT = 2000  # error messages
MAX_ITEMS = 200_000  # elements of one list, tuple, dict, string or bytes result

_out: Any = None  # the saved stdout: the only channel to the parent
_current: Any = None  # id of the step being run


def emit(**record: Any) -> None:
    _out.write(json.dumps(record) + "\n")
    _out.flush()


def install_audit_hook(
    workdir: str, secret: list[str], private: list[str], public: list[str]
) -> None:
    """Refuse (and report) what a graded exercise never needs to do.

    Files may be written only in ``workdir``. Files under a ``secret`` folder (the
    reference, the graders) may never be read; files under a ``private`` one (the course:
    sources, gradebook, other students' work) only when they are also under a ``public``
    one (the Python installation, the student helpers).
    """

    def roots(paths: list[str]) -> tuple[str, ...]:
        return tuple(os.path.realpath(p) + os.sep for p in paths)

    work, secret_roots = roots([workdir]), roots(secret)
    private_roots, public_roots = roots(private), roots(public)
    reported: set[str] = set()

    def refuse(what: str) -> None:
        if what not in reported:
            reported.add(what)
            emit(event="violation", what=what, step=_current)
        raise PermissionError(f"not allowed while grading: {what}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "import":
            top = str(args[0]).split(".")[0]
            if top in BLOCKED_MODULES:
                refuse(f"import {args[0]}")
        elif event == "open":
            path, mode = args[0], args[1]
            if isinstance(path, int) or path is None:
                return
            real = os.path.realpath(os.fsdecode(path))
            if (real + os.sep).startswith(work) or real in ("/dev/null", "/dev/urandom"):
                return
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                refuse(f"write {real!r}")
            if real.startswith(secret_roots) or (
                real.startswith(private_roots) and not real.startswith(public_roots)
            ):
                refuse(f"open {real!r}")
        elif event in BLOCKED_EVENTS:
            refuse(f"{event} ({BLOCKED_EVENTS[event]})")

    sys.addaudithook(hook)


def decode(obj: Any) -> Any:
    """JSON value from the parent -> Python value, tensors rebuilt from their bytes."""
    if isinstance(obj, dict) and "__tensor__" in obj:
        spec = obj["__tensor__"]
        raw = bytearray(base64.b64decode(spec["data"]))
        flat = (
            torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        )
        t = flat.view(DTYPES[spec["dtype"]]).reshape(spec["shape"]).clone()
        return t.requires_grad_(True) if spec.get("requires_grad") else t
    if isinstance(obj, dict) and "__bytes__" in obj:
        return base64.b64decode(obj["__bytes__"])
    if isinstance(obj, dict) and "__tuple__" in obj:
        return tuple(decode(x) for x in obj["__tuple__"])
    if isinstance(obj, dict) and "__dict__" in obj:
        return {decode(k): decode(v) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [decode(x) for x in obj]
    if isinstance(obj, dict):
        return {k: decode(v) for k, v in obj.items()}
    return obj


def encode(value: Any, depth: int = 0) -> Any:
    """Student's value -> plain JSON (tensors and bytes as base64); anything else is described."""
    if depth > 6:
        return {"__unsupported__": "nested too deeply"}
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            t = torch.Tensor.contiguous(torch.Tensor.cpu(torch.Tensor.detach(value)))
            dtype = str(t.dtype).removeprefix("torch.")
            if dtype not in DTYPES:
                return {"__unsupported__": f"tensor of dtype {dtype}"}
            data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return {
            "__tensor__": {
                "dtype": dtype,
                "shape": list(t.shape),
                "data": base64.b64encode(data).decode(),
            }
        }
    if value is None or type(value) in (bool, int, float):
        return value
    # Subclasses (a Counter, a namedtuple) become their plain base type, read through the
    # base type's own methods so that no override of the student's runs.
    if isinstance(value, str):
        return str.__getitem__(value, slice(MAX_ITEMS))
    if isinstance(value, (bytes, bytearray)):
        data = bytes.__getitem__(bytes(memoryview(value)), slice(MAX_ITEMS))
        return {"__bytes__": base64.b64encode(data).decode()}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in list.__getitem__(value, slice(MAX_ITEMS))]
    if isinstance(value, tuple):
        items = tuple.__getitem__(value, slice(MAX_ITEMS))
        return {"__tuple__": [encode(v, depth + 1) for v in items]}
    if isinstance(value, dict):
        pairs = list(dict.items(value))[:MAX_ITEMS]
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in pairs]}
    return {"__unsupported__": f"a {type(value).__name__}"}


def short_error(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()[:MAX_TEXT]


def run_cell(namespace: dict[str, Any], step: dict[str, Any]) -> None:
    try:
        code = compile(step["source"], f"<cell {step.get('cell', step['id'])}>", "exec")
        exec(code, namespace)
    except SystemExit:
        emit(
            event="violation",
            what=f"sys.exit() in cell {step.get('cell', step['id'])}",
            step=step["id"],
        )
        emit(event="step", id=step["id"], ok=False, error="SystemExit: the cell tried to exit")
        return
    except BaseException as exc:
        emit(event="step", id=step["id"], ok=False, error=short_error(exc))
        return
    emit(event="step", id=step["id"], ok=True)


def evaluate(target: Any, step: dict[str, Any]) -> dict[str, Any]:
    """Call ``target`` (a function, or a module class built and loaded as ``step`` says)
    on the step's inputs; return its encoded output and the requested gradients."""
    args, kwargs = decode(step.get("args", [])), decode(step.get("kwargs", {}))
    params: dict[str, Any] = {}
    if step.get("module"):
        init = step["module"]
        target = target(*decode(init.get("args", [])), **decode(init.get("kwargs", {})))
        if "state_dict" in init:
            target.load_state_dict(decode(init["state_dict"]))
        target.train(False)
        params = dict(target.named_parameters())
    out = target(*args, **kwargs)
    result: dict[str, Any] = {"output": encode(out)}
    if "grad_output" in step:
        out_t = out[0] if isinstance(out, (tuple, list)) else out
        if isinstance(out_t, torch.Tensor) and out_t.requires_grad:
            torch.autograd.backward(out_t, decode(step["grad_output"]))
        result["arg_grads"] = [
            encode(a.grad) if isinstance(a, torch.Tensor) else None for a in args
        ]
        result["param_grads"] = {n: encode(p.grad) for n, p in params.items()}
    return result


def run_call(namespace: dict[str, Any], step: dict[str, Any]) -> None:
    try:
        target = namespace.get(step["name"])
        if target is None:
            raise NameError(f"name {step['name']!r} is not defined: did its cell run?")
        emit(event="step", id=step["id"], ok=True, result=evaluate(target, step))
    except SystemExit:
        emit(event="violation", what=f"sys.exit() while calling {step['name']}", step=step["id"])
        emit(event="step", id=step["id"], ok=False, error="SystemExit: the code tried to exit")
    except BaseException as exc:
        emit(event="step", id=step["id"], ok=False, error=short_error(exc))


PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
# Imported by the server once, not by every child: the notebooks' setup cells import
# pyplot (0.5 s), and autograd's first backward with explicit gradients imports sympy
# (0.35 s). Neither runs a torch operation (no thread pool before the fork) nor brings in
# a module of BLOCKED_MODULES that torch has not imported already.
PRELOAD = ("matplotlib.pyplot", "torch.fx.experimental.symbolic_shapes")


def run_job(job: dict[str, Any]) -> None:
    """In a fresh child, in its folder: limits, filters, then the steps; never returns."""
    global _out, _current
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the server
        for limit, value in ((resource.RLIMIT_AS, job["memory_bytes"]),
                             (resource.RLIMIT_CPU, job["cpu_seconds"]),
                             (resource.RLIMIT_CORE, 0)):  # fmt: skip
            resource.setrlimit(limit, (value, value))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the server's job channel stays the server's
        os.close(null)
        os.environ["HOME"] = os.getcwd()
        _out = os.fdopen(os.dup(1), "w", encoding="utf-8")
        capture = os.open("student_output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(capture, 1)
        os.dup2(capture, 2)
        os.close(capture)
        torch.manual_seed(0)
        torch.set_num_threads(job.get("threads", 1))
        if job.get("seccomp"):  # no new processes, even from C (seccomp.py; Linux x86-64)
            filters: dict[str, Any] = {"__name__": "seccomp"}
            exec(compile(job["seccomp"], "seccomp.py", "exec"), filters)
            filters["deny_new_processes"]()
        install_audit_hook(os.getcwd(), job["secret"], job["private"], job["public"])
        namespace: dict[str, Any] = {"__name__": "__main__"}
        for step in job["steps"]:
            _current = step["id"]
            emit(event="start", id=step["id"])
            (run_cell if step["kind"] == "cell" else run_call)(namespace, step)
        emit(event="done")
    finally:
        os._exit(0)


def wipe(root: str) -> None:
    """Remove everything under ``root`` (whatever a child made read-only there)."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(dirpath, name), 0o700)
    for entry in os.scandir(root):
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def serve(control_fd: int) -> None:
    """The fork server: one child per job, one job at a time (see the module's docstring)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    control = os.fdopen(control_fd, "w", encoding="utf-8")
    root, pending, runs = os.getcwd(), b"", 0

    def say(**record: Any) -> None:
        control.write(json.dumps(record) + "\n")
        control.flush()

    def next_line(pidfd: int | None = None) -> bytes | None:
        """The next line on stdin (None at its end, b"" when the child exits first)."""
        nonlocal pending
        while b"\n" not in pending:
            ready, _, _ = select.select([0] + ([pidfd] if pidfd is not None else []), [], [])
            if 0 not in ready:
                return b""
            chunk = os.read(0, 1 << 20)
            if not chunk:
                return None
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        return line

    for name in PRELOAD:
        with contextlib.suppress(Exception):  # a missing one is only slower
            importlib.import_module(name)
    say(event="ready")
    while True:
        line = next_line()
        if line is None:
            return
        job = json.loads(line).get("job") if line.strip() else None
        if not isinstance(job, dict):
            continue  # a kill for a child already gone
        runs += 1
        folder = os.path.join(root, f"run{runs}")
        os.mkdir(folder, 0o700)
        pid = os.fork()
        if pid == 0:
            os.close(control_fd)
            os.chdir(folder)
            run_job(job)
        pidfd = os.pidfd_open(pid)
        line = next_line(pidfd)  # while a child runs, a line can only be a kill
        if line != b"":  # a kill, or the parent is gone
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        wipe(root)
        say(event="exited", status=status)
        if line is None:
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]))
