"""Grader of the mini-gemini notebook "an image prefix" (part5_integration): the ids of the
image blocks in a token sequence, the attention mask of a Gemma 3 model reading images
(causal, or inside one image both ways; local layers keep their window), and the input
embeddings with the image placeholders replaced by image vectors after the scaling.

Expected values come from ``reference_impl.models``: :func:`image_blocks`,
:func:`window_mask` with ``blocks`` and :meth:`TransformerLM.embed`, whose image path equals
transformers' ``Gemma3ForConditionalGeneration`` (tests/test_gemma.py). Sequences are
written as layouts: ``"t"`` a text token, ``"i"`` an image placeholder, so ``"tiiit"`` is
text, an image of three vectors, text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature, grad_case, seeded_randn
from coursekit import describe_difference
from reference_impl.models import ModelConfig, TransformerLM
from reference_impl.models.attention import window_mask
from reference_impl.models.model import image_blocks

IMAGE_ID = 2  # the placeholder id in every check (the notebook's <image>)
VOCAB = 11


def layout_ids(layouts: list[str], seed: int) -> Tensor:
    """(B, T) int64 ids of equal-length ``layouts``: ``"i"`` is IMAGE_ID, ``"t"`` a random
    text id (never IMAGE_ID)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for layout in layouts:
        text = torch.randint(3, VOCAB, (len(layout),), generator=g)
        rows.append([IMAGE_ID if c == "i" else int(t) for c, t in zip(layout, text, strict=True)])
    return torch.tensor(rows, dtype=torch.long)


