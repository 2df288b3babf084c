"""Tokenize a dataset once into token files: ``prepare("builtin", "small", "bytes")``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reference_impl.data.sources import SPLITS, documents
from reference_impl.data.token_file import TokenFileMeta, write_token_file
from reference_impl.tokenizer import load_tokenizer, tokenizer_fingerprint


def prepare(
    dataset: str,
    size: str = "small",
    tokenizer: str = "bytes",
    out_dir: str | os.PathLike[str] = "data",
    data_dir: str | os.PathLike[str] = "data",
) -> dict[str, TokenFileMeta]:
    """Write ``out_dir/<dataset>-<size>-<tokenizer>/{train,validation}.bin`` (+ ``.json``)."""
    tok = load_tokenizer(tokenizer)
    folder = token_dir(dataset, size, tokenizer, out_dir)
    metas = {}
    for split in SPLITS:
        docs = documents(dataset, split, size, data_dir)
        if tok.eot_id is None:
            ids = (tok.encode(doc + "\n\n") for doc in docs)
        else:
            ids = (tok.encode(doc) for doc in docs)
        metas[split] = write_token_file(
            folder / f"{split}.bin",
            ids,
            tokenizer=tok.name,
            vocab_size=tok.vocab_size,
            split=split,
            source=f"{dataset} ({size})",
            eot_id=tok.eot_id,
            fingerprint=tokenizer_fingerprint(tokenizer),
        )
    return metas


def is_prepared(
    dataset: str, size: str, tokenizer: str, out_dir: str | os.PathLike[str] = "data"
) -> bool:
    """Whether :func:`prepare`'s token files exist and were made by this very tokenizer
    (the files' fingerprint matches): a retrained tokenizer of the same name gets new ones."""
    folder = token_dir(dataset, size, tokenizer, out_dir)
    want = tokenizer_fingerprint(tokenizer)
    for split in SPLITS:
        try:
            meta = json.loads((folder / f"{split}.json").read_text())
        except (OSError, ValueError):
            return False
        if not (folder / f"{split}.bin").is_file() or meta.get("fingerprint") != want:
            return False
    return True


def token_dir(
    dataset: str, size: str, tokenizer: str, out_dir: str | os.PathLike[str] = "data"
) -> Path:
    """The folder :func:`prepare` writes for these arguments."""
    label = Path(dataset).stem if Path(dataset).exists() else dataset
    name = "bytes" if tokenizer == "bytes" else Path(tokenizer).name
    return Path(out_dir) / f"{label}-{size}-{name}"
