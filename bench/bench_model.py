"""Forward+backward tokens/s of the small config beside Hugging Face Llama of the same shape.

    python bench/bench_model.py [--config configs/small_model.yaml] [--steps 10] [--threads 2]

Both models hold the same weights (ours is converted from the Hugging Face one) and run
in the same process on the same batches; the figures are comparable within one run only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from reference_impl.models import ModelConfig, TransformerLM, from_hf_llama
from reference_impl.training import load_experiment


def hf_twin(cfg: ModelConfig) -> LlamaForCausalLM:
    """A Hugging Face Llama with the shape of ``cfg`` (RoPE, RMSNorm, SwiGLU, GQA)."""
    assert cfg.pos_kind == "rope" and cfg.norm_kind == "rmsnorm" and cfg.ffn_kind == "swiglu"
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.d_model,
            intermediate_size=cfg.d_ff,
            num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads,
            num_key_value_heads=cfg.n_kv_heads,
            head_dim=cfg.head_dim,
            max_position_embeddings=cfg.context_length,
            rms_norm_eps=cfg.norm_eps,
            tie_word_embeddings=cfg.tie_weights,
            bos_token_id=0,
            eos_token_id=0,
            attn_implementation="sdpa",
        )
    )


def tokens_per_second(step: Callable[[torch.Tensor], None], batches: list[torch.Tensor]) -> float:
    for x in batches[:2]:  # warm-up
        step(x)
    start = time.perf_counter()
    for x in batches:
        step(x)
    return sum(x.numel() for x in batches) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default="configs/small_model.yaml")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    exp = load_experiment(args.config)
    cfg, batch = exp.model, args.batch_size or exp.train.batch_size
    hf = hf_twin(cfg).train()
    ours_manual = from_hf_llama(hf).train()
    ours_sdpa = TransformerLM(ModelConfig(**(cfg.to_dict() | {"attn_impl": "sdpa"}))).train()
    ours_sdpa.load_state_dict(ours_manual.state_dict())
    batches = [
        torch.randint(0, cfg.vocab_size, (batch, cfg.context_length)) for _ in range(args.steps)
    ]

    def ours_step(model: TransformerLM) -> Callable[[torch.Tensor], None]:
        def step(x: torch.Tensor) -> None:
            model.zero_grad(set_to_none=True)
            model.loss(x[:, :-1], x[:, 1:]).backward()

        return step

    def hf_step(x: torch.Tensor) -> None:
        hf.zero_grad(set_to_none=True)
        hf(x[:, :-1], labels=x[:, :-1]).loss.backward()

    print(
        f"config {args.config}: {ours_manual.num_parameters():,} parameters, "
        f"batch {batch} x {cfg.context_length} tokens, {args.threads} threads, "
        f"torch {torch.__version__}"
    )
    rows = [
        ("reference_impl (attn_impl=manual)", ours_step(ours_manual)),
        ("reference_impl (attn_impl=sdpa)", ours_step(ours_sdpa)),
        ("transformers LlamaForCausalLM (sdpa)", hf_step),
    ]
    tps = [tokens_per_second(step, batches) for _, step in rows]
    for (name, _), t in zip(rows, tps, strict=True):
        print(f"{name:40s} forward+backward {t:10,.0f} tokens/s {t / tps[-1]:5.2f}x HF")


if __name__ == "__main__":
    main()