def random_layouts(seed: int, rows: int, length: int, p_image: float = 0.5) -> list[str]:
    """Random layouts: runs of text and of image tokens of random lengths."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(rows):
        chars: list[str] = []
        while len(chars) < length:
            kind = "i" if torch.rand((), generator=g) < p_image else "t"
            chars += kind * int(torch.randint(1, 6, (), generator=g))
        out.append("".join(chars[:length]))
    return out


def _values_match(expected: Tensor, what: str) -> Callable[[Any], str | None]:
    """Compare values only (an int32 or float answer with the right values passes here; the
    dtype has a check of its own)."""

    def check(got: Any) -> str | None:
        if not isinstance(got, Tensor):
            return f"{what}: expected a tensor, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if got.is_floating_point() and not got.isfinite().all():
            return f"{what}: NaN or infinite values"
        return describe_difference(what, got.to(expected.dtype), expected)

    return check


def _dtype_is(expected: Tensor, what: str) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        problem = _values_match(expected, what)(got)
        if problem:
            return problem
        if got.dtype != expected.dtype:
            return f"{what}: dtype {got.dtype}, expected {expected.dtype}"
        return None

    return check


# --- image_block_ids ------------------------------------------------------------------------


def _blocks_case(layouts: list[str], seed: int, dtype: bool = False) -> Case:
    ids = layout_ids(layouts, seed)
    expected = image_blocks(ids, IMAGE_ID)
    judge = _dtype_is if dtype else _values_match
    return Case([ids, IMAGE_ID], None, extra=judge(expected, "block ids"))


BLOCK_CHECKS = [
    Check(
        "one image in the middle of the text",
        0.5,
        lambda: _blocks_case(["ttiiiitt"], seed=1),
        "the image's tokens get block 0, every text token -1",
    ),
    Check(
        "two images in one row are blocks 0 and 1",
        0.5,
        lambda: _blocks_case(["tiiittiit"], seed=2),
        "a block starts where an image token follows a text token (or opens the row); "
        "count the starts with a cumulative sum, minus 1",
    ),
    Check(
        "each row of a batch counts its own images from 0",
        0.5,
        lambda: _blocks_case(["tiitiit", "ttttiit", "ttttttt"], seed=3),
        "the cumulative sum runs along the sequence (dim 1), separately in each row, not "
        "over the flattened batch",
    ),
    Check(
        "an image that opens the row and one that ends it",
        0.5,
        lambda: _blocks_case(["iittii", "iiiiit"], seed=4),
        "position 0 starts a block when it is an image token; do not wrap around "
        "(torch.roll compares position 0 with the LAST token)",
    ),
    Check(
        "random layouts with many short images",
        0.5,
        lambda: _blocks_case(random_layouts(5, 4, 40), seed=5),
        "every maximal run of image tokens is one block; runs separated by a single text "
        "token are two blocks",
    ),
    Check(
        "block ids are int64, text -1",
        0.5,
        lambda: _blocks_case(["tiittiti", "tttttttt"], seed=6, dtype=True),
        "return a torch.long tensor (ids of the same kind as token ids), with -1 for text",
    ),
]


# --- image_attention_mask -------------------------------------------------------------------


def expected_mask(blocks: Tensor, window: int | None) -> Tensor:
    pos = torch.arange(blocks.size(1))
    mask = window_mask(pos, pos, window, blocks)
    return mask.expand(blocks.size(0), -1, -1).clone()


def _mask_case(layouts: list[str], window: int | None, dtype: bool = False) -> Case:
    blocks = image_blocks(layout_ids(layouts, seed=0), IMAGE_ID)
    judge = _dtype_is if dtype else _values_match
    return Case([blocks, window], None, extra=judge(expected_mask(blocks, window), "mask"))


MASK_CHECKS = [
    Check(
        "text only: the causal mask, one (T, T) per row",
        0.5,
        lambda: _mask_case(["tttttt", "tttttt"], None),
        "mask[b, i, j] = j <= i for text; return (B, T, T)",
    ),
    Check(
        "one image: its tokens see each other both ways",
        0.5,
        lambda: _mask_case(["ttiiitt"], None),
        "OR the causal mask with 'same image': blocks[:, :, None] == blocks[:, None, :] for "
        "image tokens; causal alone hides the image's later patches from its earlier ones",
    ),
    Check(
        "text never sees later text (-1 is no block)",
        0.5,
        lambda: _mask_case(["tttiit", "itttti"], None),
        "two text tokens both have block -1 but are not in one image: require blocks >= 0 "
        "in the 'same image' term, or every text token sees the future",
    ),
    Check(
        "two images: no attention into the later image",
        0.5,
        lambda: _mask_case(["tiiitiit"], None),
        "'same image' means the SAME block id, not 'both are image tokens'",
    ),
    Check(
        "a batch with different layouts per row",
        0.5,
        lambda: _mask_case(["tiiitt", "ttttii", "iittit"], None),
        "compare the block ids of each row with themselves: (B, T, 1) == (B, 1, T)",
    ),
    Check(
        "a window over text: i - W < j <= i",
        0.5,
        lambda: _mask_case(["tttttttt"], 3),
        "a window W keeps W keys, the query included: j > i - W",
    ),
    Check(
        "a window shorter than an image also limits its earlier patches",
        0.5,
        lambda: _mask_case(["tiiiiiitt", "iiiiittti"], 2),
        "apply the window AFTER the OR: (causal | same image) & (j > i - W); "
        "(causal & window) | same image lets an image token see its whole image",
    ),
    Check(
        "random layouts and window, returned as bool",
        0.5,
        lambda: _mask_case(random_layouts(7, 3, 24), 5, dtype=True),
        "return a torch.bool tensor (True: may attend)",
    ),
]


# --- embed_with_images ----------------------------------------------------------------------


def expected_embeddings(
    weight: Tensor, ids: Tensor, image_embeds: Tensor, image_id: int = IMAGE_ID
) -> Tensor:
    """The reference's Gemma 3 input embeddings with ``weight`` as its table."""
    v, d = weight.shape
    config = ModelConfig(
        vocab_size=v,
        context_length=max(ids.size(1), 1),
        d_model=d,
        n_heads=1,
        head_dim=2,
        n_layers=1,
        norm_kind="rmsnorm",
        pos_kind="rope",
        embed_scale=True,
        image_token_id=image_id,
    )
    model = TransformerLM(config).to(weight.dtype)
    del model.tok_emb.weight  # use ``weight`` itself, so that gradients reach it
    model.tok_emb.weight = weight
    return model.embed(ids, image_embeds)


