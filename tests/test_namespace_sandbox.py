"""The namespace sandbox (autograder/namespace.py): escapes from C or outside Python's view.

Each escape is first shown to WORK with neither line of defence (no audit hook, no
namespace), then to fail with the namespace alone (the bwrap launcher, no audit hook),
then run as student cells through the real grading (both lines), and in a class graded
by the real ``nbgrader autograde``. Also: the fallback and ``--require-sandbox`` when
bubblewrap is missing (simulated with ``GW_BWRAP``), and no student code outlives a
killed grading process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from autograder import namespace
from autograder.harness import grade_notebook, source_of
from autograder.sandbox import Limits

from .conftest import REPO
from .fixtures.attention_class import CLASS
from .fixtures.attention_submissions import CAUSAL, SDPA
from .nbgrader_cli import nbgrader, nbgrader_env
from .test_autograder import build_notebook
from .test_nbgrader_e2e import ASSIGNMENT, NOTEBOOK, scores, submit

pytestmark = pytest.mark.skipif(
    namespace.unavailable([]) is not None, reason=f"no namespaces: {namespace.unavailable([])}"
)
MISSING = {"GW_BWRAP": "/nonexistent/bwrap"}
DISK = 16 << 20  # the writable folder's cap in these tests
FILL = 48 << 20  # what the disk-filling escape tries to write
LIMITS = Limits(step_timeout=20.0, memory_bytes=3 << 30, disk_bytes=DISK)

# Each escape returns True when it got through, else a string saying what stopped it.
# Arguments come from the ``where`` dict: file paths, the watched port, the parent's pid.
ESCAPES_LIB = r"""
import ctypes, os

def _libc():
    return ctypes.CDLL(None, use_errno=True)

def _err(what):
    return f"{what}: {os.strerror(ctypes.get_errno())}"

def c_read(path):
    libc = _libc()
    fd = libc.open(path.encode(), os.O_RDONLY)
    if fd < 0:
        return _err("open")
    buf = ctypes.create_string_buffer(4096)
    n = libc.read(fd, buf, 4096)
    libc.close(fd)
    return n > 0 or _err("read")

def c_write(path):
    libc = _libc()
    fd = libc.open(path.encode(), os.O_WRONLY)
    if fd < 0:
        return _err("open")
    n = libc.write(fd, b"pwned", 5)
    libc.close(fd)
    return n == 5 or _err("write")

def fork_execve(marker):
    libc = _libc()
    pid = libc.fork()
    if pid == 0:
        args = [b"/bin/sh", b"-c", b"echo pwned > " + marker.encode()]
        argv = (ctypes.c_char_p * 4)(*args, None)
        libc.execve(b"/bin/sh", argv, (ctypes.c_char_p * 1)(None))
        libc._exit(127)
    if pid < 0:
        return _err("fork")
    libc.waitpid(pid, None, 0)
    return os.path.exists(marker) or f"forked and ran /bin/sh, which could not write {marker}"

def c_connect(port):
    libc = _libc()
    fd = libc.socket(2, 1, 0)  # AF_INET, SOCK_STREAM
    if fd < 0:
        return _err("socket")
    addr = (2).to_bytes(2, "little") + port.to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8)
    ok = libc.connect(fd, addr, 16) == 0
    result = ok or _err("connect")
    libc.close(fd)
    return result

def from_file(path):
    import torch
    size = os.path.getsize(path)  # os.stat: no audit event for the hook to refuse
    data = torch.from_file(path, size=size, dtype=torch.uint8)
    return data.numel() == size

def proc_environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return len(f.read()) > 0

def proc_memory(pid):
    with open(f"/proc/{pid}/maps") as f:
        start = int(f.readline().split("-")[0], 16)
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(start)
        return len(f.read(16)) == 16

def fill_disk(limit):
    written = 0
    try:
        with open("fill.bin", "wb") as f:
            while written < limit:
                f.write(bytes(1 << 20))
                f.flush()
                written += 1 << 20
    except OSError as e:
        return f"stopped after {written >> 20} MiB: {e.strerror}"
    return True
