"""Grader of the vanishing_gradients notebook."""

from __future__ import annotations

from autograder.graders.base import Item

ITEMS: dict[str, Item] = {}
