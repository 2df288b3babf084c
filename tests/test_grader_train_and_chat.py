"""The grader of the mini-gemini "train, evaluate, chat" notebook: the source notebook gets
full marks, other correct answers too, each realistic mistake loses exactly the points it
should with a message that names it, and the grader's expected values agree with
independent peers (the reference's ring-buffer ``SlidingKVCache`` fed chunk by chunk, a
by-hand log-softmax loss, the given ``MiniGemini`` itself in float64 for perplexity and
greedy decoding without a cache).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer (cells are graded independently).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Check
from autograder.graders.train_and_chat import (
    CACHE_CHECKS,
    GENERATE_CHECKS,
    LOSS_CHECKS,
    PPL_CHECKS,
    expected_generation,
)
from coursekit.gemini import attend, tiny_gemini
from reference_impl.models import SlidingKVCache
from reference_impl.models.attention import scaled_dot_product_attention, window_mask

from .conftest import REPO
from .fixtures.train_and_chat_mistakes import (
    CACHE_MISTAKES,
    GENERATE_MISTAKES,
    LOSS_MISTAKES,
    PPL_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part5_integration/train_and_chat.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "total_loss": LOSS_MISTAKES,
        "perplexity": PPL_MISTAKES,
        "sliding_cache": CACHE_MISTAKES,
        "generate": GENERATE_MISTAKES,
    },
)


# --- the grader's expected values against independent peers ---------------------------------


@pytest.mark.parametrize("check", CACHE_CHECKS, ids=lambda c: c.name)
def test_cache_expected_matches_the_reference_ring_buffer(check: Check) -> None:
    """Decoding through the reference's SlidingKVCache, chunk by chunk, gives the outputs the
    grader expects; and the given ``attend`` agrees on the whole sequence."""
    case = check.build()
    window, q, k, v, chunks = case.args
    b, hkv, _, d = k.shape
    cache = SlidingKVCache(
        torch.zeros(b, hkv, window - 1, d, dtype=k.dtype),
        torch.zeros(b, hkv, window - 1, d, dtype=k.dtype),
    )
    outputs, start = [], 0
    for n in chunks:
        q_pos = torch.arange(start, start + n)
        keys, values, k_pos = cache.update(k[:, :, start : start + n], v[:, :, start : start + n])
        mask = window_mask(q_pos, k_pos, window)
        outputs.append(scaled_dot_product_attention(q[:, :, start : start + n], keys, values, mask))
        start += n
    decoded = torch.cat(outputs, dim=2)
    assert case.extra is not None and case.extra((decoded, window - 1)) is None
    assert case.extra((decoded + 1e-6, window - 1)) is not None or "memory" in check.name
    pos = torch.arange(q.size(2))
    torch.testing.assert_close(attend(q, k, v, pos, pos, window)[0], decoded)


@pytest.mark.parametrize("check", LOSS_CHECKS, ids=lambda c: c.name)
def test_loss_expected_matches_a_loss_by_hand(check: Check) -> None:
    case = check.build()
    logits, targets, aux, coef = case.args
    logp = torch.log_softmax(logits.double(), dim=-1)
    keep = targets != -100
    nll = -logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0][keep].mean()
    want = nll + coef * aux.double()
    assert abs(float(case.expected) - float(want)) < 1e-4 * max(1.0, abs(float(want)))


@pytest.mark.parametrize("check", PPL_CHECKS, ids=lambda c: c.name)
def test_perplexity_expected_matches_the_given_model(check: Check) -> None:
    """The expected value (from the reference model carrying the tiny model's weights)
    equals the perplexity computed with ``MiniGemini`` itself, one token at a time."""
    case = check.build()
    seed, ids, block = case.args
    model = tiny_gemini(seed).double()
    nll = 0.0
    with torch.no_grad():
        for t in range(1, len(ids)):
            start = (t - 1) // block * block
            logits = model(ids[None, start:t])[0, -1]
            nll -= float(torch.log_softmax(logits, -1)[ids[t]])
    assert math.isclose(case.expected, math.exp(nll / (len(ids) - 1)), rel_tol=1e-5)


@pytest.mark.parametrize("check", GENERATE_CHECKS, ids=lambda c: c.name)
def test_generation_expected_is_greedy_decoding_of_the_given_model(check: Check) -> None:
    case = check.build()
    seed, prompt, max_new, stop = case.args
    model = tiny_gemini(seed).double()
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(torch.tensor([ids]))[0, -1]
            top2 = logits.topk(2).values
            assert float(top2[0] - top2[1]) > 1e-6  # no near-tie that rounding could flip
            ids.append(int(logits.argmax()))
            if ids[-1] == stop:
                break
    assert expected_generation(seed, prompt, max_new, stop) == ids[len(prompt) :]
    assert case.extra is not None and case.extra((ids[len(prompt) :], len(ids))) is None


def test_the_stop_checks_really_stop() -> None:
    stops = [c for c in GENERATE_CHECKS if "stop token" in c.name]
    for check in stops:
        seed, prompt, max_new, stop = check.build().args
        ids = expected_generation(seed, prompt, max_new, stop)
        assert ("never" in check.name) == (stop not in ids)
        assert "never" in check.name or (ids[-1] == stop and len(ids) < max_new)


def test_loss_gradient_check_needs_the_aux_gradient() -> None:
    case = next(c for c in LOSS_CHECKS if "gradient" in c.name).build()
    assert case.grad_args == (0, 2)
    assert case.expected_grads[1] is not None and float(case.expected_grads[1].abs()) > 0
    logits, targets = case.args[0], case.args[1]
    assert F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1)).dim() == 0
