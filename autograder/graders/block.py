"""Grader of the transformer-block notebook (part2_fundamentals)."""

from __future__ import annotations

from autograder.graders.base import Item

ITEMS: dict[str, Item] = {}
