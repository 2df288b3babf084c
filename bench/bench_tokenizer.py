"""BPE training seconds and encoding throughput beside Hugging Face ``tokenizers``.

    python bench/bench_tokenizer.py [--data ../shared/data] [--repeats 3]

Training: vocab 500 on ``corpus.en`` and vocab 5,000 on ``tinyshakespeare.txt`` with
``<|endoftext|>`` as special token, by the reference trainer and by Hugging Face's
``BpeTrainer`` (Rust, multi-threaded) in the same run. Encoding: GPT-2's vocabulary on
``tinyshakespeare.txt`` (cold cache: a fresh tokenizer each repeat, its loading timed
too), one string at a time by both, and Hugging Face's ``encode_batch`` over lines; the
two encoders' ids are checked equal. Best of ``--repeats``; each row gives our time
against the peer's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers, trainers

from reference_impl.tokenizer import Tokenizer, train_bpe

EOT = "<|endoftext|>"


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def versus(ours: float, theirs: float) -> str:
    """Our seconds against the peer's, e.g. ``2.1x slower``."""
    if ours > theirs:
        return f"{ours / theirs:.1f}x slower"
    return f"{theirs / ours:.1f}x faster"


def hf_train(path: Path, vocab_size: int) -> None:
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    hf.train([str(path)], trainer)


def hf_gpt2(gpt2: Path) -> HFTokenizer:
    hf = HFTokenizer(
        models.BPE.from_file(str(gpt2 / "gpt2_vocab.json"), str(gpt2 / "gpt2_merges.txt"))
    )
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.add_special_tokens([EOT])
    return hf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    text_dir, gpt2 = args.data / "text", args.data / "gpt2"

    print("BPE training (seconds, best of", args.repeats, "runs)")
    for name, vocab_size in (("corpus.en", 500), ("tinyshakespeare.txt", 5000)):
        path = text_dir / name
        ours = best_of(
            args.repeats, lambda p=path, v=vocab_size: train_bpe(p, v, [EOT], progress=False)
        )
        theirs = best_of(args.repeats, lambda p=path, v=vocab_size: hf_train(p, v))
        print(
            f"  {name:<20} vocab {vocab_size:>5}: ours {ours:5.2f} s, "
            f"tokenizers {theirs:5.2f} s, {versus(ours, theirs)}"
        )

    text = (text_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    mb = len(text.encode("utf-8")) / 1e6

    def ours_encode() -> list[int]:
        tok = Tokenizer.from_files(gpt2 / "gpt2_vocab.json", gpt2 / "gpt2_merges.txt", [EOT])
        return tok.encode(text)

    hf = hf_gpt2(gpt2)
    if ours_encode() != hf.encode(text).ids:
        raise SystemExit("the reference's GPT-2 ids differ from Hugging Face's")
    ours_t = best_of(args.repeats, ours_encode)
    hf_t = best_of(args.repeats, lambda: hf.encode(text))
    hf_batch = best_of(args.repeats, lambda: hf.encode_batch(lines))
    print(f"GPT-2 encoding of tinyshakespeare.txt ({mb:.2f} MB, MB/s; ids identical)")
    print(
        f"  one string: ours (incl. loading the files) {mb / ours_t:5.2f}, "
        f"tokenizers {mb / hf_t:5.2f}, {versus(ours_t, hf_t)}"
    )
    print(
        f"  tokenizers encode_batch (lines) {mb / hf_batch:5.2f}, ours {versus(ours_t, hf_batch)}"
    )


if __name__ == "__main__":
    main()
