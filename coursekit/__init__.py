"""What students need that is no exercise: visible-test helpers, the fast-mode switch and
the self-paced progress view (``show_progress``).

This package holds no answers; release notebooks import it, never ``reference_impl``
or ``autograder``.
"""

from typing import Any

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
    "show_progress",
]


def __getattr__(name: str) -> Any:
    """``show_progress`` is imported on first use, so that ``python -m coursekit.progress``
    does not find its module already imported by the package."""
    if name == "show_progress":
        from coursekit.progress import show_progress

        return show_progress
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")
