"""Grader of the generation notebook (part4_training): logit processors, sampling, beam
search and attention with a KV cache.

Every exercise is a plain function on tensors and plain data. Expected values come from
``reference_impl``: ``top_k_filter``, ``top_p_filter``, ``apply_temperature`` and
``choose_next`` (sampling with a ``torch.Generator`` seeded by the case), ``beam_search``
run on a bigram "model" whose next-token logits are a row of the case's (V, V) table of
log-probabilities (``early_stopping="never"``: exact, so that a plain loop over every step
gives the same hypotheses), and ``scaled_dot_product_attention`` with ``is_causal`` (bottom-right
aligned: a query at position P + i sees keys 0..P + i) on the whole sequence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor, nn

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature
from coursekit import describe_difference
from reference_impl.generation import (
    apply_temperature,
    beam_search,
    choose_next,
    top_k_filter,
    top_p_filter,
)
from reference_impl.models.attention import scaled_dot_product_attention


def _randn(
    *shape: int, seed: int, scale: float = 1.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)


# --- top_k_filter ---------------------------------------------------------------------------


def same_masking(expected: Tensor) -> Callable[[Any], str | None]:
    """A test of filtered logits: the same tokens masked with -inf, the others unchanged
    (a plain comparison would find -inf - -inf = nan)."""

    def check(got: Any) -> str | None:
        if not isinstance(got, Tensor):
            return f"output: expected a tensor, got a {type(got).__name__}"
        if got.shape != expected.shape:
            return f"output: shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if got.dtype != expected.dtype:
            return f"output: dtype {got.dtype}, expected {expected.dtype}"
        masked, want = got.isneginf(), expected.isneginf()
        for wrong, what in (
            (masked & ~want, "masked a logit that should be kept"),
            (~masked & want, "kept a logit that should be masked (-inf)"),
        ):
            if wrong.any():
                index = tuple(wrong.nonzero()[0].tolist())
                return (
                    f"output: {what} ({int(wrong.sum())} of {wrong.numel()}); at index "
                    f"{index} got {got[index].item():.4g}, expected "
                    f"{expected[index].item():.4g}"
                )
        return describe_difference(
            "kept logits", got.masked_fill(want, 0.0), expected.masked_fill(want, 0.0), 0.0, 0.0
        )

    return check


def _top_k_case(logits: Tensor, k: int) -> Case:
    return Case([logits, k], None, extra=same_masking(top_k_filter(logits, k)))


TIES = torch.tensor(
    [[1.0, 3.0, 3.0, 2.0, 3.0, 0.0], [5.0, 4.0, 4.0, 4.0, -1.0, 4.0]], dtype=torch.float64
)
PARTLY_MASKED = torch.tensor(
    [[2.0, -math.inf, 0.5, -math.inf, 1.0, -math.inf]], dtype=torch.float64
)

TOP_K_CHECKS = [
    Check(
        "keeps the k largest logits of each row",
        0.5,
        lambda: _top_k_case(_randn(4, 20, seed=1, scale=2.0), 5),
        "per row, find the k-th largest value (torch.topk(...).values[..., -1:]) and set "
        "every logit below it to -inf; the kept logits keep their values",
    ),
    Check(
        "ties with the k-th largest value are all kept",
        0.5,
        lambda: _top_k_case(TIES, 2),
        "keep every logit >= the k-th largest value (mask only logits < it), as Hugging "
        "Face's TopKLogitsWarper does: scattering only the k topk indices drops ties",
    ),
    Check(
        "k larger than the vocabulary keeps everything",
        0.5,
        lambda: _top_k_case(torch.cat([_randn(3, 7, seed=2), _randn(3, 7, seed=3)]), 12),
        "torch.topk fails for k > V: use min(k, logits.size(-1))",
    ),
    Check(
        "k = 1 keeps only the largest logit",
        0.5,
        lambda: _top_k_case(_randn(5, 9, seed=4, scale=3.0), 1),
        "with k = 1 the k-th largest value is the maximum of the row",
    ),
    Check(
        "any leading shape (..., V), masked with -inf",
        0.5,
        lambda: _top_k_case(_randn(2, 3, 11, seed=5), 4),
        "work on the last dimension (dim=-1, keep it with [..., -1:]) and fill with "
        "-math.inf (not 0, not a large negative number)",
    ),
    Check(
        "logits already at -inf stay -inf, float32 stays float32",
        0.5,
        lambda: _top_k_case(PARTLY_MASKED.float(), 4),
        "masked_fill keeps the dtype; a row with fewer than k finite logits keeps them all",
    ),
]


# --- top_p_filter ---------------------------------------------------------------------------


def _top_p_case(logits: Tensor, p: float) -> Case:
    return Case([logits, p], None, extra=same_masking(top_p_filter(logits, p)))


def _logits_of(probs: list[float], order: list[int] | None = None) -> Tensor:
    x = torch.tensor([probs], dtype=torch.float64).log()
    return x if order is None else x[:, order]


TOP_P_CHECKS = [
    Check(
        "random rows, p = 0.9",
        0.5,
        lambda: _top_p_case(_randn(4, 30, seed=11, scale=2.0), 0.9),
        "sort descending, softmax, cumulative sum; keep a token when the tokens ranked "
        "above it hold less than p; scatter the mask back to vocabulary order",
    ),
    Check(
        "the token that crosses p is kept",
        0.5,
        lambda: _top_p_case(_logits_of([0.5, 0.3, 0.15, 0.05]), 0.7),
        "0.5 < 0.7 <= 0.5 + 0.3: keep the first two. Keep the token whose cumulative "
        "probability first reaches p (compare the mass BEFORE each token with p)",
    ),
    Check(
        "a tiny p keeps exactly the most likely token",
        0.5,
        lambda: _top_p_case(_randn(3, 16, seed=12), 1e-6),
        "at least one token must survive: the most likely one always stays",
    ),
    Check(
        "vocabulary order: the mask goes back to the right tokens",
        0.5,
        lambda: _top_p_case(
            _logits_of(
                [0.05, 0.15, 0.5, 0.01, 0.3, 0.04, 0.05, 0.1, 0.05, 0.05],
                [3, 0, 5, 1, 9, 2, 6, 4, 8, 7],
            ),
            0.8,
        ),
        "the mask is computed in sorted order: scatter it back with the sort's indices "
        "(mask.scatter(-1, order, mask)) before applying it to the logits",
    ),
    Check(
        "any leading shape (..., V)",
        0.5,
        lambda: _top_p_case(_randn(2, 3, 12, seed=13, scale=1.5), 0.6),
        "sort, softmax, cumsum and scatter along dim=-1",
    ),
    Check(
        "large logits (softmax, not exp / sum)",
        0.5,
        lambda: _top_p_case(_randn(3, 20, seed=14, scale=800.0), 0.95),
        "use torch.softmax: exp of logits in the hundreds overflows to inf",
    ),
]


# --- sample_next ----------------------------------------------------------------------------


def _sample_case(logits: Tensor, temperature: float, seed: int) -> Case:
    if temperature == 0.0:
        expected = choose_next(logits, 0.0)
    else:
        gen = torch.Generator().manual_seed(seed)
        expected = choose_next(apply_temperature(logits, temperature), temperature, gen)
    return Case([logits, temperature, seed], expected[:, 0], atol=0.0, rtol=0.0)


def _masked_logits() -> Tensor:
    return top_k_filter(_randn(8, 40, seed=25, scale=2.0, dtype=torch.float32), 3)


SAMPLE_CHECKS = [
    Check(
        "temperature 0 is greedy: the argmax of each row",
        0.5,
        lambda: _sample_case(_randn(6, 30, seed=21, dtype=torch.float32), 0.0, 0),
        "at temperature 0 return logits.argmax(dim=-1); do not divide by 0",
    ),
    Check(
        "temperature 1: a seeded sample per row",
        0.5,
        lambda: _sample_case(_randn(8, 12, seed=22, dtype=torch.float32), 1.0, 7),
        "probs = torch.softmax(logits / temperature, dim=-1); then one "
        "torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(seed)) for "
        "the whole batch, and return shape (B,)",
    ),
    Check(
        "temperature 0.5 sharpens",
        0.5,
        lambda: _sample_case(_randn(16, 10, seed=23, dtype=torch.float32), 0.5, 3),
        "divide the logits by the temperature (do not multiply)",
    ),
    Check(
        "temperature 2 flattens",
        0.5,
        lambda: _sample_case(_randn(16, 10, seed=24, dtype=torch.float32), 2.0, 11),
        "divide the logits by the temperature (do not multiply)",
    ),
    Check(
        "tokens masked with -inf are never drawn",
        0.5,
        lambda: _sample_case(_masked_logits(), 0.8, 5),
        "softmax gives -inf logits probability 0; draw from the softmax, not from the logits",
    ),
    Check(
        "large logits (softmax, not exp / sum)",
        0.5,
        lambda: _sample_case(_randn(6, 20, seed=26, scale=300.0, dtype=torch.float32), 0.7, 2),
        "use torch.softmax: exp of logits in the hundreds overflows to inf",
    ),
]


# --- beam_search ----------------------------------------------------------------------------


class _BigramLM(nn.Module):
    """A "model" whose next-token logits depend only on the last token: row ``table[last]``."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = table
        self.config = SimpleNamespace(context_length=1 << 20)

    def forward(self, idx: Tensor, cache: Any = None) -> Tensor:
        return self.table[idx]


