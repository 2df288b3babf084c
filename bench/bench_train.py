"""Training throughput and what 3 minutes of CPU training reach, beside published peers.

    python bench/bench_train.py [--minutes 3] [--threads 2] [--data PATH/tinyshakespeare.txt]

1. Tokens/s of full training steps (forward, backward, clipping, AdamW) with the small
   config's shape, batch and context, in one process on the same batches: the reference
   model as configured (RoPE, RMSNorm, SwiGLU, GQA), the reference model in GPT-2 form, and
   Hugging Face ``GPT2LMHeadModel`` of the same shape holding the same weights.
2. Generation tokens/s with and without the KV cache at 256 new tokens (bench_generation.py).
3. The small config trained for ``--minutes`` of wall-clock time on ``tinyshakespeare.txt``
   at the character (byte) level with the reference trainer (the schedule's length is set
   from the measured speed so that it ends on time), and the validation loss it reaches,
   beside nanoGPT's published CPU result for its shakespeare_char config (about 1.88 after
   roughly 3 minutes on a MacBook: github.com/karpathy/nanoGPT, "I only have a macbook").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from bench_generation import run as generation_benchmark  # run as a script: bench/ on sys.path
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from reference_impl.models import ModelConfig, TransformerLM, from_hf_gpt2, lm_loss
from reference_impl.training import load_experiment, make_optimizer, train

REPO = Path(__file__).resolve().parents[1]
NANOGPT_CPU_VAL_LOSS = 1.88


def gpt2_twin(cfg: ModelConfig) -> GPT2LMHeadModel:
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=cfg.vocab_size,
            n_positions=cfg.context_length,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            attn_implementation="sdpa",
            bos_token_id=0,
            eos_token_id=0,
        )
    )


def steps_per_second(
    model: nn.Module,
    logits: Callable[[torch.Tensor], torch.Tensor],
    batches: list[torch.Tensor],
    opt: torch.optim.Optimizer,
) -> float:
    def step(x: torch.Tensor) -> None:
        loss = lm_loss(logits(x[:, :-1]), x[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for x in batches[:3]:  # warm-up
        step(x)
    start = time.perf_counter()
    for x in batches:
        step(x)
    return len(batches) / (time.perf_counter() - start)


def throughput(config: str, steps: int) -> None:
    exp = load_experiment(config)
    cfg, batch = exp.model, exp.train.batch_size
    hf = gpt2_twin(cfg).train()
    ours_gpt2 = from_hf_gpt2(hf).train()
    ours = TransformerLM(cfg).train()
    batches = [
        torch.randint(0, cfg.vocab_size, (batch, cfg.context_length + 1)) for _ in range(steps)
    ]
    tokens = batch * cfg.context_length
    print(
        f"training steps, batch {batch} x {cfg.context_length}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}"
    )
    rows: list[tuple[str, nn.Module, Callable[[torch.Tensor], torch.Tensor]]] = [
        (f"reference, small config ({ours.num_parameters():,} params)", ours, ours),
        (f"reference, GPT-2 form ({ours_gpt2.num_parameters():,} params)", ours_gpt2, ours_gpt2),
        (
            f"transformers GPT2LMHeadModel ({hf.num_parameters():,} params)",
            hf,
            lambda x: hf(x).logits,
        ),
    ]
    for name, model, logits in rows:
        opt = make_optimizer(model, exp.train, torch.device("cpu"))
        rate = steps_per_second(model, logits, batches, opt)
        print(f"  {name:52s} {rate * tokens:9,.0f} tokens/s")


def timed_run(config: str, data: Path, minutes: float) -> None:
    exp = load_experiment(config)
    exp.data.dataset = str(data)
    exp.data.tokenizer = "bytes"
    exp.train.eval_iters = 50
    with tempfile.TemporaryDirectory() as tmp:
        exp.data.data_dir = tmp
        probe = train(exp, Path(tmp) / "probe", max_iters=60, log=lambda _: None)  # tokenize + warm
        lines = (Path(tmp) / "probe/metrics.jsonl").read_text().splitlines()
        last = [r for r in map(json.loads, lines) if "tokens_per_s" in r][-1]
        tokens_per_iter = exp.train.batch_size * exp.model.context_length
        rate = last["tokens_per_s"] / tokens_per_iter  # iterations/s, without set-up and evals
        # about 5% of the budget goes to start-up and four evaluations of eval_iters batches
        exp.train.max_iters = max(probe.iters_done + 1, int(0.95 * rate * minutes * 60))
        exp.train.eval_interval = max(1, exp.train.max_iters // 4)
        print(
            f"\n{minutes:g} minutes on {data.name} (bytes): {rate:.1f} iterations/s measured, "
            f"so a schedule of {exp.train.max_iters} iterations"
        )
        start = time.perf_counter()
        result = train(exp, Path(tmp) / "run", log=lambda m: None)
        took = time.perf_counter() - start
    print(
        f"  reference small config: validation loss {result.val_loss:.3f} "
        f"after {took / 60:.1f} min ({result.iters_done} iterations)"
    )
    print(
        f"  nanoGPT shakespeare_char on a laptop CPU (published): {NANOGPT_CPU_VAL_LOSS} "
        "after about 3 min"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "configs/small_model.yaml"))
    p.add_argument(
        "--data", type=Path, default=REPO.parent / "shared/data/text/tinyshakespeare.txt"
    )
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    throughput(args.config, args.steps)
    print()
    generation_benchmark(args.config, new_tokens=256)
    timed_run(args.config, args.data, args.minutes)


if __name__ == "__main__":
    main()
