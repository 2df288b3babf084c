"""One grader module per notebook; ``ITEMS`` maps each graded item's id to its checks."""

from autograder.graders import (
    attention,
    block,
    embeddings,
    generation,
    tokenization,
    training,
)
from autograder.graders.base import Item

ITEMS: dict[str, Item] = {
    **attention.ITEMS,
    **embeddings.ITEMS,
    **block.ITEMS,
    **tokenization.ITEMS,
    **training.ITEMS,
    **generation.ITEMS,
}

__all__ = ["ITEMS", "Item"]
