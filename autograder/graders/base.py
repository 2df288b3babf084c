"""What a graded item is: the student's object it calls, and its checks."""

from __future__ import annotations

from dataclasses import dataclass

from autograder.checks import Check


@dataclass
class Item:
    """A graded exercise: the student's top-level ``function`` and the checks run on it."""

    function: str
    checks: list[Check]

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)
