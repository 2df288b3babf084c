"""Grader of the transformer-block notebook (part2_fundamentals): LayerNorm, RMSNorm, SwiGLU,
the pre-norm block and the GPT with tied embeddings.

Every expected value comes from ``reference_impl.models`` with the notebook's config: Llama's
blocks (RMSNorm, SwiGLU, no biases) with GPT-2's learned positions and tied output matrix
(Llama itself has RoPE and, in Llama 1, 2 and 3-8B, an untied one). The reference's weights
are spread (matrices ~ N(0, 0.3), norm weights 1 + noise) so that a mistake shows in the
values, then loaded into the student's module by name.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, module_case
from reference_impl.models import GatedMLP, ModelConfig, TransformerBlock, TransformerLM
from reference_impl.models.norms import LayerNorm, RMSNorm


def _config(
    d_model: int,
    n_heads: int = 1,
    d_ff: int = 8,
    vocab_size: int = 1,
    context_length: int = 64,
    n_layers: int = 1,
) -> ModelConfig:
    return ModelConfig(
        vocab_size=vocab_size,
        context_length=context_length,
        d_model=d_model,
        n_heads=n_heads,
        n_layers=n_layers,
        d_ff=d_ff,
        norm_kind="rmsnorm",
        norm_eps=1e-6,
        ffn_kind="swiglu",
        bias=False,
        pos_kind="learned",
        tie_weights=True,
    )


def _spread(module: nn.Module, seed: int) -> nn.Module:
    """Weights far from their initial values: matrices ~ N(0, 0.3), norm weights 1 + noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2 or name.endswith("bias"):
                p.normal_(0.0, 0.3, generator=g)
            else:  # a norm's gain
                p.normal_(1.0, 0.3, generator=g)
    return module.eval()


