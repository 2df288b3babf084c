"""Grader of the embeddings-and-positions notebook (part2_fundamentals): the sinusoidal
table, rotary position embeddings (RoPE) and token + learned position embeddings.

Expected values always come from ``reference_impl``; the tolerances follow its precision:

- ``sinusoidal_positions`` returns float32 (the interface); the reference computes in
  float64 and rounds once, while a float32 computation (``exp(-log(base) 2i/d)`` or
  ``base ** (2i/d)``) errs by about ``p * 2^-24`` at position p: atol 1e-5 for tables of up
  to 64 positions, 2e-4 for 1024 positions (measured: 3e-6 and 2e-5).
- ``apply_rope``: the expected output is the reference's ``apply_rope`` with the float32
  ``rope_tables`` indexed by the positions. Their angles err by about ``p * 2^-24``, so a
  student who computes in float64 differs by ~1e-6 at positions below 50 (atol 1e-5) and
  by ~2e-4 at positions up to 4095 (atol 2e-3, where a pure rotation is also checked by
  the lengths of the pairs, in float64).
- ``TokenPositionEmbedding``: lookups and one sum in float32, taken from the embedding
  stage of a reference ``TransformerLM`` (``pos_kind="learned"``), at atol 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, module_case
from reference_impl.models import (
    ModelConfig,
    TransformerLM,
    apply_rope,
    rope_tables,
    sinusoidal_positions,
)

# --- sinusoidal_positions -------------------------------------------------------------------


def _sin_case(t: int, d: int, base: float | None = None, atol: float = 1e-5) -> Case:
    kwargs = {} if base is None else {"base": base}
    return Case([t, d], sinusoidal_positions(t, d, **kwargs), kwargs, atol=atol, rtol=0.0)


SINUSOIDAL_CHECKS = [
    Check(
        "values of a 16 x 8 table",
        1.0,
        lambda: _sin_case(16, 8),
        "pe[p, 2i] = sin(p / base^(2i/d)) and pe[p, 2i+1] = cos(p / base^(2i/d)): sin in the "
        "even columns, cos in the odd ones (interleaved, not two halves); float32",
    ),
    Check(
        "frequencies across a wide table (64 x 64)",
        1.0,
        lambda: _sin_case(64, 64),
        "column pair i uses the frequency base^(-2i/d): the exponent is 2i/d, with "
        "2i = 0, 2, 4, ... the even column index",
    ),
    Check(
        "position 0 is [0, 1, 0, 1, ...]",
        0.5,
        lambda: _sin_case(1, 10),
        "positions run 0 .. t-1 (torch.arange(t)); sin(0) = 0 in even columns, cos(0) = 1 "
        "in odd ones",
    ),
    Check(
        "a custom base (100)",
        0.5,
        lambda: _sin_case(20, 12, base=100.0),
        "use the base argument instead of the constant 10000",
    ),
    Check(
        "a single pair of columns (d = 2)",
        0.5,
        lambda: _sin_case(7, 2),
        "with d = 2 the table is [sin(p), cos(p)] for each position p",
    ),
    Check(
        "a long table (1024 positions) stays accurate",
        0.5,
        lambda: _sin_case(1024, 16, atol=2e-4),
        "build the table from t (no fixed size); compute angles in float32 or float64, not float16",
    ),
]


# --- apply_rope -----------------------------------------------------------------------------


def _rope_expected(x: Tensor, positions: Tensor, theta: float) -> Tensor:
    """The reference: its float32 tables, indexed by the positions, applied to x."""
    cos, sin = rope_tables(int(positions.max()) + 1, x.size(-1), theta)
    return apply_rope(x, cos[positions].to(x.dtype), sin[positions].to(x.dtype))


def _pair_lengths(x: Tensor) -> Tensor:
    """Length of each rotated pair (x[i], x[i + d/2]) in float64."""
    x1, x2 = x.double().chunk(2, dim=-1)
    return (x1**2 + x2**2).sqrt()


def _rope_case(
    seed: int,
    shape: tuple[int, ...] = (2, 3, 6, 8),
    positions: Tensor | None = None,
    theta: float | None = None,
    dtype: torch.dtype = torch.float64,
    grads: bool = False,
    atol: float = 1e-5,
    lengths: bool = False,
) -> Case:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    if positions is None:
        positions = torch.arange(shape[-2])
    kwargs = {} if theta is None else {"theta": theta}
    x_in = x.clone().requires_grad_(grads)
    out = _rope_expected(x_in, positions, 10000.0 if theta is None else theta)
    extra: Callable[[Tensor], str | None] | None = None
    if lengths:
        want = _pair_lengths(x)

        def extra(got: Tensor) -> str | None:
            worst = float((_pair_lengths(got) - want).abs().max())
            if worst <= 1e-5:
                return None
            return f"a rotation keeps each pair's length, but one changed by {worst:.3g}"

    case = Case([x, positions], out.detach(), kwargs, atol=atol, rtol=1e-5, extra=extra)
    if grads:
        g_out = torch.randn(out.shape, generator=g, dtype=out.dtype)
        case.grad_args, case.grad_output = (0,), g_out
        case.expected_grads = list(torch.autograd.grad(out, [x_in], g_out))
    return case


ROPE_CHECKS = [
    Check(
        "values: x (2, 3, 6, 8) at positions 0..5",
        1.0,
        lambda: _rope_case(1),
        "rotate-half layout: pair (x[i], x[i + d/2]) turns by positions[t] * "
        "theta^(-2i/d); out = x * cos + rotate_half(x) * sin with "
        "rotate_half([x1, x2]) = [-x2, x1]",
    ),
    Check(
        "gradients flow to x",
        1.0,
        lambda: _rope_case(2, grads=True),
        "use torch operations on x only, without .detach(), .item() or numpy",
    ),
    Check(
        "positions not starting at 0 (7..11, as with a cache)",
        1.0,
        lambda: _rope_case(3, shape=(1, 2, 5, 16), positions=torch.arange(7, 12)),
        "the angle of row t is positions[t] * frequency: use the positions argument, "
        "not torch.arange(T)",
    ),
    Check(
        "a custom theta (500) and width 16",
        0.5,
        lambda: _rope_case(4, shape=(3, 4, 16), theta=500.0),
        "the frequencies are theta^(-2i/d): use the theta argument",
    ),
    Check(
        "float32 x with no leading dims stays float32",
        0.5,
        lambda: _rope_case(5, shape=(9, 12), dtype=torch.float32),
        "return x's dtype: build cos and sin in float32 or cast them with .to(x.dtype); "
        "x may be (T, d) with no batch or head dims",
    ),
    Check(
        "large positions (up to 4095) and pure rotation",
        0.5,
        lambda: _rope_case(
            6,
            shape=(2, 6, 16),
            positions=torch.tensor([0, 1, 511, 1024, 2047, 4095]),
            atol=2e-3,
            lengths=True,
        ),
        "compute cos and sin of the same angle positions[t] * theta^(-2i/d) for any "
        "position, with no fixed table size",
    ),
    Check(
        "one pair per head (d = 2), one token at position 3",
        0.5,
        lambda: _rope_case(7, shape=(4, 1, 2), positions=torch.tensor([3])),
        "with d = 2 the pair is (x[0], x[1]), turned by the angle 3: "
        "[x0 cos 3 - x1 sin 3, x1 cos 3 + x0 sin 3]",
    ),
]


# --- TokenPositionEmbedding -----------------------------------------------------------------


def _emb_case(
    seed: int,
    vocab: int = 50,
    context: int = 16,
    d: int = 8,
    b: int = 2,
    t: int = 5,
    grads: bool = False,
) -> Case:
    """The embedding stage of a reference TransformerLM: what its dropout layer receives."""
    cfg = ModelConfig(
        vocab_size=vocab,
        context_length=context,
        d_model=d,
        n_heads=1,
        n_layers=1,
        pos_kind="learned",
    )
    torch.manual_seed(seed)
    model = TransformerLM(cfg).eval()
    assert model.pos_emb is not None
    with torch.no_grad():  # spread the weights (the default std 0.02 hides mistakes)
        model.tok_emb.weight.normal_(0.0, 1.0)
        model.pos_emb.weight.normal_(0.0, 1.0)
    weights = ["tok_emb.weight", "pos_emb.weight"]
    state = {n: model.get_parameter(n).detach().clone() for n in weights}
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, vocab, (b, t), generator=g)

    def embedding_stage(idx: Tensor) -> Tensor:
        seen: list[Tensor] = []
        hook = model.drop.register_forward_hook(lambda _m, _i, out: seen.append(out))
        model(idx)
        hook.remove()
        return seen[0]

    return module_case(
        model,
        [idx],
        [vocab, context, d],
        state=state,
        forward=embedding_stage,
        params=weights if grads else False,
        grad_seed=g,
        atol=1e-6,
        rtol=1e-5,
    )


TOKEN_POSITION_CHECKS = [
    Check(
        "loads the reference weights and computes the same output",
        1.0,
        lambda: _emb_case(1),
        "tok_emb = nn.Embedding(vocab_size, d_model), pos_emb = nn.Embedding(context_length, "
        "d_model); return tok_emb(idx) + pos_emb(torch.arange(T)), with no scaling",
    ),
    Check(
        "gradients of tok_emb.weight and pos_emb.weight",
        1.0,
        lambda: _emb_case(2, b=3, t=4, grads=True),
        "use both embeddings inside forward, without .detach(), .data or torch.no_grad()",
    ),
    Check(
        "one token per sequence (T = 1)",
        0.5,
        lambda: _emb_case(3, b=3, t=1),
        "positions are torch.arange(T) with T = idx.size(1) (the time dim, not the batch "
        "dim): the first position is 0",
    ),
    Check(
        "a full context (T = context_length)",
        0.5,
        lambda: _emb_case(4, context=12, b=2, t=12),
        "positions run 0 .. T-1, so T = context_length uses every row of pos_emb",
    ),
    Check(
        "other sizes: vocabulary 1000, width 48, one sequence of 33",
        0.5,
        lambda: _emb_case(5, vocab=1000, context=64, d=48, b=1, t=33),
        "take the sizes from the constructor's arguments and T from idx",
    ),
    Check(
        "the same positions for every sequence of a batch",
        0.5,
        lambda: _emb_case(6, b=5, t=3),
        "pos_emb(torch.arange(T)) is (T, d_model) and broadcasts over the batch",
    ),
]

ITEMS = {
    "embeddings_and_positions.sinusoidal_positions": Item(
        "sinusoidal_positions",
        SINUSOIDAL_CHECKS,
        Signature("t, d, base=10000.0", shapes={"return": "(t, d)"}),
    ),
    "embeddings_and_positions.apply_rope": Item(
        "apply_rope",
        ROPE_CHECKS,
        Signature(
            "x, positions, theta=10000.0",
            shapes={"x": "(..., T, d)", "positions": "(T,)", "return": "(..., T, d)"},
        ),
    ),
    "embeddings_and_positions.TokenPositionEmbedding": Item(
        "TokenPositionEmbedding",
        TOKEN_POSITION_CHECKS,
        Signature(
            "vocab_size, context_length, d_model",
            forward="idx",
            shapes={"idx": "(B, T)", "return": "(B, T, d_model)"},
        ),
    ),
}