def reference_beam(
    table: Tensor,
    start_id: int,
    steps: int,
    num_beams: int,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
) -> tuple[list[int], float]:
    """The reference's best hypothesis (generated ids, eos included) and its score."""
    model: Any = _BigramLM(table)  # the reference needs only forward(ids) and .config
    out = beam_search(
        model,
        torch.tensor([[start_id]]),
        steps,
        num_beams,
        length_penalty=length_penalty,
        early_stopping="never",
        eos_id=eos_id,
        use_cache=False,
        return_all=True,
    )
    assert isinstance(out, tuple)
    seqs, scores = out
    tokens = seqs[0, 0, 1:].tolist()
    if eos_id is not None and eos_id in tokens:
        tokens = tokens[: tokens.index(eos_id) + 1]
    return tokens, float(scores[0, 0])


def logprob_table(
    vocab: int, seed: int, scale: float = 2.0, eos_id: int | None = None, eos_boost: float = 0.0
) -> Tensor:
    """A random (V, V) table of next-token log-probabilities (rows sum to 1 in probability)."""
    logits = _randn(vocab, vocab, seed=seed, scale=scale)
    if eos_id is not None:
        logits[:, eos_id] += eos_boost
        logits[eos_id] = 0.0  # (never used: a finished hypothesis does not expand)
    return torch.log_softmax(logits, dim=-1).float()


