"""The accounting formulas (reference_impl.models.accounting) against the parameters of real
models: the reference TransformerLM in several configurations (biases or none, tied or untied,
LayerNorm or RMSNorm, GELU or SwiGLU), the training-loop notebook's own GPT (built from its
given cell), and GPT-2 small's published size."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.notebooks import grade_id
from reference_impl.models import ModelConfig, TransformerLM
from reference_impl.models.accounting import (
    adamw_memory_bytes,
    gpt_parameters,
    notebook_gpt_parameters,
    training_budget,
    training_flops,
)

from .conftest import REPO

NOTEBOOK = REPO / "source/part4_training/training_loop.ipynb"


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # a shared (tied) Parameter once


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize(
    ("norm_kind", "ffn_kind"), [("layernorm", "gelu"), ("rmsnorm", "swiglu"), ("rmsnorm", "gelu")]
)
def test_formula_counts_the_reference_model(
    bias: bool, tie: bool, norm_kind: str, ffn_kind: str
) -> None:
    config = ModelConfig(
        vocab_size=97,
        context_length=24,
        d_model=32,
        n_heads=4,
        n_layers=3,
        bias=bias,
        tie_weights=tie,
        norm_kind=norm_kind,
        ffn_kind=ffn_kind,
    )
    model = TransformerLM(config)
    expected = gpt_parameters(
        97,
        24,
        32,
        3,
        config.d_ff,
        attn_bias=bias,
        mlp_bias=bias,
        norm_bias=bias and norm_kind == "layernorm",
        tie_weights=tie,
        gated=ffn_kind != "gelu",
    )
    assert _numel(model) == model.num_parameters() == expected


def test_no_learned_positions_with_rope() -> None:
    config = ModelConfig(
        vocab_size=50,
        context_length=16,
        d_model=16,
        n_heads=2,
        n_layers=2,
        pos_kind="rope",
        bias=False,
        norm_kind="rmsnorm",
    )
    expected = gpt_parameters(
        50,
        16,
        16,
        2,
        attn_bias=False,
        mlp_bias=False,
        norm_bias=False,
        tie_weights=True,
        learned_positions=False,
    )
    assert _numel(TransformerLM(config)) == expected


def _notebook_gpt() -> Any:
    """The GPT class of the notebook's given cell."""
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    (cell,) = [c for c in nb.cells if grade_id(c) == "provided_gpt"]
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "F": F}
    exec(cell.source, namespace)
    return namespace["GPT"]


@pytest.mark.parametrize(
    ("vocab", "block", "d", "layers"), [(256, 64, 64, 2), (256, 64, 96, 3), (300, 17, 40, 0)]
)
def test_formula_counts_the_notebooks_gpt(vocab: int, block: int, d: int, layers: int) -> None:
    model = _notebook_gpt()(vocab, block, d, layers, n_heads=4 if d % 4 == 0 else 1)
    assert _numel(model) == notebook_gpt_parameters(vocab, block, d, layers)
    assert notebook_gpt_parameters(vocab, block, d, layers) == (
        vocab * d + block * d + layers * (12 * d * d + 9 * d) + 2 * d
    )


def test_gpt2_small_has_124m_parameters() -> None:
    """GPT-2 small (Radford et al. 2019; Hugging Face's gpt2): biases everywhere, tied head."""
    n = gpt_parameters(
        50257, 1024, 768, 12, attn_bias=True, mlp_bias=True, norm_bias=True, tie_weights=True
    )
    assert n == 124_439_808


def test_flops_memory_and_budget() -> None:
    assert training_flops(10**6, 2 * 10**7) == 6 * 10**6 * 2 * 10**7
    assert adamw_memory_bytes(1000) == 16_000
    assert adamw_memory_bytes(1000, bytes_per_value=2) == 8_000
    n, flops, memory = training_budget(256, 64, 64, 2, 10**9)
    assert n == notebook_gpt_parameters(256, 64, 64, 2)
    assert (flops, memory) == (6 * n * 10**9, 16 * n)
    assert all(type(v) is int for v in (n, flops, memory))
