"""The grader of the image-input notebook: the source notebook gets full marks, other correct
answers too, each realistic mistake loses exactly the points it should with a message that
names it, and the grader's expected values agree with independent peers (``F.unfold``,
PyTorch's own ``nn.TransformerEncoderLayer``, a loop over the targets).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer. The PatchEmbedding answers call ``patchify``, so their
cell is prefixed with the source's solution of it (``BUILDS_ON``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import Check
from autograder.graders.image_input import BLOCK_CHECKS, LOSS_CHECKS, PATCHIFY_CHECKS

from .conftest import REPO
from .fixtures.image_input_mistakes import (
    BLOCK_MISTAKES,
    EMBED_MISTAKES,
    LOSS_MISTAKES,
    PATCHIFY_MISTAKES,
    PROJECTOR_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part3_innovations/image_input.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "patchify": PATCHIFY_MISTAKES,
        "patch_embedding": EMBED_MISTAKES,
        "encoder_block": BLOCK_MISTAKES,
        "projector": PROJECTOR_MISTAKES,
        "prefix_lm_loss": LOSS_MISTAKES,
    },
)
BUILDS_ON = {"patch_embedding": ["patchify"]}


# --- the grader's expected values against independent peers ---------------------------------


@pytest.mark.parametrize("check", PATCHIFY_CHECKS, ids=lambda c: c.name)
def test_patchify_matches_unfold(check: Check) -> None:
    case = check.build()
    images, p = case.args
    assert torch.equal(case.expected, F.unfold(images, p, stride=p).transpose(1, 2))


@pytest.mark.parametrize("check", BLOCK_CHECKS, ids=lambda c: c.name)
def test_block_matches_torch_encoder_layer(check: Check) -> None:
    case = check.build()
    assert case.module is not None
    d, heads, d_ff = case.module.args
    sd = case.module.state_dict
    layer = nn.TransformerEncoderLayer(
        d, heads, d_ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    names = {"self_attn.in_proj_weight": "qkv.weight", "self_attn.in_proj_bias": "qkv.bias"}
    for ours, theirs in (
        ("proj", "self_attn.out_proj"),
        ("fc1", "linear1"),
        ("fc2", "linear2"),
        ("norm1", "norm1"),
        ("norm2", "norm2"),
    ):
        names |= {f"{theirs}.{p}": f"{ours}.{p}" for p in ("weight", "bias")}
    layer.load_state_dict({theirs: sd[ours] for theirs, ours in names.items()})
    with torch.no_grad():
        torch.testing.assert_close(layer.eval()(case.args[0]), case.expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("check", LOSS_CHECKS, ids=lambda c: c.name)
def test_loss_matches_a_loop(check: Check) -> None:
    case = check.build()
    logits, targets, n_prefix = case.args
    terms = [
        -torch.log_softmax(logits[b, n_prefix - 1 + i], dim=-1)[targets[b, i]]
        for b in range(targets.shape[0])
        for i in range(targets.shape[1])
        if targets[b, i] != -100 and n_prefix - 1 + i >= 0
    ]
    expected = case.expected[0] if isinstance(case.expected, tuple) else case.expected
    torch.testing.assert_close(expected, torch.stack(terms).mean(), atol=1e-10, rtol=1e-8)
