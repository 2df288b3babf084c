"""Grader of the mini-gemini notebook "train, evaluate, chat" (part5_integration): the
sliding-window KV cache, the training loss with the load-balancing term, perplexity over
non-overlapping windows and greedy generation with caches and a stop token.

Three exercises use objects that cannot cross into the sandbox (a cache object, a model),
so the notebook's locked setup cell gives a small driver for each, called with plain data:
``decode_in_chunks`` feeds keys chunk by chunk to the student's ``SlidingWindowCache`` and
attends with the positions it returns (as the model does), ``perplexity_of_tiny_model`` and
``generate_with_tiny_model`` call the student's function on ``coursekit.gemini.tiny_gemini``
in float64. Expected values come from ``reference_impl``: full attention with
``window_mask`` over the whole sequence, ``F.cross_entropy`` plus ``coef * aux`` (the
trainer's formula), and :class:`~reference_impl.models.TransformerLM` carrying the tiny
model's weights (:func:`reference_model`) for the token NLLs and for ``generate``
(greedy, ``stop_ids``, the stop token kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from autograder.checks import Case, Check, describe_plain_difference
from autograder.graders.base import Item, Signature, grad_case, seeded_randn
from coursekit import describe_difference
from coursekit.gemini import GeminiConfig, MiniGemini, tiny_gemini
from reference_impl.generation import generate as reference_generate
from reference_impl.models import ModelConfig, TransformerLM
from reference_impl.models.attention import scaled_dot_product_attention, window_mask


def reference_config(c: GeminiConfig) -> ModelConfig:
    """The reference's config of the same architecture as ``c``."""
    return ModelConfig(
        vocab_size=c.vocab_size,
        context_length=c.context_length,
        d_model=c.d_model,
        n_heads=c.n_heads,
        n_kv_heads=c.n_kv_heads,
        head_dim=c.head_dim,
        n_layers=c.n_layers,
        d_ff=c.d_ff,
        ffn_kind="geglu",
        gelu_approximate="tanh",
        norm_kind="rmsnorm",
        norm_eps=c.norm_eps,
        pos_kind="rope",
        rope_theta=c.rope_theta,
        rope_local_theta=c.rope_local_theta,
        attn_pattern=c.attn_pattern,
        sliding_window=c.window,
        query_pre_attn_scalar=c.query_pre_attn_scalar,
        attn_softcap=c.attn_softcap,
        final_softcap=c.final_softcap,
        qk_norm=True,
        sandwich_norm=True,
        embed_scale=True,
        ffn_pattern=c.ffn_pattern,
        moe_num_experts=c.num_experts,
        moe_top_k=c.top_k,
        bias=False,
        tie_weights=True,
        dropout=0.0,
        attn_impl="manual",
    )


def reference_model(model: MiniGemini) -> TransformerLM:
    """A reference TransformerLM holding ``model``'s weights, in its dtype: the names are
    the same, and a Gemma norm weight w (scaling by 1 + w) becomes 1 + w."""
    ref = TransformerLM(reference_config(model.config))
    state = {}
    for name, value in model.state_dict().items():
        is_norm = name.endswith("norm.weight") or name == "norm_f.weight"
        state[name] = value + 1.0 if is_norm else value
    ref.load_state_dict(state)
    return ref.to(model.tok_emb.weight.dtype).eval()


def _tokens(seed: int, n: int, vocab: int = 64) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n,), generator=g).tolist()


# --- SlidingWindowCache (through decode_in_chunks) ------------------------------------------


def windowed_attention(q: Tensor, k: Tensor, v: Tensor, window: int) -> Tensor:
    """Full attention of q (B, H, T, D) over k, v (B, Hkv, T, D): query i sees keys
    i - window < j <= i (the reference's window mask)."""
    pos = torch.arange(q.size(2))
    return scaled_dot_product_attention(q, k, v, attn_mask=window_mask(pos, pos, window))


def _outputs_match(expected: Tensor) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        if not isinstance(got, tuple) or len(got) != 2:
            return "decode_in_chunks returned something else than (outputs, keys held)"
        return describe_difference(
            "attention outputs decoded with your cache", got[0], expected, 1e-10, 1e-10
        )

    return check


def _held_is(window: int, outputs: Tensor | None = None) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        if not isinstance(got, tuple) or len(got) != 2:
            return "decode_in_chunks returned something else than (outputs, keys held)"
        if outputs is not None:
            problem = _outputs_match(outputs)(got)
            if problem:
                return problem
        if got[1] != window - 1:
            return (
                f"memory: the cache held up to {got[1]} keys (self.k.size(2)); a window of "
                f"{window} needs only the last {window - 1}"
            )
        return None

    return check


