"""What students need that is no exercise: visible-test helpers and the fast-mode switch.

This package holds no answers; release notebooks import it, never ``reference_impl``
or ``autograder``.
"""

from coursekit.images import generate_shape_images, load_digit_images
from coursekit.stories import generate_stories
from coursekit.testing import FAST, assert_close, describe_difference

__all__ = [
    "FAST",
    "assert_close",
    "describe_difference",
    "generate_shape_images",
    "generate_stories",
    "load_digit_images",
]
