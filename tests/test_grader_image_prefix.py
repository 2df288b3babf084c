"""The grader of the mini-gemini "image prefix" notebook: the source notebook gets full marks,
other correct answers too, each realistic mistake loses exactly the points it should with a
message that names it, and the grader's expected values agree with independent peers (the
rules written out token by token; ``coursekit``'s ``MiniGemini`` attending where the mask
allows; transformers' Gemma 3 placeholder merge).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer (cells are graded independently).
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder.checks import Check
from autograder.graders.image_prefix import (
    BLOCK_CHECKS,
    EMBED_CHECKS,
    IMAGE_ID,
    MASK_CHECKS,
    expected_mask,
    layout_ids,
)
from coursekit.gemini import GeminiConfig, MiniGemini

from .conftest import REPO
from .fixtures.image_prefix_mistakes import BLOCKS_MISTAKES, EMBED_MISTAKES, MASK_MISTAKES
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part5_integration/image_prefix.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "image_blocks": BLOCKS_MISTAKES,
        "image_mask": MASK_MISTAKES,
        "embed_with_images": EMBED_MISTAKES,
    },
)


def blocks_by_hand(ids: torch.Tensor) -> list[list[int]]:
    out = []
    for row in ids.tolist():
        block, previous, ids_of_row = -1, False, []
        for token in row:
            now = token == IMAGE_ID
            block += now and not previous
            ids_of_row.append(block if now else -1)
            previous = now
        out.append(ids_of_row)
    return out


@pytest.mark.parametrize("check", BLOCK_CHECKS, ids=lambda c: c.name)
def test_block_ids_expected_match_a_scan_by_hand(check: Check) -> None:
    case = check.build()
    ids = case.args[0]
    by_hand = torch.tensor(blocks_by_hand(ids))
    assert case.extra is not None and case.extra(by_hand) is None
    assert case.extra(by_hand.clamp(min=0)) is not None or not (by_hand < 0).any()


@pytest.mark.parametrize("check", MASK_CHECKS, ids=lambda c: c.name)
def test_mask_expected_matches_the_rule_pair_by_pair(check: Check) -> None:
    """Gemma 3's rule written for one (i, j) at a time: (j <= i or same image) and, in a
    local layer, j > i - W."""
    case = check.build()
    blocks, window = case.args
    b, t = blocks.shape
    by_hand = torch.zeros(b, t, t, dtype=torch.bool)
    for r in range(b):
        for i in range(t):
            for j in range(t):
                same = int(blocks[r, i]) >= 0 and int(blocks[r, i]) == int(blocks[r, j])
                near = window is None or j > i - window
                by_hand[r, i, j] = (j <= i or same) and near
    assert torch.equal(expected_mask(blocks, window), by_hand)
    assert case.extra is not None and case.extra(by_hand) is None


def test_the_model_attends_where_the_mask_allows() -> None:
    """``MiniGemini`` given the mask without a window (``extra_mask``) attends exactly where
    the grader's mask with the window allows, in local and global layers: the notebook's
    ImageGemini can pass the students' global mask."""
    config = GeminiConfig(
        vocab_size=11, context_length=24, d_model=16, n_heads=2, n_kv_heads=1, head_dim=8,
        n_layers=3, d_ff=32, window=3, query_pre_attn_scalar=8.0,
    )  # fmt: skip
    model = MiniGemini(config).eval()
    ids = layout_ids(["tiiiiittiitt", "iittttiiiiit"], seed=3)
    blocks = torch.tensor(blocks_by_hand(ids))
    with torch.no_grad():
        model(ids, extra_mask=expected_mask(blocks, None), keep_weights=True)
    for block in model.blocks:
        seen = block.attn.weights.sum(dim=1) > 0  # (B, T, T)
        assert torch.equal(seen, expected_mask(blocks, config.window if block.local else None))


@pytest.mark.parametrize("check", EMBED_CHECKS, ids=lambda c: c.name)
def test_embeddings_expected_match_transformers_gemma3_merge(check: Check) -> None:
    """transformers' Gemma 3 builds its inputs with ``embed_tokens`` (the scaled embedding,
    its factor in the weights' dtype) and ``masked_scatter`` of the image features into the
    placeholders; the same with its own modules gives the grader's expected value."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3TextScaledWordEmbedding

    case = check.build()
    weight, ids, images, image_id = case.args
    v, d = weight.shape
    embed = Gemma3TextScaledWordEmbedding(v, d, padding_idx=0, embed_scale=math.sqrt(d))
    embed = embed.to(weight.dtype)
    with torch.no_grad():
        embed.weight.copy_(weight)
        x = embed(ids)
        mask = (ids == image_id).unsqueeze(-1).expand_as(x)
        want = x.masked_scatter(mask, images.to(x.dtype))
    # (transformers keeps the factor sqrt(d) as a float32 buffer: equal to ~1e-7 in float64)
    torch.testing.assert_close(case.expected, want, rtol=1e-6, atol=1e-7)


def test_embedding_gradient_check_needs_both_gradients() -> None:
    case = next(c for c in EMBED_CHECKS if "gradient" in c.name).build()
    assert case.grad_args == (0, 2)
    assert all(float(g.abs().sum()) > 0 for g in case.expected_grads)
