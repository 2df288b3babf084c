"""Recurrent language-model pieces: the Elman RNN and the LSTM, cell by cell.

Parameter names and layouts follow ``torch.nn.RNNCell`` / ``torch.nn.LSTMCell`` (``weight_ih``
of shape (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,), with G = 1 for
the RNN and G = 4 for the LSTM, gates in the order i, f, g, o), so torch's weights load as they
are. The sequence modules hold one cell as ``cell`` and unroll it in a Python loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LSTMState = tuple[Tensor, Tensor]


def _init_uniform(module: nn.Module, hidden_size: int) -> None:
    """torch's initialisation of recurrent weights: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


class RNNCell(nn.Module):
    """One Elman step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh).

    x: (B, I), h: (B, H) or None (zeros) -> h': (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        _init_uniform(self, hidden_size)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        pre = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)


class LSTMCell(nn.Module):
    """One LSTM step (gates i, f, g, o as ``torch.nn.LSTMCell``).

    [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh; i, f, o = sigmoid(.), g = tanh(.);
    c' = f * c + i * g; h' = o * tanh(c').
    x: (B, I), state: ((B, H), (B, H)) or None (zeros) -> (h', c'), each (B, H).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        _init_uniform(self, hidden_size)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(
            h, self.weight_hh, self.bias_hh
        )
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class RNN(nn.Module):
    """An Elman RNN unrolled over a sequence (one layer, as ``torch.nn.RNN``).

    x: (T, B, I), or (B, T, I) with ``batch_first``; h0: (B, H) or None ->
    (output: (T, B, H) or (B, T, H), the hidden state at every step; h_n: (B, H)).
    Unlike torch, h0 and h_n have no leading layer dimension.
    """

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool = False) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.cell = RNNCell(input_size, hidden_size)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        steps = x.unbind(1 if self.batch_first else 0)
        h = h0
        outputs = []
        for x_t in steps:
            h = self.cell(x_t, h)
            outputs.append(h)
        output = torch.stack(outputs, 1 if self.batch_first else 0)
        return output, outputs[-1]


class LSTM(nn.Module):
    """An LSTM unrolled over a sequence (one layer, as ``torch.nn.LSTM``).

    x: (T, B, I), or (B, T, I) with ``batch_first``; state: ((B, H), (B, H)) or None ->
    (output: (T, B, H) or (B, T, H); (h_n, c_n), each (B, H)).
    """

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool = False) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.cell = LSTMCell(input_size, hidden_size)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        outputs = []
        for x_t in x.unbind(1 if self.batch_first else 0):
            state = self.cell(x_t, state)
            outputs.append(state[0])
        assert state is not None
        return torch.stack(outputs, 1 if self.batch_first else 0), state


class RNNLanguageModel(nn.Module):
    """Character-level language model: embedding -> RNN or LSTM -> linear head.

    idx: (B, T) token ids; state: the recurrent state or None ->
    (logits: (B, T, vocab_size), the final state, to carry into the next chunk).
    """

    def __init__(self, vocab_size: int, hidden_size: int, kind: str = "rnn") -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.rnn: RNN | LSTM
        if kind == "rnn":
            self.rnn = RNN(hidden_size, hidden_size, batch_first=True)
        elif kind == "lstm":
            self.rnn = LSTM(hidden_size, hidden_size, batch_first=True)
        else:
            raise ValueError(f"kind must be 'rnn' or 'lstm', got {kind!r}")
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(
        self, idx: Tensor, state: Tensor | LSTMState | None = None
    ) -> tuple[Tensor, Tensor | LSTMState]:
        output, state = self.rnn(self.embed(idx), state)
        return self.head(output), state


def rnn_forward_chunks(
    x: Tensor,
    h0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
    chunk_len: int,
) -> tuple[Tensor, Tensor]:
    """Truncated BPTT's forward pass: the Elman RNN over x (T, B, I) from h0 (B, H), in chunks
    of ``chunk_len`` steps; the state is carried into the next chunk but detached, so the
    gradient of a chunk's outputs stops at the chunk's first step. Returns (outputs (T, B, H),
    the final state detached (B, H))."""
    h = h0
    outputs = []
    for start in range(0, x.shape[0], chunk_len):
        if start > 0:
            h = h.detach()
        for x_t in x[start : start + chunk_len]:
            h = torch.tanh(F.linear(x_t, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh))
            outputs.append(h)
    return torch.stack(outputs), h.detach()


def hidden_grad_norms(
    x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor
) -> Tensor:
    """norms[k] = || d loss / d h_{T-1-k} ||, k = 0 .. T-1, for loss = h_{T-1}.sum(), where
    h_t is the Elman RNN's state after step t on x (T, B, I) from h0 (B, H)."""
    h = h0.detach().clone().requires_grad_(True)
    states = []
    for x_t in x:
        h = torch.tanh(F.linear(x_t, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh))
        states.append(h)
    grads = torch.autograd.grad(states[-1].sum(), states)
    return torch.stack([g.norm() for g in reversed(grads)])


def make_recall_task(
    n: int, length: int, distance: int, vocab_size: int, seed: int
) -> tuple[Tensor, Tensor]:
    """The delayed-recall task: x (n, length) uniform token ids in [0, vocab_size) drawn with
    ``torch.Generator().manual_seed(seed)``; y[:, t] = x[:, t - distance] for t >= distance,
    and -100 (ignored by the loss) before."""
    if not 0 <= distance < length:
        raise ValueError(f"need 0 <= distance < length, got {distance} and {length}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab_size, (n, length), generator=g)
    y = torch.full_like(x, -100)
    y[:, distance:] = x[:, : length - distance]
    return x, y


def masked_accuracy(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> float:
    """The fraction of positions with ``targets != ignore_index`` where the argmax of
    ``logits`` (..., V) equals ``targets`` (...); 0.0 when every position is ignored."""
    keep = targets != ignore_index
    if not keep.any():
        return 0.0
    correct = (logits.argmax(-1) == targets) & keep
    return correct.sum().item() / keep.sum().item()


def sample_with_temperature(logits: Tensor, temperature: float, seed: int) -> Tensor:
    """One token id per row of ``logits`` (B, V) -> (B,) int64: argmax when temperature is
    0, else ``torch.multinomial(softmax(logits / temperature), 1)`` with a generator seeded
    with ``seed``."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(probs, 1, generator=g).squeeze(-1)
