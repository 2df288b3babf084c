"""One grader module per notebook; ``ITEMS`` maps each graded item's id to its checks."""

from autograder.graders import attention, block, embeddings, tokenization
from autograder.graders.base import Item

ITEMS: dict[str, Item] = {
    **attention.ITEMS,
    **embeddings.ITEMS,
    **block.ITEMS,
    **tokenization.ITEMS,
}

__all__ = ["ITEMS", "Item"]
