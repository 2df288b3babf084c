"""Grader of the image-input notebook (part3_innovations): patchify, the patch embedding
with its class token and positions, the ViT encoder block, the projector into the LM's
embedding space, and the prefix-LM loss.

Expected values come from ``reference_impl.models.vision``, whose encoder equals Hugging
Face's ``ViTModel`` (tests/test_vision.py). Plain functions get float64 inputs and tight
tolerances; modules are float32, built with the student's class and loaded with the
reference's (spread) weights by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, grad_case, module_case, seeded_randn
from coursekit.testing import describe_difference
from reference_impl.models.vision import (
    ImageProjector,
    PatchEmbedding,
    ViTBlock,
    patchify,
    prefix_lm_loss,
)


def _spread_case(
    ref: nn.Module,
    init: list[Any],
    x: Tensor,
    seed: int,
    grads: bool = False,
    extra: Callable[[Tensor], Callable[[Any], str | None]] | None = None,
) -> Case:
    """The reference module ``ref`` (weights spread with ``seed``) on ``x``: its output, and
    with ``grads`` the gradients of x and every parameter. With ``extra``, only
    ``extra(expected)`` judges the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.3, generator=g)
    ref.eval()
    case = module_case(
        ref, [x], init, grad_args=(0,) if grads else (), params=grads, grad_seed=seed + 1
    )
    if extra:
        case.expected, case.extra = None, extra(case.expected)
    return case


def _same_shape(expected: Tensor) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        if not isinstance(got, Tensor):
            return f"output: expected a tensor, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"output: shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        return None

    return check


def _rows(what: str, rows: slice) -> Callable[[Tensor], Callable[[Any], str | None]]:
    """Compare only ``output[:, rows]`` with the reference's."""

    def make(expected: Tensor) -> Callable[[Any], str | None]:
        def check(got: Any) -> str | None:
            problem = _same_shape(expected)(got)
            if problem:
                return problem
            return describe_difference(what, got[:, rows], expected[:, rows], 1e-5, 1e-4)

        return check

    return make