def _embed_case(
    layouts: list[str],
    n_per_image: int,
    seed: int,
    d: int = 6,
    grad: bool = False,
    dtype: torch.dtype = torch.float64,
) -> Case:
    ids = layout_ids(layouts, seed)
    n_images = int(image_blocks(ids, IMAGE_ID).amax(dim=1).clamp(min=-1).add(1).sum())
    weight = seeded_randn(seed + 1, VOCAB, d, dtype=dtype)
    weight[IMAGE_ID] += 3.0  # a placeholder that is kept (or added to) shows
    images = seeded_randn(seed + 2, n_images, n_per_image, d, dtype=dtype)
    args: list[Any] = [weight, ids, images, IMAGE_ID]
    if grad:
        return grad_case(expected_embeddings, args, (0, 2), seed)
    expected = expected_embeddings(weight, ids, images).detach()
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    return Case(args, expected, atol=tol, rtol=tol)


EMBED_CHECKS = [
    Check(
        "no image: the token embeddings times sqrt(d_model)",
        0.5,
        lambda: _embed_case(["tttttt", "tttttt"], 4, seed=11),
        "x = weight[ids] * d_model ** 0.5 (Gemma scales every embedding by sqrt(d_model))",
    ),
    Check(
        "one image: its vectors replace the placeholders, unscaled",
        0.5,
        lambda: _embed_case(["ttiiit"], 3, seed=12),
        "scale the token embeddings FIRST, then write the image vectors into the "
        "placeholders' rows (Gemma 3: the projector's output is not scaled again)",
    ),
    Check(
        "the placeholders' own embeddings are gone",
        0.5,
        lambda: _embed_case(["iiiitt"], 4, seed=13, d=4),
        "replace the rows of the placeholders (masked_scatter, or indexing with the mask), "
        "do not add the image vectors to them",
    ),
    Check(
        "two images in one row, in order",
        0.5,
        lambda: _embed_case(["tiittiit"], 2, seed=14),
        "image n's P vectors fill the n-th run of P placeholders, in order",
    ),
    Check(
        "images fill the batch row by row",
        0.5,
        lambda: _embed_case(["tiiitt", "iiittt", "tttiii"], 3, seed=15),
        "placeholders are filled in row-major order: all of row 0's images, then row 1's; "
        "image_embeds.reshape(-1, d) lines up with x[ids == image_id]",
    ),
    Check(
        "vectors inside one image keep their order",
        0.5,
        lambda: _embed_case(["ttiiiiii"], 6, seed=16, d=3),
        "flatten image_embeds (N, P, d) to (N * P, d) without transposing: patch p of "
        "image n is row n * P + p",
    ),
    Check(
        "gradients reach the embedding table and the image vectors",
        0.5,
        lambda: _embed_case(["tiittiit", "ttiitttt"], 2, seed=17, grad=True),
        "build the result with torch operations (masked_scatter, torch.where); no "
        ".detach(), and do not write into weight in place",
    ),
    Check(
        "float32: the scale in the embeddings' dtype",
        0.5,
        lambda: _embed_case(["tiiittiiit"], 3, seed=18, d=16, dtype=torch.float32),
        "keep the dtype of weight (float32 here); the result is float32",
    ),
]


ITEMS: dict[str, Item] = {
    "image_prefix.image_blocks": Item(
        "image_block_ids",
        BLOCK_CHECKS,
        Signature("ids, image_id", shapes={"ids": "(B, T)", "return": "(B, T)"}),
    ),
    "image_prefix.image_mask": Item(
        "image_attention_mask",
        MASK_CHECKS,
        Signature("blocks, window=None", shapes={"blocks": "(B, T)", "return": "(B, T, T)"}),
    ),
    "image_prefix.embed_with_images": Item(
        "embed_with_images",
        EMBED_CHECKS,
        Signature(
            "weight, ids, image_embeds, image_id",
            shapes={
                "weight": "(V, d)",
                "ids": "(B, T)",
                "image_embeds": "(N, P, d)",
                "return": "(B, T, d)",
            },
        ),
    ),
}
