"""Training throughput and what 3 minutes of CPU training reach, beside published peers.

    python bench/bench_train.py [--minutes 3] [--threads 2] [--data PATH/tinyshakespeare.txt]

1. Tokens/s of full training steps (forward, backward, clipping, AdamW), in one process on
   the same batches, for the small config (its batch and context) and the medium config
   (context 512, batch 2 on a CPU; in float32, then every model under bfloat16 autocast):
   the reference model as configured, with fused SDPA, and compiled (``torch.compile``;
   compilation is in the warm-up, not in the figure); the reference model in GPT-2 form;
   Hugging Face ``GPT2LMHeadModel`` of the same shape and ``LlamaForCausalLM`` holding the
   same weights, eager and compiled. The models take turns, round after round, and each
   model's best round counts.
2. ``configs/shakespeare_3min.yaml`` (chosen by ``bench/sweep_3min.py``) trained for
   ``--minutes`` of wall-clock time on ``tinyshakespeare.txt`` at the character (byte) level
   with the reference trainer (its schedule follows the clock, ``train.time_limit``, set from
   a probe's costs so that the run, compilation and evaluations included, ends on time), and
   the validation loss it
   reaches, beside nanoGPT's published CPU result for its shakespeare_char config (about
   1.88 after roughly 3 minutes on a MacBook: github.com/karpathy/nanoGPT, "I only have a
   macbook").
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from bench_model import hf_twin  # run as a script: bench/ is on sys.path
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from reference_impl.models import ModelConfig, TransformerLM, from_hf_gpt2, from_hf_llama, lm_loss
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


def training_step(
    model: nn.Module,
    logits: Callable[[torch.Tensor], torch.Tensor],
    opt: torch.optim.Optimizer,
) -> Callable[[torch.Tensor], None]:
    """One full training step on a batch of token ids (B, T + 1)."""

    def step(x: torch.Tensor) -> None:
        loss = lm_loss(logits(x[:, :-1]), x[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def best_rates(
    steps: dict[str, Callable[[torch.Tensor], None]], batches: list[torch.Tensor], rounds: int
) -> dict[str, float]:
    """Steps per second of each model: 3 warm-up steps each (compilation included), then
    ``rounds`` rounds in which every model in turn runs ``batches[3:]``; each model's best
    round counts. Interleaving gives every model the same share of the machine's drift (one
    model measured twice in a row differed by 14 % on a 4-step medium round)."""
    for step in steps.values():
        for x in batches[:3]:
            step(x)
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for x in batches[3:]:
                step(x)
            best[name] = max(best[name], (len(batches) - 3) / (time.perf_counter() - start))
    return best


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX). Without it torch
    emulates the products: on an AVX2-only EPYC the medium config ran 19 tokens/s under
    bfloat16 autocast against 602 in float32, and the rows would take an hour."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def throughput(
    config: str, steps: int, batch: int | None = None, bf16: bool = False, rounds: int = 3
) -> None:
    """Training tokens/s of the reference model (as configured, with fused SDPA, compiled)
    beside Hugging Face GPT-2 and Llama of its shape holding the same weights; with ``bf16``,
    every model's steps run under the same bfloat16 autocast (the trainer's
    ``train.dtype: bfloat16``), which a CPU with AMX or AVX512-BF16 runs faster."""
    exp = load_experiment(config)
    cfg = exp.model
    batch = batch or exp.train.batch_size
    torch.manual_seed(0)
    gpt2 = gpt2_twin(cfg).train()
    ours_gpt2 = from_hf_gpt2(gpt2).train()
    gpt2_fused = TransformerLM(replace(ours_gpt2.config, attn_impl="sdpa")).train()
    gpt2_fused.load_state_dict(ours_gpt2.state_dict())
    llama = hf_twin(cfg).train()
    ours = from_hf_llama(llama)
    ours = TransformerLM(replace(ours.config, attn_impl=cfg.attn_impl)).train()
    ours.load_state_dict(from_hf_llama(llama).state_dict())
    fused = TransformerLM(replace(ours.config, attn_impl="sdpa")).train()
    fused.load_state_dict(ours.state_dict())
    batches = [
        torch.randint(0, cfg.vocab_size, (batch, cfg.context_length + 1)) for _ in range(steps + 3)
    ]
    tokens = batch * cfg.context_length
    print(
        f"training steps of {Path(config).name} ({ours.num_parameters():,} parameters), "
        f"batch {batch} x {cfg.context_length}, forward + backward + clipping + AdamW, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
        + (", bfloat16 autocast" if bf16 else "")
        + f"; each model's best of {rounds} interleaved rounds of {steps} steps"
    )
    compiled_llama = torch.compile(llama)
    rows: list[tuple[str, nn.Module, Callable[[torch.Tensor], torch.Tensor]]] = [
        (f"reference (attn_impl={cfg.attn_impl})", ours, ours),
        ("reference (sdpa)", fused, fused),
        ("reference (sdpa), torch.compile", fused, torch.compile(fused)),
        ("reference, GPT-2 form", ours_gpt2, ours_gpt2),
        ("reference, GPT-2 form (sdpa)", gpt2_fused, gpt2_fused),
        ("transformers GPT2LMHeadModel", gpt2, lambda x: gpt2(x).logits),
        ("transformers LlamaForCausalLM", llama, lambda x: llama(x).logits),
        ("transformers Llama, torch.compile", llama, lambda x: compiled_llama(x).logits),
    ]
    if cfg.attn_impl == "sdpa":  # the configured model is the fused one: measure it once
        rows = [row for row in rows if row[0] != "reference (sdpa)"]
    steps = {
        name: training_step(model, logits, make_optimizer(model, exp.train, torch.device("cpu")))
        for name, model, logits in rows
    }
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        rate = {name: r * tokens for name, r in best_rates(steps, batches, rounds).items()}
    for name in rate:
        print(f"  {name:40s} {rate[name]:9,.0f} tokens/s")
    eager = max(rate[f"reference (attn_impl={cfg.attn_impl})"], rate.get("reference (sdpa)", 0))
    compiled = rate["reference (sdpa), torch.compile"]
    best = max(eager, compiled)
    gpt2_rate, llama_rate = (
        rate["transformers GPT2LMHeadModel"],
        rate["transformers LlamaForCausalLM"],
    )
    print(
        f"  ours / transformers GPT-2: {best / gpt2_rate:.2f}x (eager {eager / gpt2_rate:.2f}x); "
        f"ours / Llama: {best / llama_rate:.2f}x (eager {eager / llama_rate:.2f}x; both "
        f"compiled {compiled / rate['transformers Llama, torch.compile']:.2f}x); GPT-2 form "
        f"(sdpa) / transformers GPT-2: {rate['reference, GPT-2 form (sdpa)'] / gpt2_rate:.2f}x"
    )


PROBE_ITERS, PROBE_LOG = 120, 10


def probe_speed(metrics: Path, tokens_per_iter: int) -> tuple[float, float, float]:
    """(seconds to the end of the first iteration, iterations/s, seconds to the end of the
    last iteration) from a probe run's ``metrics.jsonl`` (logged every ``PROBE_LOG``
    iterations). The first iteration holds the compilation; the speed is the median over the
    logged intervals."""
    records = [r for r in map(json.loads, metrics.read_text().splitlines()) if "tokens_per_s" in r]
    # the logged rate is cumulative: iteration i ended (i + 1) * tokens / rate seconds in
    ended = {r["iter"]: (r["iter"] + 1) * tokens_per_iter / r["tokens_per_s"] for r in records}
    steps = {it: ended[it] - ended[it - PROBE_LOG] for it in ended if it - PROBE_LOG in ended}
    step = statistics.median(steps.values()) / PROBE_LOG
    return ended[0], 1 / step, ended[max(ended)]


def timed_run(
    config: str | Path, data: Path, minutes: float, log: Callable[[str], None] = print
) -> tuple[float, int, float]:
    """Train ``config`` on ``data`` (bytes) for ``minutes`` of wall-clock time ->
    (validation loss, iterations, seconds taken). A probe of ``PROBE_ITERS`` iterations (which
    also tokenizes the text) measures the first iteration (compilation), the speed after it
    and what a run costs outside its iterations (setting up, the final evaluation). The run
    then follows the clock (``train.time_limit``): its schedule
    spans the time left for iterations, however fast the machine goes meanwhile (a 2-core
    cloud machine drifted between 10 and 12.5 iterations/s within one run, and a schedule of
    iterations fitted to the probe's speed ran 13 % over)."""
    exp = load_experiment(config)
    exp.data.dataset = str(data)
    exp.data.tokenizer = "bytes"
    exp.train.eval_iters = 50
    exp.train.time_limit = None
    tokens_per_iter = exp.train.batch_size * exp.model.context_length
    with tempfile.TemporaryDirectory() as tmp:
        exp.data.data_dir = tmp
        exp.train.log_interval, exp.train.eval_interval = PROBE_LOG, PROBE_ITERS + 1
        torch._dynamo.reset()  # the probe compiles as the run will (from inductor's disk cache)
        began = time.perf_counter()
        train(exp, Path(tmp) / "probe", max_iters=PROBE_ITERS, log=lambda _: None)
        probe = time.perf_counter() - began
        first, rate, last = probe_speed(Path(tmp) / "probe/metrics.jsonl", tokens_per_iter)
        # outside the iterations: setting up, and the final evaluation with its checkpoint
        fixed = probe - last
        exp.train.time_limit = minutes * 60 - first - fixed
        expected = rate * exp.train.time_limit
        exp.train.eval_interval = max(1, int(expected) // 4)  # about 4 evaluations on the way
        exp.train.log_interval = 1000
        log(
            f"  probe: {rate:.1f} iterations/s, first iteration {first:.1f} s, {fixed:.1f} s "
            "outside the iterations: the schedule follows "
            f"the clock for {exp.train.time_limit:.0f} s (about {expected:.0f} iterations)"
        )
        torch._dynamo.reset()  # the run compiles for itself
        start = time.perf_counter()
        result = train(exp, Path(tmp) / "run", log=lambda _: None)
        took = time.perf_counter() - start
    return result.val_loss, result.iters_done, took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "configs/small_model.yaml"))
    p.add_argument(
        "--data", type=Path, default=REPO.parent / "shared/data/text/tinyshakespeare.txt"
    )
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument(
        "--three-minutes",
        default=str(REPO / "configs/shakespeare_3min.yaml"),
        help="the config of the timed run (bench/sweep_3min.py chose it)",
    )
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--medium", default=str(REPO / "configs/medium_model.yaml"))
    p.add_argument("--medium-steps", type=int, default=4)
    p.add_argument("--medium-batch", type=int, default=2, help="the config's 64 is for a GPU")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timed-only", action="store_true", help="only the timed run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.timed_only:
        throughput(args.config, args.steps)
        print()
        throughput(args.medium, args.medium_steps, args.medium_batch)
        print()
        if native_bf16():
            throughput(args.medium, args.medium_steps, args.medium_batch, bf16=True)
        else:
            cpu = torch.backends.cpu.get_cpu_capability()
            print(
                f"bfloat16 autocast rows skipped: this CPU ({cpu}) has neither AVX512-BF16 nor AMX;"
                " torch would emulate the bfloat16 products"
            )
    print(f"\n{args.minutes:g} minutes on {args.data.name} (bytes), {args.three_minutes}:")
    loss, iters, took = timed_run(args.three_minutes, args.data, args.minutes)
    print(
        f"  validation loss {loss:.3f} after {took / 60:.2f} min ({iters} iterations); "
        f"nanoGPT shakespeare_char on a laptop CPU (published): {NANOGPT_CPU_VAL_LOSS} "
        "after about 3 min"
    )


if __name__ == "__main__":
    main()
