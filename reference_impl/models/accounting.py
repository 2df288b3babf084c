"""Parameter, FLOP and memory accounting of a decoder-only transformer, by formula.

Counting by hand, before building anything, is how a run is planned (Stanford CS336,
assignment 1): the parameter count N of the model, the training compute of about 6·N·D
floating-point operations for D tokens (Kaplan et al., 2020: 2·N·D for the forward pass,
twice that for the backward), and the memory that AdamW training holds whatever the batch:
the weights, their gradients and Adam's two moments, four float32 numbers per parameter.

``training_budget`` is the answer of the training-loop notebook's exercise, for that
notebook's GPT-2-style model: learned positions, pre-norm blocks with LayerNorms (gain and
bias), attention projections without biases, a 4x GELU MLP with biases, a final LayerNorm
and an output head tied to the token embedding.
"""

from __future__ import annotations

ADAMW_VALUES_PER_PARAMETER = 4  # the weight, its gradient, Adam's first and second moments


def gpt_parameters(
    vocab_size: int,
    context_length: int,
    d_model: int,
    n_layers: int,
    d_ff: int | None = None,
    *,
    attn_bias: bool,
    mlp_bias: bool,
    norm_bias: bool,
    tie_weights: bool,
    gated: bool = False,
    learned_positions: bool = True,
) -> int:
    """Parameters of a pre-norm decoder-only transformer with multi-head attention.

    Per block: two norms (a gain of ``d_model``, plus a bias with ``norm_bias``; RMSNorm
    has the gain only), the query, key, value and output projections (``4 d²``, plus ``4 d``
    with ``attn_bias``) and the feed-forward network of hidden width ``d_ff`` (default
    ``4 d``): two matrices, or three when ``gated`` (SwiGLU, GeGLU), with their biases when
    ``mlp_bias``. Around the blocks: the token embedding (``V d``), the learned position
    table (``context_length·d``), the final norm, and an output head of ``V d`` more unless
    it is tied to the token embedding (a tied matrix is one parameter, counted once).
    """
    d = d_model
    h = 4 * d if d_ff is None else d_ff
    norm = d * (2 if norm_bias else 1)
    attention = 4 * d * d + (4 * d if attn_bias else 0)
    n_mats = 3 if gated else 2
    mlp = n_mats * d * h + ((n_mats - 1) * h + d if mlp_bias else 0)
    block = 2 * norm + attention + mlp
    embeddings = vocab_size * d + (context_length * d if learned_positions else 0)
    head = 0 if tie_weights else vocab_size * d
    return embeddings + n_layers * block + norm + head


def notebook_gpt_parameters(vocab_size: int, block_size: int, d_model: int, n_layers: int) -> int:
    """Parameters of the training-loop notebook's GPT: ``V d + T d + L (12 d² + 9 d) + 2 d``."""
    return gpt_parameters(
        vocab_size,
        block_size,
        d_model,
        n_layers,
        attn_bias=False,
        mlp_bias=True,
        norm_bias=True,
        tie_weights=True,
    )


def training_flops(n_params: int, n_tokens: int) -> int:
    """About ``6 N D`` operations to train N parameters on D tokens (forward 2ND, backward 4ND;
    the attention scores' own cost, small at short contexts, left out)."""
    return 6 * n_params * n_tokens


def adamw_memory_bytes(n_params: int, bytes_per_value: int = 4) -> int:
    """Bytes of the weights, gradients and AdamW's two moments (float32 by default); the
    activations, which grow with the batch, come on top."""
    return ADAMW_VALUES_PER_PARAMETER * bytes_per_value * n_params


def training_budget(
    vocab_size: int, block_size: int, d_model: int, n_layers: int, n_tokens: int
) -> tuple[int, int, int]:
    """(parameters, training FLOPs on ``n_tokens`` tokens, AdamW float32 memory in bytes) of
    the training-loop notebook's GPT."""
    n = notebook_gpt_parameters(vocab_size, block_size, d_model, n_layers)
    return n, training_flops(n, n_tokens), adamw_memory_bytes(n)
