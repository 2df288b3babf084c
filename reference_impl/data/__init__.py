"""Data: text sources (built-in stories, local files, TinyStories), token files, batches."""

from reference_impl.data.batches import get_batch
from reference_impl.data.prepare import is_prepared, prepare, token_dir
from reference_impl.data.sources import DataUnavailable, documents
from reference_impl.data.token_file import TokenFileMeta, open_token_file, write_token_file

__all__ = [
    "DataUnavailable",
    "TokenFileMeta",
    "documents",
    "get_batch",
    "is_prepared",
    "open_token_file",
    "prepare",
    "token_dir",
    "write_token_file",
]
