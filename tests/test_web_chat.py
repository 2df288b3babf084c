"""``scripts/chat.py --web``: the browser chat of a fine-tuned model. A tiny model is
pretrained and fine-tuned once for the module (accuracy is not the point), the real server
runs as a subprocess, and the tests talk to it over HTTP (a greedy reply streamed in pieces
equals :func:`chat_answer`, every bad input is a clear 400, a client that leaves mid-reply
does not stop the next one) and through the page in Debian's Chromium driven by Playwright.

Where Playwright or Chromium is missing the browser test skips, saying why, except when
GW_REQUIRE_BROWSER=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from coursedata import instruction_splits
from reference_impl.generation import generate, load_model
from reference_impl.generation.assistant import chat_answer
from reference_impl.generation.streaming import decode_stream, stream_reply, strip_stream
from reference_impl.generation.web import create_app
from reference_impl.tokenizer import END, ByteTokenizer, render_prompt
from reference_impl.training import train

from .conftest import REPO, run_script
from .test_browser import CHROMIUM_ARGS, chromium
from .test_sft import MODEL, experiment, quiet

ARTIFACTS = REPO / "artifacts" / "web_chat"
CONTEXT = MODEL["context_length"]
MAX_NEW = 80  # the server's default: min(--max-new-tokens 120, context // 2)
SMALL = dict(max_iters=8, eval_interval=4, eval_iters=1)  # accuracy is not the point here


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny base model (a few iterations with the chat-ready tokenizer) and its fine-tuned
    assistant (a few iterations on the instructions)."""
    torch.set_num_threads(1)  # as conftest's autouse fixture, which runs after this one
    root = tmp_path_factory.mktemp("web_chat")
    train(experiment(root / "data", **SMALL), root / "base", log=quiet)
    base = root / "base" / "model.pt"
    sft = experiment(root / "data", "instructions", init_from=str(base), **SMALL)
    train(sft, root / "sft", log=quiet)
    return {"base": base, "tuned": root / "sft" / "model.pt"}


@pytest.fixture(scope="module")
def assistant(checkpoints: dict[str, Path]) -> tuple[Any, Any]:
    model, tok, ckpt = load_model(checkpoints["tuned"])
    assert ckpt["chat_format"]
    return model, tok