def _cache_case(
    window: int,
    chunks: list[int],
    seed: int,
    heads: tuple[int, int] = (2, 2),
    memory: bool = False,
    both: bool = False,
) -> Case:
    t, (h, hkv) = sum(chunks), heads
    q = seeded_randn(seed, 2, h, t, 8)
    k = seeded_randn(seed + 1, 2, hkv, t, 8)
    v = seeded_randn(seed + 2, 2, hkv, t, 8)
    out = windowed_attention(q, k, v, window)
    check = _held_is(window, out if both else None) if memory or both else _outputs_match(out)
    return Case([window, q, k, v, chunks], None, extra=check)


CACHE_CHECKS = [
    Check(
        "one token at a time equals windowed attention over the whole sequence",
        0.5,
        lambda: _cache_case(4, [1] * 10, seed=1),
        "update must return the buffered keys AND the new ones (before dropping the oldest), "
        "with their absolute positions; the window keeps keys j with i - W < j <= i",
    ),
    Check(
        "a prompt in one chunk, then one token at a time",
        0.5,
        lambda: _cache_case(5, [6, 1, 1, 1, 1], seed=2),
        "new tokens sit at positions self.length .. self.length + T - 1; add T to "
        "self.length after each update",
    ),
    Check(
        "chunks longer than the window (T > W)",
        1.0,
        lambda: _cache_case(4, [7, 5, 2], seed=3, heads=(4, 2)),
        "return ALL T new keys (the chunk's first queries need them); keep only the last "
        "window - 1 of buffer + new for later",
    ),
    Check(
        "chunks of two wrap around the buffer",
        0.5,
        lambda: _cache_case(6, [2] * 9, seed=4),
        "positions must be absolute (0, 1, 2, ... over the whole text), not indices into "
        "the returned keys: the model builds its mask from them",
    ),
    Check(
        "window 1: each token sees only itself, the cache keeps nothing",
        0.5,
        lambda: _cache_case(1, [1, 1, 3, 1], seed=5, both=True),
        "window - 1 = 0 slots; careful, x[:, :, -0:] is the WHOLE tensor in Python",
    ),
    Check(
        "memory stays window - 1 keys while decoding",
        0.5,
        lambda: _cache_case(5, [1] * 12, seed=6, memory=True),
        "keep the last window - 1 keys only (self.k of shape (B, Hkv, window - 1, D)): the "
        "query at position p needs keys p - W + 1 .. p, and key p arrives with it",
    ),
    Check(
        "memory stays window - 1 keys after long chunks",
        0.5,
        lambda: _cache_case(4, [9, 6], seed=7, memory=True),
        "after a chunk of T > window - 1 tokens keep only its last window - 1 keys",
    ),
]


# --- total_loss -----------------------------------------------------------------------------


def expected_total_loss(logits: Tensor, targets: Tensor, aux: Tensor, coef: float) -> Tensor:
    """The trainer's loss: mean next-token cross-entropy (ignoring -100) + coef * aux."""
    v = logits.size(-1)
    return F.cross_entropy(logits.reshape(-1, v), targets.reshape(-1)) + coef * aux


def _loss_case(
    seed: int,
    coef: float,
    shape: tuple[int, int, int] = (2, 5, 7),
    scale: float = 2.0,
    pad: int = 0,
    dtype: torch.dtype = torch.float64,
    grad: bool = False,
) -> Case:
    b, t, v = shape
    logits = seeded_randn(seed, b, t, v, scale=scale).to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    targets = torch.randint(0, v, (b, t), generator=g)
    if pad:
        targets[:, -pad:] = -100
    aux = (1.0 + seeded_randn(seed + 2).abs()).to(dtype)
    args: list[object] = [logits, targets, aux, coef]
    if grad:
        return grad_case(expected_total_loss, args, (0, 2), seed)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    return Case(args, expected_total_loss(logits, targets, aux, coef), atol=tol, rtol=tol)


