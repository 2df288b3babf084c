"""Tokenizers: byte-level BPE (:func:`train_bpe`, :class:`Tokenizer`), the 256-byte
:class:`ByteTokenizer`, loading one by name (:func:`load_tokenizer`), and the chat format
(:func:`render_conversation`)."""

from reference_impl.tokenizer.bpe import train_bpe
from reference_impl.tokenizer.byte import ByteTokenizer
from reference_impl.tokenizer.chat import has_chat_format, render_conversation, render_prompt
from reference_impl.tokenizer.loading import (
    TokenizerSpec,
    load_tokenizer,
    tokenizer_fingerprint,
    tokenizer_from_state,
    tokenizer_state,
)
from reference_impl.tokenizer.pretokenize import GPT2_PATTERN
from reference_impl.tokenizer.specials import ASSISTANT, CHAT_TOKENS, END, EOT, SPECIAL_TOKENS, USER
from reference_impl.tokenizer.tokenizer import Tokenizer

__all__ = [
    "ASSISTANT",
    "CHAT_TOKENS",
    "END",
    "EOT",
    "GPT2_PATTERN",
    "SPECIAL_TOKENS",
    "USER",
    "ByteTokenizer",
    "Tokenizer",
    "TokenizerSpec",
    "has_chat_format",
    "load_tokenizer",
    "render_conversation",
    "render_prompt",
    "tokenizer_fingerprint",
    "tokenizer_from_state",
    "tokenizer_state",
    "train_bpe",
]
