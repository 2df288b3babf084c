"""Muon (MomentUm Orthogonalized by Newton-Schulz; Jordan et al., 2024) for the blocks' weight
matrices, and AdamW for everything else (embeddings, norms, biases).

Muon's update of a matrix is its Nesterov momentum made nearly orthogonal: five Newton-Schulz
iterations push every singular value towards 1, so that no single direction dominates the
step. With ``match_rms_adamw`` scaling (Moonshot's Kimi recipe) the update has AdamW's size,
so one learning rate and one schedule serve both halves. The arithmetic is that of
``torch.optim.Muon`` (the tests compare the two), except that matrices of one shape are
orthogonalised together in batched products: a small model has dozens of small matrices,
and on a CPU one product per matrix costs more in overhead than in arithmetic.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # the quintic of torch.optim.Muon


def orthogonalize(g: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """(k, m, n) -> (k, m, n) in bfloat16: ``steps`` quintic Newton-Schulz iterations
    towards the orthogonal factor U V^T of each matrix's SVD (singular values end near 1)."""
    a, b, c = NS_COEFFICIENTS
    x = g.bfloat16()
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral norm <= 1
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


class Muon(torch.optim.Optimizer):
    """``torch.optim.Muon`` with ``adjust_lr_fn="match_rms_adamw"``, batched by shape.

    Per matrix W with gradient G: B <- mu B + (1 - mu) G; U = NS(G + mu (B - G)) (Nesterov);
    W <- (1 - lr wd) W - 0.2 sqrt(max(m, n)) lr U.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        ns_steps: int = 5,
    ) -> None:
        if any(p.dim() != 2 for p in params):
            raise ValueError("Muon: every parameter must be a matrix")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum}
        super().__init__(params, defaults | {"ns_steps": ns_steps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            by_shape: dict[torch.Size, list[Tensor]] = defaultdict(list)
            for p in group["params"]:
                if p.grad is not None:
                    by_shape[p.shape].append(p)
            for shape, params in by_shape.items():
                self._update(group, shape, params)

    def _update(self, group: dict[str, Any], shape: torch.Size, params: list[Tensor]) -> None:
        mu, lr = group["momentum"], group["lr"]
        grads = [p.grad for p in params if p.grad is not None]
        bufs = [self._buffer(p) for p in params]
        torch._foreach_lerp_(bufs, grads, 1 - mu)
        nesterov = torch.stack(grads).lerp_(torch.stack(bufs), mu)
        update = orthogonalize(nesterov, group["ns_steps"]).to(params[0].dtype)
        torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        torch._foreach_add_(params, list(update.unbind()), alpha=-0.2 * math.sqrt(max(shape)) * lr)

    def _buffer(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        return state["momentum_buffer"]


class MuonWithAdamW:
    """Muon on the transformer blocks' matrices, AdamW on the other parameters (weight decay on
    matrices only), stepped together; to the trainer one optimizer: ``param_groups`` for the
    schedule, ``state_dict`` for checkpoints."""

    def __init__(
        self,
        model: nn.Module,
        lr: float,
        weight_decay: float,
        betas: tuple[float, float],
        fused: bool | None = None,
    ) -> None:
        named = list(model.named_parameters())
        hidden = [p for n, p in named if p.dim() == 2 and n.startswith("blocks.")]
        chosen = {id(p) for p in hidden}
        rest = [p for _, p in named if id(p) not in chosen]
        self.muon = Muon(hidden, lr=lr, weight_decay=weight_decay)
        self.adamw = torch.optim.AdamW(
            [
                {"params": [p for p in rest if p.dim() >= 2], "weight_decay": weight_decay},
                {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
            ],
            lr=lr,
            betas=betas,
            fused=fused,
        )

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        # read each time: load_state_dict replaces the halves' group dictionaries
        return self.muon.param_groups + self.adamw.param_groups

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none)
        self.adamw.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])
