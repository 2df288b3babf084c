"""The GPU path measured: training steps of the medium config on one GPU (float32/TF32, bf16
autocast, ``torch.compile``, fused AdamW, fused SDPA) beside Hugging Face Llama of the same
shape and weights, with model FLOPs utilisation; the reference trainer on the same path;
and greedy decoding at 1,024 new tokens with and without the KV cache.

    python bench/bench_gpu.py [--config configs/medium_model.yaml] [--steps 100]
        [--trainer-iters 300] [--new-tokens 1024] [--device cuda]

MFU (model FLOPs utilisation) counts 6N + 12 L T d FLOPs per trained token (nanoGPT's
estimate: N parameters, L layers, context T, width d) against two ceilings: the datasheet's
dense bf16 peak (989 TFLOP/s on an H100/H200 SXM) and a bf16 8192^3 matrix product measured
in the same run. With ``--device cpu`` and a small config it runs on a laptop (the logic is
the same; the figures are not GPU figures).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from bench_generation import hf_greedy  # run as a script: bench/ is on sys.path
from bench_model import hf_twin
from torch import nn

from reference_impl.generation import generate
from reference_impl.models import ModelConfig, TransformerLM, from_hf_llama, lm_loss
from reference_impl.training import TrainConfig, load_experiment, make_optimizer, train

REPO = Path(__file__).resolve().parents[1]
DATASHEET_BF16_FLOPS = 989e12  # H100/H200 SXM, dense bf16


def flops_per_token(model: TransformerLM) -> float:
    c = model.config
    return 6 * model.num_parameters() + 12 * c.n_layers * c.context_length * c.d_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int = 8192, repeats: int = 10) -> float:
    """bf16 FLOP/s of an n x n x n matrix product (mean of ``repeats`` after 3 warm-ups)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def train_steps(
    model: nn.Module,
    logits: Callable[[torch.Tensor], torch.Tensor],
    batches: list[torch.Tensor],
    bf16: bool,
    device: torch.device,
    warmup: int,
) -> tuple[float, float]:
    """(seconds of the first ``warmup`` steps (compilation included), seconds per step after)."""
    opt = make_optimizer(model, TrainConfig(), device)  # lr and decay do not change the speed
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )

    def step(x: torch.Tensor) -> None:
        with autocast:
            loss = lm_loss(logits(x[:, :-1]), x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    start = time.perf_counter()
    for x in batches[:warmup]:
        step(x)
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for x in batches[warmup:]:
        step(x)
    sync(device)
    return warm, (time.perf_counter() - start) / (len(batches) - warmup)


def training_table(
    cfg: ModelConfig, batch: int, steps: int, warmup: int, device: torch.device, peak: float
) -> None:
    torch.manual_seed(0)
    hf = hf_twin(cfg).train()
    converted = from_hf_llama(hf)
    ours = TransformerLM(replace(converted.config, attn_impl="sdpa")).train()
    ours.load_state_dict(converted.state_dict())
    hf.to(device)
    ours.to(device)
    state_ours, state_hf = copy.deepcopy(ours.state_dict()), copy.deepcopy(hf.state_dict())
    batches = [
        torch.randint(0, cfg.vocab_size, (batch, cfg.context_length + 1), device=device)
        for _ in range(warmup + steps)
    ]
    tokens = batch * cfg.context_length
    per_token = flops_per_token(ours)
    print(
        f"training steps: {ours.num_parameters():,} parameters, batch {batch} x "
        f"{cfg.context_length}, {per_token / 1e6:.1f} MFLOP per token (6N + 12LTd), "
        f"{warmup} warm-up + {steps} timed steps, fused AdamW: {device.type == 'cuda'}"
    )
    print(
        f"  {'model':34s} {'dtype':9s} {'compile':7s} {'warm-up s':>9s} {'ms/step':>8s} "
        f"{'tokens/s':>11s} {'MFU sheet':>9s} {'MFU meas':>8s}"
    )
    rows: list[tuple[str, nn.Module, dict[str, Any], bool, bool]] = [
        ("reference_impl (sdpa)", ours, state_ours, False, False),
        ("reference_impl (sdpa)", ours, state_ours, True, False),
        ("reference_impl (sdpa)", ours, state_ours, True, True),
        ("transformers LlamaForCausalLM", hf, state_hf, True, False),
        ("transformers LlamaForCausalLM", hf, state_hf, True, True),
    ]
    rates: dict[tuple[str, bool, bool], float] = {}
    for name, model, state, bf16, compiled in rows:
        model.load_state_dict(state)
        torch._dynamo.reset()
        net: Any = torch.compile(model) if compiled else model
        logits = net if isinstance(model, TransformerLM) else (lambda x, net=net: net(x).logits)
        try:
            warm, per_step = train_steps(model, logits, batches, bf16, device, warmup)
        except Exception as e:  # one row failing (a compiler error) must not lose the others
            print(f"  {name:34s} failed: {type(e).__name__}: {str(e)[:300]}")
            continue
        rate = tokens / per_step
        rates[(name, bf16, compiled)] = rate
        achieved = rate * per_token
        print(
            f"  {name:34s} {'bf16' if bf16 else 'fp32/tf32':9s} {'yes' if compiled else 'no':7s} "
            f"{warm:9.1f} {per_step * 1e3:8.1f} {rate:11,.0f} "
            f"{achieved / DATASHEET_BF16_FLOPS:9.1%} {achieved / peak:8.1%}"
        )
    for bf16, compiled in ((True, False), (True, True)):
        a = rates.get(("reference_impl (sdpa)", bf16, compiled))
        b = rates.get(("transformers LlamaForCausalLM", bf16, compiled))
        if a and b:
            what = f"bf16{', compiled' if compiled else ''}"
            print(f"  ours / transformers ({what}): {a / b:.2f}x")


def trainer_run(config: str, iters: int, device: torch.device) -> None:
    exp = load_experiment(config)
    exp.train.device = device.type
    exp.train.dtype = "bfloat16" if device.type == "cuda" else "float32"
    exp.train.compile = device.type == "cuda"
    exp.train.max_iters = iters
    exp.train.warmup_iters = min(exp.train.warmup_iters, iters // 10)
    exp.train.log_interval = max(1, iters // 5)
    exp.train.eval_interval = iters
    with tempfile.TemporaryDirectory() as tmp:
        exp.data.data_dir = tmp
        start = time.perf_counter()
        result = train(exp, Path(tmp) / "run", log=lambda line: print("  " + line))
        took = time.perf_counter() - start
    print(
        f"  reference trainer ({exp.train.dtype}, compile {exp.train.compile}): {iters} "
        f"iterations in {took:.0f} s (data, compilation and evaluation included), "
        f"validation loss {result.val_loss:.3f}"
    )


def decoding(cfg: ModelConfig, new_tokens: int, device: torch.device) -> None:
    torch.manual_seed(0)
    cfg = replace(cfg, context_length=max(cfg.context_length, 16 + new_tokens))
    hf = hf_twin(cfg).eval()
    hf.generation_config.eos_token_id = None
    converted = from_hf_llama(hf)
    ours = TransformerLM(replace(converted.config, attn_impl="sdpa")).eval()
    ours.load_state_dict(converted.state_dict())
    hf.to(device)
    ours.to(device)
    prompt = torch.randint(1, cfg.vocab_size, (1, 16), device=device)

    def ours_run(use_cache: bool) -> torch.Tensor:
        return generate(ours, prompt, new_tokens, temperature=0.0, use_cache=use_cache)

    def hf_run(use_cache: bool) -> torch.Tensor:
        return hf_greedy(hf, prompt, new_tokens, use_cache)

    print(f"greedy decoding, batch 1, 16 + {new_tokens} tokens, float32, {device}")
    outputs = {}
    for name, run in (("reference_impl", ours_run), ("transformers", hf_run)):
        for use_cache in (True, False):
            with torch.no_grad():
                run(use_cache)  # warm-up
                sync(device)
                start = time.perf_counter()
                outputs[(name, use_cache)] = run(use_cache)
                sync(device)
            took = time.perf_counter() - start
            print(
                f"  {name:16s} KV cache {'yes' if use_cache else 'no ':3s} "
                f"{new_tokens / took:9,.0f} tokens/s"
            )
    same = all(torch.equal(o, outputs[("transformers", True)]) for o in outputs.values())
    print(f"  greedy ids identical across all four: {same}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configs/medium_model.yaml"))
    p.add_argument("--batch-size", type=int)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--trainer-iters", type=int, default=300)
    p.add_argument("--new-tokens", type=int, default=1024)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--skip", nargs="*", default=[], choices=["train", "trainer", "decode"])
    args = p.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    exp = load_experiment(args.config)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = matmul_peak(device) if device.type == "cuda" else DATASHEET_BF16_FLOPS
    print(
        f"{name}, torch {torch.__version__}: bf16 8192^3 matrix product {peak / 1e12:.0f} "
        f"TFLOP/s measured, {DATASHEET_BF16_FLOPS / 1e12:.0f} on the datasheet\n"
    )
    if "train" not in args.skip:
        batch = args.batch_size or exp.train.batch_size
        training_table(exp.model, batch, args.steps, args.warmup, device, peak)
        print()
    if "trainer" not in args.skip:
        trainer_run(args.config, args.trainer_iters, device)
        print()
    if "decode" not in args.skip:
        decoding(exp.model, args.new_tokens, device)


if __name__ == "__main__":
    main()