def _beam_case(
    table: Tensor,
    start_id: int,
    steps: int,
    num_beams: int,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
) -> Case:
    expected = reference_beam(table, start_id, steps, num_beams, length_penalty, eos_id)
    return Case(
        [table, start_id, steps, num_beams],
        expected,
        {"length_penalty": length_penalty, "eos_id": eos_id},
        atol=1e-4,
        rtol=1e-5,
    )


BEAM_CHECKS = [
    Check(
        "one beam is greedy decoding",
        0.5,
        lambda: _beam_case(logprob_table(10, seed=31), 0, 6, 1),
        "each step: extend every live beam by every token, score = beam score + "
        "logprobs[last token, token], keep the best; with num_beams = 1 that is greedy",
    ),
    Check(
        "three beams, no eos: the best sequence of all steps",
        0.5,
        lambda: _beam_case(logprob_table(12, seed=32, scale=1.5), 3, 8, 3),
        "keep the num_beams best candidates of ALL beams together (not the best per beam); "
        "return (list of generated ids, score / length ** length_penalty)",
    ),
    Check(
        "eos ends a hypothesis; scores normalised by length",
        1.0,
        lambda: _beam_case(logprob_table(10, seed=33, eos_id=0, eos_boost=1.5), 4, 10, 3, 1.0, 0),
        "a candidate that ends in eos_id and ranks in the top num_beams is finished, "
        "scored sum / len ** length_penalty (len = generated ids, eos included)",
    ),
    Check(
        "length_penalty 0: plain sums of log-probs",
        0.5,
        lambda: _beam_case(logprob_table(10, seed=34, eos_id=1, eos_boost=1.0), 2, 9, 4, 0.0, 1),
        "length ** 0 = 1: the score is the summed log-probability",
    ),
    Check(
        "length_penalty 2: finished beams do not expand",
        0.5,
        lambda: _beam_case(logprob_table(10, seed=36, eos_id=9, eos_boost=3.0), 5, 12, 3, 2.0, 9),
        "a finished hypothesis leaves the beam: the num_beams live beams are the best "
        "candidates that did NOT end in eos (look at the 2 * num_beams best candidates)",
    ),
    Check(
        "60 steps: summed log-probs, no underflow",
        1.0,
        lambda: _beam_case(logprob_table(30, seed=36, scale=1.0), 7, 60, 2),
        "add log-probabilities; multiplying probabilities underflows to 0 after a few "
        "dozen tokens and every beam ties",
    ),
]


# --- attend_with_cache ----------------------------------------------------------------------


