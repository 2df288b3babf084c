"""mini-gemini (configs/mini_gemini.yaml) beside a dense model of equal ACTIVE parameters,
and decoding with a full, a sliding-window and no KV cache (CPU).

    python bench/bench_gemini.py [--seconds 60] [--threads 2] [--new-tokens 1024]

Training: both models train for the same wall-clock budget on the same batches of the offline
stories (tokenizers/stories-512); the dense one has every layer dense (GeGLU of width 384:
the FFN parameters a token uses in mini-gemini, 3 dense layers of 256 plus 3 MoE layers of 2
experts of 256). Printed: steps, tokens/s, and validation loss on the same held-out batches.

Decoding: a mini-gemini of the same shape but a 2,048-token context (untrained: speed and
memory do not depend on the weights) generates ``--new-tokens`` greedy tokens after a
16-token prompt, with a cache that keeps every key in every layer, with the model's own cache
(local layers keep their last ``sliding_window - 1`` keys), and with no cache (each step
recomputes the whole prefix). Printed: tokens/s, cache bytes, and whether the ids agree.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import Tensor

from reference_impl.data import is_prepared, open_token_file, prepare, token_dir
from reference_impl.models import KVCache, ModelConfig, TransformerLM

REPO = Path(__file__).resolve().parents[1]


def token_ids(split: str) -> Tensor:
    """The offline stories' ``split`` in stories-512 ids (tokenized once into data/)."""
    tokenizer = str(REPO / "tokenizers/stories-512")
    folder = token_dir("builtin", "small", tokenizer, REPO / "data")
    if not is_prepared("builtin", "small", tokenizer, REPO / "data"):
        prepare("builtin", "small", tokenizer, REPO / "data")
    ids, _ = open_token_file(folder / f"{split}.bin", 512)
    return torch.from_numpy(ids.astype("int64"))


def batches(ids: Tensor, n: int, batch: int, block: int, seed: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - block - 1, (n, batch), generator=g)
    return [ids[s[:, None] + torch.arange(block + 1)] for s in starts]


def mini_config(**overrides: object) -> ModelConfig:
    data = ModelConfig.from_yaml(REPO / "configs/mini_gemini.yaml").to_dict()
    return ModelConfig.from_dict({**data, **overrides})


def active_parameters(model: TransformerLM) -> int:
    """Parameters one token uses: all but the experts its router did not choose."""
    c, total = model.config, model.num_parameters()
    expert = 3 * c.d_model * c.d_ff
    moe_layers = sum(c.is_moe(i) for i in range(c.n_layers))
    return total - moe_layers * (c.moe_num_experts - c.moe_top_k) * expert


def train_for(
    model: TransformerLM, seconds: float, train: list[Tensor], val: list[Tensor]
) -> tuple[int, float, float]:
    """Train until ``seconds`` pass -> (steps, tokens/s, validation loss)."""
    c = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    model.train()
    steps, tokens, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = train[steps % len(train)]
        loss = model.loss(x[:, :-1], x[:, 1:]) + c.moe_aux_loss_coef * model.aux_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps, tokens = steps + 1, tokens + x[:, :-1].numel()
    rate = tokens / (time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        val_loss = sum(model.loss(x[:, :-1], x[:, 1:]).item() for x in val) / len(val)
    return steps, rate, val_loss


@torch.no_grad()
def decode(model: TransformerLM, prompt: Tensor, n: int, cache: KVCache | None) -> Tensor:
    """Greedy ids (1, n) after ``prompt``; without a cache every step reruns the prefix."""
    idx = prompt
    logits = model(prompt, cache=cache)
    for _ in range(n):
        nxt = logits[:, -1].argmax(dim=-1, keepdim=True)
        idx = torch.cat((idx, nxt), dim=1)
        logits = model(nxt, cache=cache) if cache is not None else model(idx)
    return idx[:, prompt.size(1) :]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="training budget per model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--new-tokens", type=int, default=1024)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    train_ids, val_ids = token_ids("train"), token_ids("validation")
    train, val = batches(train_ids, 400, 16, 128, 0), batches(val_ids, 10, 16, 128, 1)
    print(
        f"{args.threads} threads; {len(train_ids):,} training tokens (stories-512 BPE); "
        f"batches of 16 x 128; {args.seconds:.0f} s of training per model"
    )
    models = {
        "mini-gemini": mini_config(),
        "dense      ": mini_config(ffn_pattern="D", d_ff=384),
    }
    for name, config in models.items():
        torch.manual_seed(0)
        model = TransformerLM(config)
        steps, rate, val_loss = train_for(model, args.seconds, train, val)
        print(
            f"{name}: {model.num_parameters() / 1e6:.2f}M parameters "
            f"({active_parameters(model) / 1e6:.2f}M active), {steps:4d} steps, "
            f"{rate:7,.0f} tokens/s, validation loss {val_loss:.3f}"
        )

    torch.manual_seed(0)
    model = TransformerLM(mini_config(context_length=2048)).eval()
    c = model.config
    prompt = torch.randint(0, c.vocab_size, (1, 16), generator=torch.Generator().manual_seed(2))
    length = prompt.size(1) + args.new_tokens
    full = KVCache(c.n_layers, 1, c.n_kv_heads, length, c.head_dim)
    runs: dict[str, KVCache | None] = {
        "full cache          ": full,
        "sliding-window cache": model.new_cache(1, length),
        "no cache            ": None,
    }
    print(
        f"decoding {args.new_tokens} new tokens after 16 (window {c.sliding_window}, "
        f"layers {c.attn_pattern * (c.n_layers // len(c.attn_pattern))}):"
    )
    results = []
    for name, cache in runs.items():
        start = time.perf_counter()
        ids = decode(model, prompt, args.new_tokens, cache)
        seconds = time.perf_counter() - start
        results.append(ids)
        nbytes = 0 if cache is None else cache.nbytes()
        print(
            f"  {name}: {args.new_tokens / seconds:7,.1f} tokens/s, "
            f"KV cache {nbytes / 2**10:8,.1f} KiB"
        )
    same = all(torch.equal(ids, results[0]) for ids in results)
    print(f"  the three give the same ids: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
