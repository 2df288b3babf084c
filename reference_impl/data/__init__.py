"""Data: the offline story corpus, a byte tokenizer and batch sampling."""

from reference_impl.data.batches import get_batch
from reference_impl.data.byte_tokenizer import ByteTokenizer
from reference_impl.data.stories import generate_stories

__all__ = ["ByteTokenizer", "generate_stories", "get_batch"]
