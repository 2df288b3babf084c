"""``scripts/sft.py``: supervised fine-tuning of a pretrained model into an assistant.

    python scripts/sft.py --checkpoint BASE/model.pt --out-dir DIR [--max-iters N]
        [--size tiny|small|medium|full] [--lr LR] [--eval-questions N] [--resume]

The same trainer as pretraining (``train.init_from`` the base checkpoint; the data the
offline instruction set in the chat format, trained on the assistant's turns only; a lower
learning rate). Then both models answer the held-out questions: the base model prompted
with plain text, the fine-tuned one in the chat format; exact-match accuracies are printed
side by side and written to ``DIR/eval.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from coursedata import instruction_splits
from coursedata.instructions import Conversation
from reference_impl.data.chat import CHAT_SIZES
from reference_impl.generation import load_model
from reference_impl.generation.assistant import QAResult, qa_accuracy
from reference_impl.models import ModelConfig
from reference_impl.tokenizer import has_chat_format, load_tokenizer
from reference_impl.training.config import DataConfig, ExperimentConfig, TrainConfig
from reference_impl.training.loop import TrainError, train
from reference_impl.utils import CheckpointError, load_checkpoint
from reference_impl.utils.config import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="sft.py",
        description="Fine-tune a pretrained model into an assistant (chat format).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="the base model.pt (scripts/train.py)")
    p.add_argument("--out-dir", default="checkpoints/sft", help="where model.pt is written")
    p.add_argument("--max-iters", type=int, default=1500, help="fine-tuning iterations")
    p.add_argument("--size", default="small", choices=sorted(CHAT_SIZES), help="data size")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--eval-questions", type=int, default=200, help="held-out questions asked")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    p.add_argument("--overwrite", action="store_true", help="replace a run in --out-dir")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p.parse_args(argv)


def sft_experiment(base: dict[str, Any], args: argparse.Namespace) -> ExperimentConfig:
    """The fine-tuning run of ``base`` (a loaded checkpoint): its architecture and
    tokenizer, the instruction data, and a short schedule at a lower learning rate."""
    tokenizer = (base.get("data_config") or {}).get("tokenizer", "bytes")
    spec = load_tokenizer(tokenizer)
    if not has_chat_format(spec.tokenizer):
        raise ConfigError(
            f"the base model's tokenizer ({tokenizer}) has no chat tokens: pretrain with "
            "tokenizers/stories-512 (scripts/train_tokenizer.py reserves them)"
        )
    if args.max_iters < 1:
        raise ConfigError(f"--max-iters: must be >= 1, got {args.max_iters}")
    train_cfg = TrainConfig(
        max_iters=args.max_iters,
        batch_size=args.batch_size,
        lr=args.lr,
        min_lr=args.lr / 10,
        warmup_iters=min(50, args.max_iters // 10),
        weight_decay=0.0,
        log_interval=max(1, args.max_iters // 20),
        eval_interval=max(1, args.max_iters // 4),
        eval_iters=10,
        seed=args.seed,
        device=args.device,
        init_from=str(args.checkpoint),
    )
    data = DataConfig(dataset="instructions", size=args.size, tokenizer=tokenizer)
    return ExperimentConfig(ModelConfig.from_dict(base["model_config"]), train_cfg, data)


def held_out_questions(args: argparse.Namespace) -> list[Conversation]:
    """The held-out split's first ``--eval-questions`` conversations (stories that no
    training conversation holds)."""
    n_train, n_test = CHAT_SIZES[args.size]
    return instruction_splits(n_train, n_test, seed=args.seed)[1][: args.eval_questions]


def _report(name: str, result: QAResult) -> str:
    return (
        f"{name:12} {result.accuracy:6.1%}  ({result.correct}/{result.asked} exact"
        + (f"; {result.skipped} too long" if result.skipped else "")
        + ")"
    )


def sft_main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        base = load_checkpoint(args.checkpoint)
        exp = sft_experiment(base, args)
        began = time.perf_counter()
        result = train(
            exp,
            args.out_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=args.progress,
        )
        seconds = time.perf_counter() - began
    except (ConfigError, TrainError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    out = Path(args.out_dir)
    questions = held_out_questions(args)
    base_model, tok, _ = load_model(args.checkpoint)
    tuned, _, _ = load_model(out / "model.pt")
    before = qa_accuracy(base_model, tok, questions, chat=False)
    after = qa_accuracy(tuned, tok, questions, chat=True)
    print(
        f"fine-tuned for {result.iters_done} iterations in {seconds:.0f} s; "
        f"validation loss {result.val_loss:.4f}"
    )
    print(f"held-out questions ({len(questions)}), exact match:")
    print(_report("base", before))
    print(_report("fine-tuned", after))
    for question, expected, reply in after.replies[:5]:
        print(f"  Q: {question}  A: {expected!r}  model: {reply!r}")
    record = {
        "iters": result.iters_done,
        "seconds": round(seconds, 1),
        "val_loss": result.val_loss,
        "base": {"accuracy": before.accuracy, "asked": before.asked, "skipped": before.skipped},
        "fine_tuned": {"accuracy": after.accuracy, "asked": after.asked, "skipped": after.skipped},
        "examples": after.replies[:20],
    }
    (out / "eval.json").write_text(json.dumps(record, indent=1))
    print(
        f"checkpoint: {out / 'model.pt'}; chat: python scripts/chat.py --checkpoint "
        f"{out / 'model.pt'}"
    )
    return 0
