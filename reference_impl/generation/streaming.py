"""A reply streamed token by token: the ids as :func:`generate` produces them (the same KV
cache, logit processing and choice), and their text as it grows, never a character split in
two. Greedy decoding streams exactly :func:`~reference_impl.generation.assistant.chat_answer`'s
reply once :func:`strip_stream` trims it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from reference_impl.generation.decoding import choose_next, next_token_logits, process_logits

if TYPE_CHECKING:
    from reference_impl.models.cache import KVCache
    from reference_impl.models.model import TransformerLM

REPLACEMENT = "\ufffd"  # what decode() makes of an incomplete UTF-8 sequence


def stream_ids(
    model: TransformerLM,
    ids: list[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_id: int | None = None,
    generator: torch.Generator | None = None,
    lock: threading.Lock | None = None,
) -> Iterator[int]:
    """The ids that follow ``ids``, one at a time: up to ``max_new_tokens``, never past the
    context window, ending before ``stop_id`` (not yielded). ``lock`` is held for each step
    (not between them), so that threads can share the model."""
    room = model.config.context_length - len(ids)
    if room < 1:
        raise ValueError(f"the prompt's {len(ids)} tokens fill the context")
    idx = torch.tensor([ids], device=next(model.parameters()).device)
    cache: KVCache | None = model.new_cache(1)
    for _ in range(min(max_new_tokens, room)):
        with lock or contextlib.nullcontext(), torch.no_grad():
            logits, cache = next_token_logits(model, idx, cache)
            logits = process_logits(logits, idx, temperature, top_k, top_p)
            next_id = choose_next(logits, temperature, generator)
        token = int(next_id.item())
        if token == stop_id:
            return
        idx = torch.cat((idx, next_id), dim=1)
        yield token


def decode_stream(tokenizer: Any, ids: Iterable[int]) -> Iterator[str]:
    """The text of ``ids`` in pieces as they come: each piece is what decoding the ids so far
    adds. A trailing U+FFFD (a multi-byte character still incomplete) is held back until the
    next id completes it, or until the end."""
    seen: list[int] = []
    sent = ""
    for token in ids:
        seen.append(token)
        text = tokenizer.decode(seen).rstrip(REPLACEMENT)
        if len(text) > len(sent) and text.startswith(sent):
            yield text[len(sent) :]
            sent = text
    text = tokenizer.decode(seen)
    if len(text) > len(sent) and text.startswith(sent):
        yield text[len(sent) :]


def strip_stream(pieces: Iterable[str]) -> Iterator[str]:
    """``"".join(pieces).strip()``, streamed: leading whitespace is dropped, and whitespace
    is held back until more text follows it."""
    pending, started = "", False
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            started = bool(piece)
        body = (pending + piece).rstrip()
        pending = (pending + piece)[len(body) :]
        if body:
            yield body


def stream_reply(
    model: TransformerLM,
    tokenizer: Any,
    ids: list[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_id: int | None = None,
    generator: torch.Generator | None = None,
    lock: threading.Lock | None = None,
) -> Iterator[str]:
    """The text of the reply to ``ids`` (a prompt), piece by piece as its tokens are
    generated (:func:`stream_ids`, :func:`decode_stream`)."""
    tokens = stream_ids(
        model, ids, max_new_tokens, temperature, top_k, top_p, stop_id, generator, lock
    )
    return decode_stream(tokenizer, tokens)
