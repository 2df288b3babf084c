"""Grader of the mixture-of-experts notebook (part3_innovations): the top-k router, the
gating weights, the Switch Transformer load-balancing loss, expert capacity with token
dropping, and the sparse MoE layer (forward and backward).

Expected values come from ``reference_impl.models.moe``, whose layer equals Hugging Face's
``MixtralSparseMoeBlock`` with the capacity limit off (tests/test_moe.py). Plain functions
get float64 inputs and tight tolerances; the layer is float32, built with the student's
class and loaded with the reference's weights by name.
"""

from __future__ import annotations

import torch
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, grad_case, module_case, seeded_randn
from reference_impl.models.moe import (
    MoELayer,
    capacity_dispatch,
    gating_weights,
    load_balancing_loss,
    router_top_k,
)

# --- router_top_k(x, weight, k) -> (logits, probs, indices) ----------------------------------


def _router_case(
    seed: int, n: int, d: int, e: int, k: int, scale: float = 1.0, grads: bool = False
) -> Case:
    x, w = seeded_randn(seed, n, d, scale=scale), seeded_randn(seed + 1, e, d)
    if grads:
        return grad_case(router_top_k, [x, w, k], (0, 1), seed)
    return Case([x, w, k], router_top_k(x, w, k))


ROUTER_CHECKS = [
    Check(
        "logits, probabilities and top-2 experts of 12 tokens, 4 experts",
        0.5,
        lambda: _router_case(1, 12, 8, 4, 2),
        "logits = x @ weight.T (N, E); probs = softmax over the experts (dim=-1, each row "
        "sums to 1); indices = torch.topk(probs, k, dim=-1).indices",
    ),
    Check(
        "softmax over the experts with more experts than tokens (3 tokens, 8 experts)",
        0.5,
        lambda: _router_case(2, 3, 8, 8, 2),
        "normalise each token's row over the experts (dim=-1), not each expert's column "
        "over the tokens (dim=0)",
    ),
    Check(
        "top-3 of 6 experts, most probable first",
        0.5,
        lambda: _router_case(3, 10, 8, 6, 3),
        "return the k indices sorted by decreasing probability (torch.topk sorts), as int64 (N, k)",
    ),
    Check(
        "k = 1 and k = E",
        0.5,
        lambda: _router_case(4, 7, 5, 4, 1),
        "k is an argument: take exactly k experts per token",
    ),
    Check(
        "large tokens (x * 1000), top-1: a stable softmax",
        0.5,
        lambda: _router_case(5, 9, 8, 4, 1, scale=1e3),
        "use F.softmax / torch.softmax (or subtract the row max before exp): exp of large "
        "logits overflows to inf and gives nan",
    ),
    Check(
        "gradients of the logits for x and weight",
        0.5,
        lambda: _router_case(6, 8, 6, 4, 2, grads=True),
        "compute the logits with torch operations on x and weight (no .detach(), numpy or "
        "a new nn.Linear)",
    ),
]


# --- gating_weights(logits, k, normalize=True) -> (weights, indices) -------------------------


def _gating_case(
    seed: int,
    n: int,
    e: int,
    k: int,
    normalize: bool | None = None,
    scale: float = 1.0,
    grads: bool = False,
) -> Case:
    logits = seeded_randn(seed, n, e, scale=scale)
    kwargs = {} if normalize is None else {"normalize": normalize}
    norm = True if normalize is None else normalize
    if grads:
        case = grad_case(lambda lg: gating_weights(lg, k, norm), [logits], (0,), seed)
        case.args, case.kwargs = [logits, k], kwargs
        return case
    return Case([logits, k], gating_weights(logits, k, norm), kwargs=kwargs)


GATING_CHECKS = [
    Check(
        "renormalised top-2 weights of 8 experts (Mixtral's default)",
        0.5,
        lambda: _gating_case(1, 10, 8, 2),
        "softmax over all E experts, keep the k largest, then divide them by their sum so "
        "each token's k weights sum to 1 (normalize=True is the default)",
    ),
    Check(
        "normalize=False: the raw top-k probabilities",
        0.5,
        lambda: _gating_case(2, 10, 8, 2, normalize=False),
        "with normalize=False return the softmax probabilities over ALL experts of the k "
        "chosen ones, without renormalising (they sum to less than 1)",
    ),
    Check(
        "top-4 of 16 experts, normalize=False",
        0.5,
        lambda: _gating_case(3, 6, 16, 4, normalize=False),
        "the softmax runs over every expert's logit (dim=-1), not over the top-k logits "
        "only and not over the tokens",
    ),
    Check(
        "k = 1 renormalised: every weight is 1",
        0.5,
        lambda: _gating_case(4, 5, 4, 1, normalize=True),
        "renormalising one weight gives 1; return weights (N, k) and indices (N, k)",
    ),
    Check(
        "gradients of the weights for the logits",
        0.5,
        lambda: _gating_case(5, 8, 6, 2, grads=True),
        "build the weights from the logits with torch operations (softmax, topk, division) "
        "so that the router gets a gradient",
    ),
    Check(
        "large logits (x 1000), top-1: stable",
        0.5,
        lambda: _gating_case(6, 8, 6, 1, normalize=False, scale=1e3),
        "use F.softmax, or subtract the row max before exp: exp(1000) is inf",
    ),
]


