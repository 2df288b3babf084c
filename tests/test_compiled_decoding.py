"""generate(compile=True): the torch.compile-d one-token step over a static-shape cache gives
the greedy ids of the eager cached and uncached paths; other models fall back to eager."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from reference_impl.generation import generate
from reference_impl.generation.decoding import compile_step
from reference_impl.models import TransformerLM
from tests.test_generation import prompt, small

COMPILED = [
    {"pos_kind": "rope", "n_kv_heads": 2},
    {"pos_kind": "rope", "n_kv_heads": 1, "attn_impl": "sdpa"},
    {"pos_kind": "learned", "n_kv_heads": 2},
]


@pytest.fixture(scope="module", params=COMPILED, ids=["gqa", "sdpa-mqa", "learned-gqa"])
def model(request: pytest.FixtureRequest) -> TransformerLM:
    """One model per config, compiled once for the module at its first compiled call."""
    return small(**request.param)


def test_greedy_ids_equal_the_eager_cached_and_uncached_ones(model: TransformerLM) -> None:
    idx = prompt(2, 6)
    compiled = generate(model, idx, 40, temperature=0.0, compile=True)
    assert compiled.shape == (2, 46)
    assert torch.equal(compiled, generate(model, idx, 40, temperature=0.0))
    assert torch.equal(compiled, generate(model, idx, 40, temperature=0.0, use_cache=False))


def test_past_the_context_and_with_stop_ids(model: TransformerLM) -> None:
    """90 tokens > context_length 64: the compiled steps hand over to recomputation."""
    idx = prompt(2, 10, seed=5)
    free = generate(model, idx, 80, temperature=0.0)
    assert torch.equal(generate(model, idx, 80, temperature=0.0, compile=True), free)
    stop = int(free[0, 20])
    kw: dict[str, Any] = {"temperature": 0.0, "stop_ids": [stop]}
    assert torch.equal(generate(model, idx, 30, compile=True, **kw), generate(model, idx, 30, **kw))


def test_the_cache_keeps_its_shapes_and_counts_in_a_tensor(model: TransformerLM) -> None:
    step = compile_step(model)
    assert step is not None
    with torch.inference_mode():  # batch 2, as above: the same compiled graph
        cache = model.new_cache(2)
        idx = prompt(2, 9)
        full = model(idx)[:, -1]
        model(idx[:, :8], cache=cache)
        cache.make_static()
        logits = step(idx[:, 8:].clone(), cache)
    assert isinstance(cache.length, torch.Tensor) and int(cache.length) == 9
    assert cache.layers[0].k.shape == (2, model.config.n_kv_heads, 64, 16)
    assert (logits - full).abs().max() < 1e-4


@pytest.mark.parametrize(
    "kw",
    [
        {"attn_pattern": "LG", "sliding_window": 4},
        {"ffn_pattern": "DM", "moe_num_experts": 4},
        {"image_token_id": 5},
    ],
    ids=["sliding", "moe", "image"],
)
def test_other_models_decode_eagerly(kw: dict[str, Any]) -> None:
    model = small(pos_kind="rope", **kw)
    assert compile_step(model) is None
    idx = prompt(2, 6)
    out = generate(model, idx, 20, temperature=0.0, compile=True)
    assert torch.equal(out, generate(model, idx, 20, temperature=0.0))


def test_a_sliding_window_cache_refuses_static_shapes() -> None:
    cache = small(attn_pattern="LG", sliding_window=4).new_cache(1)
    with pytest.raises(ValueError, match="sliding-window"):
        cache.make_static()
