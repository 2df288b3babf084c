"""TransformerLM: shapes, causality, weight tying, parameter count, init, generation, learning."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from reference_impl.generation import generate
from reference_impl.models import ModelConfig, RMSNorm, TransformerLM

VARIANTS = list(
    itertools.product(
        ["learned", "sinusoidal", "rope", "none"],
        ["gelu", "swiglu", "geglu"],
        ["layernorm", "rmsnorm"],
    )
)


def tiny(**kw: object) -> ModelConfig:
    base = dict(vocab_size=37, context_length=16, d_model=32, n_heads=4, n_layers=2)
    return ModelConfig(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("pos", "ffn", "norm"), VARIANTS)
def test_shapes_and_causality(pos: str, ffn: str, norm: str) -> None:
    model = TransformerLM(tiny(pos_kind=pos, ffn_kind=ffn, norm_kind=norm, n_kv_heads=2)).eval()
    idx = torch.randint(0, 37, (3, 12))
    logits = model(idx)
    assert logits.shape == (3, 12, 37)
    for t in (0, 5, 10):
        changed = idx.clone()
        changed[:, t + 1 :] = torch.randint(0, 37, (3, 11 - t))
        torch.testing.assert_close(model(changed)[:, : t + 1], logits[:, : t + 1])
    # ...and changing token t does change the logits at t (information does flow).
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 37
    assert not torch.allclose(model(changed)[:, 5], logits[:, 5])


def test_causality_through_gradients() -> None:
    model = TransformerLM(tiny(pos_kind="rope"))
    emb = model.tok_emb(torch.randint(0, 37, (1, 10))).detach().requires_grad_(True)
    x = emb
    for block in model.blocks:
        x = block(x)
    x[0, 4].sum().backward()
    assert emb.grad is not None
    assert emb.grad[0, 5:].abs().max() == 0
    assert emb.grad[0, :5].abs().min() > 0


def test_weight_tying_shares_one_tensor() -> None:
    tied, untied = TransformerLM(tiny()), TransformerLM(tiny(tie_weights=False))
    assert tied.lm_head.weight is tied.tok_emb.weight
    assert untied.lm_head.weight is not untied.tok_emb.weight
    assert untied.num_parameters() - tied.num_parameters() == 37 * 32
    assert "lm_head.weight" in tied.state_dict()  # saved under both names, loaded as one


def test_num_parameters_counts_by_hand() -> None:
    cfg = tiny(bias=False, norm_kind="rmsnorm", ffn_kind="swiglu", d_ff=64, n_kv_heads=2)
    model = TransformerLM(cfg)
    d, kv = 32, 2 * 8
    per_block = (d * d + 2 * d * kv + d * d) + 3 * d * 64 + 2 * d
    embeddings = 37 * d + 16 * d
    assert model.num_parameters() == embeddings + 2 * per_block + d
    assert model.num_parameters(exclude_embeddings=True) == 2 * per_block + d


def test_init_is_documented_gpt2_scheme() -> None:
    cfg = tiny(d_model=256, n_heads=4, n_layers=8, vocab_size=1000, context_length=64)
    model = TransformerLM(cfg)
    std = cfg.init_std
    assert math.isclose(model.tok_emb.weight.std().item(), std, rel_tol=0.05)
    assert math.isclose(model.blocks[0].attn.q_proj.weight.std().item(), std, rel_tol=0.05)
    resid = std / math.sqrt(2 * 8)
    assert math.isclose(model.blocks[0].attn.o_proj.weight.std().item(), resid, rel_tol=0.05)
    assert torch.equal(model.blocks[0].attn.q_proj.bias, torch.zeros(256))
    assert torch.equal(model.norm_f.weight, torch.ones(256))


def test_initial_loss_is_near_uniform() -> None:
    model = TransformerLM(tiny(vocab_size=500))
    idx, targets = torch.randint(0, 500, (2, 4, 16))
    assert abs(model.loss(idx, targets).item() - math.log(500)) < 0.1


def test_overfits_a_tiny_batch() -> None:
    model = TransformerLM(tiny(pos_kind="rope", ffn_kind="swiglu", norm_kind="rmsnorm"))
    idx = torch.randint(0, 37, (2, 16))
    x, y = idx[:, :-1], idx[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model.loss(x, y).item()
    for _ in range(150):
        loss = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 < first


def test_every_parameter_gets_a_gradient() -> None:
    model = TransformerLM(tiny(pos_kind="learned", ffn_kind="geglu", n_kv_heads=1))
    idx = torch.randint(0, 37, (2, 16))
    model.loss(idx, idx).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dropout_only_in_training() -> None:
    model = TransformerLM(tiny(dropout=0.5))
    idx = torch.randint(0, 37, (2, 8))
    model.eval()
    torch.testing.assert_close(model(idx), model(idx))
    model.train()
    assert not torch.allclose(model(idx), model(idx))


def test_generate_greedy_is_deterministic_and_crops_context() -> None:
    model = TransformerLM(tiny()).eval()
    prompt = torch.randint(0, 37, (2, 5))
    out = generate(model, prompt, 20, temperature=0.0)
    assert out.shape == (2, 25) and torch.equal(out[:, :5], prompt)
    assert torch.equal(out, generate(model, prompt, 20, temperature=0.0))
    # Greedy = argmax of the full forward at every step (while within the context).
    logits = model(out[:, :10])
    assert torch.equal(out[:, 6:11], logits[:, 5:10].argmax(-1))


def test_generate_top_k_samples_only_top_tokens() -> None:
    model = TransformerLM(tiny()).eval()
    prompt = torch.randint(0, 37, (1, 4))
    allowed = model(prompt)[0, -1].topk(3).indices
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        tok = generate(model, prompt, 1, temperature=1.0, top_k=3, generator=gen)[0, -1]
        assert tok in allowed


def test_clear_errors_for_bad_input() -> None:
    model = TransformerLM(tiny())
    with pytest.raises(ValueError, match="exceeds context_length=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model(torch.zeros(17, dtype=torch.long))


def test_fused_attention_model_matches_manual() -> None:
    manual = TransformerLM(tiny(pos_kind="rope", n_kv_heads=2)).eval()
    fused = TransformerLM(tiny(pos_kind="rope", n_kv_heads=2, attn_impl="sdpa")).eval()
    fused.load_state_dict(manual.state_dict())
    idx = torch.randint(0, 37, (2, 16))
    torch.testing.assert_close(manual(idx), fused(idx), atol=1e-5, rtol=1e-5)


def test_fused_attention_decoding_with_a_mask_matches_manual() -> None:
    """The sdpa path's shortcuts (no mask for one query, is_causal when T = S) change nothing."""
    manual = TransformerLM(tiny(pos_kind="rope", n_kv_heads=2)).eval()
    fused = TransformerLM(tiny(pos_kind="rope", n_kv_heads=2, attn_impl="sdpa")).eval()
    fused.load_state_dict(manual.state_dict())
    idx = torch.randint(0, 37, (2, 12))
    keep = torch.ones(2, 1, 1, 12, dtype=torch.bool)
    keep[1, ..., 1:3] = False  # row 1 hides keys 1 and 2 (padding, say)
    outs = []
    for model in (manual, fused):
        cache = model.new_cache(2)
        steps = [model(idx[:, :6], keep[..., :6], cache), model(idx[:, 6:8], keep[..., :8], cache)]
        steps += [model(idx[:, t : t + 1], keep[..., : t + 1], cache) for t in range(8, 12)]
        steps += [model(idx[:, t : t + 1], cache=None) for t in range(2)]  # T = S = 1
        outs.append(torch.cat(steps, dim=1))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rmsnorm_is_llamas_formula_to_the_bit(dtype: torch.dtype) -> None:
    norm = RMSNorm(24).to(dtype)
    with torch.no_grad():
        norm.weight.normal_()
    x = (torch.randn(3, 5, 24) * 3).to(dtype)
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + norm.eps)
    assert torch.equal(norm(x), norm.weight * y.to(dtype))


def test_dropout_acts_in_training_only() -> None:
    model = TransformerLM(tiny(dropout=0.5))
    idx = torch.randint(0, 37, (2, 12))
    assert not torch.equal(model(idx), model(idx))
    model.eval()
    assert torch.equal(model(idx), model(idx))
