"""``scripts/train.py``: train a TransformerLM from a YAML config.

    python scripts/train.py --config configs/small_model.yaml [--data builtin|tinystories|PATH]
        [--max-iters N] [--out-dir DIR] [--device cpu|cuda|auto] [--seed S] [--resume]

Several processes: ``torchrun --nproc_per_node 2 scripts/train.py --config ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from reference_impl.data import DataUnavailable
from reference_impl.generation import generate, load_model
from reference_impl.training.config import load_experiment
from reference_impl.training.loop import TrainError, train
from reference_impl.training.plots import plot_losses
from reference_impl.utils.config import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train a language model from a YAML config.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", required=True, help="YAML experiment, e.g. configs/small_model.yaml")
    p.add_argument("--data", help="override data.dataset: builtin, tinystories, or a path to text")
    p.add_argument(
        "--max-iters",
        type=int,
        help="stop after this many iterations (default: train.max_iters); the "
        "learning-rate schedule always spans train.max_iters",
    )
    p.add_argument("--out-dir", default="checkpoints/pretrained", help="checkpoint folder")
    p.add_argument("--device", choices=["cpu", "cuda", "mps", "auto"], help="override train.device")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    p.add_argument("--overwrite", action="store_true", help="replace a run in --out-dir")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--prompt", default="Once upon a time", help="prompt of the final sample")
    p.add_argument("--sample-tokens", type=int, default=200, help="length of the final sample")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        exp = load_experiment(args.config)
        if args.data is not None:
            exp.data.dataset = args.data
        if args.device is not None:
            exp.train.device = args.device
        if args.seed is not None:
            exp.train.seed = args.seed
        if args.max_iters is not None and args.max_iters < 1:
            raise ConfigError(f"--max-iters: must be >= 1, got {args.max_iters}")
        result = train(
            exp,
            args.out_dir,
            max_iters=args.max_iters,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=args.progress,
        )
    except (ConfigError, TrainError, DataUnavailable, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    out = Path(args.out_dir)
    plot = plot_losses(out)
    model, tok, _ = load_model(out / "model.pt")
    prompt = torch.tensor([tok.encode(args.prompt)])
    gen = torch.Generator().manual_seed(exp.train.seed)
    sample = generate(model, prompt, args.sample_tokens, temperature=0.8, top_k=40, generator=gen)
    print(f"validation loss {result.val_loss:.4f} after {result.iters_done} iterations")
    print(f"checkpoint: {out / 'model.pt'}; metrics: {out / 'metrics.jsonl'}; plot: {plot}")
    print(f"TensorBoard: tensorboard --logdir {out / 'tb'}")
    print("sample:\n" + tok.decode(sample[0].tolist()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
