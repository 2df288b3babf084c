"""The reference MoE layer (reference_impl.models.moe) against Hugging Face's Mixtral: a
randomly initialised ``MixtralSparseMoeBlock`` (small config, no download) loaded into
:class:`MoELayer` gives the same outputs and router logits with the capacity limit off, and
the load-balancing loss equals ``transformers``' one. Then capacity, dropping and gradients.
"""

from __future__ import annotations

import pytest
import torch
from transformers import MixtralConfig
from transformers.models.mixtral.modeling_mixtral import (
    MixtralSparseMoeBlock,
    load_balancing_loss_func,
)

from reference_impl.models import MoELayer, from_hf_mixtral_moe
from reference_impl.models.moe import (
    capacity_dispatch,
    capacity_mask,
    expert_capacity,
    gating_weights,
    load_balancing_loss,
    router_z_loss,
)


def _hf_block(
    seed: int, d: int = 16, d_ff: int = 24, e: int = 4, k: int = 2
) -> MixtralSparseMoeBlock:
    torch.manual_seed(seed)
    config = MixtralConfig(
        hidden_size=d, intermediate_size=d_ff, num_local_experts=e, num_experts_per_tok=k
    )
    block = MixtralSparseMoeBlock(config)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.3)
    return block.eval()


def _loaded(
    block: MixtralSparseMoeBlock, d: int = 16, d_ff: int = 24, e: int = 4, k: int = 2
) -> MoELayer:
    layer = MoELayer(d, d_ff, e, k)
    layer.load_state_dict(from_hf_mixtral_moe(block.state_dict()))  # strict
    return layer.eval()


@pytest.mark.parametrize(("e", "k"), [(4, 2), (8, 2), (4, 1), (6, 3)])
def test_matches_mixtral_block(e: int, k: int) -> None:
    block = _hf_block(e * 10 + k, e=e, k=k)
    layer = _loaded(block, e=e, k=k)
    x = torch.randn(3, 7, 16)
    with torch.no_grad():
        expected = block(x)
        hf_logits = block.gate(x.reshape(-1, 16))[0]
        y, logits = layer(x)
    torch.testing.assert_close(logits, hf_logits, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-4)


def test_load_balancing_loss_matches_transformers() -> None:
    block = _hf_block(1)
    layer = _loaded(block)
    _, logits = layer(torch.randn(4, 9, 16))
    for k in (1, 2, 3):
        expected = load_balancing_loss_func((logits,), 4, k)
        torch.testing.assert_close(load_balancing_loss(logits, 4, k), expected)
    skewed = torch.randn(64, 8) + torch.tensor([4.0, 2.0] + [0.0] * 6)
    torch.testing.assert_close(
        load_balancing_loss(skewed, 8, 2), load_balancing_loss_func((skewed,), 8, 2)
    )


def test_load_balancing_loss_limits() -> None:
    balanced = torch.full((8, 4), -50.0)
    balanced[torch.arange(8), torch.arange(8) % 4] = 50.0
    assert load_balancing_loss(balanced, 4, 1).item() == pytest.approx(1.0)
    collapsed = torch.full((8, 4), -50.0)
    collapsed[:, 0] = 50.0
    assert load_balancing_loss(collapsed, 4, 1).item() == pytest.approx(4.0)


def test_gates_renormalised_like_mixtral() -> None:
    logits = torch.randn(10, 8)
    weights, indices = gating_weights(logits, 2)
    top, top_idx = logits.topk(2, dim=-1)
    torch.testing.assert_close(weights, top.softmax(-1))
    assert torch.equal(indices, top_idx)
    raw, _ = gating_weights(logits, 2, normalize=False)
    torch.testing.assert_close(raw, logits.softmax(-1).gather(1, top_idx))


def test_capacity_and_priority() -> None:
    assert expert_capacity(5, 3, 2, 1.0) == 4 and expert_capacity(8, 4, 2, 0.5) == 2
    indices = torch.tensor([[0, 1], [0, 2], [0, 1], [3, 0]])
    capacity, keep = capacity_dispatch(indices, 4, 0.5)
    assert capacity == 1
    # first choices first: token 0 takes expert 0's slot; token 3's second choice (0) is late
    assert keep.tolist() == [[True, True], [False, True], [False, False], [True, False]]
    assert capacity_mask(indices, 4, 100).all()


def test_dropped_tokens_get_zero_and_keep_the_residual() -> None:
    layer = _loaded(_hf_block(2))
    layer.capacity_factor = 0.25
    x = torch.randn(32, 16)
    with torch.no_grad():
        y, logits = layer(x)
        full, _ = _loaded(_hf_block(2))(x)
    _, indices = gating_weights(logits, 2)
    _, keep = capacity_dispatch(indices, 4, 0.25)
    dropped = ~keep.any(-1)
    assert dropped.any() and keep.any()
    assert torch.equal(y[dropped], torch.zeros_like(y[dropped]))
    torch.testing.assert_close((x + y)[dropped], x[dropped])  # the residual path
    both = keep.all(-1)
    torch.testing.assert_close(y[both], full[both])


def test_gradients_reach_router_and_experts() -> None:
    layer = _loaded(_hf_block(3))
    layer.train()
    x = torch.randn(2, 8, 16, requires_grad=True)
    y, logits = layer(x)
    loss = y.pow(2).mean() + 1e-2 * load_balancing_loss(logits, 4, 2) + 1e-3 * router_z_loss(logits)
    loss.backward()
    assert x.grad is not None and layer.router.weight.grad is not None
    assert layer.router.weight.grad.abs().sum() > 0
    used = {int(i) for i in logits.topk(2, dim=-1).indices.flatten()}
    for i in range(4):
        grad = layer.experts[i].gate_proj.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == (i in used)


def test_z_loss_is_shift_sensitive_only_through_scale() -> None:
    logits = torch.randn(16, 8)
    assert router_z_loss(logits + 10) > router_z_loss(logits)
    torch.testing.assert_close(router_z_loss(logits), torch.logsumexp(logits, -1).pow(2).mean())