LOSS_CHECKS = [
    Check(
        "cross-entropy plus coef times the aux loss",
        0.5,
        lambda: _loss_case(11, 0.01),
        "total = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)) + coef * aux_loss",
    ),
    Check(
        "gradients reach the logits and the aux loss",
        0.5,
        lambda: _loss_case(12, 0.1, grad=True),
        "keep aux_loss a tensor (no .item(), no float()): the router learns to balance "
        "only through its gradient",
    ),
    Check(
        "coef 0 is the plain next-token loss (mean over all B * T tokens)",
        0.5,
        lambda: _loss_case(13, 0.0, shape=(3, 4, 9)),
        "average over every token of every sequence (reduction 'mean', not 'sum')",
    ),
    Check(
        "coef 0.5: the aux loss is scaled by coef, not added as it is",
        0.5,
        lambda: _loss_case(14, 0.5),
        "multiply the aux loss by coef before adding it",
    ),
    Check(
        "targets equal to -100 (padding) count for nothing",
        0.5,
        lambda: _loss_case(15, 0.01, pad=2),
        "F.cross_entropy ignores -100 by default (ignore_index); a hand-written gather "
        "would index with -100",
    ),
    Check(
        "large float32 logits: softmax over the vocabulary, stably",
        0.5,
        lambda: _loss_case(16, 0.01, shape=(2, 6, 11), scale=60.0, dtype=torch.float32),
        "use F.cross_entropy (or log_softmax over the LAST dim): exp of logits in the "
        "hundreds overflows, and the vocabulary is the last dimension of (B, T, V)",
    ),
]


# --- perplexity (through perplexity_of_tiny_model) ------------------------------------------


def expected_perplexity(seed: int, ids: Tensor, block_size: int) -> float:
    """exp of the mean NLL of tokens 1..N-1, each predicted once from the tokens before it
    in its window (windows of block_size inputs), from the reference's logits in float64."""
    ref = reference_model(tiny_gemini(seed).double())
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, ids.numel() - 1, block_size):
            y = ids[start + 1 : start + block_size + 1]
            x = ids[start : start + y.numel()]
            logits = ref(x[None])[0]
            total += float(F.cross_entropy(logits, y, reduction="sum"))
            count += y.numel()
    return float(torch.tensor(total / count, dtype=torch.float64).exp())


def _ppl_case(seed: int, n: int, block_size: int) -> Case:
    ids = torch.tensor(_tokens(seed + 50, n))
    return Case([seed, ids, block_size], expected_perplexity(seed, ids, block_size), atol=1e-8)


PPL_CHECKS = [
    Check(
        "one window: exp of the mean NLL of tokens 1..N-1",
        0.5,
        lambda: _ppl_case(21, 17, 16),
        "inputs ids[i : i + block_size], targets shifted by one, ids[i + 1 : i + block_size "
        "+ 1]; perplexity = exp(total NLL / number of predicted tokens); return a float",
    ),
    Check(
        "several windows",
        0.5,
        lambda: _ppl_case(22, 37, 12),
        "step the windows by block_size so that every token is predicted exactly once",
    ),
    Check(
        "a shorter last window: a mean over tokens, not over windows",
        0.5,
        lambda: _ppl_case(23, 30, 12),
        "sum the NLL of every token (reduction='sum') and divide by the number of tokens "
        "at the end; the mean of window means gives the short window too much weight",
    ),
    Check(
        "block_size longer than the text",
        0.5,
        lambda: _ppl_case(24, 10, 40),
        "one window of N - 1 predictions; range(0, len(ids) - 1, block_size) always has it",
    ),
    Check(
        "block_size 1: each token predicted from the one before",
        0.5,
        lambda: _ppl_case(25, 12, 1),
        "windows of one input token; the model sees nothing before it",
    ),
    Check(
        "a uniform model would score near the vocabulary size",
        0.5,
        lambda: _ppl_case(26, 45, 44),
        "perplexity = exp(mean NLL), not exp of the sum, nor the mean NLL itself",
    ),
]


# --- generate (through generate_with_tiny_model) --------------------------------------------


def expected_generation(
    seed: int, prompt: list[int], max_new_tokens: int, stop_id: int | None
) -> list[int]:
    """The reference's greedy continuation (the stop token kept) on the tiny model."""
    if max_new_tokens == 0:
        return []
    ref = reference_model(tiny_gemini(seed).double())
    out = reference_generate(
        ref,
        torch.tensor([prompt]),
        max_new_tokens,
        temperature=0.0,
        stop_ids=None if stop_id is None else [stop_id],
        use_cache=False,
    )
    return [int(i) for i in out[0, len(prompt) :].tolist()]


def _generation_matches(expected: list[int]) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        if not isinstance(got, tuple) or len(got) != 2:
            return "generate_with_tiny_model returned something else than (ids, tokens fed)"
        return describe_plain_difference("generated ids", got[0], expected)

    return check


