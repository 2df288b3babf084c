"""Beam search with length normalisation, step for step as Hugging Face's ``generate``.

Each step extends every live beam by every token, keeps the ``2 * num_beams`` best
continuations by summed log-probability, retires those that end in ``eos_id`` (or reach
``max_new_tokens``) as finished hypotheses scored ``sum_logprob / length ** length_penalty``
(length = generated tokens, eos included), and keeps the ``num_beams`` best others alive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from reference_impl.generation.decoding import next_token_logits

if TYPE_CHECKING:
    from reference_impl.models.model import TransformerLM

NEG = -1.0e9  # the score of an empty or ruled-out slot (Hugging Face's value)


def gather_beams(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` (B, K) of x (B, N, ...) -> (B, K, ...), separately per batch element."""
    return x[torch.arange(x.size(0), device=x.device)[:, None], index]


def top_continuations(
    running: Tensor, scores: Tensor, log_probs: Tensor, cur_len: int, k: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The k best one-token extensions of the running beams.

    running (B, N, L) ids, scores (B, N) summed log-probs, log_probs (B, N, V) of the next
    token -> candidate ids (B, k, L) with the new token at ``cur_len``, their scores (B, k),
    their parent beam (B, k) and new token (B, k).
    """
    vocab = log_probs.size(-1)
    total = (log_probs + scores[..., None]).flatten(1)  # (B, N * V)
    cand_scores, flat = total.topk(k)
    parent, token = flat // vocab, flat % vocab
    cand = gather_beams(running, parent)
    cand[:, :, cur_len] = token
    return cand, cand_scores, parent, token


@torch.no_grad()
def beam_search(
    model: TransformerLM,
    idx: Tensor,
    max_new_tokens: int,
    num_beams: int,
    *,
    length_penalty: float = 1.0,
    early_stopping: bool | Literal["never"] = False,
    eos_id: int | None = None,
    use_cache: bool = True,
    return_all: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The most likely continuation of idx (B, T) under beam search -> (B, T + n).

    ``early_stopping`` is Hugging Face's: ``True`` stops a batch element once it has
    ``num_beams`` finished hypotheses; ``False`` stops once the best live beam, normalised
    at its current length, cannot beat the worst finished one; ``"never"`` assumes the
    live beams could reach ``max_new_tokens`` when ``length_penalty > 0``. Positions after
    eos hold eos. With ``return_all``: all ``num_beams`` finished hypotheses (B, num_beams,
    T + n), best first, and their normalised scores (B, num_beams).
    """
    was_training = model.training
    model.eval()
    b, prompt_len = idx.shape
    n, max_len, pad = num_beams, prompt_len + max_new_tokens, 0 if eos_id is None else eos_id
    k = 2 * n
    running = torch.full((b, n, max_len), pad, dtype=idx.dtype, device=idx.device)
    running[:, :, :prompt_len] = idx[:, None]
    run_scores = torch.full((b, n), NEG, device=idx.device)
    run_scores[:, 0] = 0.0  # identical beams at first: let only one of them expand
    finished = running.clone()
    fin_scores = torch.full((b, n), NEG, device=idx.device)
    fin_done = torch.zeros(b, n, dtype=torch.bool, device=idx.device)
    fin_len = torch.zeros(b, n, dtype=torch.long, device=idx.device)
    improvable = torch.ones(b, dtype=torch.bool, device=idx.device)
    cache = model.new_cache(b * n) if use_cache else None
    for step in range(max_new_tokens):
        cur_len = prompt_len + step
        logits, cache = next_token_logits(model, running[:, :, :cur_len].flatten(0, 1), cache)
        log_probs = F.log_softmax(logits.float(), dim=-1).view(b, n, -1)
        cand, cand_scores, parent, token = top_continuations(
            running, run_scores, log_probs, cur_len, k
        )
        ends = torch.full_like(token, step == max_new_tokens - 1, dtype=torch.bool)
        if eos_id is not None:
            ends |= token == eos_id
        # Retire ending candidates ranked in the top n into the finished hypotheses.
        full = fin_done.all(dim=-1) & (early_stopping is True)
        may_finish = ends & (torch.arange(k, device=idx.device) < n) & (improvable & ~full)[:, None]
        normed = (cand_scores / (step + 1) ** length_penalty).masked_fill(~may_finish, NEG)
        keep = torch.cat((fin_scores, normed), dim=1).topk(n).indices
        finished = gather_beams(torch.cat((finished, cand), dim=1), keep)
        fin_scores = gather_beams(torch.cat((fin_scores, normed), dim=1), keep)
        fin_done = gather_beams(torch.cat((fin_done, may_finish), dim=1), keep)
        fin_len = gather_beams(torch.cat((fin_len, torch.full_like(token, step + 1)), dim=1), keep)
        # The n best candidates that did not end stay alive.
        live_scores = cand_scores + ends.float() * NEG
        alive = live_scores.topk(n).indices
        running, run_scores = gather_beams(cand, alive), gather_beams(live_scores, alive)
        if cache is not None:
            rows = gather_beams(parent, alive) + n * torch.arange(b, device=idx.device)[:, None]
            cache.reorder(rows.flatten())
        hoped_len = max_new_tokens if early_stopping == "never" and length_penalty > 0 else step + 1
        best_hope = run_scores[:, 0] / hoped_len**length_penalty
        worst = torch.where(fin_done, fin_scores.min(dim=-1, keepdim=True).values, NEG)
        improvable &= (best_hope[:, None] > worst).any(dim=-1)
        all_full = bool(fin_done.all()) and early_stopping is True
        if not improvable.any() or all_full or ends.all():
            break
    model.train(was_training)
    if return_all:
        return finished[:, :, : prompt_len + int(fin_len.max())], fin_scores
    return finished[:, 0, : prompt_len + int(fin_len[:, 0].max())]
