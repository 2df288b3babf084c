"""Learning-rate schedule: linear warmup, then cosine decay."""

from __future__ import annotations

import math


def cosine_lr(
    step: float, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int
) -> float:
    """Learning rate at ``step`` (0-based; a fraction between steps for a schedule that
    follows the clock).

    Rises linearly from max_lr/warmup_steps to max_lr over the first ``warmup_steps`` steps,
    then follows half a cosine from max_lr down to min_lr at ``max_steps``, and stays there.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