# --- load_balancing_loss(logits, num_experts, top_k) -> scalar -------------------------------


def _balanced_logits(n: int, e: int) -> Tensor:
    """Each token prefers expert t % E: every expert chosen equally often."""
    logits = seeded_randn(11, n, e, scale=0.1)
    logits[torch.arange(n), torch.arange(n) % e] += 3.0
    logits[torch.arange(n), (torch.arange(n) + 1) % e] += 2.0
    return logits


def _collapsed_logits(n: int, e: int) -> Tensor:
    """Every token prefers expert 0, then expert 1."""
    logits = seeded_randn(12, n, e)
    logits[:, 0] += 6.0
    logits[:, 1] += 4.0
    return logits


def _lb_case(logits: Tensor, e: int, k: int, grads: bool = False) -> Case:
    if grads:
        return grad_case(load_balancing_loss, [logits, e, k], (0,), 7)
    return Case([logits, e, k], load_balancing_loss(logits, e, k))


LB_CHECKS = [
    Check(
        "64 tokens, 8 experts, top-2",
        0.5,
        lambda: _lb_case(seeded_randn(1, 64, 8), 8, 2),
        "E * sum_i f_i * P_i with f_i = (number of tokens whose top-k includes expert i) / "
        "N and P_i = the mean over tokens of softmax(logits)[:, i]; do not forget the "
        "factor E",
    ),
    Check(
        "top-1 routing (the Switch Transformer)",
        0.5,
        lambda: _lb_case(seeded_randn(2, 50, 4), 4, 1),
        "count each token's top_k choices (top_k is an argument), not only its first",
    ),
    Check(
        "balanced routing gives about top_k",
        0.5,
        lambda: _lb_case(_balanced_logits(48, 6), 6, 2),
        "f_i = counts / N (the f sum to top_k, not to 1): divide the counts by the number "
        "of tokens, not by N * top_k",
    ),
    Check(
        "collapsed routing (every token to experts 0 and 1)",
        0.5,
        lambda: _lb_case(_collapsed_logits(40, 8), 8, 2),
        "f_i must count hard top-k assignments (0 or 1 per token and expert), P_i the soft "
        "probabilities; using the probabilities for both gives another value",
    ),
    Check(
        "gradient for the logits: only through P",
        0.5,
        lambda: _lb_case(seeded_randn(3, 32, 4), 4, 2, grads=True),
        "the counts f are constants (built from topk indices); the gradient flows through "
        "the mean probabilities P, computed with torch operations",
    ),
    Check(
        "logits of shape (B, T, E) are flattened over B and T",
        0.5,
        lambda: _lb_case(seeded_randn(4, 3, 7, 5), 5, 2),
        "reshape the logits to (-1, num_experts) first: N is every token of every sequence",
    ),
]


# --- capacity_dispatch(indices, num_experts, capacity_factor) -> (capacity, keep) ------------


def _indices(seed: int, n: int, e: int, k: int, skew: float = 0.0) -> Tensor:
    """k distinct experts per token, from a (possibly skewed) random router."""
    logits = seeded_randn(seed, n, e)
    logits[:, 0] += skew
    return torch.topk(logits, k, dim=-1).indices


def _capacity_case(indices: Tensor, e: int, factor: float) -> Case:
    capacity, keep = capacity_dispatch(indices, e, factor)
    return Case([indices, e, factor], (capacity, keep))


CAPACITY_CHECKS = [
    Check(
        "8 tokens, 4 experts, top-2, factor 1.0",
        0.5,
        lambda: _capacity_case(_indices(1, 8, 4, 2), 4, 1.0),
        "capacity = ceil(capacity_factor * N * k / E); keep[t, j] says whether assignment "
        "(t, j) got one of its expert's capacity slots",
    ),
    Check(
        "a skewed router with factor 0.5: assignments dropped per expert",
        0.5,
        lambda: _capacity_case(_indices(2, 12, 4, 2, skew=3.0), 4, 0.5),
        "each expert has its own capacity: count the assignments per expert (a cumsum of "
        "the one-hot over experts), not a running count over all assignments",
    ),
    Check(
        "first choices before second choices",
        0.5,
        lambda: _capacity_case(torch.tensor([[1, 0], [0, 1], [0, 2], [0, 3], [2, 1]]), 4, 0.8),
        "fill slots in priority order: every token's first choice (column 0, in token "
        "order), then every second choice; a token's second choice never takes the slot "
        "of a later token's first choice",
    ),
    Check(
        "capacity rounds up: 5 tokens, 3 experts, top-2",
        0.5,
        lambda: _capacity_case(_indices(4, 5, 3, 2), 3, 1.0),
        "ceil, not floor or round: 1.0 * 5 * 2 / 3 = 3.33 gives 4 slots; return a Python int",
    ),
    Check(
        "top-1, factor 1.25 (the Switch Transformer)",
        0.5,
        lambda: _capacity_case(_indices(5, 20, 4, 1, skew=1.5), 4, 1.25),
        "the capacity counts k assignments per token: ceil(factor * N * k / E)",
    ),
    Check(
        "a large factor keeps everything: 64 tokens, 8 experts",
        0.5,
        lambda: _capacity_case(_indices(6, 64, 8, 2), 8, 4.0),
        "keep is a bool tensor of shape (N, k), True where the assignment is kept",
    ),
]