def _images(seed: int, b: int, c: int, h: int, w: int, dtype: torch.dtype) -> Tensor:
    return torch.rand((b, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- patchify(images, patch_size) -> (B, N, C*P*P) -------------------------------------------


def _patchify_case(seed: int, b: int, c: int, h: int, w: int, p: int, grads: bool = False) -> Case:
    images = _images(seed, b, c, h, w, torch.float64)
    if grads:
        return grad_case(patchify, [images, p], (0,), seed)
    return Case([images, p], patchify(images, p), atol=0.0, rtol=0.0)


PATCHIFY_CHECKS = [
    Check(
        "2 RGB images of 8x8 in 4x4 patches",
        0.5,
        lambda: _patchify_case(1, 2, 3, 8, 8, 4),
        "reshape to (B, C, H/P, P, W/P, P), permute to (B, H/P, W/P, C, P, P), reshape to "
        "(B, N, C*P*P): each patch flattened channel-first (c, i, j) like the kernel of "
        "HF's Conv2d, not channel-last (i, j, c)",
    ),
    Check(
        "a wide image (8x12): patches in row-major order",
        0.5,
        lambda: _patchify_case(2, 1, 3, 8, 12, 4),
        "number the patches row by row: the first W/P patches are the top row (patch n is "
        "at grid row n // (W/P), column n % (W/P)); do not transpose the grid",
    ),
    Check(
        "one channel, 2x2 patches of 6x6 images",
        0.5,
        lambda: _patchify_case(3, 2, 1, 6, 6, 2),
        "a patch's P*P values are its rows one after the other (i, then j)",
    ),
    Check(
        "patch_size 1: every pixel is a patch",
        0.5,
        lambda: _patchify_case(4, 2, 3, 4, 5, 1),
        "N = (H/P) * (W/P) patches of C*P*P values; patch_size is an argument",
    ),
    Check(
        "patch_size = image size: a single patch",
        0.5,
        lambda: _patchify_case(5, 3, 3, 4, 4, 4),
        "a single patch is the whole image flattened channel-first: images.flatten(1)",
    ),
    Check(
        "gradients flow back to the pixels (float64)",
        0.5,
        lambda: _patchify_case(6, 2, 3, 8, 8, 2, grads=True),
        "use torch reshapes/permutes (or F.unfold) on the tensor itself: no numpy, no "
        ".detach(), and keep the dtype",
    ),
]


# --- PatchEmbedding(image_size, patch_size, in_channels, d_model) ----------------------------


def _embed_case(
    seed: int,
    b: int,
    c: int,
    size: int,
    p: int,
    d: int,
    grads: bool = False,
    extra: Callable[[Tensor], Callable[[Any], str | None]] | None = None,
) -> Case:
    ref = PatchEmbedding(size, p, c, d)
    x = _images(seed + 7, b, c, size, size, torch.float32)
    return _spread_case(ref, [size, p, c, d], x, seed, grads, extra)


EMBED_CHECKS = [
    Check(
        "output shape (B, 1 + N, d_model)",
        0.5,
        lambda: _embed_case(1, 2, 3, 8, 4, 16, extra=_same_shape),
        "one class token plus N = (image_size / patch_size)^2 patch tokens per image",
    ),
    Check(
        "values: 2 RGB images of 8x8, 4x4 patches, d_model 16",
        0.5,
        lambda: _embed_case(2, 2, 3, 8, 4, 16),
        "cat([cls_token expanded to (B, 1, D), proj(patchify(images))], dim=1) + pos_emb",
    ),
    Check(
        "the class token comes first, with position 0",
        0.5,
        lambda: _embed_case(
            3, 3, 3, 8, 4, 16, extra=_rows("output[:, 0] (class token)", slice(0, 1))
        ),
        "prepend the class token (position 0), do not append it; it gets pos_emb[:, 0] "
        "like every other position gets its own",
    ),
    Check(
        "the patch tokens: proj(patch) + pos_emb[:, 1:]",
        0.5,
        lambda: _embed_case(
            4, 2, 3, 8, 2, 12, extra=_rows("output[:, 1:] (patches)", slice(1, None))
        ),
        "patch n is proj(patchify(images)[:, n]) + pos_emb[:, 1 + n]: the position table "
        "holds 1 + N rows, the class token's first",
    ),
    Check(
        "gradients for the images, the class token, the positions and proj",
        0.5,
        lambda: _embed_case(5, 2, 3, 8, 4, 8, grads=True),
        "use cls_token and pos_emb as nn.Parameters in the forward (expand/cat, no "
        "copies): the class token's gradient is the sum over the batch of position 0's",
    ),
    Check(
        "other sizes: 2 channels, 12x12 images, 3x3 patches, one image",
        0.5,
        lambda: _embed_case(6, 1, 2, 12, 3, 20),
        "take every size from the constructor's arguments (N = (12 / 3)^2 = 16); expand "
        "the class token to the batch size",
    ),
]


# --- EncoderBlock(d_model, n_heads, d_ff): the ViT encoder block -----------------------------


def _block_case(
    seed: int, shape: tuple[int, int, int], heads: int, d_ff: int, grads: bool = False
) -> Case:
    d = shape[-1]
    x = seeded_randn(seed + 7, *shape, dtype=torch.float32)
    return _spread_case(ViTBlock(d, heads, d_ff), [d, heads, d_ff], x, seed, grads)


BLOCK_CHECKS = [
    Check(
        "values: 2 sequences of 6 tokens, d_model 16, 4 heads",
        1.0,
        lambda: _block_case(1, (2, 6, 16), 4, 32),
        "pre-norm: x = x + attn(norm1(x)); x = x + fc2(gelu(fc1(norm2(x)))); attention "
        "without a mask (every patch sees every patch)",
    ),
    Check(
        "a single token (the attention output is its value)",
        0.5,
        lambda: _block_case(2, (3, 1, 16), 4, 32),
        "normalise before each sub-layer and add the residual after it (pre-norm, not "
        "norm(x + attn(x))); exact GELU (F.gelu), fc2 back to d_model",
    ),
    Check(
        "one head of width d_model",
        0.5,
        lambda: _block_case(3, (2, 5, 8), 1, 16),
        "q, k, v = qkv(x) split into three (q first), then each into heads; scores = "
        "q @ k^T / sqrt(head_dim); no causal mask",
    ),
    Check(
        "gradients for x and every parameter",
        1.0,
        lambda: _block_case(4, (2, 4, 8), 2, 16, grads=True),
        "build the block from its submodules with torch operations (no .detach())",
    ),
    Check(
        "other sizes: 9 tokens, d_model 24, 3 heads, d_ff 40",
        0.5,
        lambda: _block_case(5, (1, 9, 24), 3, 40),
        "head_dim = d_model // n_heads; view the qkv output as (B, T, 3, H, head_dim)",
    ),
    Check(
        "17 tokens, 8 heads: every token attends to every token",
        0.5,
        lambda: _block_case(6, (2, 17, 32), 8, 64),
        "the encoder is bidirectional: no causal mask (is_causal=False), unlike the LM",
    ),
]


# --- Projector(d_vision, d_model) -------------------------------------------------------------


def _proj_case(
    seed: int,
    b: int,
    t: int,
    dv: int,
    d: int,
    scale: float = 1.0,
    grads: bool = False,
    extra: Callable[[Tensor], Callable[[Any], str | None]] | None = None,
) -> Case:
    x = seeded_randn(seed + 7, b, t, dv, scale=scale, dtype=torch.float32)
    return _spread_case(ImageProjector(dv, d), [dv, d], x, seed, grads, extra)


PROJECTOR_CHECKS = [
    Check(
        "output shape (B, N, d_model): the class token is dropped",
        0.5,
        lambda: _proj_case(1, 2, 5, 16, 24, extra=_same_shape),
        "features[:, 1:]: the projector keeps the N patch tokens only (LLaVA's default "
        "feature selection), not the class token",
    ),
    Check(
        "values: 2 images, 4 patches, d_vision 16 -> d_model 24",
        0.5,
        lambda: _proj_case(2, 2, 5, 16, 24),
        "fc2(gelu(fc1(features[:, 1:]))): fc1 = Linear(d_vision, d_model), fc2 = "
        "Linear(d_model, d_model); drop the first token (the class token), not the last",
    ),
    Check(
        "gradients for the features and the parameters",
        0.5,
        lambda: _proj_case(3, 2, 4, 8, 12, grads=True),
        "the class token gets no gradient; everything else flows through fc1 and fc2",
    ),
    Check(
        "d_vision larger than d_model, 16 patches",
        0.5,
        lambda: _proj_case(4, 3, 17, 32, 8),
        "the hidden width is d_model (LLaVA-1.5): fc1 maps d_vision -> d_model",
    ),
    Check(
        "a single patch per image",
        0.5,
        lambda: _proj_case(5, 4, 2, 8, 8),
        "keep the token dimension: the output is (B, 1, d_model)",
    ),
    Check(
        "large features (x 4): the nonlinearity is the exact GELU",
        0.5,
        lambda: _proj_case(6, 2, 6, 12, 16, scale=4.0),
        "a Linear-GELU-Linear MLP: without a nonlinearity two linears are one linear map; "
        "use F.gelu (erf), not ReLU or the tanh approximation",
    ),
]


# --- prefix_lm_loss(logits, targets, n_prefix) -> scalar --------------------------------------


def _loss_case(
    seed: int,
    b: int,
    p: int,
    t: int,
    v: int,
    scale: float = 1.0,
    lengths: list[int] | None = None,
    grads: bool = False,
) -> Case:
    logits = seeded_randn(seed, b, p + t, v, scale=scale)
    g = torch.Generator().manual_seed(seed + 1)
    targets = torch.randint(0, v, (b, t), generator=g)
    for row, n in enumerate(lengths or []):
        targets[row, n:] = -100
    if grads:
        case = grad_case(prefix_lm_loss, [logits, targets, p], (0,), seed)
        case.atol, case.rtol = 1e-10, 1e-8
        return case
    return Case([logits, targets, p], prefix_lm_loss(logits, targets, p), atol=1e-10, rtol=1e-8)


LOSS_CHECKS = [
    Check(
        "2 captions of 5 tokens after 3 image tokens, vocabulary 7",
        0.5,
        lambda: _loss_case(1, 2, 3, 5, 7),
        "position n_prefix - 1 + i predicts targets[:, i]: take logits[:, n_prefix - 1:-1] "
        "against targets (or pad the targets with n_prefix times -100 and shift by one); "
        "image positions are never targets",
    ),
    Check(
        "padding: targets of -100 are ignored",
        0.5,
        lambda: _loss_case(2, 3, 4, 6, 9, lengths=[6, 3, 1]),
        "average over the real text tokens only: F.cross_entropy(..., ignore_index=-100) "
        "(its default), not a mean that counts the padded positions",
    ),
    Check(
        "no prefix (n_prefix = 0): the plain next-token loss",
        0.5,
        lambda: _loss_case(3, 2, 0, 6, 5),
        "with n_prefix = 0, logits[:, :-1] predict targets[:, 1:]: the first token has no "
        "position before it",
    ),
    Check(
        "gradient for the logits: nothing from the image positions but the last",
        0.5,
        lambda: _loss_case(4, 2, 4, 3, 6, grads=True),
        "only the last image position (it predicts the first text token) and the text "
        "positions but the last get a gradient; compute the loss from the logits with "
        "torch operations",
    ),
    Check(
        "a one-token caption after 16 image tokens",
        0.5,
        lambda: _loss_case(5, 2, 16, 1, 8),
        "the last image position (n_prefix - 1) predicts the first text token: shift by "
        "the prefix length AND by one",
    ),
    Check(
        "large logits (x 1000): a stable log-softmax",
        0.5,
        lambda: _loss_case(6, 2, 3, 4, 6, scale=1000.0),
        "use F.cross_entropy (or log_softmax): exp of large logits overflows",
    ),
]


ITEMS: dict[str, Item] = {
    "image_input.patchify": Item(
        "patchify",
        PATCHIFY_CHECKS,
        Signature(
            "images, patch_size",
            shapes={
                "images": "(B, C, H, W)",
                "return": "(B, (H // patch_size) * (W // patch_size), C * patch_size**2)",
            },
        ),
    ),
    "image_input.PatchEmbedding": Item(
        "PatchEmbedding",
        EMBED_CHECKS,
        Signature(
            "image_size, patch_size, in_channels, d_model",
            forward="images",
            shapes={
                "images": "(B, in_channels, image_size, image_size)",
                "return": "(B, 1 + (image_size // patch_size) ** 2, d_model)",
            },
        ),
    ),
    "image_input.EncoderBlock": Item(
        "EncoderBlock",
        BLOCK_CHECKS,
        Signature(
            "d_model, n_heads, d_ff",
            forward="x",
            shapes={"x": "(B, N, d_model)", "return": "(B, N, d_model)"},
        ),
    ),
    "image_input.Projector": Item(
        "Projector",
        PROJECTOR_CHECKS,
        Signature(
            "d_vision, d_model",
            forward="features",
            shapes={"features": "(B, P, d_vision)", "return": "(B, P - 1, d_model)"},
        ),
    ),
    "image_input.prefix_lm_loss": Item(
        "prefix_lm_loss",
        LOSS_CHECKS,
        Signature(
            "logits, targets, n_prefix",
            shapes={"logits": "(B, n_prefix + T, V)", "targets": "(B, T)", "return": "()"},
        ),
    ),
}