def _case(
    ref: nn.Module,
    args: list[int],
    x: Tensor,
    *,
    seed: int = 0,
    kwargs: dict[str, float] | None = None,
    grads: bool = False,
    only: set[str] | None = None,
    skip: frozenset[str] | set[str] = frozenset(),
    exact: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Case:
    """Build the student's module like ``ref`` (same constructor args, ``ref``'s weights) and
    call it on ``x``. With ``grads``, compare the gradients of a float input and of the
    parameters (``only`` those named, or all but ``skip``). With ``exact``, the expected
    output is computed in float64 and rounded to float32 (the true value)."""
    grads = grads and not exact
    named = [n for n, _ in ref.named_parameters() if n not in skip and (only is None or n in only)]
    case = module_case(
        ref,
        [x],
        args,
        init_kwargs=kwargs,
        grad_args=(0,) if grads and x.is_floating_point() else (),
        params=named if grads else False,
        grad_seed=seed + 100,
        atol=atol,
        rtol=rtol,
    )
    if exact:
        case.expected = copy.deepcopy(ref).double()(x.double()).float()
    return case


def _randn(seed: int, *shape: int, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return shift + scale * torch.randn(*shape, generator=g)


# -- 1. LayerNorm ----------------------------------------------------------------------------


def _layernorm_case(
    seed: int,
    shape: tuple[int, ...] = (2, 5, 16),
    eps: float | None = None,
    scale: float = 1.0,
    shift: float = 0.0,
    grads: bool = False,
    exact: bool = False,
    tol: float = 1e-5,
) -> Case:
    d = shape[-1]
    kwargs = {} if eps is None else {"eps": eps}  # None: the student's default, 1e-5
    ref = _spread(LayerNorm(d, eps=1e-5 if eps is None else eps), seed)
    x = _randn(seed, *shape, scale=scale, shift=shift)
    return _case(
        ref,
        [d],
        x,
        seed=seed,
        kwargs=kwargs,
        grads=grads,
        exact=exact,
        atol=tol,
        rtol=max(tol, 1e-4),
    )


LAYERNORM_CHECKS = [
    Check(
        "values on random inputs (learned weight and bias)",
        1.0,
        lambda: _layernorm_case(1, scale=2.0, shift=0.5),
        "(x - mean) / sqrt(var + eps) * weight + bias over the last dim, with the biased "
        "variance (divide by d, not d - 1) and both parameters used",
    ),
    Check(
        "gradients for the input, weight and bias",
        1.0,
        lambda: _layernorm_case(2, grads=True),
        "torch operations only (no .detach(), .item() or numpy); weight and bias must be "
        "nn.Parameter(torch.ones(d)) and nn.Parameter(torch.zeros(d))",
    ),
    Check(
        "any number of leading dims: (2, 3, 4, 12)",
        0.5,
        lambda: _layernorm_case(3, shape=(2, 3, 4, 12)),
        "reduce over dim=-1 with keepdim=True, not over a fixed dim",
    ),
    Check(
        "tiny-variance inputs (x * 1e-3): eps inside the square root",
        0.5,
        lambda: _layernorm_case(4, scale=1e-3),
        "divide by sqrt(var + eps), not by sqrt(var) + eps",
    ),
    Check(
        "uses the eps it is given: LayerNorm(d, eps=0.1)",
        0.5,
        lambda: _layernorm_case(5, eps=0.1),
        "store eps from the constructor and add it to the variance inside the sqrt",
    ),
    Check(
        "stable for a large offset: 1e4 + randn in float32",
        0.5,
        lambda: _layernorm_case(6, shift=1e4, exact=True, tol=1e-2),
        "subtract the mean first, then average the squares: E[x^2] - E[x]^2 cancels "
        "catastrophically in float32",
    ),
]


# -- 2. RMSNorm ------------------------------------------------------------------------------


def _rmsnorm_case(
    seed: int,
    shape: tuple[int, ...] = (2, 5, 16),
    scale: float = 1.0,
    shift: float = 0.0,
    grads: bool = False,
) -> Case:
    d = shape[-1]
    ref = _spread(RMSNorm(d, eps=1e-6), seed)
    x = _randn(seed, *shape, scale=scale, shift=shift)
    return _case(ref, [d], x, seed=seed, grads=grads)


RMSNORM_CHECKS = [
    Check(
        "values on random inputs (learned weight)",
        1.0,
        lambda: _rmsnorm_case(11, scale=2.0),
        "x / sqrt(mean(x^2 over the last dim) + eps) * weight: the mean of the squares, "
        "not their sum",
    ),
    Check(
        "gradients for the input and weight",
        0.5,
        lambda: _rmsnorm_case(12, grads=True),
        "torch operations only; weight = nn.Parameter(torch.ones(d)) multiplies the output",
    ),
    Check(
        "any number of leading dims: (2, 3, 4, 12)",
        0.5,
        lambda: _rmsnorm_case(13, shape=(2, 3, 4, 12)),
        "reduce over dim=-1 with keepdim=True",
    ),
    Check(
        "inputs with a large mean (5 + randn): no centring",
        0.5,
        lambda: _rmsnorm_case(14, shift=5.0),
        "RMSNorm does not subtract the mean: only LayerNorm does",
    ),
    Check(
        "tiny inputs (x * 1e-3): eps inside the square root",
        0.5,
        lambda: _rmsnorm_case(15, scale=1e-3),
        "divide by sqrt(mean(x^2) + eps), not by sqrt(mean(x^2)) + eps",
    ),
]


# -- 3. SwiGLU -------------------------------------------------------------------------------


def _swiglu_case(
    seed: int,
    d_model: int = 16,
    d_ff: int = 24,
    shape: tuple[int, ...] = (2, 5),
    scale: float = 1.0,
    grads: bool = False,
) -> Case:
    ref = _spread(GatedMLP(_config(d_model, d_ff=d_ff)), seed)
    x = _randn(seed, *shape, d_model, scale=scale)
    return _case(ref, [d_model, d_ff], x, seed=seed, grads=grads)


SWIGLU_CHECKS = [
    Check(
        "values on random inputs",
        1.0,
        lambda: _swiglu_case(21),
        "down_proj(silu(gate_proj(x)) * up_proj(x)): SiLU (x * sigmoid(x)) on the gate only, "
        "not sigmoid, not GELU",
    ),
    Check(
        "gradients for the input and the three weights",
        0.5,
        lambda: _swiglu_case(22, grads=True),
        "use gate_proj, up_proj and down_proj in forward, with torch operations only",
    ),
    Check(
        "any number of leading dims: (2, 3, 4, d_model)",
        0.5,
        lambda: _swiglu_case(23, shape=(2, 3, 4)),
        "nn.Linear acts on the last dim",
    ),
    Check(
        "other widths: d_model 8, d_ff 40, one token",
        0.5,
        lambda: _swiglu_case(24, d_model=8, d_ff=40, shape=(1, 1)),
        "gate_proj and up_proj: nn.Linear(d_model, d_ff, bias=False); "
        "down_proj: nn.Linear(d_ff, d_model, bias=False)",
    ),
    Check(
        "large inputs (x * 20)",
        0.5,
        lambda: _swiglu_case(25, scale=20.0),
        "F.silu is stable; for large negative gates the product must go to 0",
    ),
]


# -- 4. TransformerBlock ---------------------------------------------------------------------


def _block_case(
    seed: int,
    d_model: int = 32,
    n_heads: int = 4,
    d_ff: int = 48,
    b: int = 2,
    t: int = 7,
    x: Tensor | None = None,
    zero_sublayers: bool = False,
    scale: float = 1.0,
    grads: bool = False,
) -> Case:
    torch.manual_seed(seed)
    ref = _spread(TransformerBlock(_config(d_model, n_heads, d_ff)), seed)
    if zero_sublayers:  # attention and FFN then add nothing: the block must be the identity
        params = dict(ref.named_parameters())
        with torch.no_grad():
            params["attn.o_proj.weight"].zero_()
            params["ffn.down_proj.weight"].zero_()
    if x is None:
        x = _randn(seed, b, t, d_model, scale=scale)
    return _case(ref, [d_model, n_heads, d_ff], x, seed=seed, grads=grads)


def _block_no_future_leak() -> Case:
    x = _randn(33, 2, 8, 32)
    x[:, 5:] = 50.0  # wild future tokens: any leak shows at positions < 5
    return _block_case(33, x=x)


BLOCK_CHECKS = [
    Check(
        "loads the reference weights and computes the same output",
        1.0,
        lambda: _block_case(31),
        "pre-norm: x = x + attn(attn_norm(x)), then x = x + ffn(ffn_norm(x)), each sublayer "
        "with its own norm; the residual adds to the un-normalised x (and your RMSNorm and "
        "SwiGLU must pass their own tests first)",
    ),
    Check(
        "gradients for the input and every parameter",
        1.0,
        lambda: _block_case(32, grads=True),
        "use attn_norm, attn, ffn_norm and ffn in forward, with torch operations only",
    ),
    Check(
        "causal: no future tokens leak",
        0.5,
        _block_no_future_leak,
        "use the given MultiHeadAttention, which is causal; do not mix positions elsewhere",
    ),
    Check(
        "identity when attention and FFN output zero (o_proj, down_proj = 0)",
        0.5,
        lambda: _block_case(34, zero_sublayers=True),
        "the residual stream itself is never normalised: both sublayers add to x "
        "(x = x + f(norm(x))), so zero sublayers leave x unchanged",
    ),
    Check(
        "other sizes: d_model 48, 6 heads, d_ff 64, one sequence of length 1",
        0.5,
        lambda: _block_case(35, d_model=48, n_heads=6, d_ff=64, b=1, t=1),
        "build the submodules from the constructor's d_model, n_heads, d_ff",
    ),
    Check(
        "large inputs (x * 100): the stream passes through",
        0.5,
        lambda: _block_case(36, scale=100.0),
        "normalise the sublayer inputs only; x itself goes through the residual unchanged",
    ),
]


# -- 5. GPT ----------------------------------------------------------------------------------


def _gpt_case(
    seed: int,
    vocab_size: int = 23,
    context_length: int = 16,
    d_model: int = 32,
    n_heads: int = 4,
    n_layers: int = 2,
    d_ff: int = 48,
    b: int = 2,
    t: int = 9,
    idx: Tensor | None = None,
    grads: bool = False,
    only: set[str] | None = None,
    skip: frozenset[str] | set[str] = frozenset(),
) -> Case:
    cfg = _config(d_model, n_heads, d_ff, vocab_size, context_length, n_layers)
    torch.manual_seed(seed)
    ref = _spread(TransformerLM(cfg), seed)
    if idx is None:
        idx = torch.randint(0, vocab_size, (b, t), generator=torch.Generator().manual_seed(seed))
    args = [vocab_size, context_length, d_model, n_heads, n_layers, d_ff]
    return _case(ref, args, idx, seed=seed, grads=grads, only=only, skip=skip, atol=1e-4, rtol=1e-4)


def _gpt_no_future_leak() -> Case:
    idx = torch.randint(0, 23, (2, 12), generator=torch.Generator().manual_seed(43))
    idx[0, 6:], idx[1, 6:] = 0, 22  # the same prefix, very different futures
    idx[1, :6] = idx[0, :6]
    return _gpt_case(43, idx=idx, t=12)


GPT_CHECKS = [
    Check(
        "loads the reference weights and computes the same logits",
        1.0,
        lambda: _gpt_case(41),
        "tok_emb(idx) + pos_emb(positions 0..T-1), the blocks in order, norm_f, then lm_head",
    ),
    Check(
        "gradients for every parameter (but the tied matrix)",
        0.5,
        lambda: _gpt_case(42, grads=True, skip={"tok_emb.weight"}),
        "use every block, norm_f and pos_emb in forward, with torch operations only",
    ),
    Check(
        "weight tying: tok_emb.weight also gets the output layer's gradient",
        1.0,
        lambda: _gpt_case(44, grads=True, only={"tok_emb.weight"}),
        "create tok_emb before lm_head and share the Parameter itself: "
        "self.lm_head.weight = self.tok_emb.weight (not a copy, not .data)",
    ),
    Check(
        "causal: no future tokens leak",
        0.5,
        _gpt_no_future_leak,
        "the blocks' attention is causal; do not mix positions elsewhere",
    ),
    Check(
        "one sequence of the full context length",
        0.5,
        lambda: _gpt_case(45, b=1, t=16),
        "pos_emb = nn.Embedding(context_length, d_model), indexed by torch.arange(T)",
    ),
    Check(
        "deeper: 4 blocks applied in order",
        0.5,
        lambda: _gpt_case(46, n_layers=4, t=5),
        "blocks = nn.ModuleList([...n_layers blocks]); feed each block's output to the next",
    ),
]


ITEMS = {
    "transformer_block.LayerNorm": Item(
        "LayerNorm",
        LAYERNORM_CHECKS,
        Signature("d, eps=1e-05", forward="x", shapes={"x": "(*L, d)", "return": "(*L, d)"}),
    ),
    "transformer_block.RMSNorm": Item(
        "RMSNorm",
        RMSNORM_CHECKS,
        Signature("d, eps=1e-06", forward="x", shapes={"x": "(*L, d)", "return": "(*L, d)"}),
    ),
    "transformer_block.SwiGLU": Item(
        "SwiGLU",
        SWIGLU_CHECKS,
        Signature(
            "d_model, d_ff", forward="x", shapes={"x": "(*L, d_model)", "return": "(*L, d_model)"}
        ),
    ),
    "transformer_block.TransformerBlock": Item(
        "TransformerBlock",
        BLOCK_CHECKS,
        Signature(
            "d_model, n_heads, d_ff",
            forward="x",
            shapes={"x": "(B, T, d_model)", "return": "(B, T, d_model)"},
        ),
    ),
    "transformer_block.GPT": Item(
        "GPT",
        GPT_CHECKS,
        Signature(
            "vocab_size, context_length, d_model, n_heads, n_layers, d_ff",
            forward="idx",
            shapes={"idx": "(B, T)", "return": "(B, T, vocab_size)"},
        ),
    ),
}
