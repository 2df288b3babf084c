"""Autoregressive decoding: greedy, sampling, stop tokens and stop sequences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from reference_impl.generation.processors import (
    apply_repetition_penalty,
    apply_temperature,
    top_k_filter,
    top_p_filter,
)
from reference_impl.models.cache import KVCache

if TYPE_CHECKING:
    from reference_impl.models.model import TransformerLM


Step = Callable[[Tensor, KVCache], Tensor]


def last_logits(model: TransformerLM, ids: Tensor, cache: KVCache) -> Tensor:
    """Logits (B, V) after ids (B, T) that follow the ``cache.length`` cached tokens."""
    return model(ids, cache=cache)[:, -1]


def compile_step(model: TransformerLM) -> Step | None:
    """``torch.compile`` of one cached step, (ids (B, 1), static cache) -> logits (B, V), or
    None for a model that decodes eagerly: one with sliding-window or MoE layers, or image
    placeholders. Compilation happens at the first call, once per model configuration and
    batch size (torch caches up to ``torch._dynamo.config.recompile_limit`` of them, then
    raises); the cache's fixed shapes (:meth:`KVCache.make_static`) keep it valid.
    """
    c = model.config
    if "L" in c.attn_pattern or "M" in c.ffn_pattern or c.image_token_id is not None:
        return None
    return torch.compile(partial(last_logits, model), fullgraph=True, dynamic=False)


def next_token_logits(
    model: TransformerLM, ids: Tensor, cache: KVCache | None, step: Step | None = None
) -> tuple[Tensor, KVCache | None]:
    """Logits (B, V) of the token after ids (B, T), and the cache to use for the next step.

    With a cache, only the ids it has not seen are fed (the whole prompt first, then one
    token per step). Once ids outgrow ``context_length`` the cache is dropped: every later
    step recomputes the last ``context_length`` ids without it, as if there were no cache.
    ``step`` (from :func:`compile_step`) computes the one-token steps after the prompt,
    on the cache made static; the prompt itself runs eagerly.
    """
    if cache is not None and ids.size(1) <= model.config.context_length:
        static = isinstance(cache.length, Tensor)  # no test of a tensor: no device sync
        if step is not None and (static or cache.length > 0):  # the prompt is in
            cache.make_static()
            last = ids[:, -1:].clone(memory_format=torch.contiguous_format)  # fixed strides
            return step(last, cache), cache
        return model(ids[:, cache.length :], cache=cache)[:, -1], cache
    return model(ids[:, -model.config.context_length :])[:, -1], None


def ends_with_any(generated: Tensor, sequences: Sequence[Sequence[int]]) -> Tensor:
    """(B,) bool: whether each row of generated (B, T) ends with one of ``sequences``."""
    hit = torch.zeros(generated.size(0), dtype=torch.bool, device=generated.device)
    for seq in sequences:
        if 0 < len(seq) <= generated.size(1):
            tail = torch.tensor(seq, device=generated.device)
            hit |= (generated[:, -len(seq) :] == tail).all(dim=-1)
    return hit


def process_logits(
    logits: Tensor,
    ids: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
) -> Tensor:
    """Repetition penalty over ids (B, T), then temperature, top-k, top-p: (B, V) -> (B, V).

    Temperature 0 only applies the repetition penalty (greedy decoding takes the argmax).
    """
    if repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, ids, repetition_penalty)
    if temperature == 0.0:
        return logits
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1.0:
        logits = top_p_filter(logits, top_p)
    return logits


def choose_next(
    logits: Tensor, temperature: float, generator: torch.Generator | None = None
) -> Tensor:
    """Next ids (B, 1) from processed logits (B, V): argmax at temperature 0, else a sample."""
    if temperature == 0.0:
        return logits.argmax(dim=-1, keepdim=True)
    return torch.multinomial(torch.softmax(logits.float(), dim=-1), 1, generator=generator)


def generate(
    model: TransformerLM,
    idx: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    stop_ids: Sequence[int] | None = None,
    stop_sequences: Sequence[Sequence[int]] | None = None,
    pad_id: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    compile: bool = False,
) -> Tensor:
    """Extend idx (B, T) by up to ``max_new_tokens`` tokens -> (B, T + n), n <= max_new_tokens.

    - ``temperature=0`` is greedy decoding; otherwise tokens are sampled (with
      ``generator`` when given) after :func:`process_logits`.
    - A row stops once it emits a token of ``stop_ids`` or its generated ids end with one of
      ``stop_sequences``; the stop token or sequence is kept. Later positions of a stopped
      row hold ``pad_id`` (default: the first stop id, else 0), and decoding ends when
      every row has stopped, as in Hugging Face's ``generate`` with ``eos_token_id``.
    - ``use_cache`` decodes with a KV cache: the same tokens for less compute. Past
      ``context_length`` tokens every step recomputes the last ``context_length`` ids
      without the cache, as the uncached path does (see :func:`next_token_logits`).
    - ``compile`` (with ``use_cache``) runs each step after the prompt as one
      ``torch.compile``-d graph over the whole preallocated cache (see
      :func:`compile_step`): far fewer kernel launches per token, after a one-off compile
      of some seconds. Greedy ids match the eager ones (logits may differ by rounding).
      Models with sliding-window or MoE layers or image placeholders decode eagerly.
    - Decoding runs under ``torch.inference_mode`` (cheaper than ``no_grad``); the ids
      returned are an ordinary tensor, fit to train on.
    """
    was_training = model.training
    model.eval()
    stops = [[i] for i in stop_ids or []] + [list(s) for s in stop_sequences or []]
    pad = pad_id if pad_id is not None else (stop_ids[0] if stop_ids else 0)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    prompt_len = idx.size(1)
    with torch.inference_mode():  # no autograd bookkeeping, not even version counters
        cache = model.new_cache(idx.size(0)) if use_cache else None
        step = compile_step(model) if compile and use_cache else None
        for _ in range(max_new_tokens):
            logits, cache = next_token_logits(model, idx, cache, step)
            logits = process_logits(logits, idx, temperature, top_k, top_p, repetition_penalty)
            next_id = choose_next(logits, temperature, generator).masked_fill(done[:, None], pad)
            idx = torch.cat((idx, next_id), dim=1)
            if stops:
                done |= ends_with_any(idx[:, prompt_len:], stops)
                if done.all():
                    break
    model.train(was_training)
    return idx.clone()  # cloned outside inference mode: an ordinary tensor
