"""``train``: train a TransformerLM from a YAML config and print a generated sample."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from reference_impl.data import ByteTokenizer, generate_stories
from reference_impl.models import TransformerLM
from reference_impl.training.config import load_experiment
from reference_impl.training.loop import resolve_device, train
from reference_impl.utils.config import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="train", description=__doc__)
    p.add_argument(
        "--config", required=True, help="YAML experiment config, e.g. configs/small_model.yaml"
    )
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.add_argument("--out", default="checkpoints/pretrained", help="checkpoint directory")
    p.add_argument("--prompt", default="Once upon a time", help="prompt of the final sample")
    p.add_argument("--sample-tokens", type=int, default=200, help="length of the final sample")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        exp = load_experiment(args.config)
        if args.max_steps is not None:
            exp.train.max_steps = args.max_steps
            exp.train.__post_init__()
    except ConfigError as e:
        print(f"error: {args.config}: {e}", file=sys.stderr)
        return 2
    torch.manual_seed(exp.train.seed)
    device = resolve_device(exp.train.device)
    tok = ByteTokenizer()
    text = "\n".join(generate_stories(exp.data.num_stories, exp.data.seed))
    data = torch.tensor(tok.encode(text), dtype=torch.uint8)
    model = TransformerLM(exp.model).to(device)
    print(
        f"model: {model.num_parameters():,} parameters on {device}; "
        f"data: {len(data):,} tokens of offline stories"
    )
    start = time.perf_counter()

    def log(step: int, loss: float, lr: float) -> None:
        elapsed = time.perf_counter() - start
        print(f"step {step:5d}  loss {loss:.4f}  lr {lr:.2e}  {elapsed:6.1f}s", flush=True)

    losses = train(model, data, exp.train, log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "model.pt"
    tmp = ckpt.with_suffix(".pt.tmp")
    torch.save({"model_config": exp.model.to_dict(), "model": model.state_dict()}, tmp)
    os.replace(tmp, ckpt)  # atomic: an interrupted save never leaves a half-written file
    prompt = torch.tensor([tok.encode(args.prompt)], device=device)
    gen = torch.Generator(device=device).manual_seed(exp.train.seed)
    sample = model.generate(prompt, args.sample_tokens, temperature=0.8, top_k=40, generator=gen)
    print(f"final loss {losses[-1]:.4f} after {len(losses)} steps; checkpoint: {ckpt}")
    print("sample:\n" + tok.decode(sample[0].tolist()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