def _cache_case(
    b: int,
    h: int,
    past: int,
    new: int,
    d: int,
    seed: int,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> Case:
    q = _randn(b, h, new, d, seed=seed, scale=scale, dtype=dtype)
    k = _randn(b, h, past + new, d, seed=seed + 1, scale=scale, dtype=dtype)
    v = _randn(b, h, past + new, d, seed=seed + 2, dtype=dtype)
    out = scaled_dot_product_attention(q, k, v, is_causal=True)  # bottom-right aligned
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    return Case(
        [q, k[:, :, past:], v[:, :, past:], k[:, :, :past], v[:, :, :past]],
        (out, k, v),
        atol=tol,
        rtol=tol,
    )


def decode_step_case(t: int, length: int = 8) -> Case:
    """Step t of a token-by-token decode of one ``length``-token sequence: token t's query,
    key and value, and the cache of tokens 0..t-1; the answer is row t of full causal
    attention over the whole sequence."""
    q, k, v = (_randn(2, 2, length, 8, seed=47 + i) for i in range(3))
    full = scaled_dot_product_attention(q, k, v, is_causal=True)
    now = slice(t, t + 1)
    return Case(
        [q[:, :, now], k[:, :, now], v[:, :, now], k[:, :, :t], v[:, :, :t]],
        (full[:, :, now], k[:, :, : t + 1], v[:, :, : t + 1]),
        atol=1e-10,
        rtol=1e-10,
    )


CACHE_CHECKS = [
    Check(
        "one new token attends to every cached key",
        0.5,
        lambda: _cache_case(2, 3, 5, 1, 8, seed=41),
        "the new query sits after the P cached tokens: it sees all P + 1 keys; no mask "
        "is needed for one query (is_causal=True in F.scaled_dot_product_attention "
        "aligns top-left and would hide the past)",
    ),
    Check(
        "keys and values appended along the sequence (dim 2)",
        0.5,
        lambda: _cache_case(3, 2, 4, 1, 6, seed=42),
        "k_all = torch.cat([past_k, k_new], dim=2): shapes are (B, H, T, D), the sequence "
        "is dim 2 (dim=1 is the heads)",
    ),
    Check(
        "an empty cache (P = 0)",
        0.5,
        lambda: _cache_case(2, 2, 0, 1, 8, seed=43),
        "past_k, past_v of shape (B, H, 0, D) hold nothing: the token attends to itself",
    ),
    Check(
        "several new tokens: causal among themselves",
        0.5,
        lambda: _cache_case(2, 2, 3, 4, 8, seed=44),
        "new query i sits at position P + i: it sees keys 0..P + i, not the later new "
        "ones (mask scores with a (T, P + T) lower triangle shifted by P: tril(diagonal=P))",
    ),
    Check(
        "a whole prompt at once equals causal attention",
        0.5,
        lambda: _cache_case(1, 4, 0, 6, 8, seed=45),
        "with an empty cache this is plain causal self-attention",
    ),
    Check(
        "scaled by 1 / sqrt(head_dim)",
        0.5,
        lambda: _cache_case(2, 2, 6, 1, 64, seed=46),
        "scores = q @ k_all.transpose(-2, -1) / math.sqrt(D)",
    ),
    Check(
        "token-by-token decoding: step 7 equals full causal attention",
        0.5,
        lambda: decode_step_case(7),
        "the output for the new token must equal the last row of causal attention over "
        "the whole sequence",
    ),
    Check(
        "large scores in float32 stay finite",
        0.5,
        lambda: _cache_case(2, 2, 5, 2, 16, seed=48, scale=12.0, dtype=torch.float32),
        "use torch.softmax (or F.scaled_dot_product_attention): exp of scores in the "
        "hundreds overflows",
    ),
]


ITEMS: dict[str, Item] = {
    "generation.top_k_filter": Item(
        "top_k_filter",
        TOP_K_CHECKS,
        Signature("logits, k", shapes={"logits": "(*L, V)", "return": "(*L, V)"}),
    ),
    "generation.top_p_filter": Item(
        "top_p_filter",
        TOP_P_CHECKS,
        Signature("logits, p", shapes={"logits": "(*L, V)", "return": "(*L, V)"}),
    ),
    "generation.sample_next": Item(
        "sample_next",
        SAMPLE_CHECKS,
        Signature("logits, temperature, seed", shapes={"logits": "(B, V)", "return": "(B,)"}),
    ),
    "generation.beam_search": Item(
        "beam_search",
        BEAM_CHECKS,
        Signature(
            "logprobs, start_id, steps, num_beams, length_penalty=1.0, eos_id=None",
            shapes={"logprobs": "(V, V)"},
        ),
    ),
    "generation.cached_attention": Item(
        "attend_with_cache",
        CACHE_CHECKS,
        Signature(
            "q, k_new, v_new, past_k, past_v",
            shapes={
                "q": "(B, H, T, d)",
                "k_new": "(B, H, T, d)",
                "v_new": "(B, H, T, d)",
                "past_k": "(B, H, P, d)",
                "past_v": "(B, H, P, d)",
                "return[0]": "(B, H, T, d)",
                "return[1]": "(B, H, P + T, d)",
                "return[2]": "(B, H, P + T, d)",
            },
        ),
    ),
}
