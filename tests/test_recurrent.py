"""The recurrent reference models against torch's own RNN and LSTM with the same weights:
outputs, final states and every gradient, time-major and batch-first."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reference_impl.models import LSTM, RNN, LSTMCell, RNNCell, RNNLanguageModel
from reference_impl.models.recurrent import (
    hidden_grad_norms,
    make_recall_task,
    masked_accuracy,
    rnn_forward_chunks,
    sample_with_temperature,
)

IN, H, B, T = 5, 7, 3, 6
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def test_rnn_cell_matches_torch() -> None:
    torch.manual_seed(0)
    peer = nn.RNNCell(IN, H).double()
    cell = RNNCell(IN, H).double()
    cell.load_state_dict(peer.state_dict())
    x = torch.randn(B, IN, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    out, expected = cell(x, h), peer(x, h)
    torch.testing.assert_close(out, expected)
    g = torch.randn_like(out)
    got_grads = torch.autograd.grad(out, [x, h, *cell.parameters()], g)
    exp_grads = torch.autograd.grad(expected, [x, h, *peer.parameters()], g)
    for a, b in zip(got_grads, exp_grads, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(cell(x), peer(x))  # no state: zeros


def test_lstm_cell_matches_torch() -> None:
    torch.manual_seed(1)
    peer = nn.LSTMCell(IN, H).double()
    cell = LSTMCell(IN, H).double()
    cell.load_state_dict(peer.state_dict())
    x = torch.randn(B, IN, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    got, expected = cell(x, (h, c)), peer(x, (h, c))
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)
    gh, gc = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    got_grads = torch.autograd.grad(got, [x, h, c, *cell.parameters()], [gh, gc])
    exp_grads = torch.autograd.grad(expected, [x, h, c, *peer.parameters()], [gh, gc])
    for a, b in zip(got_grads, exp_grads, strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(cell(x), peer(x), strict=True):
        torch.testing.assert_close(a, b)


def _load_seq(module: nn.Module, peer: nn.Module) -> None:
    module.load_state_dict({f"cell.{n}": getattr(peer, f"{n}_l0") for n in NAMES})


@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_matches_torch(batch_first: bool) -> None:
    torch.manual_seed(2)
    peer = nn.RNN(IN, H, batch_first=batch_first).double()
    rnn = RNN(IN, H, batch_first=batch_first).double()
    _load_seq(rnn, peer)
    shape = (B, T, IN) if batch_first else (T, B, IN)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    out, hn = rnn(x, h0)
    exp_out, exp_hn = peer(x, h0[None])
    torch.testing.assert_close(out, exp_out)
    torch.testing.assert_close(hn, exp_hn[0])
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, h0, *rnn.parameters()], g)
    exp = torch.autograd.grad(exp_out, [x, h0, *peer.parameters()], g)
    for a, b in zip(got, exp, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(rnn(x)[0], peer(x)[0])


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_matches_torch(batch_first: bool) -> None:
    torch.manual_seed(3)
    peer = nn.LSTM(IN, H, batch_first=batch_first).double()
    lstm = LSTM(IN, H, batch_first=batch_first).double()
    _load_seq(lstm, peer)
    shape = (B, T, IN) if batch_first else (T, B, IN)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    out, (hn, cn) = lstm(x, (h0, c0))
    exp_out, (exp_hn, exp_cn) = peer(x, (h0[None], c0[None]))
    torch.testing.assert_close(out, exp_out)
    torch.testing.assert_close(hn, exp_hn[0])
    torch.testing.assert_close(cn, exp_cn[0])
    g = torch.randn_like(out)
    loss = (out * g).sum() + cn.sum()
    exp_loss = (exp_out * g).sum() + exp_cn.sum()
    got = torch.autograd.grad(loss, [x, h0, c0, *lstm.parameters()])
    exp = torch.autograd.grad(exp_loss, [x, h0, c0, *peer.parameters()])
    for a, b in zip(got, exp, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_language_model_carries_state(kind: str) -> None:
    torch.manual_seed(4)
    model = RNNLanguageModel(11, 8, kind).double()
    idx = torch.randint(0, 11, (2, 9))
    logits, _ = model(idx)
    first, state = model(idx[:, :4])
    second, _ = model(idx[:, 4:], state)
    assert logits.shape == (2, 9, 11)
    torch.testing.assert_close(torch.cat([first, second], 1), logits)


def _weights(h: int, i: int, scale: float = 1.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return [
        torch.randn(h, i, generator=g, dtype=torch.float64) / i**0.5,
        scale * torch.randn(h, h, generator=g, dtype=torch.float64) / h**0.5,
        0.1 * torch.randn(h, generator=g, dtype=torch.float64),
        0.1 * torch.randn(h, generator=g, dtype=torch.float64),
    ]


def test_chunks_carry_values_and_cut_gradients() -> None:
    w = [p.requires_grad_() for p in _weights(H, IN)]
    x = torch.randn(8, B, IN, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    out, hn = rnn_forward_chunks(x, h0, *w, chunk_len=3)
    peer = nn.RNN(IN, H).double()
    with torch.no_grad():
        for n, p in zip(NAMES, w, strict=True):
            getattr(peer, f"{n}_l0").copy_(p)
    torch.testing.assert_close(out, peer(x, h0[None])[0])  # values: the state is carried
    assert not hn.requires_grad
    (g,) = torch.autograd.grad(out[3:].sum(), [h0], allow_unused=True, retain_graph=True)
    assert g is None or not g.any()  # chunks after the first do not reach h0
    (g_w,) = torch.autograd.grad(out[3:6].sum(), [w[1]])
    manual = rnn_forward_chunks(x[3:6], out[2].detach(), *w, chunk_len=3)[0]
    torch.testing.assert_close(g_w, torch.autograd.grad(manual.sum(), [w[1]])[0])


def test_hidden_grad_norms_match_jacobian_products() -> None:
    w = _weights(4, 3, scale=0.8)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h0 = torch.zeros(2, 4, dtype=torch.float64)
    norms = hidden_grad_norms(x, h0, *w)
    states, h = [], h0
    for x_t in x:
        h = torch.tanh(F.linear(x_t, w[0], w[2]) + F.linear(h, w[1], w[3]))
        states.append(h)
    # back-propagate by hand: dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) W_hh
    grad = torch.ones(2, 4, dtype=torch.float64)
    expected = [grad.norm()]
    for t in range(len(states) - 1, 0, -1):
        grad = (grad * (1 - states[t] ** 2)) @ w[1]
        expected.append(grad.norm())
    torch.testing.assert_close(norms, torch.stack(expected))


def test_recall_task_layout() -> None:
    x, y = make_recall_task(4, 10, 3, 6, seed=0)
    assert x.shape == y.shape == (4, 10) and x.dtype == torch.int64
    assert (y[:, :3] == -100).all() and torch.equal(y[:, 3:], x[:, :7])
    assert torch.equal(make_recall_task(4, 10, 3, 6, seed=0)[0], x)
    assert torch.equal(make_recall_task(2, 5, 0, 3, seed=1)[1], make_recall_task(2, 5, 0, 3, 1)[0])
    with pytest.raises(ValueError):
        make_recall_task(1, 4, 4, 3, seed=0)


def test_masked_accuracy_and_sampling() -> None:
    logits = torch.eye(3)[None].repeat(2, 1, 1)  # argmax 0, 1, 2
    targets = torch.tensor([[0, 1, -100], [2, -100, 2]])
    assert masked_accuracy(logits, targets) == 0.75
    assert masked_accuracy(logits, torch.full((2, 3), -100)) == 0.0
    big = torch.tensor([[0.0, 1000.0, -1000.0], [5.0, 4.0, 3.0]])
    assert sample_with_temperature(big, 0, seed=0).tolist() == [1, 0]
    assert sample_with_temperature(big, 1.0, seed=0)[0] == 1
    a = sample_with_temperature(torch.zeros(50, 4), 1.0, seed=3)
    assert torch.equal(a, sample_with_temperature(torch.zeros(50, 4), 1.0, seed=3))
