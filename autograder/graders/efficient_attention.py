"""Grader of the efficient_attention notebook."""

from __future__ import annotations

from autograder.graders.base import Item

ITEMS: dict[str, Item] = {}
