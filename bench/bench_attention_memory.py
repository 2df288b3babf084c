"""Peak memory and time of naive vs tiled attention, forward and backward, on CPU.

    python bench/bench_attention_memory.py [--lengths 512 2048 8192] [--tile 256] [--threads 2]

One head of width 64, float32, batch 1, causal. "naive" builds the (T, T) score matrix and
lets autograd save what it needs; "tiled" is ``reference_impl.models.tiled_attention``
(key tiles of ``--tile`` columns, backward by recomputation per tile).

Memory method: CPU allocations are invisible to ``tracemalloc`` and torch keeps no CPU peak
statistics, so :class:`~reference_impl.utils.memory.LiveTensorMemory` (a
``TorchDispatchMode``) sees every op's output tensors, counts each new storage's bytes while
it is referenced (by Python or by autograd's saved tensors; a weak reference tells when it is
freed) and records the largest total. Inputs (q, k, v, the upstream gradient) are excluded:
the figures are the memory attention itself allocates. "inference peak" is the peak of a
forward under ``torch.no_grad()``; "training peak" the peak over a forward with autograd
recording and the backward together. Times (forward with autograd recording, then backward)
are measured in separate runs without the tracking mode (best of ``--repeats``).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
from torch import Tensor

from reference_impl.models import repeat_kv, tiled_attention
from reference_impl.utils.memory import LiveTensorMemory

Attention = Callable[[Tensor, Tensor, Tensor], Tensor]


def naive_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """The textbook causal attention that builds the (T, S) score matrix and mask."""
    n_rep = q.size(-3) // k.size(-3)
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    t, s = q.size(-2), k.size(-2)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    p = torch.arange(t, device=q.device)[:, None] + (s - t)
    j = torch.arange(0, s, device=q.device)[None, :]
    allowed = torch.ones(t, s, dtype=torch.bool, device=q.device)
    allowed = allowed & (j <= p)
    scores = scores.masked_fill(~allowed, -math.inf)
    return torch.softmax(scores, dim=-1) @ v


def _inputs(t: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    q, k, v, grad = (torch.randn(1, 1, t, 64, generator=g) for _ in range(4))
    return q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), grad


def measure(fn: Attention, t: int, repeats: int) -> dict[str, float]:
    q, k, v, grad = _inputs(t)
    with torch.no_grad(), LiveTensorMemory() as mem:
        fn(q, k, v)
    forward_peak = mem.peak
    with LiveTensorMemory() as mem:
        fn(q, k, v).backward(grad)
    fwd, bwd = [], []
    for _ in range(repeats):
        q.grad = k.grad = v.grad = None
        start = time.perf_counter()
        out = fn(q, k, v)
        mid = time.perf_counter()
        out.backward(grad)
        fwd.append(mid - start)
        bwd.append(time.perf_counter() - mid)
        del out
    return {
        "fwd_mb": forward_peak / 2**20,
        "total_mb": mem.peak / 2**20,
        "fwd_s": min(fwd),
        "bwd_s": min(bwd),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    impls: dict[str, Attention] = {
        "naive": naive_attention,
        "tiled": lambda q, k, v: tiled_attention(q, k, v, is_causal=True, tile_size=args.tile),
    }
    print(f"causal attention, 1 head of 64, float32, CPU, {args.threads} threads, tile {args.tile}")
    header = f"{'T':>6} {'impl':6} {'inference peak MB':>18} {'training peak MB':>17} "
    print(header + f"{'fwd s':>8} {'bwd s':>8}")
    for fn in impls.values():  # warm-up: first calls pay for allocator and kernel setup
        measure(fn, 256, 1)
    for t in args.lengths:
        for name, fn in impls.items():
            r = measure(fn, t, args.repeats)
            print(
                f"{t:6} {name:6} {r['fwd_mb']:18.1f} {r['total_mb']:17.1f} "
                f"{r['fwd_s']:8.3f} {r['bwd_s']:8.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
