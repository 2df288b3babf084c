"""Tokenizers: byte-level BPE (:func:`train_bpe`, :class:`Tokenizer`), the 256-byte
:class:`ByteTokenizer`, and loading one by name (:func:`load_tokenizer`)."""

from reference_impl.tokenizer.bpe import train_bpe
from reference_impl.tokenizer.byte import ByteTokenizer
from reference_impl.tokenizer.loading import (
    EOT,
    TokenizerSpec,
    load_tokenizer,
    tokenizer_from_state,
    tokenizer_state,
)
from reference_impl.tokenizer.pretokenize import GPT2_PATTERN
from reference_impl.tokenizer.tokenizer import Tokenizer

__all__ = [
    "EOT",
    "GPT2_PATTERN",
    "ByteTokenizer",
    "Tokenizer",
    "TokenizerSpec",
    "load_tokenizer",
    "tokenizer_from_state",
    "tokenizer_state",
    "train_bpe",
]
