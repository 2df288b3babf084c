"""One grader module per topic; ``ITEMS`` maps each graded item's id to its checks."""

from autograder.graders import attention
from autograder.graders.base import Item

ITEMS: dict[str, Item] = {**attention.ITEMS}

__all__ = ["ITEMS", "Item"]
