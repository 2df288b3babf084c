"""The course's offline data: seeded stories, instruction conversations about them, and
captioned shape images.

A leaf package (the standard library and torch only) that both ``reference_impl`` and the
students' ``coursekit`` use, so neither has to import the other.
"""

from coursedata.images import generate_shape_images
from coursedata.instructions import (
    answer_of,
    exact_match,
    instruction_splits,
    make_instruction_data,
    questions_for,
    story_of,
    story_questions,
    story_request,
)
from coursedata.stories import Story, draw_story, generate_stories, generate_story

__all__ = [
    "Story",
    "answer_of",
    "draw_story",
    "exact_match",
    "generate_shape_images",
    "generate_stories",
    "generate_story",
    "instruction_splits",
    "make_instruction_data",
    "questions_for",
    "story_of",
    "story_questions",
    "story_request",
]
