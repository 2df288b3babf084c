"""Grader of the rnn notebook."""

from __future__ import annotations

from autograder.graders.base import Item

ITEMS: dict[str, Item] = {}
