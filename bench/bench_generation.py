"""Greedy generation tokens/s with and without a KV cache, ours beside Hugging Face Llama.

    python bench/bench_generation.py [--config configs/small_model.yaml] [--new-tokens 256]
    python bench/bench_generation.py --medium   # also configs/medium_model.yaml, 1,024 tokens

Batch 1, a random 16-token prompt, ``--new-tokens`` greedy tokens. Both models hold the
same weights (ours is converted from the Hugging Face one). ``context_length`` is raised
to prompt + new tokens when smaller, so that no model has to crop its context (past
``context_length`` ours would drop its cache and recompute the cropped window).
Each row gives its ratio to Hugging Face with the same cache setting; the figures are
comparable within one run only. The ``compiled`` rows decode with ``generate(...,
compile=True)``: each step after the prompt is one ``torch.compile``-d graph over a
static-shape cache. Their compile time (the first compiled call less a later one, with
torch's on-disk kernel cache empty: a first run on a machine) is printed with the number
of tokens after which it pays off against the eager cached path. Hugging Face's
``cache_implementation="static"`` row runs eagerly (transformers compiles it on its own
only on GPUs). ``--medium`` adds the medium config at 1,024 new tokens, attn_impl=sdpa
only, each row timed once without a warm-up: the uncached rows take minutes each on 2
cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from bench_model import hf_twin  # run as a script: bench/ is on sys.path

from reference_impl.generation import generate
from reference_impl.models import TransformerLM, from_hf_llama
from reference_impl.models.config import AttnImpl
from reference_impl.training import load_experiment

Run = Callable[[], torch.Tensor]


def hf_greedy(hf: Any, prompt: torch.Tensor, n: int, use_cache: bool, **kw: Any) -> torch.Tensor:
    """Hugging Face ``generate``: exactly ``n`` greedy tokens after prompt (1, T); ``kw``
    such as ``cache_implementation`` go to ``generate``."""
    return hf.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=n,
        do_sample=False,
        use_cache=use_cache,
        pad_token_id=0,
        **kw,
    )


def tokens_per_second(run: Callable[[], torch.Tensor], new_tokens: int, repeats: int) -> float:
    """New tokens per second of ``run``: best of ``repeats`` after one warm-up run, or one
    run with no warm-up for ``repeats=0``."""
    best = float("inf")
    for i in range(max(repeats, 0) + 1):
        start = time.perf_counter()
        out = run()
        assert out.size(1) >= new_tokens, "generation stopped early"
        if i > 0 or repeats == 0:
            best = min(best, time.perf_counter() - start)
    return new_tokens / best


def run(
    config: str,
    prompt_tokens: int = 16,
    new_tokens: int = 256,
    repeats: int = 3,
    impls: tuple[AttnImpl, ...] = ("manual", "sdpa"),
) -> None:
    """Print the table: greedy tokens/s with and without the KV cache, ours (one model per
    attention implementation in ``impls``, eager and compiled) and HF's (dynamic and
    static cache), each with its ratio to HF's with a cache (without: to HF's without);
    then the KV-cache speed-ups and the compile times. Every greedy output must equal HF's.
    """
    torch.manual_seed(0)
    cfg = load_experiment(config).model
    total = prompt_tokens + new_tokens
    cfg = replace(cfg, context_length=max(cfg.context_length, total))
    hf = hf_twin(cfg).eval()
    hf.generation_config.eos_token_id = None  # no early stop: exactly n tokens, as ours
    converted = from_hf_llama(hf)
    ours = {}
    for impl in impls:
        ours[impl] = TransformerLM(replace(converted.config, attn_impl=impl)).eval()
        ours[impl].load_state_dict(converted.state_dict())
    prompt = torch.randint(1, cfg.vocab_size, (1, prompt_tokens))
    n = new_tokens

    def run_ours(model: TransformerLM, use_cache: bool, compile: bool = False) -> Run:
        return lambda: generate(
            model, prompt, n, temperature=0.0, use_cache=use_cache, compile=compile
        )

    def run_hf(use_cache: bool, **kw: Any) -> Run:
        return lambda: hf_greedy(hf, prompt, n, use_cache, **kw)

    first_compiled = {}  # seconds of each model's first compiled call, compile included
    with torch.no_grad():
        theirs = run_hf(True)()
        same = {impl: torch.equal(run_ours(m, True)(), theirs) for impl, m in ours.items()}
        for impl, m in ours.items():
            start = time.perf_counter()
            same[f"{impl} compiled"] = torch.equal(run_ours(m, True, compile=True)(), theirs)
            first_compiled[impl] = time.perf_counter() - start
        same["HF static cache"] = torch.equal(run_hf(True, cache_implementation="static")(), theirs)
    print(
        f"config {config}: {converted.num_parameters():,} parameters, batch 1, "
        f"prompt {prompt_tokens} + {n} greedy tokens, context_length "
        f"{cfg.context_length}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"greedy ids equal to Hugging Face: {same}"
    )
    assert all(same.values()), "greedy ids differ from Hugging Face's"
    rows: dict[tuple[str, str], Run] = {}  # (impl or "HF", decoding) -> run
    for impl, m in ours.items():
        rows[impl, "cache"] = run_ours(m, True)
        rows[impl, "no cache"] = run_ours(m, False)
        rows[impl, "compiled cache"] = run_ours(m, True, compile=True)
    rows["HF", "cache"] = run_hf(True)
    rows["HF", "no cache"] = run_hf(False)
    rows["HF", "static cache"] = run_hf(True, cache_implementation="static")
    tps = {key: tokens_per_second(call, n, repeats) for key, call in rows.items()}
    print(f"{'model':38s} {'decoding':>14s} {'tokens/s':>10s} {'x HF':>6s}")
    for (who, how), t in tps.items():
        name = f"reference_impl (attn_impl={who})"
        name = "transformers LlamaForCausalLM (sdpa)" if who == "HF" else name
        ratio = t / tps["HF", "no cache" if how == "no cache" else "cache"]
        print(f"{name:38s} {how:>14s} {t:10,.0f} {ratio:5.2f}x")
    speedups = [f"{w} {tps[w, 'cache'] / tps[w, 'no cache']:.1f}x" for w in [*impls, "HF"]]
    speedups += [
        f"{w} compiled {tps[w, 'compiled cache'] / tps[w, 'no cache']:.1f}x" for w in impls
    ]
    print("KV-cache speed-up (with / without):", ", ".join(speedups))
    for impl in impls:
        eager, compiled = tps[impl, "cache"], tps[impl, "compiled cache"]
        seconds = first_compiled[impl] - n / compiled
        saved = 1 / eager - 1 / compiled  # seconds saved per token
        pays = f"pays off after {seconds / saved:,.0f} tokens" if saved > 0 else "never pays off"
        print(f"compile time, attn_impl={impl}: {seconds:.1f} s; {pays} against the eager cache")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default="configs/small_model.yaml")
    p.add_argument("--prompt-tokens", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--medium",
        action="store_true",
        help="then configs/medium_model.yaml at 1,024 new tokens, one run per row (minutes)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as cold:  # no compiled kernels from earlier runs
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cold
        run(args.config, args.prompt_tokens, args.new_tokens, args.repeats)
        if args.medium:
            run("configs/medium_model.yaml", args.prompt_tokens, 1024, repeats=0, impls=("sdpa",))


if __name__ == "__main__":
    main()