"""

# escape -> its call: a function of the library above, on the ``where`` values
ESCAPES = {
    "ctypes_read_reference": "c_read(REFERENCE)",
    "ctypes_read_source_notebook": "c_read(SOURCE)",
    "torch_from_file_gradebook": "from_file(GRADEBOOK)",
    "ctypes_write_gradebook": "c_write(GRADEBOOK)",
    "ctypes_write_grader": "c_write(GRADER)",
    "ctypes_write_other_submission": "c_write(SUBMISSION)",
    "ctypes_fork_execve": "fork_execve(MARKER)",
    "ctypes_socket_to_localhost": "c_connect(PORT)",
    "proc_parent_environ": "proc_environ(PPID)",
    "proc_parent_memory": "proc_memory(PPID)",
    "fill_private_disk": f"fill_disk({FILL})",
}
C_LEVEL = [name for name in ESCAPES if name.startswith("ctypes_")]  # ctypes: hooks refuse it
UNSEEN = [name for name in ESCAPES if name not in C_LEVEL]  # no audit event refuses these


def make_course(root: Path) -> Path:
    """A fake course: gradebook, a grader copy, another student's submission."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    (root / "gradebook.db").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    grader = root / "autograder" / "graders" / "attention.py"
    grader.parent.mkdir(parents=True)
    shutil.copy(REPO / "autograder" / "graders" / "attention.py", grader)
    other = root / "submitted" / "bob" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    other.parent.mkdir(parents=True)
    shutil.copy(REPO / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", other)
    return root


def where(course: Path, port: int) -> dict[str, object]:
    return {
        "REFERENCE": str(REPO / "reference_impl" / "models" / "attention.py"),
        "SOURCE": str(REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"),
        "GRADEBOOK": str(course / "gradebook.db"),
        "GRADER": str(course / "autograder" / "graders" / "attention.py"),
        "SUBMISSION": str(course / "submitted" / "bob" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"),
        "MARKER": str(course / "pwned"),
        "PORT": port,
        "PPID": os.getpid(),
    }


def digest(paths: list[Path]) -> dict[str, str]:
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        s.settimeout(0.5)
        yield s


def arrived(s: socket.socket) -> bool:
    try:
        s.accept()[0].close()
    except TimeoutError:
        return False
    return True


def run_escape(name: str, values: dict[str, object], isolate: bool) -> object:
    """One escape in a fresh ``python -I`` with no audit hook, in or out of the namespace."""
    script = ESCAPES_LIB + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    script += f"try:\n    r = {ESCAPES[name]}\nexcept Exception as e:\n    r = repr(e)\n"
    script += "import json\nprint(json.dumps(r))\n"
    with tempfile.TemporaryDirectory(prefix="gw-escape-") as workdir:
        argv = [sys.executable, "-I", "-c", script]
        if isolate:
            argv = namespace.command(argv, workdir, tmpfs={workdir: DISK})
        out = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else f"no result: {out.stderr.strip()[-300:]}"


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_each_escape_works_without_any_guard(
    tmp_path: Path, listener: socket.socket, name: str
) -> None:
    """Otherwise the test below would prove nothing."""
    course = make_course(tmp_path / "course")
    before = digest([course])
    values = where(course, listener.getsockname()[1])
    outcome = run_escape(name, values, isolate=False)
    if name == "proc_parent_memory" and "PermissionError" in str(outcome) and os.getuid():
        pytest.skip("this kernel lets only root read a parent's memory (Yama ptrace_scope)")
    assert outcome is True
    if name.startswith("ctypes_write"):
        assert digest([course]) != before
    if name == "ctypes_socket_to_localhost":
        assert arrived(listener)


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_the_namespace_alone_stops_each_escape(
    tmp_path: Path, listener: socket.socket, name: str
) -> None:
    course = make_course(tmp_path / "course")
    values = where(course, listener.getsockname()[1])
    watched = [course, Path(str(values["REFERENCE"])), Path(str(values["SOURCE"]))]
    before = digest(watched)
    outcome = run_escape(name, values, isolate=True)
    assert isinstance(outcome, str) and not outcome.startswith("no result"), outcome
    assert digest(watched) == before and not (course / "pwned").exists()
    assert not arrived(listener)
    if name == "fill_private_disk":
        assert f"stopped after {DISK >> 20} MiB" in outcome


def indent(code: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in code.strip().splitlines())


def escape_cell(names: list[str], then: str) -> str:
    """A student cell that tries ``names`` (recording the ones that got through in
    ``ESCAPED``) and runs ``then`` (the answer) only if none did."""
    lines = ["ESCAPED = {}"]
    for name in names:
        lines += [
            "try:",
            f"    if {ESCAPES[name]} is True:",
            f"        ESCAPED[{name!r}] = True",
            "except BaseException:",
            "    pass",
        ]
    return "\n".join(lines) + "\nif not ESCAPED:\n" + indent(then, 4)


def attacker_notebook(path: Path, values: dict[str, object]) -> Path:
    setup = "import math\nimport torch\n" + ESCAPES_LIB
    setup += "".join(f"{k} = {v!r}\n" for k, v in values.items())
    build_notebook(path, escape_cell(C_LEVEL, SDPA), escape_cell(UNSEEN, CAUSAL))
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[1].source = setup
    nbformat.write(nb, str(path))
    return path


def test_grading_stops_every_escape_with_both_lines(
    tmp_path: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Student cells through the real grading, with the fake course as the working folder
    (as under nbgrader). The ctypes escapes are flagged by the audit hook (``ctypes.dlopen``:
    torch imported ctypes before the hook), so SDPA scores 0; the others pass the hook and
    only the namespace stops them (the causal mask is defined only when none got through:
    2 points). Without bubblewrap they get through: 0 points."""
    course = make_course(tmp_path / "course")
    values = where(course, listener.getsockname()[1])
    notebook = attacker_notebook(tmp_path / "attacker.ipynb", values)
    watched = [course, Path(str(values["REFERENCE"])), Path(str(values["SOURCE"]))]
    before = digest(watched)
    monkeypatch.chdir(course)
    cells = {c.grade_id: c for c in grade_notebook(notebook, LIMITS).cells}
    assert cells["sdpa_tests"].points == 0
    assert "integrity: ctypes.dlopen (loads a C library)" in cells["sdpa_tests"].flags
    assert cells["causal_tests"].points == 2, cells["causal_tests"]
    assert digest(watched) == before and not arrived(listener)

    monkeypatch.setenv("GW_BWRAP", MISSING["GW_BWRAP"])
    cells = {c.grade_id: c for c in grade_notebook(notebook, LIMITS).cells}
    assert cells["causal_tests"].points == 0  # the hooks alone let them through
    assert digest(watched) == before


def looping_notebook(tmp_path: Path) -> Path:
    return build_notebook(tmp_path / "loops.ipynb", "while True:\n    pass\n", CAUSAL)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running_cells(pid: int) -> bool:
    """Whether ``pid`` is a grading child that started running cells (its stdout is then
    the capture file)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/1").endswith("student_output.txt")
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("env", [{}, MISSING], ids=["bwrap", "fallback"])
def test_student_code_dies_with_the_grading_process(tmp_path: Path, env: dict[str, str]) -> None:
    """A killed grading run (a job's time limit, kill -9) leaves no child looping."""
    cmd = [sys.executable, "-m", "autograder", str(looping_notebook(tmp_path))]
    env = os.environ | env | {"TMPDIR": str(tmp_path)}  # what a killed run leaves behind
    grading = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    students: set[int] = set()
    while time.monotonic() < deadline and not students:
        time.sleep(0.5)
        students = {p for p in descendants(grading.pid) if running_cells(p)}
    assert students, "the grading child never started"
    time.sleep(1)  # past the child's last write: a dead parent's pipe would stop it too
    everything = descendants(grading.pid)
    os.kill(grading.pid, signal.SIGKILL)
    grading.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in everything):
        time.sleep(0.2)
    assert not [p for p in everything if alive(p)]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "autograder", *args]
    return subprocess.run(
        cmd, cwd=REPO, env=os.environ | env, capture_output=True, text=True, timeout=300
    )


def test_without_bubblewrap_grading_says_so_once_or_refuses(tmp_path: Path) -> None:
    nb = tmp_path / "notes.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), nb)
    out = run_cli(str(nb), str(nb), env=MISSING)
    line = (
        "sandbox: bubblewrap not available (no bwrap at '/nonexistent/bwrap'); "
        "falling back to the audit-hook guard"
    )
    assert out.stderr.count(line) == 1, out.stderr
    out = run_cli("--require-sandbox", str(nb), env=MISSING)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: sandbox: bubblewrap not available (no bwrap at")
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


# In the student's kernel and in the trusted child alike; each line gets past the audit hooks.
ATTACK = """
import os
print("uid", os.getuid(), "sees", sorted(os.listdir("/")))
try:  # read the reference: torch opens the file itself, no audit event
    leaked = torch.from_file(REFERENCE, size=os.path.getsize(REFERENCE), dtype=torch.uint8)
except BaseException as e:
    print("from_file:", e)
    leaked = None
for target in (GRADEBOOK, SUBMISSION):
    try:  # overwrite the gradebook and another student's work: torch writes itself
        torch.save({"pwned": 1}, target)
    except BaseException as e:
        print("torch.save:", e)
for target in (GRADEBOOK, GRADER):
    try:  # ctypes, which the kernel's hook lets through
        print("c_write:", c_write(target))
    except BaseException as e:
        print("c_write:", e)
if leaked is not None:  # (stands for an answer taken from the reference)
"""
ATTACK += indent(CAUSAL, 4)


def test_the_kernel_guard_alone_lets_the_class_attack_through(tmp_path: Path) -> None:
    """Why the kernel needs the namespace (the class below): torch writes past its hook."""
    course = make_course(tmp_path / "course")
    folder = course / "autograded" / "eve"
    folder.mkdir(parents=True)
    script = (
        "import torch, autograder.kernel_guard as g\ng.install()\n"
        "torch.save({'pwned': 1}, '../../gradebook.db')\n"
    )
    env = os.environ | {"GW_COURSE_ROOT": str(course)}
    subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, check=True, timeout=120)
    assert not (course / "gradebook.db").read_bytes().startswith(b"SQLite format 3")


@pytest.mark.slow
def test_a_class_graded_by_nbgrader_in_the_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One honest student and one attacker, real ``nbgrader autograde``: the honest score is
    that of a run without the namespace; the attacker, whose escapes run in the student's
    kernel and in the trusted child, earns only the correct cells and changes nothing.
    Before that, with bubblewrap missing and the sandbox required (course_config.py),
    nbgrader stops with one line and grades no one."""
    course = tmp_path / "course"
    course.mkdir()
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, course / name)
    shutil.copytree(REPO / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    honest = CLASS["correct"][0]
    reference = REPO / "reference_impl" / "models" / "attention.py"
    honest_file = course / "submitted" / "honest" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    targets = {
        "REFERENCE": str(reference),
        "GRADEBOOK": str(course / "gradebook.db"),
        "SUBMISSION": str(honest_file),
        "GRADER": str(REPO / "autograder" / "graders" / "attention.py"),
    }
    attack = ESCAPES_LIB + "".join(f"{k} = {v!r}\n" for k, v in targets.items()) + ATTACK
    submit(course, "honest", honest, {})
    submit(course, "attacker", honest | {"causal": attack}, {})
    for student in ("honest", "attacker"):
        nbgrader(course, "db", "student", "add", student)
    watched = [course / "source", course / "submitted", course / "release", reference]
    watched.append(Path(targets["GRADER"]))
    before = digest(watched)

    refused = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), "autograde", ASSIGNMENT],
        cwd=course,
        env=nbgrader_env(GW_FAST="1", **MISSING),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode != 0 and not (course / "autograded").exists()
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: sandbox: bubblewrap not available (no bwrap at"), last
    assert not any(scores(course).values())

    limits = ["--Execute.timeout=20", "--TrustedGrades.step_timeout=20"]
    nbgrader(course, "autograde", ASSIGNMENT, *limits)
    got = scores(course)
    assert digest(watched) == before
    attacker = {"sdpa_tests": 6.0, "causal_tests": 0.0, "mha_tests": 4.5}
    assert {k: got["attacker"].get(k) for k in attacker} == attacker, got
    graded = course / "autograded" / "attacker" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert "uid 65534 sees" in graded.read_text()  # the kernel ran in the namespace too

    monkeypatch.setenv("GW_BWRAP", MISSING["GW_BWRAP"])  # the same notebook, no namespace
    report = grade_notebook(honest_file, LIMITS, source_of(honest_file, course))
    stock = {c.grade_id: c.points for c in report.cells}
    assert {k: got["honest"].get(k) for k in stock} == stock == CLASS["correct"][2]
