"""One grader module per notebook; ``ITEMS`` maps each graded item's id to its checks."""

from autograder.graders import (
    attention,
    block,
    efficient_attention,
    embeddings,
    generation,
    moe,
    rnn,
    setup,
    tokenization,
    training,
    vanishing_gradients,
    vision,
)
from autograder.graders.base import Item

ITEMS: dict[str, Item] = {
    **setup.ITEMS,
    **rnn.ITEMS,
    **vanishing_gradients.ITEMS,
    **attention.ITEMS,
    **embeddings.ITEMS,
    **block.ITEMS,
    **efficient_attention.ITEMS,
    **moe.ITEMS,
    **vision.ITEMS,
    **tokenization.ITEMS,
    **training.ITEMS,
    **generation.ITEMS,
}

__all__ = ["ITEMS", "Item"]
