"""What students need that is no exercise: visible-test helpers and the fast-mode switch.

This package holds no answers; release notebooks import it, never ``reference_impl``
or ``autograder``.
"""

from coursekit.stories import generate_stories
from coursekit.testing import FAST, assert_close, describe_difference

__all__ = ["FAST", "assert_close", "describe_difference", "generate_stories"]
