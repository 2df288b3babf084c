"""Generation: the KV cache against full recomputation, and decoding against Hugging Face."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from reference_impl.generation import (
    apply_repetition_penalty,
    apply_temperature,
    beam_search,
    generate,
    top_k_filter,
    top_p_filter,
)
from reference_impl.models import (
    ModelConfig,
    RotaryEmbedding,
    TransformerLM,
    from_hf_gpt2,
    from_hf_llama,
)
from tests.test_hf_parity import _spread_weights, make_gpt2, make_llama

transformers = pytest.importorskip("transformers")
VOCAB = 97


def small(**kw: Any) -> TransformerLM:
    base = dict(vocab_size=VOCAB, context_length=64, d_model=64, n_heads=4, n_layers=2)
    model = TransformerLM(ModelConfig(**(base | kw))).eval()
    _spread_weights(model)  # logits of a few units, so that a 1e-5 agreement means much
    return model


def small_llama(**kw: Any) -> torch.nn.Module:
    return make_llama(num_hidden_layers=2, intermediate_size=128, **kw)


def prompt(b: int = 2, t: int = 6, seed: int = 3) -> torch.Tensor:
    return torch.randint(1, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


# The KV cache.

CACHE_VARIANTS = [
    {"pos_kind": "rope"},
    {"pos_kind": "rope", "n_kv_heads": 2},
    {"pos_kind": "rope", "n_kv_heads": 1},
    {"pos_kind": "learned", "n_kv_heads": 2},
    {"pos_kind": "sinusoidal"},
    {"pos_kind": "rope", "n_kv_heads": 2, "attn_impl": "sdpa"},
    {"pos_kind": "learned", "attn_impl": "sdpa"},
]
CACHE_IDS = ["mha", "gqa", "mqa", "learned-gqa", "sinusoidal", "sdpa-gqa", "sdpa-learned"]


@pytest.mark.parametrize("kw", CACHE_VARIANTS, ids=CACHE_IDS)
def test_cached_logits_equal_full_recomputation(kw: dict[str, Any]) -> None:
    model = small(**kw)
    idx = prompt(2, 40)
    full = model(idx)
    assert full.abs().max() > 1.0
    cache = model.new_cache(2)
    pieces = [model(idx[:, :7], cache=cache)]  # prefill, then one token at a time
    pieces += [model(idx[:, t : t + 1], cache=cache) for t in range(7, 30)]
    pieces.append(model(idx[:, 30:], cache=cache))  # a chunk after single steps
    assert cache.length == 40
    assert (torch.cat(pieces, dim=1) - full).abs().max() < 1e-5


def test_cache_stores_kv_heads_only_and_refuses_overflow() -> None:
    model = small(n_kv_heads=2)
    cache = model.new_cache(3)
    assert cache.layers[0].k.shape == (3, 2, 64, 16) and len(cache.layers) == 2
    model(prompt(3, 60), cache=cache)
    with pytest.raises(ValueError, match="exceeds context_length=64"):
        model(prompt(3, 5), cache=cache)


@pytest.mark.parametrize("kw", [{}, {"n_kv_heads": 2}], ids=["mha", "gqa"])
def test_greedy_with_and_without_cache_agree_past_the_context(kw: dict[str, Any]) -> None:
    model = small(**kw)
    idx = prompt(2, 10)
    cached = generate(model, idx, 80, temperature=0.0)  # 90 tokens > context_length 64
    assert cached.shape == (2, 90)
    assert torch.equal(cached, generate(model, idx, 80, temperature=0.0, use_cache=False))


# Logit processors against Hugging Face's.


def assert_same_logits(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert torch.equal(ours.isinf(), theirs.isinf())
    kept = ~theirs.isinf()
    torch.testing.assert_close(ours[kept], theirs[kept], rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(5))
def test_processors_equal_hugging_face(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, VOCAB, generator=gen) * (1 + seed)
    ids = torch.randint(0, VOCAB, (4, 12), generator=gen)
    tf = transformers
    for k in (1, 5, 40, VOCAB + 3):
        assert_same_logits(top_k_filter(logits, k), tf.TopKLogitsWarper(k)(ids, logits))
    for p in (0.05, 0.3, 0.9, 0.999):
        assert_same_logits(top_p_filter(logits, p), tf.TopPLogitsWarper(p)(ids, logits))
    for t in (0.3, 1.7):
        assert_same_logits(apply_temperature(logits, t), tf.TemperatureLogitsWarper(t)(ids, logits))
    for r in (1.3, 0.7):
        hf = tf.RepetitionPenaltyLogitsProcessor(r)(ids, logits)
        assert_same_logits(apply_repetition_penalty(logits, ids, r), hf)


def test_top_p_edge_cases() -> None:
    logits = torch.tensor([[2.0, 1.0, 1.0, 1.0, -3.0]])
    assert top_p_filter(logits, 1e-9).isfinite().tolist() == [[True, False, False, False, False]]
    # Ties are ranked by token id: token 1 comes before tokens 2 and 3.
    p_first_two = logits.softmax(-1)[0, :2].sum().item()
    kept = top_p_filter(logits, p_first_two - 1e-4).isfinite().tolist()
    assert kept == [[True, True, False, False, False]]


# Decoding against Hugging Face generate, on the same weights.


def hf_generate(hf: torch.nn.Module, idx: torch.Tensor, **kw: Any) -> Any:
    """hf.generate with the prompt unpadded and padding with eos, as ours does."""
    pad = {"pad_token_id": kw.get("eos_token_id") or 0}
    return hf.generate(idx, attention_mask=torch.ones_like(idx), **(pad | kw))


@pytest.mark.parametrize(
    ("make", "convert", "kw"),
    [
        (small_llama, from_hf_llama, {}),
        (small_llama, from_hf_llama, {"num_key_value_heads": 2}),
        (make_gpt2, from_hf_gpt2, {}),
    ],
    ids=["llama", "llama-gqa", "gpt2"],
)
def test_greedy_equals_hugging_face(make: Any, convert: Any, kw: dict[str, Any]) -> None:
    hf = make(**kw)
    ours = convert(hf)
    idx = prompt(3, 5)
    free = generate(ours, idx, 25, temperature=0.0)
    for stop in (free[0, 12].item(), free[1, 8].item(), free[2, 20].item()):
        expected = hf_generate(hf, idx, max_new_tokens=25, do_sample=False, eos_token_id=stop)
        assert (expected[:, 5:] == stop).any()  # rows stop early and are padded with the stop id
        for use_cache in (True, False):
            got = generate(ours, idx, 25, temperature=0.0, stop_ids=[stop], use_cache=use_cache)
            assert torch.equal(got, expected), (stop, use_cache)


def test_sampling_equals_hugging_face_under_the_same_seed() -> None:
    hf = small_llama()
    ours = from_hf_llama(hf)
    idx = prompt(2, 5)
    settings = dict(temperature=0.8, top_k=20, top_p=0.9, repetition_penalty=1.3)
    torch.manual_seed(7)
    expected = hf_generate(
        hf, idx, max_new_tokens=20, do_sample=True, eos_token_id=None, **settings
    )
    torch.manual_seed(7)
    assert torch.equal(generate(ours, idx, 20, **settings), expected)


@pytest.mark.parametrize(
    ("length_penalty", "early_stopping"),
    [(1.0, False), (1.0, True), (0.0, False), (2.0, True), (-1.0, False), (1.0, "never")],
)
def test_beam_search_equals_hugging_face(length_penalty: float, early_stopping: Any) -> None:
    hf = small_llama(num_key_value_heads=2)
    ours = from_hf_llama(hf)
    idx = prompt(2, 5)
    free, _ = beam_search(ours, idx, 12, 4, return_all=True)
    shorter = 0
    for eos in (free[0, 1, 8].item(), free[1, 2, 11].item(), free[0, 3, 6].item()):
        hf_out = hf_generate(
            hf,
            idx,
            max_new_tokens=12,
            num_beams=4,
            do_sample=False,
            eos_token_id=eos,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
            num_return_sequences=4,
            output_scores=True,
            return_dict_in_generate=True,
        )
        kw = dict(length_penalty=length_penalty, early_stopping=early_stopping, eos_id=eos)
        seqs, scores = beam_search(ours, idx, 12, 4, return_all=True, **kw)
        assert torch.equal(seqs.flatten(0, 1), hf_out.sequences)
        torch.testing.assert_close(scores.flatten(), hf_out.sequences_scores, atol=1e-4, rtol=0)
        best = hf_generate(
            hf,
            idx,
            max_new_tokens=12,
            num_beams=4,
            do_sample=False,
            eos_token_id=eos,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
        )
        for use_cache in (True, False):
            got = beam_search(ours, idx, 12, 4, use_cache=use_cache, **kw)
            assert torch.equal(got, best), (eos, use_cache)
        shorter += int((seqs[..., 5:-1] == eos).sum())
    assert shorter  # some hypotheses did end on eos before max_new_tokens


def test_beam_search_with_one_beam_is_greedy() -> None:
    model = small(n_kv_heads=2)
    idx = prompt(2, 5)
    greedy = generate(model, idx, 15, temperature=0.0)
    assert torch.equal(beam_search(model, idx, 15, 1), greedy)


# Sampling and stopping.


def test_seeded_sampling_is_reproducible() -> None:
    model = small()
    idx = prompt(2, 5)

    def sample(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return generate(model, idx, 30, temperature=1.2, top_p=0.95, generator=gen)

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))


def test_stop_sequences_stop_and_are_kept() -> None:
    model = small()
    idx = prompt(2, 5)
    free = generate(model, idx, 30, temperature=0.0)
    stop = free[0, 12:14].tolist()  # the ids generated at steps 8 and 9 of row 0
    out = generate(model, idx, 30, temperature=0.0, stop_sequences=[stop], pad_id=0)
    end = 5 + next(i for i in range(2, 31) if free[0, 5 : 5 + i][-2:].tolist() == stop)
    assert torch.equal(out[0, :end], free[0, :end]) and out[0, end - 2 : end].tolist() == stop
    assert (out[0, end:] == 0).all()
    assert torch.equal(out[1], free[1, : out.size(1)])  # row 1 did not stop: it ran on


def test_cache_check_catches_a_missing_rope_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RotaryEmbedding.forward
    monkeypatch.setattr(RotaryEmbedding, "forward", lambda self, x, offset=0: original(self, x))
    model = small(pos_kind="rope")
    idx = prompt(1, 12)
    cache = model.new_cache(1)
    model(idx[:, :8], cache=cache)
    assert (model(idx[:, 8:], cache=cache) - model(idx)[:, 8:]).abs().max() > 1e-3


def test_beam_search_with_and_without_cache_agree_past_the_context() -> None:
    model = small(n_kv_heads=2, context_length=16)
    idx = prompt(2, 5)
    seqs, scores = beam_search(model, idx, 20, 3, length_penalty=0.0, return_all=True)
    assert seqs.shape == (2, 3, 25)
    again, again_scores = beam_search(
        model, idx, 20, 3, length_penalty=0.0, return_all=True, use_cache=False
    )
    assert torch.equal(seqs, again)
    torch.testing.assert_close(scores, again_scores)


def test_generated_ids_can_train_the_model() -> None:
    """generate decodes under inference_mode yet returns an ordinary tensor."""
    model = small(n_kv_heads=2, attn_impl="sdpa")
    out = generate(model, prompt(2, 5), 4, temperature=0.0)
    assert not out.is_inference() and not model.training
    model.train()
    model.loss(out[:, :-1], out[:, 1:]).backward()
    assert model.tok_emb.weight.grad is not None
