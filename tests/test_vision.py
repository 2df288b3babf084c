"""The reference image input (reference_impl.models.vision) against Hugging Face's ViT: a
randomly initialised ``ViTModel`` (small config, no download) loaded into :class:`ViTEncoder`
gives the same hidden states, layer by layer; patchify is the patch-embedding Conv2d's
layout. Then the prefix-LM loss, the captioner, and coursekit's captioned images.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import ViTConfig, ViTModel

from coursedata.images import COLOURS
from coursekit import generate_shape_images, load_digit_images
from reference_impl.models import ModelConfig
from reference_impl.models.vision import (
    ImageCaptioner,
    VisionConfig,
    from_hf_vit,
    patchify,
    prefix_lm_loss,
)


def _hf_vit(seed: int, size: int, patch: int, channels: int, layers: int = 2) -> ViTModel:
    torch.manual_seed(seed)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=48,
        image_size=size,
        patch_size=patch,
        num_channels=channels,
    )
    model = ViTModel(config, add_pooling_layer=False)
    with torch.no_grad():  # spread every weight (norms too) beyond the near-identity init
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


@pytest.mark.parametrize(("size", "patch", "channels"), [(16, 4, 3), (8, 2, 1), (12, 12, 3)])
def test_encoder_matches_hf_vit(size: int, patch: int, channels: int) -> None:
    hf = _hf_vit(size + patch, size, patch, channels)
    encoder = from_hf_vit(hf)
    x = torch.rand(3, channels, size, size)
    with torch.no_grad():
        out = hf(pixel_values=x, output_hidden_states=True)
        torch.testing.assert_close(encoder(x), out.last_hidden_state, atol=1e-5, rtol=1e-5)
        h = encoder.embed(x)
        torch.testing.assert_close(h, out.hidden_states[0], atol=1e-5, rtol=1e-5)
        for block, expected in zip(encoder.blocks, out.hidden_states[1:], strict=True):
            h = block(h)
            torch.testing.assert_close(h, expected, atol=1e-5, rtol=1e-5)


def test_patchify_is_the_conv_patch_embedding() -> None:
    hf = _hf_vit(0, 16, 4, 3, layers=1)
    conv = hf.embeddings.patch_embeddings.projection  # Conv2d(3, 32, 4, stride=4)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = hf.embeddings.patch_embeddings(x)  # (B, N, D)
        got = patchify(x, 4) @ conv.weight.reshape(32, -1).T + conv.bias
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(patchify(x, 4)[:, 5], x[:, :, 4:8, 4:8].flatten(1))  # row 1, column 1


def test_prefix_lm_loss_is_cross_entropy_on_the_text() -> None:
    logits, targets = torch.randn(3, 5 + 4, 11), torch.randint(0, 11, (3, 4))
    text = logits[:, 5 - 1 : -1]  # position 4 + i predicts targets[:, i]
    expected = F.cross_entropy(text.reshape(-1, 11), targets.reshape(-1))
    torch.testing.assert_close(prefix_lm_loss(logits, targets, 5), expected)
    targets[0, 2:] = -100
    expected = F.cross_entropy(text.reshape(-1, 11), targets.reshape(-1))
    torch.testing.assert_close(prefix_lm_loss(logits, targets, 5), expected)
    grad = torch.autograd.grad(prefix_lm_loss(logits.requires_grad_(), targets, 5), logits)[0]
    assert grad[:, :4].abs().sum() == 0 and grad[:, -1].abs().sum() == 0  # never targets


def test_captioner_loss_falls() -> None:
    images, captions = generate_shape_images(256, seed=1)
    vocab = sorted({w for c in captions for w in c.split()})
    rows = [[2 + vocab.index(w) for w in c.split()] + [1] for c in captions]  # 0 pad, 1 eos
    tokens = torch.tensor([r + [0] * (9 - len(r)) for r in rows])
    targets = tokens.masked_fill(tokens == 0, -100)
    vision = VisionConfig(
        image_size=16, patch_size=4, in_channels=3, d_model=32, n_heads=4, n_layers=1, d_ff=64
    )
    lm = ModelConfig(
        vocab_size=2 + len(vocab), context_length=32, d_model=32, n_heads=4, n_layers=1
    )
    torch.manual_seed(0)
    model = ImageCaptioner(vision, lm)
    assert model(images[:2], tokens[:2]).shape == (2, 16 + 9, 2 + len(vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        idx = torch.arange(step * 32, step * 32 + 32) % 256
        loss = prefix_lm_loss(model(images[idx], tokens[idx]), targets[idx], model.n_prefix)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert math.log(2 + len(vocab)) * 0.8 < losses[0] and sum(losses[-5:]) / 5 < 0.4 * losses[0]


def test_shape_images_are_deterministic() -> None:
    a, ca = generate_shape_images(50, seed=3)
    b, cb = generate_shape_images(50, seed=3)
    c, cc = generate_shape_images(50, seed=4)
    assert torch.equal(a, b) and ca == cb
    assert not torch.equal(a, c) and ca != cc
    assert a.shape == (50, 3, 16, 16) and a.dtype == torch.float32
    assert generate_shape_images(3, seed=0, size=24)[0].shape == (3, 3, 24, 24)


def _colour_mass(region: torch.Tensor, colour: str) -> float:
    """How much of ``region`` (3, h, w) is painted in ``colour`` (pixels of full coverage)."""
    rgb = torch.tensor(COLOURS[colour])
    cover = (region * rgb[:, None, None]).sum(0) / rgb.pow(2).sum()  # projection on rgb
    return float(
        cover.clamp(0, 1)[(region - cover * rgb[:, None, None]).abs().amax(0) < 0.05].sum()
    )


def test_captions_describe_their_images() -> None:
    """Colours where the caption puts them, and areas that fit the named shapes."""
    images, captions = generate_shape_images(300, seed=5)
    areas = {"circle": math.pi, "square": 1.6**2, "triangle": 0.5 * 1.8 * 2 * 0.6 * 1.8}
    r2 = (16 / 6) ** 2
    kinds = set()
    for image, text in zip(images, captions, strict=True):
        words = text.split()
        if len(words) == 3:  # "a red circle": that colour, over that shape's area
            assert _colour_mass(image, words[1]) == pytest.approx(areas[words[2]] * r2, abs=2.0)
            kinds.add("one")
            continue
        relation = " ".join(words[3:-3])
        first, second = words[1], words[-2]
        halves = (
            (image[:, :8], image[:, 8:])
            if relation == "above"
            else (image[..., :8], image[..., 8:])
        )
        assert _colour_mass(halves[0], first) > 8 and _colour_mass(halves[1], second) > 8, text
        kinds.add(relation)
    assert kinds == {"one", "above", "left of"}


def test_digits() -> None:
    from sklearn.datasets import load_digits

    images, captions = load_digit_images()
    digits = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert captions[:3] == ["the digit 0", "the digit 1", "the digit 2"]
    assert captions == [f"the digit {t}" for t in digits.target]
    torch.testing.assert_close(images[7, 0] * 16, torch.tensor(digits.images[7]).float())