# --- MoELayer(d_model, d_ff, num_experts, top_k=2, capacity_factor=None) ---------------------


def _spread(layer: MoELayer, seed: int) -> MoELayer:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 0.3, generator=g)
    return layer.eval()


def _layer_case(
    seed: int,
    shape: tuple[int, ...],
    d_ff: int,
    e: int,
    k: int = 2,
    factor: float | None = None,
    normalize: bool | None = None,
    grads: bool = False,
) -> Case:
    d = shape[-1]
    kwargs: dict[str, float | bool] = {}
    if factor is not None:
        kwargs["capacity_factor"] = factor
    if normalize is not None:
        kwargs["normalize"] = normalize
    ref = _spread(MoELayer(d, d_ff, e, k, factor, True if normalize is None else normalize), seed)
    x = seeded_randn(seed + 1, *shape, dtype=torch.float32)
    return module_case(
        ref,
        [x],
        [d, d_ff, e, k],
        init_kwargs=kwargs,
        grad_args=(0,) if grads else (),
        params=grads,
        grad_seed=seed + 2,
        allow_unused=True,  # experts that no token chose get no gradient
    )


LAYER_CHECKS = [
    Check(
        "output and router logits, 4 experts, top-2 (Mixtral)",
        1.0,
        lambda: _layer_case(1, (2, 6, 8), 12, 4),
        "y = sum over the k chosen experts of weight * expert(x), with the renormalised "
        "softmax top-k weights; return (y of x's shape, logits (N, E)) with N = B * T",
    ),
    Check(
        "gradients for x, the router and the experts",
        1.0,
        lambda: _layer_case(2, (2, 5, 8), 12, 4, grads=True),
        "multiply each expert's output by its gate weight (a tensor from the router, not "
        ".item() or detached): the router learns only through the weights",
    ),
    Check(
        "top-1 without renormalising (Switch-style gates)",
        0.5,
        lambda: _layer_case(3, (10, 8), 12, 4, k=1, normalize=False),
        "top_k and normalize are constructor arguments; with normalize=False the gate "
        "is the raw softmax probability",
    ),
    Check(
        "capacity factor 0.5: dropped assignments add nothing",
        1.0,
        lambda: _layer_case(4, (16, 8), 12, 4, factor=0.5),
        "apply capacity_dispatch's mask: a dropped assignment contributes 0 and the kept "
        "ones keep their weights (do not renormalise again, do not drop the whole token)",
    ),
    Check(
        "gradients with a capacity limit",
        0.5,
        lambda: _layer_case(5, (2, 8, 8), 12, 4, factor=0.75, grads=True),
        "dropped assignments must not reach their experts: no gradient from them",
    ),
    Check(
        "8 experts for 3 tokens: unused experts",
        0.5,
        lambda: _layer_case(6, (3, 8), 10, 8),
        "skip experts that no token chose (an empty batch) instead of failing",
    ),
]


ITEMS: dict[str, Item] = {
    "moe.router_top_k": Item(
        "router_top_k",
        ROUTER_CHECKS,
        Signature(
            "x, weight, k",
            shapes={
                "x": "(N, d)",
                "weight": "(E, d)",
                "return[0]": "(N, E)",
                "return[1]": "(N, E)",
                "return[2]": "(N, k)",
            },
        ),
    ),
    "moe.gating_weights": Item(
        "gating_weights",
        GATING_CHECKS,
        Signature(
            "logits, k, normalize=True",
            shapes={"logits": "(N, E)", "return[0]": "(N, k)", "return[1]": "(N, k)"},
        ),
    ),
    "moe.load_balancing_loss": Item(
        "load_balancing_loss",
        LB_CHECKS,
        Signature(
            "logits, num_experts, top_k", shapes={"logits": "(*N, num_experts)", "return": "()"}
        ),
    ),
    "moe.capacity_dispatch": Item(
        "capacity_dispatch",
        CAPACITY_CHECKS,
        Signature(
            "indices, num_experts, capacity_factor",
            shapes={"indices": "(N, k)", "return[1]": "(N, k)"},
        ),
    ),
    "moe.MoELayer": Item(
        "MoELayer",
        LAYER_CHECKS,
        Signature(
            "d_model, d_ff, num_experts, top_k=2, capacity_factor=None, normalize=True",
            forward="x",
            shapes={
                "x": "(*L, d_model)",
                "return[0]": "(*L, d_model)",
                "return[1]": "(N, num_experts)",
            },
        ),
    ),
}
