"""The given mini-gemini of notebooks 5.2 and 5.3 (``coursekit.gemini``) is the reference's
mini-gemini: with the weights of a ``TransformerLM`` built from configs/mini_gemini.yaml the
logits, the load-balancing loss and image-block masking agree, decoding with caches (the
given ``FullCache``, the reference's ring buffer) equals recomputation, and the notebook's
Hugging Face tokenizer gives the reference tokenizer's ids."""

from __future__ import annotations

import torch
from torch import Tensor

from autograder.graders.train_and_chat import reference_config, reference_model
from coursekit.gemini import FullCache, GeminiConfig, MiniGemini, tiny_gemini
from reference_impl.models import ModelConfig, SlidingKVCache, TransformerLM
from reference_impl.models.model import image_blocks
from reference_impl.tokenizer import load_tokenizer

from .conftest import REPO

CONFIG = REPO / "configs/mini_gemini.yaml"


def _randomised_reference() -> TransformerLM:
    """The reference model of configs/mini_gemini.yaml with every weight random (norm
    weights around 1), so that every part of the forward matters."""
    torch.manual_seed(0)
    ref = TransformerLM(ModelConfig.from_yaml(CONFIG)).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith("norm.weight") or name == "norm_f.weight":
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return ref


def _mini_from(ref: TransformerLM) -> MiniGemini:
    """MiniGemini with ref's weights: same names, Gemma norm weights w = reference - 1."""
    model = MiniGemini(GeminiConfig())
    state = {
        k: v - 1.0 if k.endswith("norm.weight") or k == "norm_f.weight" else v
        for k, v in ref.state_dict().items()
    }
    model.load_state_dict(state)
    return model.eval()


def test_default_config_is_configs_mini_gemini() -> None:
    yaml = ModelConfig.from_yaml(CONFIG)
    ours = reference_config(GeminiConfig())
    for field in ("moe_aux_loss_coef", "init_std", "moe_capacity_factor", "image_token_id"):
        setattr(ours, field, getattr(yaml, field))
    assert ours == yaml


def test_logits_and_aux_loss_equal_the_reference() -> None:
    ref = _randomised_reference()
    model = _mini_from(ref)
    idx = torch.randint(0, 512, (2, 100))  # longer than the window of 32
    with torch.no_grad():
        want, got = ref(idx), model(idx)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.aux_loss(), ref.aux_loss(), atol=1e-6, rtol=1e-6)
    assert model.expert_counts().shape == (3, 4)
    assert (model.expert_counts().sum(-1) == 2 * 200).all()  # each token counts top_k times


def test_parameter_counts_are_the_configs() -> None:
    model = MiniGemini()
    assert model.num_parameters() == TransformerLM(ModelConfig.from_yaml(CONFIG)).num_parameters()
    assert round(model.num_parameters() / 1e6, 2) == 1.84
    assert round(model.num_parameters(active=True) / 1e6, 2) == 1.25


def test_reference_model_carries_the_weights() -> None:
    model = tiny_gemini(3).double()
    ids = torch.randint(0, 64, (2, 30))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), reference_model(model)(ids), atol=1e-5, rtol=1e-5)


def _decode(model: MiniGemini, ids: Tensor, caches: list[object], first: int) -> Tensor:
    steps = [model(ids[:, :first], caches=caches)]
    steps += [model(ids[:, t : t + 1], caches=caches) for t in range(first, ids.size(1))]
    return torch.cat(steps, dim=1)


def test_caches_equal_recomputation() -> None:
    model = _mini_from(_randomised_reference())
    ids = torch.randint(0, 512, (2, 90))
    c = model.config

    def ring(window: int) -> SlidingKVCache:
        shape = (2, c.n_kv_heads, window - 1, c.head_dim)
        return SlidingKVCache(torch.zeros(shape), torch.zeros(shape))

    with torch.no_grad():
        full = model(ids)
        for factory in (None, ring):
            caches = model.new_caches(factory)
            torch.testing.assert_close(_decode(model, ids, caches, 40), full, atol=1e-4, rtol=1e-4)
        assert all(isinstance(x, FullCache) for x in model.new_caches())
        assert isinstance(model.new_caches(ring)[0], SlidingKVCache)


def test_extra_mask_is_gemma3_image_blocks() -> None:
    """Image placeholders see each other both ways (OR-ed with causal); local layers keep
    their window on top, as the reference's forward with image blocks."""
    ref = _randomised_reference()
    model = _mini_from(ref)
    idx = torch.randint(0, 500, (2, 60))
    idx[0, 5:15] = idx[1, 40:50] = idx[1, 2:6] = 511
    blocks = image_blocks(idx, 511)
    same = (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)
    with torch.no_grad():
        x = ref.embed(idx)
        want = ref.forward_embeds(x, blocks=blocks)
        got = model(inputs_embeds=x, extra_mask=same)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_attention_weights_are_kept_on_request() -> None:
    model = tiny_gemini(0)
    with torch.no_grad():
        model(torch.randint(0, 64, (1, 12)), keep_weights=True)
    local, glob = model.blocks[0].attn.weights, model.blocks[2].attn.weights
    assert local is not None and glob is not None and local.shape == (1, 4, 12, 12)
    i, j = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    assert (local[..., (j <= i - 4) | (j > i)] == 0).all()  # band of width 4
    assert (glob[..., j > i] == 0).all() and (glob[..., j <= i] > 0).all()
    torch.testing.assert_close(local.sum(-1), torch.ones(1, 4, 12))
    with torch.no_grad():
        model(torch.randint(0, 64, (1, 12)))
    assert model.blocks[0].attn.weights is None


def test_notebook_tokenizer_equals_the_reference() -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    folder = REPO / "tokenizers/stories-512"
    tok = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    ref = load_tokenizer(str(folder))
    assert tok.get_vocab_size() == ref.vocab_size == 512 and ref.eot_id == 256
    assert tok.token_to_id("<|endoftext|>") == 256
    from coursekit import generate_stories

    for text in [*generate_stories(20, seed=5), 'Mia\'s cat   said: "héllo!"\n<|endoftext|>Tom']:
        ids = tok.encode(text).ids
        assert ids == ref.tokenizer.encode(text), text
        assert tok.decode(ids, skip_special_tokens=False) == text
