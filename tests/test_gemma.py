"""The Gemma-style options of TransformerLM match Hugging Face's Gemma 2 and Gemma 3
exactly, and the parity tests are strong enough to catch the usual mistakes.

Tiny HF models are built offline with randomised norm weights and initializer_range 0.2: at
HF's own initialisation (every (1 + w) norm weight 0, std 0.02) dropping the attention
soft-cap moves the logits by about 2e-6 and would pass a 1e-5 test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from reference_impl.models import (
    ModelConfig,
    TransformerLM,
    from_hf_gemma2,
    from_hf_gemma3,
    window_mask,
)
from reference_impl.models.model import image_blocks
from reference_impl.models.moe import load_balancing_loss

transformers = pytest.importorskip("transformers")

COMMON: dict[str, Any] = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    sliding_window=8,
    max_position_embeddings=128,
    initializer_range=0.2,
    attn_implementation="eager",  # Gemma 3 defaults to sdpa, 7e-7 away from eager
    query_pre_attn_scalar=24,  # not head_dim, so that the scale is exercised
)
IMAGE_TOKEN = 250


def _randomise_norms(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def gemma2() -> Any:
    torch.manual_seed(0)
    config = transformers.Gemma2Config(
        **COMMON, attn_logit_softcapping=3.0, final_logit_softcapping=5.0
    )
    return _randomise_norms(transformers.Gemma2ForCausalLM(config))


@pytest.fixture(scope="module")
def gemma3() -> Any:
    torch.manual_seed(0)
    config = transformers.Gemma3TextConfig(
        **COMMON,
        sliding_window_pattern=3,
        rope_theta=1e6,
        rope_local_base_freq=1e4,
        final_logit_softcapping=5.0,
    )
    return _randomise_norms(transformers.Gemma3ForCausalLM(config))


@pytest.fixture(scope="module")
def gemma3_mm() -> Any:
    torch.manual_seed(0)
    text = transformers.Gemma3TextConfig(**COMMON, sliding_window_pattern=2)
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=16,
        patch_size=4,
    )
    config = transformers.Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision,
        mm_tokens_per_image=4,
        image_token_id=IMAGE_TOKEN,
        boi_token_index=251,
        eoi_token_index=252,
    )
    config._attn_implementation = "eager"
    config.text_config._attn_implementation = "eager"
    return _randomise_norms(transformers.Gemma3ForConditionalGeneration(config))


IDS = torch.randint(0, 240, (2, 40), generator=torch.Generator().manual_seed(3))


def _max_diff(hf: Any, ours: TransformerLM, ids: Tensor = IDS) -> float:
    with torch.no_grad():
        return (hf(ids).logits - ours(ids)).abs().max().item()


def test_gemma2_logits_equal_transformers(gemma2: Any) -> None:
    ours = from_hf_gemma2(gemma2)
    assert ours.config.attn_pattern == "LGLG"  # Gemma 2 alternates, local first
    assert _max_diff(gemma2, ours) < 1e-5


def test_gemma3_logits_equal_transformers(gemma3: Any) -> None:
    ours = from_hf_gemma3(gemma3)
    assert ours.config.attn_pattern == "LLGL"  # layer i global iff (i + 1) % 3 == 0
    assert ours.config.attn_softcap is None  # stored by the config, never applied by HF
    assert _max_diff(gemma3, ours) < 1e-5


def test_gemma3_image_prefix_equals_conditional_generation(gemma3_mm: Any) -> None:
    """Given the same projected image features, the logits of the text side equal
    Gemma3ForConditionalGeneration's: embeddings replaced after scaling, and the image
    tokens of one image attending to each other both ways (also in local layers)."""
    ours = from_hf_gemma3(gemma3_mm)
    assert ours.config.final_softcap is None  # HF's conditional model skips it
    ids = torch.randint(0, 240, (1, 30), generator=torch.Generator().manual_seed(4))
    ids[0, 3:7] = ids[0, 20:24] = IMAGE_TOKEN  # two images of 4 tokens
    pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = gemma3_mm(
            input_ids=ids, pixel_values=pixels, token_type_ids=(ids == IMAGE_TOKEN).long()
        ).logits
        features = gemma3_mm.get_image_features(pixels).pooler_output  # (2, 4, 64)
        got = ours(ids, image_embeds=features)
        causal_only = ours.forward_embeds(ours.embed(ids, features))
    assert (got - expected).abs().max().item() < 1e-5
    assert (causal_only - expected).abs().max().item() > 1e-3  # the block mask matters


def _set_window(delta: int) -> Callable[[TransformerLM], None]:
    def plant(model: TransformerLM) -> None:
        for block in model.blocks:
            if block.attn.window is not None:
                block.attn.window += delta

    return plant


def _one_rope(model: TransformerLM) -> None:
    rope = next(b.attn.rope for b in model.blocks if b.attn.window is None)
    for block in model.blocks:
        block.attn.rope = rope


def _no_softcap(model: TransformerLM) -> None:
    for block in model.blocks:
        block.attn.softcap = None


def _no_post_norms(model: TransformerLM) -> None:
    for block in model.blocks:
        block.post_attn_norm = block.post_ffn_norm = None


def _norm_not_offset(model: TransformerLM) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p -= 1.0


def _no_embed_scale(model: TransformerLM) -> None:
    model.config.embed_scale = False


def _no_qk_norm(model: TransformerLM) -> None:
    for block in model.blocks:
        block.attn.q_norm = block.attn.k_norm = None


def _no_final_softcap(model: TransformerLM) -> None:
    model.config.final_softcap = None


PLANTED: dict[str, tuple[str, Callable[[TransformerLM], None]]] = {
    "window one too wide": ("gemma2", _set_window(+1)),
    "window one too narrow": ("gemma2", _set_window(-1)),
    "one RoPE base for all layers": ("gemma3", _one_rope),
    "attention soft-cap dropped": ("gemma2", _no_softcap),
    "final soft-cap dropped": ("gemma2", _no_final_softcap),
    "post-norms dropped": ("gemma2", _no_post_norms),
    "norm weight not offset by 1": ("gemma3", _norm_not_offset),
    "embeddings not scaled": ("gemma3", _no_embed_scale),
    "QK-norm dropped": ("gemma3", _no_qk_norm),
}


@pytest.mark.parametrize("bug", list(PLANTED))
def test_planted_bugs_break_parity(bug: str, request: pytest.FixtureRequest) -> None:
    """Each mistake moves the logits by more than 1e-3, far above the 1e-5 parity bar."""
    which, plant = PLANTED[bug]
    hf = request.getfixturevalue(which)
    ours = from_hf_gemma2(hf) if which == "gemma2" else from_hf_gemma3(hf)
    plant(ours)
    assert _max_diff(hf, ours) > 1e-3


def test_window_mask_semantics() -> None:
    """Query i sees key j iff i - W < j <= i: W keys including itself."""
    pos = torch.arange(10)
    mask = window_mask(pos, pos, window=3)
    expected = torch.tensor([[i - 3 < j <= i for j in range(10)] for i in range(10)])
    assert torch.equal(mask, expected)
    assert mask.sum(dim=1).tolist() == [1, 2] + [3] * 8
    # decoding: queries 7, 8 over keys whose positions come from a ring buffer (-1: empty)
    keys = torch.tensor([5, 6, -1, 7, 8])
    assert window_mask(torch.tensor([7, 8]), keys, window=3).tolist() == [
        [True, True, False, True, False],
        [False, True, False, True, True],
    ]


def test_image_blocks_see_each_other_both_ways_and_text_stays_causal() -> None:
    idx = torch.tensor([[1, 9, 9, 9, 2, 9, 9, 3]])
    blocks = image_blocks(idx, 9)
    assert blocks.tolist() == [[-1, 0, 0, 0, -1, 1, 1, -1]]
    pos = torch.arange(8)
    mask = window_mask(pos, pos, blocks=blocks)[0]
    assert mask[1, 3] and mask[5, 6]  # forwards within an image
    assert not mask[3, 5] and not mask[0, 1]  # not into a later image, text stays causal
    local = window_mask(pos, pos, window=2, blocks=blocks)[0]
    assert local[1, 3] and not local[3, 1]  # the window only bounds j from below


def _gemini(**overrides: Any) -> TransformerLM:
    config = ModelConfig.from_yaml("configs/mini_gemini.yaml")
    for key, value in overrides.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    return TransformerLM(ModelConfig.from_dict(config.to_dict())).eval()


def test_sliding_window_cache_equals_recomputation_and_stays_small() -> None:
    model = _gemini(sliding_window=6, final_softcap=None)
    ids = torch.randint(0, 512, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(ids)
        for chunks in ([7] + [1] * 33, [13, 27], [1] * 40):
            cache = model.new_cache(2)
            pieces, start = [], 0
            for n in chunks:
                pieces.append(model(ids[:, start : start + n], cache=cache))
                start += n
            assert (torch.cat(pieces, dim=1) - full).abs().max().item() < 1e-5, chunks
    local = [c for c, b in zip(cache.layers, model.blocks, strict=True) if b.attn.window]
    assert {c.k.size(2) for c in local} == {5}  # W - 1 slots, however long the text


def test_cache_bytes_with_and_without_local_layers() -> None:
    model = _gemini()
    c = model.config
    per_token = 2 * c.n_kv_heads * c.head_dim * 4  # keys and values, float32
    n_local = sum(c.is_local(i) for i in range(c.n_layers))
    expected = per_token * ((c.n_layers - n_local) * 128 + n_local * (c.sliding_window - 1))
    assert model.new_cache(1, 128).nbytes() == expected
    assert _gemini(attn_pattern="G").new_cache(1, 128).nbytes() == per_token * c.n_layers * 128


def test_generate_with_and_without_cache_agree_past_twice_the_window() -> None:
    from reference_impl.generation import generate

    model = _gemini(sliding_window=8)
    prompt = torch.randint(0, 512, (1, 5), generator=torch.Generator().manual_seed(1))
    cached = generate(model, prompt, 30, temperature=0.0, use_cache=True)
    plain = generate(model, prompt, 30, temperature=0.0, use_cache=False)
    assert cached.size(1) == 35 > 2 * 8
    assert torch.equal(cached, plain)


def test_moe_layers_and_aux_loss() -> None:
    model = _gemini().train()
    kinds = [type(b.ffn).__name__ for b in model.blocks]
    assert kinds == ["GatedMLP", "MoELayer"] * 3
    ids = torch.randint(0, 512, (2, 16), generator=torch.Generator().manual_seed(2))
    model(ids)
    aux = model.aux_loss()
    per_layer = [
        load_balancing_loss(b.ffn.router_logits, 4, 2)  # type: ignore[union-attr,arg-type]
        for b in model.blocks[1::2]
    ]
    assert torch.allclose(aux, sum(per_layer))  # uniform routing would give 3 * top_k
    aux.backward()
    router = model.blocks[1].ffn.router.weight  # type: ignore[union-attr]
    assert router.grad is not None and router.grad.abs().sum() > 0
    assert _gemini(ffn_pattern="D").aux_loss().item() == 0.0


def test_image_embeds_that_do_not_fit_are_a_clear_error() -> None:
    model = _gemini(image_token_id=9)
    idx = torch.tensor([[1, 9, 9, 2]])
    with pytest.raises(ValueError, match=r"image_embeds \(1, 3, 128\) do not fill the 2"):
        model(idx, image_embeds=torch.zeros(1, 3, 128))
    with pytest.raises(ValueError, match="need a model with image_token_id set"):
        _gemini()(idx, image_embeds=torch.zeros(1, 2, 128))
    cache = model.new_cache(1)
    model(idx[:, :1], cache=cache)
    with pytest.raises(ValueError, match="image blocks must come with the first tokens"):
        model(idx[:, 1:], cache=cache, image_embeds=torch.zeros(1, 2, 128))
