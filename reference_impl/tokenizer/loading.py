"""A tokenizer by name (``bytes``, or a folder with GPT-2-format files), and what a
checkpoint stores of it so that generation needs nothing else."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_impl.tokenizer.byte import ByteTokenizer
from reference_impl.tokenizer.specials import EOT, SPECIAL_TOKENS
from reference_impl.tokenizer.tokenizer import Tokenizer


@dataclass
class TokenizerSpec:
    """A tokenizer by name: ``bytes``, or a folder with ``vocab.json`` and ``merges.txt``."""

    name: str
    tokenizer: ByteTokenizer | Tokenizer
    vocab_size: int
    eot_id: int | None  # appended after each document; None: documents end with "\n\n"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)


def _files(spec: str) -> tuple[Path, Path]:
    """A tokenizer folder's vocabulary and merges files."""
    folder = Path(spec)
    for vocab, merges in (("vocab.json", "merges.txt"), ("gpt2_vocab.json", "gpt2_merges.txt")):
        if (folder / vocab).is_file() and (folder / merges).is_file():
            return folder / vocab, folder / merges
    raise ValueError(
        f"tokenizer {spec!r}: use 'bytes' or a folder holding vocab.json and merges.txt"
    )


def tokenizer_fingerprint(spec: str) -> str:
    """A short hash of the tokenizer's files (``bytes`` for the byte tokenizer). Token files
    record it, so that ids made by an older version of a tokenizer are never read with a
    newer one (see :func:`reference_impl.data.is_prepared`)."""
    if spec == "bytes":
        return "bytes"
    digest = hashlib.sha256()
    for path in _files(spec):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_tokenizer(spec: str) -> TokenizerSpec:
    if spec == "bytes":
        return TokenizerSpec("bytes", ByteTokenizer(), 256, None)
    vocab, merges = _files(spec)
    with open(vocab, encoding="utf-8") as f:
        held = json.load(f)
    specials = [t for t in SPECIAL_TOKENS if t in held]  # e.g. the chat tokens
    tok = Tokenizer.from_files(vocab, merges, specials)
    return TokenizerSpec(Path(spec).name, tok, len(tok), tok.special_ids.get(EOT))


def tokenizer_state(spec: str) -> dict[str, Any]:
    """What a checkpoint stores of the tokenizer named by ``spec`` (``bytes`` or a folder)."""
    if spec == "bytes":
        return {"kind": "bytes"}
    tok = load_tokenizer(spec).tokenizer
    assert isinstance(tok, Tokenizer)
    return {
        "kind": "bpe",
        "vocab": tok.vocab,
        "merges": tok.merges,
        "special_tokens": tok.special_tokens,
    }


def tokenizer_from_state(state: dict[str, Any]) -> ByteTokenizer | Tokenizer:
    """The tokenizer :func:`tokenizer_state` describes."""
    if state.get("kind") == "bpe":
        return Tokenizer(state["vocab"], state["merges"], state.get("special_tokens"))
    return ByteTokenizer()
