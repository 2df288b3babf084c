"""The simplest tokenizer: one token per UTF-8 byte (vocabulary of 256)."""

from __future__ import annotations


class ByteTokenizer:
    """Text <-> ids in [0, 256). Decoding replaces invalid byte sequences with U+FFFD."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")
