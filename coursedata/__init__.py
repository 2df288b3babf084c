"""The course's offline data: seeded stories and captioned shape images.

A leaf package (the standard library and torch only) that both ``reference_impl`` and the
students' ``coursekit`` use, so neither has to import the other.
"""

from coursedata.images import generate_shape_images
from coursedata.stories import generate_stories, generate_story

__all__ = ["generate_shape_images", "generate_stories", "generate_story"]
