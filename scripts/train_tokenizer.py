"""Train a byte-level BPE tokenizer (Part 4's algorithm) on a dataset's training split and
write it in GPT-2's format, for ``data.tokenizer`` in a config.

    python scripts/train_tokenizer.py                       # tokenizers/stories-512
    python scripts/train_tokenizer.py --dataset tinystories --size small --vocab-size 4096 \\
        --out tokenizers/tinystories-4096

Documents are joined with ``<|endoftext|>``, which becomes a special token (id 256), and the
chat format's ``<|user|>``, ``<|assistant|>``, ``<|end|>`` are reserved (ids 257-259) for
fine-tuning an assistant (scripts/sft.py). The
result is deterministic: the same dataset and vocabulary size give the same files, so
``tokenizers/stories-512`` (used by configs/mini_gemini.yaml) is rebuilt by the default
command and checked by the tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_impl.data import documents
from reference_impl.tokenizer import EOT, SPECIAL_TOKENS
from reference_impl.tokenizer.bpe import train_bpe
from reference_impl.tokenizer.tokenizer import Tokenizer


def train(dataset: str, size: str, vocab_size: int, out: Path, data_dir: str = "data") -> Path:
    """Train on ``dataset``'s training split and write ``out``/{vocab.json,merges.txt}."""
    text = f"\n{EOT}\n".join(documents(dataset, "train", size, data_dir))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train.txt"
        corpus.write_text(text, encoding="utf-8")
        vocab, merges = train_bpe(
            corpus, vocab_size, list(SPECIAL_TOKENS), num_processes=1, progress=False
        )
    out.mkdir(parents=True, exist_ok=True)
    Tokenizer(vocab, merges, list(SPECIAL_TOKENS)).save(out / "vocab.json", out / "merges.txt")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="builtin", help="builtin, tinystories or a text path")
    p.add_argument("--size", default="small", help="tiny, small, medium or full")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--out", type=Path, default=Path("tokenizers/stories-512"))
    p.add_argument("--data-dir", default="data")
    args = p.parse_args(argv)
    start = time.perf_counter()
    out = train(args.dataset, args.size, args.vocab_size, args.out, args.data_dir)
    print(f"wrote {out}/vocab.json and merges.txt in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
