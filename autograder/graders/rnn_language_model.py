"""Grader of the rnn_language_model notebook (part1_evolution): the Elman cell, the RNN
unrolled over a sequence, truncated backpropagation through time, temperature sampling.

The modules are loaded with the weights of a freshly initialised ``torch.nn.RNNCell`` /
``torch.nn.RNN`` (renamed ``cell.*`` for the sequence module); expected values and gradients
come from ``reference_impl.models.recurrent`` on exactly those weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, module_case
from reference_impl.models.recurrent import (
    RNN,
    RNNCell,
    rnn_forward_chunks,
    sample_with_temperature,
)

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _randn(g: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(*shape, generator=g, dtype=dtype)


# --- RNNCell ----------------------------------------------------------------------------------


def _cell_case(
    seed: int,
    i: int = 5,
    h: int = 8,
    b: int = 3,
    with_h: bool = True,
    scale: float = 1.0,
    grads: tuple[int, ...] = (),
    params: bool = False,
) -> Case:
    torch.manual_seed(seed)
    peer = nn.RNNCell(i, h)  # torch's initialisation and names
    ref = RNNCell(i, h)
    ref.load_state_dict(peer.state_dict())
    g = torch.Generator().manual_seed(seed)
    args = [scale * _randn(g, b, i)] + ([_randn(g, b, h)] if with_h else [])
    return module_case(ref, args, [i, h], grad_args=grads, params=params, grad_seed=g)


RNN_CELL_CHECKS = [
    Check(
        "values against torch.nn.RNNCell's weights",
        0.5,
        lambda: _cell_case(0),
        "h' = tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh): check the "
        "transposes, both biases and the tanh",
    ),
    Check(
        "no hidden state given: start from zeros",
        0.5,
        lambda: _cell_case(1, with_h=False),
        "forward(x, h=None) must use h = zeros(B, hidden_size)",
    ),
    Check(
        "gradients of weight_ih, weight_hh, bias_ih, bias_hh",
        0.5,
        lambda: _cell_case(2, params=True),
        "build the step from torch operations on the four nn.Parameters (names as "
        "torch.nn.RNNCell), nothing detached",
    ),
    Check(
        "gradients of x and h",
        0.5,
        lambda: _cell_case(3, grads=(0, 1)),
        "the gradient must flow back into both the input and the previous hidden state",
    ),
    Check(
        "large inputs saturate without overflow",
        0.5,
        lambda: _cell_case(4, scale=300.0),
        "tanh keeps h in [-1, 1]: use torch.tanh, not a hand-written exp formula or sigmoid",
    ),
    Check(
        "batch of one, hidden larger than input",
        0.5,
        lambda: _cell_case(5, i=3, h=16, b=1, grads=(0,), params=True),
        "shapes: weight_ih is (hidden_size, input_size), weight_hh (hidden_size, hidden_size)",
    ),
]


# --- RNN over a sequence -------------------------------------------------------------------


def _rnn_case(
    seed: int,
    batch_first: bool,
    t: int = 6,
    i: int = 4,
    h: int = 8,
    b: int = 3,
    with_h0: bool = False,
    grads: tuple[int, ...] = (),
    params: bool = False,
) -> Case:
    torch.manual_seed(seed)
    peer = nn.RNN(i, h, batch_first=batch_first)
    state = {f"cell.{n}": getattr(peer, f"{n}_l0").detach().clone() for n in NAMES}
    ref = RNN(i, h, batch_first=batch_first)
    ref.load_state_dict(state)
    g = torch.Generator().manual_seed(seed)
    args = [_randn(g, b, t, i) if batch_first else _randn(g, t, b, i)]
    if with_h0:
        args.append(_randn(g, b, h))
    return module_case(
        ref,
        args,
        [i, h],
        init_kwargs={"batch_first": batch_first},
        state=state,
        grad_args=grads,
        params=params,
        grad_seed=g,
    )


RNN_CHECKS = [
    Check(
        "time-major values against torch.nn.RNN",
        0.5,
        lambda: _rnn_case(10, False),
        "x is (T, B, input_size) when batch_first is False: step over dim 0 and return "
        "(output (T, B, H), h_n (B, H))",
    ),
    Check(
        "batch-first values against torch.nn.RNN",
        0.5,
        lambda: _rnn_case(11, True),
        "with batch_first=True, x is (B, T, input_size): step over dim 1 and stack the "
        "outputs on dim 1",
    ),
    Check(
        "a given h0 is the starting state",
        0.5,
        lambda: _rnn_case(12, False, with_h0=True),
        "forward(x, h0) must start from h0, not from zeros",
    ),
    Check(
        "parameter gradients through every step",
        0.5,
        lambda: _rnn_case(13, False, params=True),
        "the same cell (self.cell, names cell.weight_ih ...) at every step, the state "
        "passed on without detaching",
    ),
    Check(
        "gradients of x and h0 (batch-first)",
        0.5,
        lambda: _rnn_case(14, True, with_h0=True, grads=(0, 1)),
        "gradients must reach every input step and the initial state",
    ),
    Check(
        "a long sequence (40 steps)",
        0.5,
        lambda: _rnn_case(15, False, t=40, b=2, params=True),
        "h_n is the hidden state after the last step (output[-1], or output[:, -1] when "
        "batch_first)",
    ),
]


# --- truncated BPTT -----------------------------------------------------------------------


def _tbptt_case(
    seed: int,
    t: int,
    chunk_len: int,
    grads: tuple[int, ...],
    i: int = 3,
    h: int = 5,
    b: int = 2,
    whh_scale: float = 1.0,
) -> Case:
    g = torch.Generator().manual_seed(seed)
    args: list[Tensor] = [
        _randn(g, t, b, i, dtype=torch.float64),
        _randn(g, b, h, dtype=torch.float64),
        _randn(g, h, i, dtype=torch.float64) / i**0.5,
        whh_scale * _randn(g, h, h, dtype=torch.float64) / h**0.5,
        0.1 * _randn(g, h, dtype=torch.float64),
        0.1 * _randn(g, h, dtype=torch.float64),
    ]
    inputs = [a.clone().requires_grad_(n in grads) for n, a in enumerate(args)]
    out, h_last = rnn_forward_chunks(*inputs, chunk_len=chunk_len)  # type: ignore[arg-type,misc]
    case = Case(args, (out.detach(), h_last), kwargs={"chunk_len": chunk_len}, atol=1e-9, rtol=1e-7)
    if grads:
        g_out = _randn(g, *out.shape, dtype=torch.float64)
        found = torch.autograd.grad(out, [inputs[n] for n in grads], g_out)
        case.grad_output, case.grad_args, case.expected_grads = g_out, grads, list(found)
    return case


TBPTT_CHECKS = [
    Check(
        "values: the state is carried across chunks",
        0.5,
        lambda: _tbptt_case(20, 9, 3, ()),
        "the next chunk starts from the last hidden state of the previous chunk (the "
        "values equal one pass over the whole sequence), not from h0 or zeros",
    ),
    Check(
        "no gradient flows into the previous chunk (weight_hh)",
        0.5,
        lambda: _tbptt_case(21, 8, 4, (3,), whh_scale=1.5),
        "detach the hidden state at each chunk boundary (h = h.detach()): backpropagation "
        "must stop at the first step of each chunk",
    ),
    Check(
        "h0 gets gradient from the first chunk only",
        0.5,
        lambda: _tbptt_case(22, 6, 2, (1,)),
        "only the first chunk's outputs depend on h0 through the graph: detach between "
        "chunks, but not inside a chunk and not h0 itself",
    ),
    Check(
        "chunk length that does not divide T",
        0.5,
        lambda: _tbptt_case(23, 7, 3, (2, 4)),
        "the last chunk is shorter (x[start:start + chunk_len]); do not drop or pad it",
    ),
    Check(
        "one chunk is full backpropagation through time",
        0.5,
        lambda: _tbptt_case(24, 5, 10, (0, 3)),
        "within a chunk the gradient flows through every step: do not detach at every step",
    ),
    Check(
        "chunks of one step",
        0.5,
        lambda: _tbptt_case(25, 5, 1, (3, 5)),
        "with chunk_len=1 every step is its own chunk; return (outputs (T, B, H), the last "
        "state detached)",
    ),
]


# --- temperature sampling ---------------------------------------------------------------


def _sample_case(seed: int, b: int, v: int, temperature: float, scale: float = 2.0) -> Case:
    g = torch.Generator().manual_seed(1000 + seed)
    logits = scale * _randn(g, b, v)
    return Case([logits, temperature, seed], sample_with_temperature(logits, temperature, seed))


SAMPLE_CHECKS = [
    Check(
        "temperature 1: samples from softmax(logits)",
        0.5,
        lambda: _sample_case(0, 16, 10, 1.0),
        "probs = torch.softmax(logits / temperature, dim=-1), then torch.multinomial(probs, "
        "1, generator=torch.Generator().manual_seed(seed)).squeeze(-1)",
    ),
    Check(
        "temperature 0.5 sharpens the distribution",
        0.5,
        lambda: _sample_case(1, 32, 12, 0.5),
        "divide the logits by the temperature (do not multiply, do not scale the probabilities)",
    ),
    Check(
        "temperature 3 flattens it",
        0.5,
        lambda: _sample_case(2, 64, 6, 3.0),
        "divide the logits by the temperature before the softmax",
    ),
    Check(
        "temperature 0 is greedy (argmax)",
        0.5,
        lambda: _sample_case(3, 20, 9, 0.0),
        "temperature == 0 must return logits.argmax(-1) (dividing by 0 gives nan)",
    ),
    Check(
        "large logits stay finite",
        0.5,
        lambda: _sample_case(4, 16, 8, 0.7, scale=2000.0),
        "use torch.softmax (it subtracts the maximum), not exp(logits) / sum",
    ),
    Check(
        "seeded: a fixed generator, one sample per row",
        0.5,
        lambda: _sample_case(5, 200, 5, 1.2, scale=0.5),
        "use your own torch.Generator().manual_seed(seed) and torch.multinomial(probs, 1): "
        "(B,) int64 ids, reproducible for a seed",
    ),
]


ITEMS: dict[str, Item] = {
    "rnn_language_model.rnn_cell": Item(
        "RNNCell",
        RNN_CELL_CHECKS,
        Signature(
            "input_size, hidden_size",
            forward="x, h=None",
            shapes={"x": "(B, input_size)", "h": "(B, hidden_size)", "return": "(B, hidden_size)"},
        ),
    ),
    "rnn_language_model.rnn_forward": Item(
        "RNN",
        RNN_CHECKS,
        Signature(
            "input_size, hidden_size, batch_first=False",
            forward="x, h0=None",
            shapes={
                "x": "(S0, S1, input_size)",
                "h0": "(B, hidden_size)",
                "return[0]": "(S0, S1, hidden_size)",
                "return[1]": "(B, hidden_size)",
            },
        ),
    ),
    "rnn_language_model.tbptt": Item(
        "rnn_forward_chunks",
        TBPTT_CHECKS,
        Signature(
            "x, h0, weight_ih, weight_hh, bias_ih, bias_hh, chunk_len",
            shapes={
                "x": "(T, B, I)",
                "h0": "(B, H)",
                "weight_ih": "(H, I)",
                "weight_hh": "(H, H)",
                "bias_ih": "(H,)",
                "bias_hh": "(H,)",
                "return[0]": "(T, B, H)",
                "return[1]": "(B, H)",
            },
        ),
    ),
    "rnn_language_model.sample": Item(
        "sample_with_temperature",
        SAMPLE_CHECKS,
        Signature("logits, temperature, seed", shapes={"logits": "(B, V)", "return": "(B,)"}),
    ),
}
