"""Grader of the mini-gemini model notebook (part5_integration): the local/global attention
mask, the soft-cap, Gemma's (1 + w) RMSNorm, the Gemma attention layer (GQA, QK-norm, RoPE,
query_pre_attn_scalar, soft-capped scores, sliding window), the sandwich-norm block and the
whole model (scaled embeddings, local/global layers with their own RoPE bases, tied head,
final soft-cap).

Expected values come from ``reference_impl.models`` with its Gemma options on; that model
equals Hugging Face's ``Gemma2ForCausalLM`` and ``Gemma3ForCausalLM`` exactly
(tests/test_gemma.py). The student's modules use Gemma's parameter names (``input_layernorm``,
``self_attn``, ``mlp``, ``embed_tokens``, ``layers``, ``norm``, ...) and Gemma's norm,
``x * (1 + w)``, where the reference's multiplies by ``w``: the reference's weights are
renamed and every norm weight gets 1 subtracted before they are loaded into the student's
module. Weights are spread (matrices ~ N(0, 0.3), norm gains 1 + N(0, 0.5)) so that every
mistake shows in the values.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, grad_case, module_case, seeded_randn
from reference_impl.models import (
    ModelConfig,
    MultiHeadAttention,
    RMSNorm,
    RotaryEmbedding,
    TransformerBlock,
    TransformerLM,
    soft_cap,
    window_mask,
)

EPS = 1e-6
CONTEXT = 64

# reference name (one dotted component) -> the student's (Gemma's) name
RENAMES = {
    "tok_emb": "embed_tokens",
    "blocks": "layers",
    "norm_f": "norm",
    "attn_norm": "input_layernorm",
    "attn": "self_attn",
    "post_attn_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "ffn": "mlp",
    "post_ffn_norm": "post_feedforward_layernorm",
}


def _student_name(name: str) -> str:
    return ".".join(RENAMES.get(part, part) for part in name.split("."))


def _student_state(ref: nn.Module) -> dict[str, Tensor]:
    """The reference's weights in the student's names; norm gains w become w - 1."""
    gains = {
        f"{m}.weight".lstrip(".") for m, mod in ref.named_modules() if isinstance(mod, RMSNorm)
    }
    state = {}
    for name, value in ref.state_dict().items():
        if name == "lm_head.weight":  # tied: the student's head is embed_tokens.weight
            continue
        value = value.detach().clone()
        state[_student_name(name)] = value - 1.0 if name in gains else value
    return state


def _config(
    d_model: int,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    *,
    d_ff: int = 8,
    vocab_size: int = 1,
    n_layers: int = 1,
    attn_pattern: str = "G",
    window: int | None = None,
    rope_theta: float = 10000.0,
    rope_local_theta: float | None = None,
    scalar: float | None = None,
    softcap: float | None = None,
    final_softcap: float | None = None,
    qk_norm: bool = False,
) -> ModelConfig:
    return ModelConfig(
        vocab_size=vocab_size,
        context_length=CONTEXT,
        d_model=d_model,
        n_heads=n_heads,
        n_layers=n_layers,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        d_ff=d_ff,
        ffn_kind="geglu",
        gelu_approximate="tanh",
        norm_kind="rmsnorm",
        norm_eps=EPS,
        pos_kind="rope",
        rope_theta=rope_theta,
        bias=False,
        tie_weights=True,
        attn_pattern=attn_pattern,
        sliding_window=window,
        rope_local_theta=rope_local_theta,
        query_pre_attn_scalar=scalar,
        attn_softcap=softcap,
        final_softcap=final_softcap,
        qk_norm=qk_norm,
        sandwich_norm=True,
        embed_scale=True,
    )


def _spread(module: nn.Module, seed: int, std: float = 0.3) -> nn.Module:
    """Weights far from their initial values: matrices ~ N(0, std), norm gains 1 + N(0, 0.5)
    (the student's (1 + w) weights then are N(0, 0.5), as in a trained Gemma)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.5, generator=g)
            else:
                p.normal_(0.0, std, generator=g)
    return module.eval()


def _randn(seed: int, *shape: int, scale: float = 1.0) -> Tensor:
    return seeded_randn(seed, *shape, scale=scale, dtype=torch.float32)


def _module_case(
    ref: nn.Module,
    x: Tensor,
    args: list[int],
    kwargs: Mapping[str, object] | None = None,
    *,
    seed: int = 0,
    grads: bool = False,
    skip: frozenset[str] = frozenset(),
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Case:
    """The student's module built with ``args``/``kwargs``, loaded with ``ref``'s renamed
    weights, on ``x``; with ``grads``, the gradients of a float ``x`` and of every parameter
    (but ``skip``), under the student's names."""
    named = [n for n, _ in ref.named_parameters() if n not in skip]
    case = module_case(
        ref,
        [x],
        args,
        init_kwargs=dict(kwargs or {}),
        state=_student_state(ref),
        grad_args=(0,) if grads and x.is_floating_point() else (),
        params=named if grads else False,
        grad_seed=seed + 100,
        atol=atol,
        rtol=rtol,
    )
    case.expected_param_grads = {_student_name(n): g for n, g in case.expected_param_grads.items()}
    return case


# --- local_global_mask(t, window=None) -> bool (t, t) ----------------------------------------


def _mask_case(t: int, window: int | None) -> Case:
    pos = torch.arange(t)
    kwargs = {} if window is None else {"window": window}
    return Case([t], window_mask(pos, pos, window), kwargs=kwargs)


MASK_CHECKS = [
    Check(
        "window=None: plain causal, 6 tokens",
        0.5,
        lambda: _mask_case(6, None),
        "with window=None query i sees every key j <= i (a lower-triangular bool matrix, "
        "the diagonal included)",
    ),
    Check(
        "window 3 over 8 tokens: W keys, itself included",
        0.5,
        lambda: _mask_case(8, 3),
        "query i sees key j iff i - window < j <= i: exactly `window` keys counting itself "
        "(keys i-2, i-1, i for W = 3), never key i - window",
    ),
    Check(
        "window 1: each token sees only itself",
        0.5,
        lambda: _mask_case(5, 1),
        "with W = 1 only the diagonal is True: j > i - 1 and j <= i",
    ),
    Check(
        "a window longer than the sequence is plain causal",
        0.5,
        lambda: _mask_case(7, 20),
        "the window only removes keys; it never lets a query see the future (keep j <= i)",
    ),
    Check(
        "window 5 over 16 tokens",
        0.5,
        lambda: _mask_case(16, 5),
        "build it from i = arange(t)[:, None] and j = arange(t)[None, :] and combine "
        "(j <= i) & (j > i - window)",
    ),
    Check(
        "one token",
        0.5,
        lambda: _mask_case(1, 4),
        "return a torch.bool tensor of shape (t, t), True where attention is allowed",
    ),
]


# --- soft_cap(x, cap) -> cap * tanh(x / cap) ---------------------------------------------------


def _cap_case(
    seed: int, shape: tuple[int, ...], cap: float | None, scale: float, grads: bool = False
) -> Case:
    x = seeded_randn(seed, *shape, scale=scale)
    if grads:
        return grad_case(soft_cap, [x, cap], (0,), seed)
    return Case([x, cap], soft_cap(x, cap), atol=1e-10, rtol=1e-9)


SOFTCAP_CHECKS = [
    Check(
        "attention scores (x ~ 10 * randn) capped at 5",
        0.5,
        lambda: _cap_case(1, (3, 8), 5.0, 10.0),
        "cap * tanh(x / cap): divide by cap inside tanh and multiply by cap outside",
    ),
    Check(
        "small values pass through almost unchanged (cap 30)",
        0.5,
        lambda: _cap_case(2, (4, 6), 30.0, 1e-2),
        "for |x| << cap, cap * tanh(x / cap) is x: the outer factor cap undoes the division",
    ),
    Check(
        "huge logits (1e4 * randn) stay within (-cap, cap)",
        0.5,
        lambda: _cap_case(3, (5, 7), 30.0, 1e4),
        "the result lies in (-cap, cap) (tanh saturates at +-1): multiply tanh by cap",
    ),
    Check(
        "gradient: 1 - tanh(x / cap)^2, never zero",
        0.5,
        lambda: _cap_case(4, (6, 5), 5.0, 8.0, grads=True),
        "use torch.tanh: a clamp has no gradient beyond the cap, the soft-cap keeps one",
    ),
    Check(
        "any shape: (2, 3, 4, 5), cap 50 on values of 40 * randn",
        0.5,
        lambda: _cap_case(5, (2, 3, 4, 5), 50.0, 40.0),
        "elementwise torch operations only; a value near the cap is already bent "
        "(50 * tanh(40 / 50) = 33.2): tanh, not a clamp",
    ),
    Check(
        "cap=None: x unchanged",
        0.5,
        lambda: _cap_case(6, (3, 4), None, 3.0),
        "return x itself when cap is None (a layer without a soft-cap, as Gemma 3)",
    ),
]


# --- GemmaRMSNorm(d, eps=1e-6) ----------------------------------------------------------------


def _norm_case(
    seed: int,
    shape: tuple[int, ...] = (2, 5, 16),
    eps: float | None = None,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
    grads: bool = False,
) -> Case:
    d = shape[-1]
    ref = _spread(RMSNorm(d, EPS if eps is None else eps), seed)
    x = _randn(seed, *shape, scale=scale).to(dtype)
    kwargs = {} if eps is None else {"eps": eps}
    case = _module_case(ref, x, [d], kwargs, seed=seed, grads=grads)
    if dtype != torch.float32:  # Gemma: all in float32, (1 + w) too, then cast back
        case.expected = ref(x.float()).to(dtype).detach()
        case.atol, case.rtol = 1e-3, 1e-2
    return case


NORM_CHECKS = [
    Check(
        "values with learned weights",
        1.0,
        lambda: _norm_case(1, scale=2.0),
        "x * rsqrt(mean(x^2 over the last dim) + eps) * (1 + weight): Gemma's weight starts "
        "at 0 and is added to 1",
    ),
    Check(
        "gradients for the input and the weight",
        0.5,
        lambda: _norm_case(2, grads=True),
        "torch operations only; weight = nn.Parameter(torch.zeros(d))",
    ),
    Check(
        "any number of leading dims: (2, 3, 4, 12)",
        0.5,
        lambda: _norm_case(3, shape=(2, 3, 4, 12)),
        "reduce over dim=-1 with keepdim=True",
    ),
    Check(
        "tiny inputs (x * 1e-3): eps inside the square root",
        0.5,
        lambda: _norm_case(4, scale=1e-3),
        "rsqrt(mean(x^2) + eps), not 1 / (sqrt(mean(x^2)) + eps)",
    ),
    Check(
        "uses the eps it is given: GemmaRMSNorm(d, eps=0.1)",
        0.5,
        lambda: _norm_case(5, eps=0.1),
        "store eps from the constructor and add it to the mean of the squares",
    ),
    Check(
        "float16 input with large values (300 * randn): computed in float32",
        0.5,
        lambda: _norm_case(6, scale=300.0, dtype=torch.float16),
        "x.float() before squaring (300^2 overflows float16's 65504), multiply by "
        "(1 + weight.float()), then .to(x.dtype) at the end",
    ),
]


# --- GemmaAttention(d_model, n_heads, n_kv_heads, head_dim, window, ...) ----------------------


def _attn_case(
    seed: int,
    d_model: int = 32,
    n_heads: int = 4,
    n_kv_heads: int = 4,
    head_dim: int = 8,
    *,
    window: int | None = None,
    rope_theta: float = 10000.0,
    scalar: float | None = None,
    softcap: float | None = None,
    qk_norm: bool = False,
    b: int = 2,
    t: int = 10,
    grads: bool = False,
) -> Case:
    cfg = _config(
        d_model, n_heads, n_kv_heads, head_dim, scalar=scalar, softcap=softcap, qk_norm=qk_norm
    )
    torch.manual_seed(seed)
    rope = RotaryEmbedding(head_dim, CONTEXT, rope_theta)
    ref = _spread(MultiHeadAttention(cfg, rope, window), seed)
    kwargs: dict[str, object] = {"window": window, "rope_theta": rope_theta}
    kwargs |= {"query_pre_attn_scalar": scalar, "softcap": softcap, "qk_norm": qk_norm}
    x = _randn(seed, b, t, d_model)
    return _module_case(
        ref, x, [d_model, n_heads, n_kv_heads, head_dim], kwargs, seed=seed, grads=grads
    )


ATTN_CHECKS = [
    Check(
        "a global layer, 4 heads: loads q/k/v/o_proj, same output",
        1.0,
        lambda: _attn_case(1),
        "project, split into heads (B, H, T, head_dim), RoPE on q and k (rope_tables and "
        "apply_rope), causal softmax(q k^T * head_dim^-0.5) v, merge heads, o_proj; no biases",
    ),
    Check(
        "grouped-query attention: 4 query heads share 2 key/value heads",
        0.5,
        lambda: _attn_case(2, n_kv_heads=2),
        "query head h uses key/value head h // (n_heads // n_kv_heads): repeat_interleave "
        "on the head dim, not .repeat (which gives h % n_kv_heads)",
    ),
    Check(
        "query_pre_attn_scalar = 24 (not head_dim)",
        0.5,
        lambda: _attn_case(3, scalar=24),
        "scale the scores by query_pre_attn_scalar ** -0.5 (head_dim ** -0.5 only when it is None)",
    ),
    Check(
        "scores soft-capped at 2.0 before the causal mask",
        0.5,
        lambda: _attn_case(4, softcap=2.0),
        "cap the scaled scores first, then mask: soft_cap turns -inf (or finfo.min) into "
        "-cap, so capping after the mask lets queries see the future",
    ),
    Check(
        "a local layer: window 3 over 10 tokens",
        1.0,
        lambda: _attn_case(5, window=3),
        "with a window, mask with local_global_mask(T, window): each query sees its last "
        "W keys only (itself included)",
    ),
    Check(
        "Gemma 3: QK-norm before RoPE, RoPE base 1e6, 2 key/value heads",
        1.0,
        lambda: _attn_case(6, n_kv_heads=2, qk_norm=True, rope_theta=1e6, window=4),
        "q_norm and k_norm are GemmaRMSNorm(head_dim) applied to each head right after the "
        "projections, before the rotation; RoPE uses rope_theta",
    ),
    Check(
        "gradients for x and every weight (Gemma 2: GQA, window 4, scalar 24, soft-cap 3)",
        0.5,
        lambda: _attn_case(7, n_kv_heads=2, window=4, scalar=24, softcap=3.0, grads=True),
        "torch operations only (no .detach(), numpy, or in-place writes into a tensor that "
        "needs its gradient)",
    ),
]


# --- GemmaBlock(d_model, n_heads, n_kv_heads, head_dim, d_ff, window, ...) --------------------


def _block_case(
    seed: int,
    d_model: int = 32,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    head_dim: int = 8,
    d_ff: int = 48,
    *,
    window: int | None = None,
    rope_theta: float = 10000.0,
    scalar: float | None = None,
    softcap: float | None = None,
    qk_norm: bool = False,
    scale: float = 1.0,
    gate_scale: float = 1.0,
    zero_sublayers: bool = False,
    grads: bool = False,
) -> Case:
    cfg = _config(
        d_model,
        n_heads,
        n_kv_heads,
        head_dim,
        d_ff=d_ff,
        attn_pattern="G" if window is None else "L",
        window=window,
        scalar=scalar,
        softcap=softcap,
        qk_norm=qk_norm,
    )
    torch.manual_seed(seed)
    ref = _spread(TransformerBlock(cfg, RotaryEmbedding(head_dim, CONTEXT, rope_theta)), seed)
    params = dict(ref.named_parameters())
    with torch.no_grad():
        params["ffn.gate_proj.weight"].mul_(gate_scale)
        if zero_sublayers:  # attention and FFN then add nothing: the block is the identity
            params["attn.o_proj.weight"].zero_()
            params["ffn.down_proj.weight"].zero_()
    kwargs: dict[str, object] = {"window": window, "rope_theta": rope_theta}
    kwargs |= {"query_pre_attn_scalar": scalar, "softcap": softcap, "qk_norm": qk_norm}
    x = _randn(seed, 2, 9, d_model, scale=scale)
    args = [d_model, n_heads, n_kv_heads, head_dim, d_ff]
    return _module_case(ref, x, args, kwargs, seed=seed, grads=grads)


BLOCK_CHECKS = [
    Check(
        "a global layer: loads the weights by name, same output",
        1.0,
        lambda: _block_case(11),
        "h = x + post_attention_layernorm(self_attn(input_layernorm(x))), then "
        "h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h))): four norms, "
        "two residual additions to the un-normalised stream",
    ),
    Check(
        "a local layer: window 3, scalar 24, soft-cap 2",
        0.5,
        lambda: _block_case(12, window=3, scalar=24, softcap=2.0),
        "pass window, rope_theta, query_pre_attn_scalar, softcap and qk_norm on to GemmaAttention",
    ),
    Check(
        "gradients for x and every parameter",
        1.0,
        lambda: _block_case(13, window=4, softcap=3.0, grads=True),
        "use all four norms, self_attn and mlp (gate_proj, up_proj, down_proj) in forward",
    ),
    Check(
        "identity when o_proj and down_proj output zero",
        0.5,
        lambda: _block_case(14, zero_sublayers=True),
        "the residual stream itself is never normalised: each branch is normalised before "
        "and after, then added to x (x = x + post_norm(f(pre_norm(x))))",
    ),
    Check(
        "GeGLU with the tanh GELU: large gates (gate_proj * 3)",
        0.5,
        lambda: _block_case(15, gate_scale=3.0),
        "mlp(x) = down_proj(gelu(gate_proj(x), approximate='tanh') * up_proj(x)): Gemma's "
        "gelu_pytorch_tanh, not ReLU, SiLU or the exact erf GELU",
    ),
    Check(
        "Gemma 3 layer: QK-norm, RoPE base 1e6",
        0.5,
        lambda: _block_case(16, qk_norm=True, rope_theta=1e6, window=5),
        "build self_attn = GemmaAttention(..., qk_norm=qk_norm) with this block's arguments",
    ),
    Check(
        "large inputs (x * 100): the stream passes through unnormalised",
        0.5,
        lambda: _block_case(17, scale=100.0),
        "normalise only the branches; x itself goes through the residual unchanged",
    ),
]


# --- MiniGemini(vocab_size, d_model, n_layers, ..., attn_pattern, window, ...) ---------------


def _model_case(
    seed: int,
    *,
    vocab_size: int = 40,
    d_model: int = 32,
    n_layers: int = 4,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    head_dim: int = 8,
    d_ff: int = 48,
    attn_pattern: str = "LG",
    window: int | None = 4,
    rope_theta: float = 10000.0,
    rope_local_theta: float | None = None,
    scalar: float | None = None,
    attn_softcap: float | None = None,
    final_softcap: float | None = None,
    qk_norm: bool = False,
    emb_std: float = 0.3,
    b: int = 2,
    t: int = 10,
    idx: Tensor | None = None,
    grads: bool = False,
) -> Case:
    cfg = _config(
        d_model,
        n_heads,
        n_kv_heads,
        head_dim,
        d_ff=d_ff,
        vocab_size=vocab_size,
        n_layers=n_layers,
        attn_pattern=attn_pattern,
        window=window,
        rope_theta=rope_theta,
        rope_local_theta=rope_local_theta,
        scalar=scalar,
        softcap=attn_softcap,
        final_softcap=final_softcap,
        qk_norm=qk_norm,
    )
    torch.manual_seed(seed)
    ref = TransformerLM(cfg)
    _spread(ref, seed)
    with torch.no_grad():
        ref.tok_emb.weight.mul_(emb_std / 0.3)
    if idx is None:
        idx = torch.randint(0, vocab_size, (b, t), generator=torch.Generator().manual_seed(seed))
    args = [vocab_size, d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff]
    kwargs: dict[str, object] = {"attn_pattern": attn_pattern, "window": window}
    kwargs |= {"rope_theta": rope_theta, "rope_local_theta": rope_local_theta}
    kwargs |= {"query_pre_attn_scalar": scalar, "attn_softcap": attn_softcap}
    kwargs |= {"final_softcap": final_softcap, "qk_norm": qk_norm}
    return _module_case(ref, idx, args, kwargs, seed=seed, grads=grads, atol=1e-4, rtol=1e-4)


def _model_no_future_leak() -> Case:
    idx = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(27))
    idx[0, 7:], idx[1, 7:] = 0, 39  # the same prefix, very different futures
    idx[1, :7] = idx[0, :7]
    return _model_case(27, idx=idx, attn_softcap=2.0, final_softcap=5.0)


MODEL_CHECKS = [
    Check(
        "Gemma 2 style: LG layers, window 4, scalar 24, soft-caps 2 and 5",
        1.0,
        lambda: _model_case(21, scalar=24, attn_softcap=2.0, final_softcap=5.0),
        "embed_tokens(idx) * sqrt(d_model), the layers in order (layer i local iff "
        "attn_pattern[i % len(attn_pattern)] == 'L'), norm, logits = h @ "
        "embed_tokens.weight.T, then soft_cap(logits, final_softcap)",
    ),
    Check(
        "embeddings scaled by sqrt(d_model): one global layer, no soft-caps",
        0.5,
        lambda: _model_case(22, n_layers=1, attn_pattern="G", window=None, emb_std=0.02),
        "multiply the embeddings by sqrt(d_model) (as a tensor of the weights' dtype) before "
        "the first layer; the head reuses the unscaled embed_tokens.weight",
    ),
    Check(
        "Gemma 3 style: LLG, QK-norm, RoPE bases 1e6 (global) and 1e4 (local)",
        1.0,
        lambda: _model_case(
            23,
            n_layers=3,
            attn_pattern="LLG",
            window=3,
            rope_theta=1e6,
            rope_local_theta=1e4,
            qk_norm=True,
            final_softcap=5.0,
        ),
        "global layers rotate with rope_theta, local layers with rope_local_theta (when it "
        "is not None): pass each layer its own base",
    ),
    Check(
        "final soft-cap 2 on large logits",
        0.5,
        lambda: _model_case(24, n_layers=2, final_softcap=2.0),
        "apply soft_cap(logits, final_softcap) after the tied head (None: no cap)",
    ),
    Check(
        "gradients for every parameter, the tied embedding included",
        1.0,
        lambda: _model_case(25, attn_softcap=3.0, final_softcap=5.0, grads=True),
        "tie the head to embed_tokens.weight (no separate lm_head parameter) and use every "
        "layer and the final norm in forward",
    ),
    Check(
        "causal: no future tokens leak",
        0.5,
        _model_no_future_leak,
        "every layer must mask keys after the query (global layers too); the window only "
        "removes further keys",
    ),
    Check(
        "other sizes: multi-query (3 heads, 1 kv head of 16), vocab 50, one token",
        0.5,
        lambda: _model_case(
            26,
            vocab_size=50,
            d_model=24,
            n_layers=2,
            n_heads=3,
            n_kv_heads=1,
            head_dim=16,
            d_ff=40,
            b=1,
            t=1,
        ),
        "build every submodule from the constructor's arguments (head_dim need not be "
        "d_model // n_heads)",
    ),
]


ITEMS: dict[str, Item] = {
    "mini_gemini.local_global_mask": Item(
        "local_global_mask",
        MASK_CHECKS,
        Signature("t, window=None", shapes={"return": "(t, t)"}),
    ),
    "mini_gemini.soft_cap": Item(
        "soft_cap",
        SOFTCAP_CHECKS,
        Signature("x, cap", shapes={"x": "(*L)", "return": "(*L)"}),
    ),
    "mini_gemini.GemmaRMSNorm": Item(
        "GemmaRMSNorm",
        NORM_CHECKS,
        Signature("d, eps=1e-6", forward="x", shapes={"x": "(*L, d)", "return": "(*L, d)"}),
    ),
    "mini_gemini.GemmaAttention": Item(
        "GemmaAttention",
        ATTN_CHECKS,
        Signature(
            "d_model, n_heads, n_kv_heads, head_dim, window=None, rope_theta=10000.0, "
            "query_pre_attn_scalar=None, softcap=None, qk_norm=False",
            forward="x",
            shapes={"x": "(B, T, d_model)", "return": "(B, T, d_model)"},
        ),
    ),
    "mini_gemini.GemmaBlock": Item(
        "GemmaBlock",
        BLOCK_CHECKS,
        Signature(
            "d_model, n_heads, n_kv_heads, head_dim, d_ff, window=None, rope_theta=10000.0, "
            "query_pre_attn_scalar=None, softcap=None, qk_norm=False",
            forward="x",
            shapes={"x": "(B, T, d_model)", "return": "(B, T, d_model)"},
        ),
    ),
    "mini_gemini.MiniGemini": Item(
        "MiniGemini",
        MODEL_CHECKS,
        Signature(
            "vocab_size, d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff, "
            "attn_pattern='G', window=None, rope_theta=10000.0, rope_local_theta=None, "
            "query_pre_attn_scalar=None, attn_softcap=None, final_softcap=None, qk_norm=False",
            forward="idx",
            shapes={"idx": "(B, T)", "return": "(B, T, vocab_size)"},
        ),
    ),
}
