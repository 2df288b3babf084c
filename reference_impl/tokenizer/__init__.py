"""Byte-level BPE: training (:func:`train_bpe`), and encoding/decoding (:class:`Tokenizer`)."""

from reference_impl.tokenizer.bpe import train_bpe
from reference_impl.tokenizer.pretokenize import GPT2_PATTERN
from reference_impl.tokenizer.tokenizer import Tokenizer

__all__ = ["GPT2_PATTERN", "Tokenizer", "train_bpe"]
