"""``scripts/chat.py --web``: chat with a fine-tuned model in the browser.

The server is stateless: the page keeps the conversation and posts it whole to
``/api/chat``, which answers with the reply's text (``text/plain``), streamed piece by piece
as its tokens are generated, up to ``<|end|>``, ``max_new_tokens`` or the end of the context.
Each token is computed in a worker thread (the event loop keeps serving other clients), the
model shared under a lock held for one step at a time; a client that leaves stops its
generation. Bad input is HTTP 400 with ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from reference_impl.generation.streaming import stream_reply, strip_stream
from reference_impl.models import TransformerLM
from reference_impl.tokenizer import END, render_prompt

log = logging.getLogger(__name__)
FIELDS = ("messages", "temperature", "top_k", "top_p", "max_new_tokens", "seed")


class BadRequest(ValueError):
    """A request the client can fix: HTTP 400 with this message."""


@dataclass(frozen=True)
class ChatRequest:
    """A checked ``/api/chat`` request."""

    messages: list[dict[str, str]]
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    max_new_tokens: int = 80
    seed: int | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _messages(raw: Any) -> list[dict[str, str]]:
    """The conversation, checked: user and assistant messages, the user's last and not empty."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages: send the conversation, at least one user message")
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise BadRequest(f"messages[{i}]: must be {{'role': ..., 'content': ...}}")
        role = m["role"]
        if role not in ("user", "assistant"):
            raise BadRequest(f"messages[{i}].role: must be 'user' or 'assistant', got {role!r}")
        if not isinstance(m["content"], str):
            raise BadRequest(f"messages[{i}].content: must be a string")
    if raw[-1]["role"] != "user":
        raise BadRequest("messages: the last message must be the user's, to be answered")
    if not raw[-1]["content"].strip():
        raise BadRequest("the message is empty: type something to send")
    return [dict(m) for m in raw]


