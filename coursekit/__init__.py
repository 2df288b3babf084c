"""What students need that is no exercise: visible-test helpers, the fast-mode switch and
the self-paced progress view (``show_progress``).

This package holds no answers; release notebooks import it, never ``reference_impl``
or ``autograder``. Names are imported on first use, so that light tools (reading a
notebook's nbgrader metadata with :mod:`coursekit.notebooks`) do not pay for torch.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coursedata import (
        answer_of,
        exact_match,
        generate_shape_images,
        generate_stories,
        instruction_splits,
    )
    from coursekit.gemini import GeminiConfig, MiniGemini
    from coursekit.images import load_digit_images
    from coursekit.progress import show_progress
    from coursekit.testing import FAST, assert_close, describe_difference

_WHERE = {
    "FAST": "coursekit.testing",
    "GeminiConfig": "coursekit.gemini",
    "MiniGemini": "coursekit.gemini",
    "answer_of": "coursedata",
    "assert_close": "coursekit.testing",
    "describe_difference": "coursekit.testing",
    "exact_match": "coursedata",
    "generate_shape_images": "coursedata",
    "generate_stories": "coursedata",
    "instruction_splits": "coursedata",
    "load_digit_images": "coursekit.images",
    "show_progress": "coursekit.progress",
}

__all__ = [
    "FAST",
    "GeminiConfig",
    "MiniGemini",
    "answer_of",
    "assert_close",
    "describe_difference",
    "exact_match",
    "generate_shape_images",
    "generate_stories",
    "instruction_splits",
    "load_digit_images",
    "show_progress",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'coursekit' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