def _feeds_once(prompt_len: int, expected: list[int]) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        problem = _generation_matches(expected)(got)
        if problem:
            return problem
        most = prompt_len + len(expected)
        if not isinstance(got[1], int) or got[1] > most:
            return (
                f"the model was fed {got[1]} tokens in all for a {prompt_len}-token prompt and "
                f"{len(expected)} new tokens: with caches, at most {most} (the prompt once, "
                "then each new token once)"
            )
        return None

    return check


def _gen_case(
    seed: int,
    prompt: list[int],
    max_new: int,
    stop: int | str | None = None,
    stop_at: int | None = None,
    feeds: bool = False,
) -> Case:
    if stop_at is not None:  # the token greedy decoding emits at step stop_at
        stop = expected_generation(seed, prompt, stop_at + 1, None)[stop_at]
    elif stop == "unused":  # a token greedy decoding never emits
        free = set(range(64)) - set(expected_generation(seed, prompt, max_new, None))
        stop = min(free)
    stop_id = None if isinstance(stop, str) else stop
    expected = expected_generation(seed, prompt, max_new, stop_id)
    extra = _feeds_once(len(prompt), expected) if feeds else _generation_matches(expected)
    return Case([seed, prompt, max_new, stop_id], None, extra=extra)


GENERATE_CHECKS = [
    Check(
        "greedy continuation of a one-token prompt",
        0.5,
        lambda: _gen_case(31, [5], 10),
        "run the prompt through the model with the caches, take the argmax of the LAST "
        "position's logits, then feed only that token, and repeat; return a list of ints",
    ),
    Check(
        "a longer prompt: continue after its last token",
        0.5,
        lambda: _gen_case(32, _tokens(32, 8), 12),
        "the next token comes from logits[0, -1] (the prompt's last position), not [0, 0]",
    ),
    Check(
        "stops at the stop token and keeps it",
        0.5,
        lambda: _gen_case(33, _tokens(33, 3), 15, stop_at=3),
        "append the token first, then stop if it is stop_id (the stop token ends the list)",
    ),
    Check(
        "the stop token as the very first new token",
        0.5,
        lambda: _gen_case(34, _tokens(34, 4), 10, stop_at=0),
        "check for stop_id after every new token, the first one included",
    ),
    Check(
        "a stop token never emitted: exactly max_new_tokens tokens",
        0.5,
        lambda: _gen_case(35, _tokens(35, 2), 9, stop="unused"),
        "generate until max_new_tokens tokens unless stop_id appears",
    ),
    Check(
        "past the sliding window: every token at its own position",
        0.5,
        lambda: _gen_case(36, _tokens(36, 4), 14),
        "with caches feed only the new token: the caches know the positions (cache.length); "
        "feeding the whole sequence again puts it at the wrong positions",
    ),
    Check(
        "uses the caches: each token goes through the model once",
        0.5,
        lambda: _gen_case(37, _tokens(37, 5), 12, feeds=True),
        "after the prompt, call model(next_token[None, None]-like (1, 1) ids, caches=caches) "
        "instead of recomputing the whole sequence",
    ),
    Check(
        "max_new_tokens 0 gives no tokens",
        0.5,
        lambda: _gen_case(38, [1, 2, 3], 0),
        "return an empty list when there is nothing to generate",
    ),
]


ITEMS: dict[str, Item] = {
    "train_and_chat.sliding_cache": Item(
        "decode_in_chunks",
        CACHE_CHECKS,
        Signature(
            "window, q, k, v, chunks",
            shapes={"q": "(B, H, T, d)", "k": "(B, Hkv, T, d)", "v": "(B, Hkv, T, d)"},
        ),
    ),
    "train_and_chat.total_loss": Item(
        "total_loss",
        LOSS_CHECKS,
        Signature(
            "logits, targets, aux_loss, coef",
            shapes={
                "logits": "(B, T, V)",
                "targets": "(B, T)",
                "aux_loss": "()",
                "return": "()",
            },
        ),
    ),
    "train_and_chat.perplexity": Item(
        "perplexity_of_tiny_model",
        PPL_CHECKS,
        Signature("seed, ids, block_size", shapes={"ids": "(N,)"}),
    ),
    "train_and_chat.generate": Item(
        "generate_with_tiny_model",
        GENERATE_CHECKS,
        Signature("seed, prompt_ids, max_new_tokens, stop_id=None"),
    ),
}