def parse_request(body: Any, default_max_new_tokens: int) -> ChatRequest:
    """The checked request of a JSON body, or :class:`BadRequest` saying what is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with 'messages'")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}: expected {', '.join(FIELDS)}")
    temperature = body.get("temperature", 0.0)
    if not _is_number(temperature) or temperature < 0:
        raise BadRequest(f"temperature: must be a number >= 0 (0 = greedy), got {temperature}")
    top_k = body.get("top_k")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise BadRequest(f"top_k: must be an integer >= 1 or null, got {top_k}")
    top_p = body.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 < top_p <= 1):
        raise BadRequest(f"top_p: must be in (0, 1] or null, got {top_p}")
    max_new = body.get("max_new_tokens", default_max_new_tokens)
    if not _is_int(max_new) or max_new < 1:
        raise BadRequest(f"max_new_tokens: must be an integer >= 1, got {max_new}")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise BadRequest(f"seed: must be an integer or null, got {seed}")
    return ChatRequest(_messages(body.get("messages")), temperature, top_k, top_p, max_new, seed)


def fit_prompt(
    tokenizer: Any, messages: list[dict[str, str]], context_length: int, room: int
) -> list[int]:
    """The prompt ids of ``messages``, the oldest exchanges dropped while it and ``room`` new
    tokens do not fit in the context; :class:`BadRequest` when the last message alone fills
    it."""
    ids = render_prompt(tokenizer, messages)
    while len(ids) + room > context_length and len(messages) > 1:
        messages = messages[1:]
        while messages[0]["role"] != "user":  # the last message is the user's
            messages = messages[1:]
        ids = render_prompt(tokenizer, messages)
    if len(ids) >= context_length:
        raise BadRequest(
            f"your message is {len(ids)} tokens; the context holds {context_length}: shorten it"
        )
    return ids


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _in_threads(pieces: Iterator[str]) -> AsyncIterator[str]:
    """``pieces``, each computed in a worker thread. A client that leaves cancels this
    (Starlette's StreamingResponse) and no later piece, so no later token, is computed."""
    sent, finished = 0, False
    try:
        while (piece := await run_in_threadpool(next, pieces, None)) is not None:
            sent += 1
            yield piece
        finished = True
    finally:
        if not finished:
            log.info("the client left after %d pieces of the reply: generation stopped", sent)


def create_app(
    model: TransformerLM, tokenizer: Any, *, context_length: int, max_new_tokens: int = 80
) -> FastAPI:
    """The chat app: ``GET /`` the page, ``POST /api/chat`` a streamed reply."""
    app = FastAPI(title="gemini-workshop chat", docs_url=None, redoc_url=None, openapi_url=None)
    model.eval()
    lock, end = threading.Lock(), tokenizer.special_ids[END]
    device = next(model.parameters()).device
    page = PAGE.replace("__MAX_NEW_TOKENS__", str(max_new_tokens)).replace(
        "__CONTEXT__", str(context_length)
    )

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    def prepare(body: Any) -> tuple[ChatRequest, list[int]]:
        req = parse_request(body, max_new_tokens)
        room = min(req.max_new_tokens, context_length // 2)
        return req, fit_prompt(tokenizer, req.messages, context_length, room)

    @app.post("/api/chat")
    async def chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
            return _error(f"the body is not JSON ({e})")
        try:
            req, ids = await run_in_threadpool(prepare, body)
        except BadRequest as e:
            return _error(str(e))
        gen = torch.Generator(device=device)
        if req.seed is None:
            gen.seed()
        else:
            gen.manual_seed(req.seed)
        pieces = stream_reply(
            model, tokenizer, ids, req.max_new_tokens, req.temperature, req.top_k, req.top_p,
            end, gen, lock,
        )  # fmt: skip
        return StreamingResponse(
            _in_threads(strip_stream(pieces)),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    return app


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free one); OSError when it cannot be."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def serve(model: TransformerLM, tokenizer: Any, sock: socket.socket, *, max_new_tokens: int) -> int:
    """Serve the chat on ``sock`` (from :func:`listen`) until Ctrl-C."""
    import uvicorn

    app = create_app(
        model,
        tokenizer,
        context_length=model.config.context_length,
        max_new_tokens=max_new_tokens,
    )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"Chat in your browser: http://{shown}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat - gemini-workshop</title>
<style>
  body { font: 16px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 46rem;
         padding: 1rem; color: #1d1d1f; background: #fafafa; }
  header { display: flex; align-items: center; justify-content: space-between; }
  h1 { font-size: 1.3rem; margin: 0; }
  header small { color: #666; }
  #messages { display: flex; flex-direction: column; gap: .5rem; margin: 1rem 0;
              min-height: 8rem; }
  .msg { padding: .5rem .75rem; border-radius: .6rem; white-space: pre-wrap;
         max-width: 85%; overflow-wrap: anywhere; }
  .msg.user { align-self: flex-end; background: #d8e8ff; }
  .msg.assistant { align-self: flex-start; background: #fff; border: 1px solid #ddd; }
  .msg.assistant:not([data-done])::after { content: " \\2026"; color: #999; }
  #error { color: #a40000; background: #fff0f0; border: 1px solid #e5b5b5;
           padding: .5rem .75rem; border-radius: .4rem; }
  form { display: flex; gap: .5rem; }
  #message { flex: 1; font: inherit; padding: .5rem; resize: vertical; }
  button { font: inherit; padding: .4rem .9rem; cursor: pointer; }
  fieldset { margin-top: 1rem; border: 1px solid #ddd; display: flex; flex-wrap: wrap;
             gap: .5rem 1.2rem; }
  fieldset input { width: 5.5rem; }
</style>
</head>
<body>
<header>
  <div><h1>Chat with your model</h1>
  <small>fine-tuned assistant; context of __CONTEXT__ tokens</small></div>
  <button id="new-chat" type="button">New chat</button>
</header>
<div id="messages" aria-live="polite"></div>
<div id="error" role="alert" hidden></div>
<form id="composer">
  <textarea id="message" rows="3"
    placeholder="Ask something (Enter sends, Shift+Enter: a new line)"></textarea>
  <button id="send" type="submit">Send</button>
</form>
<fieldset>
  <legend>Sampling</legend>
  <label>temperature <input id="temperature" type="number" min="0" step="0.1" value="0"></label>
  <label>top-k <input id="top-k" type="number" min="1" step="1" placeholder="off"></label>
  <label>top-p <input id="top-p" type="number" min="0" max="1" step="0.05"
    placeholder="off"></label>
  <label>max new tokens <input id="max-new-tokens" type="number" min="1" step="1"
    value="__MAX_NEW_TOKENS__"></label>
</fieldset>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let conversation = [];  // [{role, content}], the whole chat, sent with each message
let controller = null;  // aborts the reply being streamed (New chat)

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.dataset.role = role;
  div.textContent = text;
  $("messages").append(div);
  div.scrollIntoView({block: "end"});
  return div;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
}

function optional(id) {
  const value = $(id).value.trim();
  return value === "" ? null : Number(value);
}

async function send(event) {
  event.preventDefault();
  if (controller) return;  // a reply is still streaming
  $("error").hidden = true;
  const text = $("message").value.trim();
  const messages = conversation.concat([{role: "user", content: text}]);
  const request = {
    messages,
    temperature: optional("temperature") ?? 0,
    top_k: optional("top-k"),
    top_p: optional("top-p"),
    max_new_tokens: optional("max-new-tokens") ?? __MAX_NEW_TOKENS__,
  };
  const mine = new AbortController();
  controller = mine;
  $("send").disabled = true;
  const user = bubble("user", text);
  let reply = null;
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(request),
      signal: mine.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      user.remove();
      showError(body.error || ("the server answered " + response.status));
      return;
    }
    $("message").value = "";
    reply = bubble("assistant", "");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      reply.textContent += decoder.decode(value, {stream: true});
    }
    reply.textContent += decoder.decode();
    reply.dataset.done = "1";
    if (controller === mine) conversation = messages.concat(
      [{role: "assistant", content: reply.textContent}]);
  } catch (e) {
    if (mine.signal.aborted) return;  // New chat
    if (reply) reply.dataset.done = "1"; else user.remove();
    showError("the reply was cut off: " + e.message + " (is the server still running?)");
  } finally {
    if (controller === mine) {
      controller = null;
      $("send").disabled = false;
      $("message").focus();
    }
  }
}

function newChat() {
  if (controller) controller.abort();
  controller = null;
  conversation = [];
  $("messages").replaceChildren();
  $("error").hidden = true;
  $("send").disabled = false;
  $("message").focus();
}

$("composer").addEventListener("submit", send);
$("new-chat").addEventListener("click", newChat);
$("message").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
});
</script>
</body>
</html>
"""
