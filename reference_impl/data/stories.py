"""The offline story corpus lives in :mod:`coursekit.stories`, where notebooks can use it
too (they may not import ``reference_impl``); this module keeps the reference's import path."""

from coursekit.stories import generate_stories, generate_story

__all__ = ["generate_stories", "generate_story"]
