"""Token files: a corpus tokenized once into a flat binary array, read back memory-mapped.

``NAME.bin`` holds the ids (uint16 when the vocabulary fits, else uint32); ``NAME.json``
says how they were made (tokenizer, vocabulary size, dtype, count, split, source).
Writing is atomic: a crash leaves the previous files or none, never a truncated one.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class TokenFileMeta:
    """What a token file holds and how it was made."""

    tokenizer: str
    vocab_size: int
    dtype: str
    num_tokens: int
    split: str
    source: str
    eot_id: int | None = None
    fingerprint: str | None = None  # of the tokenizer's files (tokenizer_fingerprint)


def _dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def write_token_file(
    path: str | os.PathLike[str],
    docs_ids: Iterable[list[int]],
    *,
    tokenizer: str,
    vocab_size: int,
    split: str,
    source: str,
    eot_id: int | None = None,
    fingerprint: str | None = None,
    block: int = 1 << 20,
) -> TokenFileMeta:
    """Write ``path`` (``.bin``) and its ``.json`` from documents' ids, streaming.

    ``eot_id``, if given, is written after every document. Memory stays at ``block``
    ids whatever the corpus size.
    """
    path = Path(path).with_suffix(".bin")
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = _dtype(vocab_size)
    code = "H" if dtype == "uint16" else "I"
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    try:
        with tmp.open("wb") as f:
            buf = array(code)
            for ids in docs_ids:
                buf.extend(ids)
                if eot_id is not None:
                    buf.append(eot_id)
                if len(buf) >= block:
                    count += len(buf)
                    buf.tofile(f)
                    buf = array(code)
            count += len(buf)
            buf.tofile(f)
            f.flush()
            os.fsync(f.fileno())
        meta = TokenFileMeta(
            tokenizer, vocab_size, dtype, count, split, source, eot_id, fingerprint
        )
        meta_tmp = path.with_suffix(".json.tmp")
        meta_tmp.write_text(json.dumps(asdict(meta), indent=2))
        os.replace(tmp, path)
        os.replace(meta_tmp, path.with_suffix(".json"))
    except BaseException:
        tmp.unlink(missing_ok=True)
        path.with_suffix(".json.tmp").unlink(missing_ok=True)
        raise
    return meta


def open_token_file(
    path: str | os.PathLike[str], vocab_size: int | None = None
) -> tuple[np.memmap, TokenFileMeta]:
    """The ids of a token file, memory-mapped read-only, and its metadata.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the problem: no file, no or bad
    metadata, a size that does not match it, or a vocabulary other than ``vocab_size``.
    """
    path = Path(path).with_suffix(".bin")
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(
            f"no token file at {path} (with {meta_path.name}): build it with "
            "scripts/download_data.py"
        )
    try:
        meta = TokenFileMeta(**json.loads(meta_path.read_text()))
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{meta_path}: unreadable metadata ({e}); rebuild the token file"
        ) from None
    itemsize = np.dtype(meta.dtype).itemsize
    if path.stat().st_size != meta.num_tokens * itemsize:
        raise ValueError(
            f"{path} holds {path.stat().st_size} bytes, its metadata says "
            f"{meta.num_tokens} {meta.dtype} tokens: the file is damaged; rebuild it"
        )
    if vocab_size is not None and meta.vocab_size != vocab_size:
        raise ValueError(
            f"{path} was tokenized with {meta.tokenizer} (vocabulary {meta.vocab_size}), "
            f"the model expects a vocabulary of {vocab_size}"
        )
    return np.memmap(path, dtype=meta.dtype, mode="r"), meta