@pytest.fixture(scope="module")
def question(assistant: tuple[Any, Any]) -> list[dict[str, str]]:
    """A held-out question (one user message) whose greedy reply is the longest."""
    model, tok = assistant
    _, held_out = instruction_splits(10, 8, seed=3)
    asked = [c[:1] for c in held_out if len(c) == 2]
    return max(asked, key=lambda c: len(chat_answer(model, tok, c, MAX_NEW)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def server(
    checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``scripts/chat.py --web`` on a free port (the default host), stopped whatever
    happens."""
    port, log_path = free_port(), tmp_path_factory.mktemp("server") / "server.log"
    tuned = str(checkpoints["tuned"])
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "scripts/chat.py", "--web", "--port", str(port), "--checkpoint", tuned],
        cwd=REPO,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_text = log_path.read_text()
                    raise AssertionError(f"the server did not start:\n{log_text}") from None
                time.sleep(0.2)
        yield {"port": port, "url": f"http://127.0.0.1:{port}", "log": log_path, "proc": process}
    finally:
        stop(process)
        log.close()


def post(port: int, body: Any, *, raw: bytes | None = None) -> tuple[int, str, list[bytes]]:
    """POST /api/chat: the status, the content type and the body as the pieces read (each
    read returns at most one HTTP chunk)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else json.dumps(body).encode()
    conn.request("POST", "/api/chat", body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    pieces = []
    while piece := response.read1(64):
        pieces.append(piece)
    conn.close()
    return response.status, response.getheader("Content-Type") or "", pieces


# --- streaming, in process -------------------------------------------------------------------


def test_greedy_stream_is_chat_answer_and_sampling_is_generate(
    assistant: tuple[Any, Any], question: list[dict[str, str]]
) -> None:
    model, tok = assistant
    ids, end = render_prompt(tok, question), tok.special_ids[END]
    pieces = list(stream_reply(model, tok, ids, MAX_NEW, stop_id=end))
    assert len(pieces) > 1
    want = chat_answer(model, tok, question, MAX_NEW)
    assert "".join(pieces).strip() == "".join(strip_stream(pieces)) == want
    # Sampled: the same tokens as generate() with the same seed, up to <|end|>.
    kw: dict[str, Any] = dict(temperature=1.3, top_k=50, top_p=0.95)
    out = generate(
        model,
        torch.tensor([ids]),
        20,
        stop_ids=[end],
        generator=torch.Generator().manual_seed(7),
        **kw,
    )[0, len(ids) :].tolist()
    out = out[: out.index(end)] if end in out else out
    streamed = stream_reply(
        model, tok, ids, 20, stop_id=end, generator=torch.Generator().manual_seed(7), **kw
    )
    assert "".join(streamed) == tok.decode(out)


def test_pieces_never_split_a_character() -> None:
    tok = ByteTokenizer()
    text = "naïve café: 3 € — 日本 🙂!"
    pieces = list(decode_stream(tok, list(text.encode())))
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)
    assert len(pieces) == len(text)  # one piece per character, however many bytes
    broken = [*b"ok", 0xE2, 0x82]  # ends inside a character: flushed as decode() does
    assert "".join(decode_stream(tok, broken)) == tok.decode(broken)


def test_strip_stream_trims_like_str_strip() -> None:
    for pieces in (["  ", " a", " b ", " ", "c  "], ["\n"], [], ["x"], [" a b", "  "]):
        streamed = list(strip_stream(pieces))
        assert "".join(streamed) == "".join(pieces).strip()
        assert all(streamed)


def test_a_client_that_leaves_stops_the_generation(
    assistant: tuple[Any, Any], question: list[dict[str, str]]
) -> None:
    """In process (the app called as ASGI): the client disconnects after the first piece;
    the model runs a few more steps at most, not the whole reply."""
    model, tok = assistant
    full = len(tok.encode(chat_answer(model, tok, question, MAX_NEW)))
    assert full >= 10, "the question's reply is too short to show the stop"
    app = create_app(model, tok, context_length=CONTEXT, max_new_tokens=MAX_NEW)
    body = json.dumps({"messages": question}).encode()
    steps: list[int] = []
    hook = model.register_forward_hook(lambda *_: steps.append(1))

    async def client() -> list[dict[str, Any]]:
        first, sent, requested = asyncio.Event(), [], False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await first.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and message.get("body"):
                first.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/chat",
            "raw_path": b"/api/chat",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)
        await asyncio.sleep(0.5)  # a step still running in its thread ends
        return sent

    try:
        sent = asyncio.run(client())
    finally:
        hook.remove()
    assert sent[0]["status"] == 200
    assert not any(m.get("more_body") is False for m in sent)  # the reply never finished
    assert 1 <= len(steps) <= 4 < full, (len(steps), full)


# --- the server, over HTTP -------------------------------------------------------------------


def test_greedy_reply_streams_in_pieces_and_equals_chat_answer(
    server: dict[str, Any], assistant: tuple[Any, Any], question: list[dict[str, str]]
) -> None:
    model, tok = assistant
    request = {"messages": question, "temperature": 0, "max_new_tokens": MAX_NEW}
    status, kind, pieces = post(server["port"], request)
    assert status == 200 and kind.startswith("text/plain"), (status, kind)
    assert len(pieces) > 1
    assert b"".join(pieces).decode() == chat_answer(model, tok, question, MAX_NEW)
    status, _, short = post(server["port"], request | {"max_new_tokens": 3})
    assert b"".join(short).decode() == chat_answer(model, tok, question, 3)


def test_concurrent_clients_each_get_their_own_reply(
    server: dict[str, Any], assistant: tuple[Any, Any], question: list[dict[str, str]]
) -> None:
    """Two greedy requests at once (their steps interleave on the shared model)."""
    model, tok = assistant
    other = [{"role": "user", "content": "Who is Tom?"}]
    with ThreadPoolExecutor(2) as pool:
        replies = list(
            pool.map(
                lambda m: b"".join(post(server["port"], {"messages": m})[2]), [question, other]
            )
        )
    assert [r.decode() for r in replies] == [
        chat_answer(model, tok, question, MAX_NEW),
        chat_answer(model, tok, other, MAX_NEW),
    ]


def test_sampling_follows_the_seed(server: dict[str, Any], question: list[dict[str, str]]) -> None:
    request = {"messages": question, "temperature": 1.5, "top_k": 100, "top_p": 0.9, "seed": 1}
    replies = [b"".join(post(server["port"], request | {"seed": s})[2]) for s in (1, 1, 2)]
    assert replies[0] == replies[1] != replies[2]


def test_the_oldest_exchanges_are_dropped_to_fit(
    server: dict[str, Any], assistant: tuple[Any, Any], question: list[dict[str, str]]
) -> None:
    model, tok = assistant
    old = [
        {"role": "user", "content": "tell me a story " * 20},
        {"role": "assistant", "content": "once upon a time"},
    ]
    status, _, pieces = post(server["port"], {"messages": old + question, "max_new_tokens": 10})
    assert status == 200
    assert b"".join(pieces).decode() == chat_answer(model, tok, question, 10)


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": []}, "at least one user message"),
        ({"temperature": 0}, "at least one user message"),
        ({"messages": "hi"}, "at least one user message"),
        ({"messages": [{"role": "user", "content": "  \n"}]}, "the message is empty"),
        ({"messages": [*HI, {"role": "assistant", "content": "x"}]}, "must be the user's"),
        ({"messages": [{"role": "system", "content": "hi"}]}, "must be 'user' or 'assistant'"),
        ({"messages": [{"role": "user", "content": 3}]}, "content: must be a string"),
        ({"messages": [{"role": "user"}]}, "messages[0]: must be {'role'"),
        ({"messages": HI, "temperature": -1}, "temperature: must be a number >= 0"),
        ({"messages": HI, "temperature": "hot"}, "temperature: must be a number >= 0"),
        ({"messages": HI, "top_k": 0}, "top_k: must be an integer >= 1"),
        ({"messages": HI, "top_k": 2.5}, "top_k: must be an integer >= 1"),
        ({"messages": HI, "top_p": 0}, "top_p: must be in (0, 1]"),
        ({"messages": HI, "top_p": 1.5}, "top_p: must be in (0, 1]"),
        ({"messages": HI, "max_new_tokens": 0}, "max_new_tokens: must be an integer >= 1"),
        ({"messages": HI, "top-k": 5}, "unknown field 'top-k'"),
        ([1, 2], "must be a JSON object"),
        (b"{not json", "the body is not JSON"),
    ],
)
def test_bad_requests_are_clear_400s(server: dict[str, Any], body: Any, message: str) -> None:
    raw = body if isinstance(body, bytes) else None
    status, kind, pieces = post(server["port"], body, raw=raw)
    assert status == 400 and kind == "application/json", (status, kind)
    error = json.loads(b"".join(pieces))["error"]
    assert message in error and "\n" not in error, error
    assert server["proc"].poll() is None  # still serving


