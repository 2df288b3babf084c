"""The sweep behind ``configs/shakespeare_3min.yaml``: which model shape, batch, learning
rate, optimizer and compilation reach the lowest validation loss in 3 minutes of CPU
training.

    python bench/sweep_3min.py [--minutes 3] [--threads 2] [--only NAME ...]

Each candidate is ``configs/small_model.yaml`` with a few keys changed, trained by
``bench_train.timed_run`` (the schedule following the clock, compilation and evaluations
included) on tinyshakespeare at the byte level; the table lists the validation
loss each reaches, best first. Runs one at a time: on 2 cores any other load changes the
figures. Candidates ran on 2026-11-30 and 2026-12-01 on 2 cores; the winner was copied to
``configs/shakespeare_3min.yaml``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from bench_train import REPO, timed_run  # run as a script: bench/ is on sys.path

from reference_impl.utils.config import load_yaml

Overrides = dict[str, dict[str, Any]]


def muon(model: dict[str, Any] | None = None, **train: Any) -> Overrides:
    """A third-round candidate: fused attention, compiled, Muon, with these keys changed."""
    return {
        "model": {"attn_impl": "sdpa", **(model or {})},
        "train": {"compile": True, "optimizer": "muon", **train},
    }


CANDIDATES: dict[str, Overrides] = {
    "small": {},
    "small, sdpa": {"model": {"attn_impl": "sdpa"}},
    "small, sdpa, compiled": {"model": {"attn_impl": "sdpa"}, "train": {"compile": True}},
    "lr 5e-3, compiled": {
        "model": {"attn_impl": "sdpa"},
        "train": {"compile": True, "lr": 5e-3, "min_lr": 5e-4},
    },
    "lr 8e-3, compiled": {
        "model": {"attn_impl": "sdpa"},
        "train": {"compile": True, "lr": 8e-3, "min_lr": 8e-4},
    },
    "batch 12, lr 4e-3, compiled": {
        "model": {"attn_impl": "sdpa"},
        "train": {"compile": True, "batch_size": 12, "lr": 4e-3, "min_lr": 4e-4},
    },
    "d192 L4, compiled": {
        "model": {"attn_impl": "sdpa", "d_model": 192, "n_heads": 6, "n_kv_heads": 3},
        "train": {"compile": True, "lr": 2e-3, "min_lr": 2e-4},
    },
    "d128 L6, compiled": {
        "model": {"attn_impl": "sdpa", "n_layers": 6},
        "train": {"compile": True},
    },
    "batch 32, compiled": {
        "model": {"attn_impl": "sdpa"},
        "train": {"compile": True, "batch_size": 32, "lr": 4e-3, "min_lr": 4e-4},
    },
    "context 256, batch 8, compiled": {
        "model": {"attn_impl": "sdpa", "context_length": 256},
        "train": {"compile": True, "batch_size": 8},
    },
    "min_lr 3e-5, compiled": {
        "model": {"attn_impl": "sdpa"},
        "train": {"compile": True, "min_lr": 3e-5},
    },
    "context 64, batch 32, compiled": {
        "model": {"attn_impl": "sdpa", "context_length": 64},
        "train": {"compile": True, "batch_size": 32, "min_lr": 3e-5},
    },
    "lr 5e-3, min_lr 5e-5, batch 24, compiled": {
        "model": {"attn_impl": "sdpa"},
        "train": {"compile": True, "batch_size": 24, "lr": 5e-3, "min_lr": 5e-5},
    },
    # third round (2026-12-01): Muon on the blocks' matrices
    "muon, compiled": muon(),
    "muon, lr 6e-3, compiled": muon(lr=6e-3, min_lr=6e-4),
    "muon, lr 1e-2, compiled": muon(lr=1e-2, min_lr=1e-3),
    "muon, warmup 30, compiled": muon(warmup_iters=30),
    "muon, batch 24, lr 4e-3, compiled": muon(batch_size=24, lr=4e-3, min_lr=4e-4),
    "muon, batch 12, compiled": muon(batch_size=12),
    "muon, 5 layers, compiled": muon({"n_layers": 5}),
    "muon, d_ff 512, compiled": muon({"d_ff": 512}),
    "muon, min_lr 3e-5, compiled": muon(min_lr=3e-5),
    "muon, batch 12, min_lr 3e-5, compiled": muon(batch_size=12, min_lr=3e-5),
    "muon, batch 12, 5 layers, min_lr 3e-5, compiled": muon(
        {"n_layers": 5}, batch_size=12, min_lr=3e-5
    ),
    "muon, batch 8, min_lr 3e-5, compiled": muon(batch_size=8, min_lr=3e-5),
}


def candidate(overrides: Overrides, folder: Path, name: str) -> Path:
    """``small_model.yaml`` with ``overrides`` merged into its sections, written to folder."""
    raw = load_yaml(REPO / "configs/small_model.yaml")
    for section, values in overrides.items():
        raw[section] = raw.get(section, {}) | values
    path = folder / f"{name.replace(' ', '_').replace(',', '')}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--data", type=Path, default=REPO.parent / "shared/data/text/tinyshakespeare.txt"
    )
    p.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), help="default: all")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or CANDIDATES:
            print(f"{name}:", flush=True)
            torch.manual_seed(0)
            config = candidate(CANDIDATES[name], Path(tmp), name)
            loss, iters, took = timed_run(config, args.data, args.minutes)
            print(f"  validation loss {loss:.3f}, {iters} iterations in {took:.0f} s", flush=True)
            results.append((loss, name, iters, took))
    print(f"\n{'candidate':34s} {'val loss':>8s} {'iters':>6s} {'seconds':>7s}")
    for loss, name, iters, took in sorted(results):
        print(f"{name:34s} {loss:8.3f} {iters:6d} {took:7.0f}")


if __name__ == "__main__":
    main()
