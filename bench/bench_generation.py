"""Greedy generation tokens/s with and without a KV cache, ours beside Hugging Face Llama.

    python bench/bench_generation.py [--config configs/small_model.yaml] [--new-tokens 256]

Batch 1, a random 16-token prompt, ``--new-tokens`` greedy tokens. Both models hold the
same weights (ours is converted from the Hugging Face one). ``context_length`` is raised
to prompt + new tokens when smaller, so that no model has to crop its context (past
``context_length`` ours would drop its cache and recompute the cropped window).
The figures are comparable within one run only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from bench_model import hf_twin  # run as a script: bench/ is on sys.path

from reference_impl.generation import generate
from reference_impl.models import TransformerLM, from_hf_llama
from reference_impl.training import load_experiment


def tokens_per_second(run: Callable[[], torch.Tensor], new_tokens: int, repeats: int) -> float:
    """New tokens per second of ``run``, best of ``repeats`` after one warm-up run."""
    out = run()
    assert out.size(1) >= new_tokens, "generation stopped early"
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return new_tokens / best


def run(config: str, prompt_tokens: int = 16, new_tokens: int = 256, repeats: int = 3) -> None:
    """Print the table: greedy tokens/s with and without the KV cache, ours and HF's."""
    torch.manual_seed(0)
    cfg = load_experiment(config).model
    total = prompt_tokens + new_tokens
    cfg = replace(cfg, context_length=max(cfg.context_length, total))
    hf = hf_twin(cfg).eval()
    hf.generation_config.eos_token_id = None  # no early stop: exactly n tokens, as ours
    manual = from_hf_llama(hf)
    fused = TransformerLM(replace(manual.config, attn_impl="sdpa")).eval()
    fused.load_state_dict(manual.state_dict())
    prompt = torch.randint(1, cfg.vocab_size, (1, prompt_tokens))
    n = new_tokens

    def run_ours(model: TransformerLM, use_cache: bool) -> Callable[[], torch.Tensor]:
        return lambda: generate(model, prompt, n, temperature=0.0, use_cache=use_cache)

    def run_hf(use_cache: bool) -> Callable[[], torch.Tensor]:
        return lambda: hf.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=n,
            do_sample=False,
            use_cache=use_cache,
            pad_token_id=0,
        )

    with torch.no_grad():
        same = torch.equal(run_ours(manual, True)(), run_hf(True)())
    print(
        f"config {config}: {manual.num_parameters():,} parameters, batch 1, "
        f"prompt {prompt_tokens} + {n} greedy tokens, context_length "
        f"{cfg.context_length}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"greedy ids equal to Hugging Face: {same}"
    )
    print(f"{'model':40s} {'KV cache':>9s} {'tokens/s':>10s}")
    rows = [
        ("reference_impl (attn_impl=manual)", True, run_ours(manual, True)),
        ("reference_impl (attn_impl=manual)", False, run_ours(manual, False)),
        ("reference_impl (attn_impl=sdpa)", True, run_ours(fused, True)),
        ("reference_impl (attn_impl=sdpa)", False, run_ours(fused, False)),
        ("transformers LlamaForCausalLM (sdpa)", True, run_hf(True)),
        ("transformers LlamaForCausalLM (sdpa)", False, run_hf(False)),
    ]
    for name, use_cache, call in rows:
        tps = tokens_per_second(call, n, repeats)
        print(f"{name:40s} {'yes' if use_cache else 'no':>9s} {tps:10,.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default="configs/small_model.yaml")
    p.add_argument("--prompt-tokens", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run(args.config, args.prompt_tokens, args.new_tokens, args.repeats)


if __name__ == "__main__":
    main()
