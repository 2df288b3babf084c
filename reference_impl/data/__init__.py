"""Data: text sources (built-in stories, local files, TinyStories), token files, batches."""

from reference_impl.data.batches import get_batch
from reference_impl.data.byte_tokenizer import ByteTokenizer
from reference_impl.data.prepare import load_tokenizer, prepare, token_dir
from reference_impl.data.sources import DataUnavailable, documents
from reference_impl.data.stories import generate_stories
from reference_impl.data.token_file import TokenFileMeta, open_token_file, write_token_file

__all__ = [
    "ByteTokenizer", "DataUnavailable", "TokenFileMeta", "documents", "generate_stories",
    "get_batch", "load_tokenizer", "open_token_file", "prepare", "token_dir", "write_token_file",
]  # fmt: skip
