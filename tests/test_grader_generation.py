"""The grader of the generation notebook: the source notebook gets full marks, other correct
answers too, each realistic mistake loses exactly the points it should with a message that
names it, and the grader's expected values agree with independent peers (Hugging Face's
``TopKLogitsWarper``/``TopPLogitsWarper``, brute-force enumeration of every sequence for
beam search, ``F.scaled_dot_product_attention`` on the whole sequence for the KV cache).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer (cells are graded independently).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import Check
from autograder.graders.generation import (
    BEAM_CHECKS,
    CACHE_CHECKS,
    SAMPLE_CHECKS,
    TOP_K_CHECKS,
    TOP_P_CHECKS,
    decode_step_case,
    logprob_table,
    reference_beam,
)

from .conftest import REPO
from .fixtures.generation_mistakes import (
    BEAM_MISTAKES,
    CACHE_MISTAKES,
    SAMPLE_MISTAKES,
    TOP_K_MISTAKES,
    TOP_P_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part4_training/generation.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "sample_next": SAMPLE_MISTAKES,
        "top_k_filter": TOP_K_MISTAKES,
        "top_p_filter": TOP_P_MISTAKES,
        "beam_search": BEAM_MISTAKES,
        "cached_attention": CACHE_MISTAKES,
    },
)


# --- the grader's expected values against independent peers ---------------------------------


def _warped(check: Check) -> tuple[torch.Tensor, torch.Tensor]:
    """The grader's expected filtered logits, and Hugging Face's on the same inputs."""
    transformers = pytest.importorskip("transformers")
    case = check.build()
    logits, param = case.args
    assert case.extra is not None
    flat = logits.reshape(-1, logits.size(-1))
    ids = torch.zeros(flat.size(0), 1, dtype=torch.long)
    if isinstance(param, int):
        warper = transformers.TopKLogitsWarper(param)
    else:
        warper = transformers.TopPLogitsWarper(param)
    return case.extra, warper(ids, flat).reshape(logits.shape)


@pytest.mark.parametrize("check", TOP_K_CHECKS + TOP_P_CHECKS, ids=lambda c: c.name)
def test_filters_match_hugging_face(check: Check) -> None:
    """The grader accepts Hugging Face's output (its check compares masks and values)."""
    extra, hf = _warped(check)
    assert extra(hf) is None
    assert extra(hf.masked_fill(hf.isfinite(), 0.0)) is not None  # and it is not lenient


@pytest.mark.parametrize("check", SAMPLE_CHECKS, ids=lambda c: c.name)
def test_samples_match_a_seeded_multinomial(check: Check) -> None:
    case = check.build()
    logits, tau, seed = case.args
    if tau == 0:
        peer = logits.argmax(-1)
    else:
        gen = torch.Generator().manual_seed(seed)
        peer = torch.multinomial(torch.softmax(logits.double() / tau, -1), 1, generator=gen)[:, 0]
    assert torch.equal(case.expected, peer)
    assert logits.isfinite().any(-1).all() and (logits.gather(-1, peer[:, None]) > -1e30).all()


def _brute_force(
    table: torch.Tensor, start: int, steps: int, lp: float, eos: int | None
) -> tuple[list[int], float]:
    best: tuple[list[int], float] | None = None
    seen = set()
    for seq in itertools.product(range(table.size(0)), repeat=steps):
        if eos is not None and eos in seq:
            seq = seq[: seq.index(eos) + 1]
        if seq in seen:
            continue
        seen.add(seq)
        ids = [start, *seq]
        total = sum(float(table[a, b]) for a, b in itertools.pairwise(ids))
        score = total / len(seq) ** lp
        if best is None or score > best[1]:
            best = (list(seq), score)
    assert best is not None
    return best


@pytest.mark.parametrize(("lp", "eos"), [(1.0, None), (1.0, 0), (0.0, 0), (2.0, 3), (0.5, 1)])
def test_reference_beam_with_every_sequence_kept_is_exact(lp: float, eos: int | None) -> None:
    """With as many beams as sequences, beam search (the grader's expected) is exhaustive."""
    table = logprob_table(4, seed=5, eos_id=eos, eos_boost=0.5)
    got = reference_beam(table, 2, 4, 4**4, lp, eos)
    want = _brute_force(table, 2, 4, lp, eos)
    assert got[0] == want[0] and abs(got[1] - want[1]) < 1e-5


@pytest.mark.parametrize("check", BEAM_CHECKS, ids=lambda c: c.name)
def test_beam_expected_is_a_real_hypothesis(check: Check) -> None:
    """The expected ids score, under the table, exactly the expected normalised score, and
    beam search never does worse than greedy decoding without eos."""
    case = check.build()
    table, start, steps, _ = case.args
    lp, eos = case.kwargs["length_penalty"], case.kwargs["eos_id"]
    tokens, score = case.expected
    ids = [start, *tokens]
    total = sum(float(table[a, b]) for a, b in itertools.pairwise(ids))
    assert abs(total / len(tokens) ** lp - score) < 1e-4
    assert (eos is not None and tokens[-1] == eos) or len(tokens) == steps
    if eos is None:
        greedy, last = 0.0, start
        for _ in range(steps):
            nxt = int(table[last].argmax())
            greedy, last = greedy + float(table[last, nxt]), nxt
        assert score >= greedy / steps**lp - 1e-5


@pytest.mark.parametrize("check", CACHE_CHECKS, ids=lambda c: c.name)
def test_cache_expected_matches_torch_sdpa(check: Check) -> None:
    """Rows P.. of F.scaled_dot_product_attention over the whole sequence (all queries)."""
    case = check.build()
    q, k_new, v_new, past_k, past_v = case.args
    out, k_all, v_all = case.expected
    assert torch.equal(k_all, torch.cat([past_k, k_new], 2))
    assert torch.equal(v_all, torch.cat([past_v, v_new], 2))
    p = past_k.size(2)
    q_full = torch.cat([torch.randn_like(past_k), q], 2)  # the past queries do not matter
    full = F.scaled_dot_product_attention(
        q_full.double(), k_all.double(), v_all.double(), is_causal=True
    )
    torch.testing.assert_close(out.double(), full[:, :, p:], atol=1e-5, rtol=1e-5)


def test_token_by_token_steps_chain_to_full_attention() -> None:
    """Decoding with the expected steps, token by token, rebuilds one causal attention."""
    q, k, v = (torch.cat([decode_step_case(t).args[i] for t in range(8)], 2) for i in range(3))
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    for t in range(8):
        case = decode_step_case(t)
        assert torch.equal(case.args[3], k[:, :, :t]) and torch.equal(case.args[4], v[:, :, :t])
        out, k_all, v_all = case.expected
        torch.testing.assert_close(out, full[:, :, t : t + 1], atol=1e-12, rtol=1e-12)
        assert torch.equal(k_all, k[:, :, : t + 1]) and torch.equal(v_all, v[:, :, : t + 1])