def test_a_message_longer_than_the_context_is_refused(
    server: dict[str, Any], assistant: tuple[Any, Any]
) -> None:
    _, tok = assistant
    old = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    long = [{"role": "user", "content": "word " * 100}]
    status, _, pieces = post(server["port"], {"messages": old + long})
    size = len(render_prompt(tok, long))  # the earlier exchange was dropped first
    assert status == 400 and size > CONTEXT
    assert json.loads(b"".join(pieces))["error"] == (
        f"your message is {size} tokens; the context holds {CONTEXT}: shorten it"
    )


def test_a_client_that_leaves_does_not_stop_the_next(
    server: dict[str, Any], assistant: tuple[Any, Any], question: list[dict[str, str]]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    body = json.dumps({"messages": question, "max_new_tokens": MAX_NEW})
    conn.request("POST", "/api/chat", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200 and response.read1(64)
    conn.sock.shutdown(socket.SHUT_RDWR)  # gone mid-reply
    conn.close()
    model, tok = assistant
    status, _, pieces = post(server["port"], {"messages": question, "max_new_tokens": 5})
    assert status == 200
    assert b"".join(pieces).decode() == chat_answer(model, tok, question, 5)


def test_it_listens_on_localhost_by_default(server: dict[str, Any]) -> None:
    log = server["log"].read_text()
    assert f"Chat in your browser: http://127.0.0.1:{server['port']}/" in log, log
    if Path("/proc/net/tcp").exists():  # Linux: the listening socket's local address
        listening = []
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(name).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.split(":")[-1], 16) == server["port"]:
                    listening.append(local.split(":")[0])
        assert listening == ["0100007F"], listening  # 127.0.0.1 only


def test_the_page_is_self_contained(server: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=10)
    conn.request("GET", "/")
    response = conn.getresponse()
    page = response.read().decode()
    assert response.status == 200 and "text/html" in (response.getheader("Content-Type") or "")
    for element in ("messages", "message", "send", "new-chat", "temperature", "top-k", "top-p"):
        assert f'id="{element}"' in page, element
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert 'value="0"' in page and f'value="{MAX_NEW}"' in page  # greedy by default


# --- the command's errors --------------------------------------------------------------------


def test_a_base_checkpoint_or_a_busy_port_is_a_one_line_error(
    checkpoints: dict[str, Path], server: dict[str, Any]
) -> None:
    base = run_script("chat.py", "--web", "--checkpoint", str(checkpoints["base"]))
    assert base.returncode == 2, base.stderr
    assert "was not fine-tuned for chat: run scripts/sft.py" in base.stderr
    assert base.stderr.count("\n") == 1 and "Traceback" not in base.stderr
    tuned = str(checkpoints["tuned"])
    busy = run_script("chat.py", "--web", "--port", str(server["port"]), "--checkpoint", tuned)
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1" in busy.stderr, busy.stderr
    bad = run_script("chat.py", "--web", "--port", "70000", "--checkpoint", tuned)
    assert bad.returncode == 2 and "--port: must be in 0..65535" in bad.stderr, bad.stderr


# --- the page, in a browser ------------------------------------------------------------------


# Counts the changes of the reply's text as it is streamed into the page.
WATCH_REPLY = """() => {
  window.replyUpdates = 0;
  new MutationObserver((records) => {
    for (const r of records) if (r.target.classList?.contains("assistant")) window.replyUpdates++;
  }).observe(document.getElementById("messages"), {subtree: true, childList: true});
}"""


@pytest.mark.slow
def test_chat_in_the_browser(
    server: dict[str, Any], assistant: tuple[Any, Any], question: list[dict[str, str]]
) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    model, tok = assistant
    text = question[0]["content"]
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.set_default_timeout(30_000)
        try:
            page.goto(server["url"])
            assert page.input_value("#temperature") == "0"
            page.evaluate(WATCH_REPLY)
            page.fill("#message", text)
            page.click("#send")
            reply = page.locator("#messages .msg.assistant[data-done='1']")
            reply.wait_for()
            page.screenshot(path=str(ARTIFACTS / "01_reply.png"))
            assert reply.inner_text() == chat_answer(model, tok, question, MAX_NEW)
            assert page.evaluate("window.replyUpdates") >= 3  # shown piece by piece
            assert page.locator("#messages .msg.user").inner_text() == text
            assert page.input_value("#message") == ""

            page.click("#new-chat")
            assert page.locator("#messages .msg").count() == 0

            page.fill("#message", "   ")
            page.click("#send")
            error = page.locator("#error")
            error.wait_for(state="visible")
            assert "the message is empty" in error.inner_text()
            assert page.locator("#messages .msg").count() == 0
            page.screenshot(path=str(ARTIFACTS / "02_empty_message_error.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            print(server["log"].read_text()[-3000:])
            raise
        finally:
            browser.close()
