"""Fetch a dataset and tokenize it once into memory-mapped token files.

    python scripts/download_data.py --dataset tinystories --size small
    python scripts/download_data.py --dataset builtin              # offline stories
    python scripts/download_data.py --dataset path/to/text.txt --tokenizer path/to/bpe/

Writes DATA_DIR/<dataset>-<size>-<tokenizer>/{train,validation}.bin with a .json beside
each (tokenizer, vocabulary size, dtype, token count, split). For TinyStories it also keeps
the text in DATA_DIR/tinystories/, so later runs need no network. Without the network and
without a local copy it says so and what to do, and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_impl.data import DataUnavailable, documents, prepare, token_dir
from reference_impl.data.sources import SIZES, SPLITS, local_copy
from reference_impl.tokenizer import EOT


def keep_local_copy(size: str, data_dir: Path) -> None:
    """Save TinyStories' text under data_dir (skipped if a copy is there already)."""
    for split in SPLITS:
        path = local_copy(data_dir, split)
        if path.is_file():
            continue
        docs = list(documents("tinystories", split, size, data_dir))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"\n{EOT}\n".join(docs), encoding="utf-8")
        tmp.replace(path)
        print(f"  kept {len(docs):,} {split} stories in {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch a dataset and tokenize it into token files.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        default="builtin",
        help="builtin (offline stories), tinystories, or a path to a .txt file or a folder of them",
    )
    sizes = ", ".join(f"{k}={v[0] or 'all'}/{v[1] or 'all'}" for k, v in SIZES.items())
    parser.add_argument(
        "--size",
        default="small",
        choices=list(SIZES),
        help=f"stories per split (train/validation): {sizes}",
    )
    parser.add_argument(
        "--tokenizer", default="bytes", help="bytes, or a folder with vocab.json and merges.txt"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.dataset == "tinystories":
            keep_local_copy(args.size, args.data_dir)
        metas = prepare(args.dataset, args.size, args.tokenizer, args.data_dir, args.data_dir)
    except (DataUnavailable, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for split, meta in metas.items():
        print(
            f"  {split}: {meta.num_tokens:,} tokens ({meta.tokenizer}, vocabulary "
            f"{meta.vocab_size}, {meta.dtype})"
        )
    folder = token_dir(args.dataset, args.size, args.tokenizer, args.data_dir)
    print(f"wrote {folder}/{{train,validation}}.bin in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
