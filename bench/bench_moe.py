"""Training tokens/s of a small MoE LM beside a dense LM of the same ACTIVE parameters (CPU).

    python bench/bench_moe.py [--steps 10] [--threads 2] [--experts 8] [--top-k 2]

Both are the reference ``TransformerLM`` (RoPE, RMSNorm, SwiGLU, byte vocabulary) trained on
the offline stories; the MoE one has each block's FFN replaced by ``MoELayer`` with
``experts`` SwiGLU experts of width d_ff (top-k routed, capacity factor 1.25, plus the
load-balancing and z-losses), the dense one a single SwiGLU of width k * d_ff: the same FFN
computation per token, E / k times fewer FFN parameters. Figures from one run compare.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor

from coursedata import generate_stories
from reference_impl.models import ModelConfig, MoELayer, TransformerLM
from reference_impl.models.moe import load_balancing_loss, router_z_loss


class MoEFFN(MoELayer):
    """MoELayer as a drop-in FFN: returns only the output (the logits stay in router_logits)."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(x)[0]


def build(d: int, d_ff: int, experts: int, top_k: int, moe: bool) -> TransformerLM:
    config = ModelConfig(
        vocab_size=256,
        context_length=128,
        d_model=d,
        n_heads=4,
        n_layers=4,
        d_ff=d_ff * top_k,
        norm_kind="rmsnorm",
        ffn_kind="swiglu",
        bias=False,
        pos_kind="rope",
        tie_weights=True,
        attn_impl="sdpa",
    )
    model = TransformerLM(config)
    if moe:
        for block in model.blocks:
            block.ffn = MoEFFN(d, d_ff, experts, top_k, capacity_factor=1.25)
    return model.train()


def loss_of(model: TransformerLM, x: Tensor, experts: int, top_k: int) -> Tensor:
    loss = model.loss(x[:, :-1], x[:, 1:])
    for block in model.blocks:
        if isinstance(block.ffn, MoEFFN) and block.ffn.router_logits is not None:
            logits = block.ffn.router_logits
            loss = loss + 1e-2 * load_balancing_loss(logits, experts, top_k)
            loss = loss + 1e-3 * router_z_loss(logits)
    return loss


def train_step(
    model: TransformerLM, opt: torch.optim.Optimizer, x: Tensor, experts: int, top_k: int
) -> float:
    opt.zero_grad(set_to_none=True)
    loss = loss_of(model, x, experts, top_k)
    loss.backward()
    opt.step()
    return loss.item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--d-ff", type=int, default=256, help="width of one expert")
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--top-k", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = torch.tensor(list(" ".join(generate_stories(300, seed=0)).encode()))
    starts = torch.randint(0, len(data) - 130, (args.steps + 2, args.batch_size))
    batches = [data[s[:, None] + torch.arange(129)] for s in starts]
    print(
        f"{args.threads} threads, batch {args.batch_size} x 128 bytes, {args.steps} steps, "
        f"d_model {args.d_model}, 4 layers, {args.experts} experts of width {args.d_ff}, "
        f"top-{args.top_k}"
    )
    for moe in (False, True):
        torch.manual_seed(0)
        model = build(args.d_model, args.d_ff, args.experts, args.top_k, moe)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        total = sum(p.numel() for p in model.parameters())
        ffn = sum(p.numel() for b in model.blocks for p in b.ffn.parameters())
        active = total - ffn + ffn * args.top_k // args.experts if moe else total
        losses: list[float] = []
        for x in batches[:2]:  # warm-up
            train_step(model, opt, x, args.experts, args.top_k)
        start = time.perf_counter()
        for x in batches[2:]:
            losses.append(train_step(model, opt, x, args.experts, args.top_k))
        seconds = time.perf_counter() - start
        tokens = sum(x[:, :-1].numel() for x in batches[2:])
        name = "MoE  " if moe else "dense"
        print(
            f"{name}: {total / 1e6:6.2f}M parameters ({active / 1e6:.2f}M active per token), "
            f"{tokens / seconds:8.0f} tokens/s, loss {losses[0]:.2f} -> {losses[-1]:.2f}"
        )


if __name__ == "__main__":
    main()
