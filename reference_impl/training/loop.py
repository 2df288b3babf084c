"""A compact training loop: AdamW, warmup + cosine schedule, gradient clipping."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from reference_impl.data.batches import get_batch
from reference_impl.models.model import TransformerLM
from reference_impl.training.config import TrainConfig
from reference_impl.training.schedule import cosine_lr


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_optimizer(model: TransformerLM, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms' gains)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def train(
    model: TransformerLM,
    data: Tensor,
    cfg: TrainConfig,
    log: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """Train ``model`` on random windows of the 1-D token tensor ``data``; returns the losses.

    ``log(step, loss, lr)`` is called every ``cfg.log_interval`` steps and at the last one.
    """
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = make_optimizer(model, cfg)
    model.train()
    losses = []
    for step in range(cfg.max_steps):
        lr = cosine_lr(step, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.max_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = get_batch(data, cfg.batch_size, model.config.context_length, gen)
        loss = model.loss(x.to(device), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        if log is not None and (step % cfg.log_interval == 0 or step == cfg.max_steps - 1):
            log(step, losses[-1], lr)
    return losses
