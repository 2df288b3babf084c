"""The trusted child's fork server (``autograder/_child.py``, ``autograder/sandbox.py``):
one server per grading process and settings, a fresh child per run, nothing of one run
left for the next (the next run may be another student's)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from autograder import sandbox
from autograder.sandbox import Limits, decode_value, run_steps

LIMITS = Limits(step_timeout=20)


def cell(sid: str, source: str) -> dict[str, Any]:
    return {"id": sid, "kind": "cell", "source": source, "cell": 0}


def call(sid: str, name: str) -> dict[str, Any]:
    return {"id": sid, "kind": "call", "name": name, "args": [], "kwargs": {}}


LEAVE_TRACES = cell(
    "c",
    "import json, os, torch\n"
    "open('notes.txt', 'w').write('answers')\n"
    "os.mkdir('locked'); open('locked/f', 'w').write('x'); os.chmod('locked', 0o500)\n"
    "json.LEAK = 1\n"
    "os.environ['LEAK'] = '1'\n"
    "torch.manual_seed(123)\n",
)
LOOK = cell(
    "look",
    "import json, os, torch\n"
    "def traces():\n"
    "    here = sorted(os.listdir('.'))\n"
    "    above = sorted(os.listdir('..'))\n"
    "    return here, above, hasattr(json, 'LEAK'), os.environ.get('LEAK'), torch.rand(2)\n",
)


def server_pid() -> int:
    (server,) = [s for s in sandbox._servers.values() if s.proc.poll() is None]
    return server.proc.pid


def look() -> tuple[Any, ...]:
    run = run_steps([LOOK, call("t", "traces")], LIMITS)
    assert run.results["t"].ok, run.results["t"].error
    return tuple(decode_value(run.results["t"].result["output"]))


@pytest.fixture(autouse=True)
def fresh_servers() -> None:
    sandbox._stop_servers()


def test_one_server_serves_run_after_run_and_no_run_sees_the_last() -> None:
    before = look()
    pid = server_pid()
    run = run_steps([LEAVE_TRACES], LIMITS)
    assert run.results["c"].ok, run.results["c"].error
    after = look()
    assert server_pid() == pid  # torch was imported once for all three runs
    here, above, leaked_module, leaked_env, rand = after
    assert here == ["student_output.txt"]  # no notes.txt, no locked/: wiped, read-only or not
    assert len(above) == 1  # the run's own folder only: earlier runs' folders are gone
    assert not leaked_module and leaked_env is None
    assert rand.equal(before[4])  # every run starts from the same seed


@pytest.mark.parametrize(
    "source", ["import os\nos._exit(3)", "while True:\n    pass"], ids=["exit", "loop"]
)
def test_a_child_that_dies_or_loops_costs_a_fork_not_a_server(source: str) -> None:
    look()
    pid = server_pid()
    steps = [cell("bad", source), LOOK, call("t", "traces")]
    run = run_steps(steps, Limits(step_timeout=3))
    assert not run.results["bad"].ok and run.restarts == 1
    assert run.results["t"].ok, run.results["t"].error
    assert server_pid() == pid


def test_a_server_that_died_is_replaced() -> None:
    look()
    os.killpg(server_pid(), signal.SIGKILL)
    assert look()[0] == ["student_output.txt"]


def test_settings_that_change_the_process_get_their_own_server() -> None:
    look()
    run = run_steps([LOOK, call("t", "traces")], Limits(step_timeout=20, threads=2))
    assert run.results["t"].ok
    assert len([s for s in sandbox._servers.values() if s.proc.poll() is None]) == 2


def test_prestart_leaves_the_server_starting_for_the_first_run() -> None:
    sandbox.prestart(LIMITS)
    (server,) = sandbox._servers.values()
    assert server._ready is None  # not waited for: nbgrader goes on to the first kernel
    look()
    assert server_pid() == server.proc.pid and server.ready
