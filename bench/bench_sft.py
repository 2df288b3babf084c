"""From a base model to an assistant on CPU: pretrain mini-gemini (configs/mini_gemini.yaml,
a shorter schedule), fine-tune it on the offline instruction set (scripts/sft.py's run), and
ask both the held-out questions (stories no training conversation holds).

    python bench/bench_sft.py [--pretrain-iters 600] [--sft-iters 1500] [--sft-lr 1e-3]
        [--threads 2] [--questions 300] [--base PATH] [--out bench/runs/sft]

Printed: the time and tokens/s of both runs, then exact-match accuracy side by side: the
base model prompted with plain text ("<story>\\nQuestion: ...\\nAnswer:"), the base model in
the chat format (whose tokens it never saw), and the fine-tuned model in the chat format.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from reference_impl.generation import load_model
from reference_impl.generation.assistant import QAResult, qa_accuracy
from reference_impl.training import train
from reference_impl.training.config import load_experiment
from reference_impl.training.sft import held_out_questions, parse_args, sft_experiment
from reference_impl.utils import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def line(name: str, r: QAResult) -> str:
    return f"  {name:34} {r.accuracy:6.1%}  ({r.correct}/{r.asked}; {r.skipped} too long)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pretrain-iters", type=int, default=600)
    p.add_argument("--sft-iters", type=int, default=1500)
    p.add_argument("--sft-lr", type=float, default=1e-3)
    p.add_argument(
        "--base", type=Path, help="a pretrained model.pt to start from (skips pretraining)"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--questions", type=int, default=300)
    p.add_argument("--out", type=Path, default=REPO / "bench/runs/sft")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    exp = load_experiment(REPO / "configs/mini_gemini.yaml")
    exp.train.max_iters = args.pretrain_iters
    exp.train.eval_interval = args.pretrain_iters
    exp.data.tokenizer = str(REPO / "tokenizers/stories-512")
    exp.data.data_dir = str(REPO / "data")
    base_ckpt, sft_dir = args.out / "base/model.pt", args.out / "sft"
    if args.base is not None:
        base_ckpt = args.base
        print(f"pretrained: {base_ckpt}")
    else:
        began = time.perf_counter()
        pre = train(exp, base_ckpt.parent, overwrite=True, log=lambda _: None)
        seconds = time.perf_counter() - began
        tokens = args.pretrain_iters * exp.train.batch_size * exp.model.context_length
        print(
            f"pretraining: {args.pretrain_iters} iterations in {seconds:.0f} s, "
            f"{tokens / seconds:,.0f} tokens/s, validation loss {pre.val_loss:.3f}"
        )

    flags = ["--checkpoint", str(base_ckpt), "--out-dir", str(sft_dir), "--lr", str(args.sft_lr)]
    flags += ["--max-iters", str(args.sft_iters), "--eval-questions", str(args.questions)]
    sft_args = parse_args(flags)
    sft = sft_experiment(load_checkpoint(base_ckpt), sft_args)
    began = time.perf_counter()
    tuned = train(sft, sft_dir, overwrite=True, log=lambda _: None)
    print(
        f"fine-tuning: {args.sft_iters} iterations in {time.perf_counter() - began:.0f} s, "
        f"validation loss {tuned.val_loss:.3f} (answer tokens only)"
    )

    questions = held_out_questions(sft_args)
    base, tok, _ = load_model(base_ckpt)
    model, _, _ = load_model(sft_dir / "model.pt")
    print(f"held-out questions ({len(questions)}), exact match:")
    print(line("base, plain-text prompt", qa_accuracy(base, tok, questions, chat=False)))
    print(line("base, chat format", qa_accuracy(base, tok, questions, chat=True)))
    after = qa_accuracy(model, tok, questions, chat=True)
    print(line("fine-tuned, chat format", after))
    for question, expected, reply in after.replies[:8]:
        print(f"    {question:48} expected {expected!r:12} got {reply!r}")


if __name__ == "__main__":
    main()
