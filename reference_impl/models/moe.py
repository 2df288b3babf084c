"""Sparse mixture of experts: a top-k softmax router, SwiGLU experts, expert capacity with
token dropping, the Switch Transformer load-balancing loss and the router z-loss.

With ``capacity_factor=None`` :class:`MoELayer` computes what Hugging Face's
``MixtralSparseMoeBlock`` computes (softmax over the experts, top-k, the k weights
renormalised to sum to one, a weighted sum of the chosen SwiGLU experts); it returns the
router logits beside the output, as Mixtral's block did before transformers 5.

State-dict mapping from ``MixtralSparseMoeBlock`` (transformers 5, experts stored as 3-D
tensors; F = intermediate_size), done by :func:`from_hf_mixtral_moe`::

    gate.weight                     (E, D)     -> router.weight
    experts.gate_up_proj[i][:F]     (F, D)     -> experts.{i}.gate_proj.weight
    experts.gate_up_proj[i][F:]     (F, D)     -> experts.{i}.up_proj.weight
    experts.down_proj[i]            (D, F)     -> experts.{i}.down_proj.weight

(In transformers 4.x the same weights were ``experts.{i}.w1`` = gate, ``w3`` = up and
``w2`` = down, each an ``nn.Linear``.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def router_top_k(x: Tensor, weight: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Route tokens ``x`` (N, D) with router matrix ``weight`` (E, D): the logits (N, E),
    the softmax over the experts (N, E), and the k most probable experts (N, k), most
    probable first."""
    logits = x @ weight.T
    probs = F.softmax(logits, dim=-1)
    indices = torch.topk(probs, k, dim=-1).indices
    return logits, probs, indices


def gating_weights(logits: Tensor, k: int, normalize: bool = True) -> tuple[Tensor, Tensor]:
    """The top-k gates of router ``logits`` (N, E): (weights (N, k), indices (N, k)).

    Softmax over all E experts, keep the k largest probabilities; with ``normalize`` (as
    Mixtral does) divide them by their sum so that each token's k weights sum to one."""
    probs = F.softmax(logits, dim=-1)
    weights, indices = torch.topk(probs, k, dim=-1)
    if normalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, indices


def load_balancing_loss(logits: Tensor, num_experts: int, top_k: int) -> Tensor:
    """Switch Transformer auxiliary loss E * sum_i f_i * P_i of router ``logits`` (..., E).

    f_i: the fraction of tokens whose top-k choices include expert i (counts / N, so the f
    sum to k); P_i: the mean router probability of expert i. Equal to transformers'
    ``load_balancing_loss_func`` for one layer; uniform routing gives ``top_k``. Only P
    carries a gradient (the counts are piecewise constant)."""
    logits = logits.reshape(-1, num_experts)
    probs = F.softmax(logits, dim=-1)
    indices = torch.topk(probs, top_k, dim=-1).indices
    counts = F.one_hot(indices, num_experts).sum(dim=(0, 1)).to(probs.dtype)
    f = counts / logits.shape[0]
    p = probs.mean(dim=0)
    return num_experts * torch.sum(f * p)


def router_z_loss(logits: Tensor) -> Tensor:
    """ST-MoE's z-loss: the mean over tokens of logsumexp(logits)^2; keeps logits small."""
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def expert_capacity(num_tokens: int, num_experts: int, top_k: int, capacity_factor: float) -> int:
    """Slots per expert: ceil(capacity_factor * num_tokens * top_k / num_experts)."""
    return math.ceil(capacity_factor * num_tokens * top_k / num_experts)


def capacity_mask(indices: Tensor, num_experts: int, capacity: int) -> Tensor:
    """Which assignments ``indices`` (N, k) fit in their expert's ``capacity``: bool (N, k).

    Each expert fills its slots first-come first-served, in priority order: every token's
    first choice before any token's second choice, and within a choice rank by position."""
    n, k = indices.shape
    onehot = F.one_hot(indices, num_experts)  # (N, k, E)
    by_rank = onehot.transpose(0, 1).reshape(k * n, num_experts)  # rank-major order
    position = (torch.cumsum(by_rank, dim=0) - 1) * by_rank  # slot taken in its expert
    slot = position.sum(dim=-1).reshape(k, n).T  # (N, k)
    return slot < capacity


def capacity_dispatch(
    indices: Tensor, num_experts: int, capacity_factor: float
) -> tuple[int, Tensor]:
    """The capacity of each expert for these ``indices`` (N, k), and the kept mask (N, k)."""
    n, k = indices.shape
    capacity = expert_capacity(n, num_experts, k, capacity_factor)
    return capacity, capacity_mask(indices, num_experts, capacity)


class Expert(nn.Module):
    """One SwiGLU expert: down_proj(silu(gate_proj(x)) * up_proj(x)), no biases."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoELayer(nn.Module):
    """Sparse MoE feed-forward layer: (..., d_model) -> ((..., d_model), logits (N, E)).

    Each token goes to its ``top_k`` experts and gets the weighted sum of their outputs.
    With ``capacity_factor`` set, each expert takes at most
    ``expert_capacity(N, E, k, capacity_factor)`` assignments (see :func:`capacity_mask`);
    a dropped assignment contributes nothing (the kept ones keep their weights), so a token
    whose every assignment is dropped gets 0 here and passes through the block's residual
    connection unchanged. ``self.router_logits`` keeps the last logits for the aux losses."""

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        num_experts: int,
        top_k: int = 2,
        capacity_factor: float | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k
        self.capacity_factor, self.normalize = capacity_factor, normalize
        self.router = nn.Linear(d_model, num_experts, bias=False)
        self.experts = nn.ModuleList(Expert(d_model, d_ff) for _ in range(num_experts))
        self.router_logits: Tensor | None = None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        logits = self.router(tokens)
        weights, indices = gating_weights(logits, self.top_k, self.normalize)
        if self.capacity_factor is not None:
            keep = capacity_dispatch(indices, self.num_experts, self.capacity_factor)[1]
            weights = weights * keep.to(weights.dtype)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            token_idx, rank = torch.where(indices == e)
            if token_idx.numel() == 0:
                continue
            y = expert(tokens[token_idx]) * weights[token_idx, rank, None]
            out = out.index_add(0, token_idx, y)
        self.router_logits = logits
        return out.reshape(shape), logits


def from_hf_mixtral_moe(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A ``MixtralSparseMoeBlock`` state dict as :class:`MoELayer`'s (see the module doc)."""
    out = {"router.weight": state_dict["gate.weight"]}
    if "experts.gate_up_proj" in state_dict:  # transformers >= 5: fused 3-D tensors
        gate_up, down = state_dict["experts.gate_up_proj"], state_dict["experts.down_proj"]
        f = gate_up.shape[1] // 2
        for i in range(gate_up.shape[0]):
            out[f"experts.{i}.gate_proj.weight"] = gate_up[i, :f]
            out[f"experts.{i}.up_proj.weight"] = gate_up[i, f:]
            out[f"experts.{i}.down_proj.weight"] = down[i]
        return {k: v.clone() for k, v in out.items()}
    i = 0
    while f"experts.{i}.w1.weight" in state_dict:  # transformers 4.x: w1 gate, w3 up, w2 down
        out[f"experts.{i}.gate_proj.weight"] = state_dict[f"experts.{i}.w1.weight"]
        out[f"experts.{i}.up_proj.weight"] = state_dict[f"experts.{i}.w3.weight"]
        out[f"experts.{i}.down_proj.weight"] = state_dict[f"experts.{i}.w2.weight"]
        i += 1
    return {k: v.clone() for k, v in out.items()}
