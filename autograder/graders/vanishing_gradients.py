"""Grader of the vanishing_gradients notebook (part1_evolution): the per-step gradient norms of
an RNN, the LSTM cell, the delayed-recall task generator, and the masked accuracy.

Expected values come from ``reference_impl.models.recurrent``; the LSTM cell is loaded with the
weights of a freshly initialised ``torch.nn.LSTMCell`` (gates i, f, g, o).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, module_case
from reference_impl.models.recurrent import (
    LSTMCell,
    hidden_grad_norms,
    make_recall_task,
    masked_accuracy,
)


def _randn(g: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(*shape, generator=g, dtype=dtype)


# --- hidden_grad_norms ------------------------------------------------------------------


def _norms_case(
    seed: int,
    t: int,
    scale: float,
    b: int = 2,
    i: int = 3,
    h: int = 6,
    h0_scale: float = 0.0,
    x_scale: float = 1.0,
) -> Case:
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    args = [
        x_scale * _randn(g, t, b, i, dtype=f64),
        h0_scale * _randn(g, b, h, dtype=f64),
        _randn(g, h, i, dtype=f64) / i**0.5,
        scale * torch.linalg.qr(_randn(g, h, h, dtype=f64))[0],  # spectral norm = radius = scale
        0.1 * _randn(g, h, dtype=f64),
        0.1 * _randn(g, h, dtype=f64),
    ]
    return Case(args, hidden_grad_norms(*args), atol=1e-12, rtol=1e-6)


GRAD_NORMS_CHECKS = [
    Check(
        "small recurrent weights: the norms vanish",
        0.5,
        lambda: _norms_case(0, 12, 0.5),
        "loss = h_{T-1}.sum(); norms[k] = norm of d loss / d h_{T-1-k}, computed by "
        "autograd through the whole unrolled graph (nothing detached)",
    ),
    Check(
        "large recurrent weights: the norms grow",
        0.5,
        lambda: _norms_case(1, 10, 2.5, x_scale=0.05),
        "keep every hidden state in the graph (torch.autograd.grad(loss, states), or "
        "retain_grad on each state); detaching any state cuts the chain",
    ),
    Check(
        "indexed by distance from the last step",
        0.5,
        lambda: _norms_case(2, 7, 1.0),
        "norms[0] is for the last state h_{T-1} (its norm is sqrt(B * H)), norms[T-1] for "
        "the first state h_0 after one step: reverse the time order",
    ),
    Check(
        "a starting state h0 and a batch of one",
        0.5,
        lambda: _norms_case(3, 8, 1.2, b=1, h0_scale=1.0),
        "the first step starts from h0 (not zeros); the norm is over the batch and the "
        "hidden units together",
    ),
    Check(
        "a single step",
        0.5,
        lambda: _norms_case(4, 1, 1.0, b=3),
        "with T = 1, return a tensor of one norm: sqrt(B * H)",
    ),
    Check(
        "a long sequence in float64",
        0.5,
        lambda: _norms_case(5, 40, 1.0, h=8),
        "the elman step is tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); keep the inputs' "
        "dtype (float64), and return a 1-D tensor of T norms",
    ),
]


# --- LSTMCell -------------------------------------------------------------------------------


def _lstm_case(
    seed: int,
    i: int = 4,
    h: int = 6,
    b: int = 3,
    with_state: bool = True,
    scale: float = 1.0,
    grads: tuple[int, ...] = (),
    params: bool = False,
    open_forget: bool = False,
) -> Case:
    torch.manual_seed(seed)
    peer = nn.LSTMCell(i, h)
    state = {k: v.detach().clone() for k, v in peer.state_dict().items()}
    if open_forget:  # forget gate open, input gate shut: c' = c
        state["bias_ih"][h : 2 * h] += 30.0
        state["bias_ih"][:h] -= 30.0
    ref = LSTMCell(i, h)
    ref.load_state_dict(state)
    g = torch.Generator().manual_seed(seed)
    x = scale * _randn(g, b, i)
    args: list[object] = [x]
    if with_state:
        args.append((_randn(g, b, h), 2.0 * _randn(g, b, h)))
    return module_case(ref, args, [i, h], state=state, grad_args=grads, params=params, grad_seed=g)


LSTM_CHECKS = [
    Check(
        "values (h', c') against torch.nn.LSTMCell's weights",
        0.5,
        lambda: _lstm_case(10),
        "gates = x W_ih^T + b_ih + h W_hh^T + b_hh split in the order i, f, g, o; "
        "c' = sigmoid(f) * c + sigmoid(i) * tanh(g); h' = sigmoid(o) * tanh(c')",
    ),
    Check(
        "no state given: start from zeros",
        0.5,
        lambda: _lstm_case(11, with_state=False),
        "forward(x, state=None) must use h = c = zeros(B, hidden_size)",
    ),
    Check(
        "gradients of the four parameters",
        0.5,
        lambda: _lstm_case(12, params=True),
        "weight_ih (4H, I), weight_hh (4H, H), bias_ih, bias_hh (4H,) as nn.Parameters; "
        "the same gate order as torch (i, f, g, o)",
    ),
    Check(
        "gradient of x",
        0.5,
        lambda: _lstm_case(13, grads=(0,)),
        "build h' from torch operations on x, nothing detached",
    ),
    Check(
        "an open forget gate keeps the cell state",
        0.5,
        lambda: _lstm_case(14, open_forget=True),
        "the forget gate (second quarter) multiplies the OLD cell state c, the input gate "
        "(first quarter) multiplies the candidate tanh(g)",
    ),
    Check(
        "large inputs stay finite",
        0.5,
        lambda: _lstm_case(15, scale=500.0, params=True),
        "use torch.sigmoid and torch.tanh (saturating), not exp formulas by hand",
    ),
]


# --- make_recall_task ---------------------------------------------------------------------


def _task_case(n: int, length: int, distance: int, vocab_size: int, seed: int) -> Case:
    args = [n, length, distance, vocab_size, seed]
    return Case(args, make_recall_task(n, length, distance, vocab_size, seed))


RECALL_CHECKS = [
    Check(
        "a small task: inputs and delayed targets",
        0.5,
        lambda: _task_case(4, 12, 3, 8, 0),
        "x = torch.randint(0, vocab_size, (n, length), generator=torch.Generator()"
        ".manual_seed(seed)); y[:, t] = x[:, t - distance]",
    ),
    Check(
        "positions before the distance are ignored (-100)",
        0.5,
        lambda: _task_case(3, 20, 15, 3, 1),
        "y[:, :distance] must be -100 (cross_entropy's ignore_index), not 0",
    ),
    Check(
        "distance 0: the target is the current token",
        0.5,
        lambda: _task_case(5, 9, 0, 6, 2),
        "with distance 0, y == x: beware x[:, :-distance], which is empty when distance is 0",
    ),
    Check(
        "the largest distance, length - 1",
        0.5,
        lambda: _task_case(6, 10, 9, 4, 3),
        "only the last position has a target, the first token",
    ),
    Check(
        "seeded: another seed, size and vocabulary",
        0.5,
        lambda: _task_case(64, 30, 10, 5, 1234),
        "draw x with one fresh generator seeded with seed, in one randint call of shape "
        "(n, length); return int64 tensors (x, y)",
    ),
    Check(
        "a single sequence of two tokens",
        0.5,
        lambda: _task_case(1, 2, 1, 2, 7),
        "y[:, 1] = x[:, 0] when distance is 1: the target looks back, not ahead",
    ),
]


# --- masked_accuracy ----------------------------------------------------------------------


def _acc_case(
    seed: int,
    shape: tuple[int, ...],
    v: int,
    ignored: float = 0.0,
    ignore_index: int = -100,
    perfect: bool = False,
) -> Case:
    g = torch.Generator().manual_seed(seed)
    logits = _randn(g, *shape, v)
    targets = torch.randint(0, v, shape, generator=g)
    if perfect:
        targets = logits.argmax(-1)
    if ignored:
        targets[torch.rand(shape, generator=g) < ignored] = ignore_index
    kwargs = {} if ignore_index == -100 else {"ignore_index": ignore_index}
    return Case(
        [logits, targets], float(masked_accuracy(logits, targets, ignore_index)), kwargs=kwargs
    )


ACCURACY_CHECKS = [
    Check(
        "logits (N, V), nothing ignored",
        0.5,
        lambda: _acc_case(0, (40,), 3),
        "the fraction of positions where logits.argmax(-1) == targets, as a Python float",
    ),
    Check(
        "logits (B, T, V) with ignored positions",
        0.5,
        lambda: _acc_case(1, (6, 20), 4, ignored=0.5),
        "count only positions with targets != ignore_index, in the numerator and the "
        "denominator; take the argmax over the LAST dimension",
    ),
    Check(
        "every position ignored gives 0.0",
        0.5,
        lambda: _acc_case(2, (3, 5), 4, ignored=1.0),
        "when no position counts, return 0.0 (not nan, no division by zero)",
    ),
    Check(
        "another ignore_index",
        0.5,
        lambda: _acc_case(6, (5, 8), 6, ignored=0.3, ignore_index=0),
        "use the ignore_index argument (default -100), not a hard-coded -100",
    ),
    Check(
        "perfect predictions give 1.0",
        0.5,
        lambda: _acc_case(4, (4, 12), 5, ignored=0.2, perfect=True),
        "targets that equal the argmax everywhere (ignored ones aside) must give exactly 1.0",
    ),
    Check(
        "a Python float on a large batch",
        0.5,
        lambda: _acc_case(5, (64, 30), 8, ignored=0.25),
        "return a Python float (.item()), not a tensor",
    ),
]


ITEMS: dict[str, Item] = {
    "vanishing_gradients.grad_norms": Item(
        "hidden_grad_norms",
        GRAD_NORMS_CHECKS,
        Signature(
            "x, h0, weight_ih, weight_hh, bias_ih, bias_hh",
            shapes={
                "x": "(T, B, I)",
                "h0": "(B, H)",
                "weight_ih": "(H, I)",
                "weight_hh": "(H, H)",
                "bias_ih": "(H,)",
                "bias_hh": "(H,)",
                "return": "(T,)",
            },
        ),
    ),
    "vanishing_gradients.lstm_cell": Item(
        "LSTMCell",
        LSTM_CHECKS,
        Signature(
            "input_size, hidden_size",
            forward="x, state=None",
            shapes={
                "x": "(B, input_size)",
                "return[0]": "(B, hidden_size)",
                "return[1]": "(B, hidden_size)",
            },
        ),
    ),
    "vanishing_gradients.recall_task": Item(
        "make_recall_task",
        RECALL_CHECKS,
        Signature(
            "n, length, distance, vocab_size, seed",
            shapes={"return[0]": "(n, length)", "return[1]": "(n, length)"},
        ),
    ),
    "vanishing_gradients.accuracy": Item(
        "masked_accuracy",
        ACCURACY_CHECKS,
        Signature(
            "logits, targets, ignore_index=-100", shapes={"logits": "(*N, C)", "targets": "(*N)"}
        ),
    ),
}
