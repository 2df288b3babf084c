"""Grader of the generation notebook (part4_training)."""

from __future__ import annotations

from autograder.graders.base import Item

ITEMS: dict[str, Item] = {}
