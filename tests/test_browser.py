"""A student's first exercise in a real browser: JupyterLab (started by the README's command,
scripts/lab.py) on a free localhost port with a token, driven by Playwright in Debian's
Chromium. It opens the setup notebook of a copy of the course, runs all cells and meets the
stub's NotImplementedError, types a solution into the exercise cell through the page, runs it
and sees the visible test pass, clicks nbgrader's Validate button and reads the result,
opens the progress view, and opens the instructor's Formgrader from the Nbgrader menu. Each
step's screenshot is saved in artifacts/browser/.

Where Playwright or Chromium is missing the test skips, saying why, except when
GW_REQUIRE_BROWSER=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import REPO

ARTIFACTS = REPO / "artifacts" / "browser"
NOTEBOOK = "release/part0_setup/00_setup_and_verification.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SOLUTION = """def causal_average(x):
    t = x.shape[-2]
    weights = torch.ones(t, t, dtype=x.dtype).tril()
    return (weights / weights.sum(dim=-1, keepdim=True)) @ x
"""

pytestmark = pytest.mark.slow


def chromium() -> str:
    """The browser's path, or a skip (a failure where GW_REQUIRE_BROWSER=1) saying why not."""
    path = os.environ.get("GW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[test]')"
    if problem is None and not os.access(path, os.X_OK):
        problem = f"no Chromium at {path} (Debian: apt-get install chromium; or set GW_CHROMIUM)"
    if problem and os.environ.get("GW_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GW_REQUIRE_BROWSER=1 but {problem}")
    if problem:
        pytest.skip(problem)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """JupyterLab on a copy of the course (release/, the nbgrader configuration and the
    launcher), stopped whatever happens in the test."""
    course = tmp_path / "course"
    (course / "scripts").mkdir(parents=True)
    shutil.copytree(REPO / "release", course / "release")
    for name in ("course_config.py", "nbgrader_config.py", "scripts/lab.py"):
        shutil.copy(REPO / name, course / name)
    port, token = free_port(), "gw-browser-test"
    log = (tmp_path / "lab.log").open("w")
    env = os.environ | {
        "GW_FAST": "1",
        "GW_PROGRESS_CACHE": str(tmp_path / "progress.json"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no user settings
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            str(course / "scripts" / "lab.py"),
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)
        yield {"url": url, "token": token, "course": course, "log": tmp_path / "lab.log"}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)
        log.close()


def poll_json(url: str, deadline: float) -> Any:
    """The JSON at ``url``, or None after a transient failure (a 5xx answer, a refused or
    timed-out connection) before ``deadline``. jupyter_server answers 500 to /api/kernels
    while a kernel is still starting (``KeyError: 'last_activity'`` in ``kernel_model``);
    a 4xx (a wrong token, a wrong path) is an error at once."""
    try:
        return json.loads(urllib.request.urlopen(url, timeout=5).read())
    except urllib.error.HTTPError as e:
        if e.code < 500 or time.monotonic() > deadline:
            raise
    except OSError:
        if time.monotonic() > deadline:
            raise
    return None


def wait_for_kernel_connection(lab: dict[str, Any], timeout: float = 60.0) -> None:
    """Until the notebook's kernel is idle with the page's websocket connected to it."""
    url = f"{lab['url']}/api/kernels?token={lab['token']}"
    deadline = time.monotonic() + timeout
    while True:
        kernels = poll_json(url, deadline) or []
        if any(
            k.get("connections", 0) >= 1 and k.get("execution_state") == "idle" for k in kernels
        ):
            return
        assert time.monotonic() < deadline, f"the kernel never connected: {kernels}"
        time.sleep(0.5)


def output_with(page: Any, text: str) -> Any:
    return page.locator(f'.jp-OutputArea-output:has-text("{text}")').first


def test_student_first_exercise_in_jupyterlab(lab: dict[str, Any]) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    executable = chromium()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    step = iter(range(1, 100))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{next(step):02d}_{name}.png"))

        try:
            page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
            page.wait_for_selector(".jp-Notebook")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            news = page.locator(".jp-Notification-Toast-Close")  # "get notified about news?"
            if news.count():
                news.first.click()
            shot("notebook_open")

            # Run all cells: the exercise's stub raises, and execution stops there. On a loaded
            # machine a Run All sent while the page is still connecting to the kernel can be
            # lost (seen once in CI: no cell ran), so wait for the connection and retry once.
            wait_for_kernel_connection(lab)
            for attempt in range(2):
                page.locator(".lm-MenuBar-item", has_text="Run").first.click()
                page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
                try:
                    output_with(page, "NotImplementedError").wait_for(timeout=60_000)
                    break
                except PlaywrightTimeout:
                    shot(f"run_all_attempt_{attempt + 1}_nothing_ran")
                    if attempt == 1:
                        raise
            assert output_with(page, "fast mode: True").is_visible()
            shot("run_all_not_implemented")

            # Type the solution into the exercise cell through the page, and run it and its test.
            stub = page.locator(".jp-CodeCell", has_text="YOUR CODE HERE").first
            stub.locator(".cm-content").click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(SOLUTION)
            shot("solution_typed")
            page.keyboard.press("Shift+Enter")
            page.keyboard.press("Shift+Enter")
            output_with(page, "visible tests pass").wait_for()
            shot("visible_tests_pass")

            # Save, then nbgrader's Validate button (it validates the saved file).
            page.keyboard.press("Control+S")
            saved = lab["course"] / NOTEBOOK
            deadline = time.monotonic() + 30
            while "weights.sum(dim=-1" not in saved.read_text():
                assert time.monotonic() < deadline, "the notebook was not saved"
                time.sleep(0.5)
            page.locator(".jp-Toolbar-item", has_text="Validate").first.click()
            dialog = page.locator(".jp-Dialog-content")
            dialog.wait_for()
            page.wait_for_function(
                "() => !document.querySelector('.jp-Dialog-content')"
                "?.textContent.includes('Validating...')",
                timeout=180_000,
            )
            result = dialog.inner_text()
            shot("validate_result")
            assert "Success! Your notebook passes all the tests." in result, result
            page.locator(".jp-Dialog-button", has_text="OK").first.click()

            # The progress view: the notebook's last cell.
            progress = page.locator(".jp-CodeCell", has_text="show_progress").last
            progress.locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            progress.locator(".jp-OutputArea-output", has_text="next").first.wait_for(
                timeout=180_000
            )
            # The chart comes as a second output, after the table (matplotlib renders it
            # meanwhile): wait for it rather than count it at once (a loaded CI machine
            # showed the table without the chart yet).
            progress.locator(".jp-OutputArea-output img").first.wait_for(timeout=180_000)
            progress.scroll_into_view_if_needed()
            shot("progress_view")
            text = progress.locator(".jp-OutputArea").inner_text()
            assert "causal_average" in text and "visible tests pass" in text, text
            assert "all tests pass" not in text.lower() and "hidden graders" in text, text

            # The instructor's side of the same server: the Formgrader (Nbgrader menu).
            page.locator(".lm-MenuBar-item", has_text="Nbgrader").first.click()
            page.locator(".lm-Menu-item", has_text="Formgrader").first.click()
            formgrader = page.frame_locator("iframe").first
            formgrader.get_by_text("Manage Assignments").first.wait_for()
            shot("formgrader")
        except Exception:
            shot("failure")
            print(lab["log"].read_text()[-3000:])
            raise
        finally:
            browser.close()

    # The student's answer is in their file, and nothing else changed it.
    nb = nbformat.read(str(lab["course"] / NOTEBOOK), as_version=4)
    assert any("weights.sum(dim=-1" in c.source for c in nb.cells)


def test_a_missing_browser_skips_with_a_reason_or_fails_where_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GW_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("GW_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium at /nonexistent/chromium"):
        chromium()
    monkeypatch.setenv("GW_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="GW_REQUIRE_BROWSER=1 but no Chromium"):
        chromium()


def test_kernel_polling_waits_out_transient_server_errors() -> None:
    """A 500 while the kernel starts is retried until the deadline; a 403 is an error at once."""
    import http.server
    import threading

    answers = iter([500, 500, 200, 403])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = next(answers)
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"[]" if code == 200 else b"KeyError: 'last_activity'")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/kernels"
        deadline = time.monotonic() + 30
        assert [poll_json(url, deadline) for _ in range(3)] == [None, None, []]
        with pytest.raises(urllib.error.HTTPError, match="403"):
            poll_json(url, deadline)
        with pytest.raises(urllib.error.HTTPError, match="500"):
            answers = iter([500])
            poll_json(url, time.monotonic() - 1)  # past the deadline: the 500 is raised
    finally:
        server.shutdown()
