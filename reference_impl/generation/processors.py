"""Logit processors: each maps next-token logits (B, V) to new logits (B, V).

Masked tokens get ``-inf``, so that softmax gives them probability zero. The rules are those
of Hugging Face's ``RepetitionPenaltyLogitsProcessor``, ``TemperatureLogitsWarper``,
``TopKLogitsWarper`` and ``TopPLogitsWarper``, applied in that order by
:func:`~reference_impl.generation.generate`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """logits / temperature: below 1 sharpens the distribution, above 1 flattens it."""
    if temperature <= 0.0:
        raise ValueError(f"temperature must be > 0 (use greedy decoding for 0), got {temperature}")
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits of each row (and any tied with the k-th), mask the rest."""
    kth = torch.topk(logits, min(k, logits.size(-1))).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, -math.inf)


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability is >= p.

    A token is kept when the tokens ranked above it hold less than p, so the most likely one
    always stays. Equal logits are ranked by token id (a stable sort), lowest id first.
    """
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
    drop_sorted = mass_before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, -math.inf)


def apply_repetition_penalty(logits: Tensor, previous_ids: Tensor, penalty: float) -> Tensor:
    """CTRL's penalty for tokens already in previous_ids (B, T): positive logits are divided
    by ``penalty``, negative ones multiplied, so ``penalty > 1`` makes repeats less likely."""
    seen = logits.gather(-1, previous_ids)  # (B, T)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(-1, previous_ids, seen)
