"""A seeded generator of simple stories: the offline default corpus (no network needed).

Students get it as ``coursekit.generate_stories``; the reference as
``reference_impl.data.generate_stories``; both from here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ["Lily", "Tom", "Mia", "Ben", "Sara", "Max", "Anna", "Leo", "Zoe", "Sam"]
ANIMALS = ["cat", "dog", "bird", "frog", "bunny", "duck", "fox", "bear"]
PLACES = ["park", "garden", "forest", "beach", "kitchen", "farm", "river", "school"]
OBJECTS = ["ball", "kite", "box", "book", "hat", "cake", "boat", "flower", "apple", "drum"]
COLORS = ["red", "blue", "green", "yellow", "big", "little", "shiny", "soft"]
FEELINGS = ["happy", "sad", "scared", "excited", "tired", "proud", "angry", "surprised"]

_OPENINGS = [
    "Once upon a time, there was a {feeling} {animal} named {name}.",
    "One day, {name} went to the {place} with a {color} {obj}.",
    "{name} had a {color} {obj}. {name} loved it very much.",
    "There was a little {animal} who lived near the {place}.",
]
_MIDDLES = [
    "{name} saw a {color} {obj} under a tree.",
    "The {animal} wanted to play with the {obj}, but it was too high.",
    '{name} asked the {animal}, "Can you help me find my {obj}?"',
    "Then it started to rain, and {name} felt {feeling}.",
    "{name} and the {animal} ran to the {place} together.",
    "The {obj} fell into the {place}, and {name} began to cry.",
]
_ENDINGS = [
    "In the end, {name} and the {animal} became best friends.",
    '{name} said, "Thank you!" and smiled. The day was {feeling} and bright.',
    "From that day on, {name} always kept the {obj} safe.",
    "They went home, and {name} was very {feeling}.",
]


@dataclass(frozen=True)
class Story:
    """A drawn story: its ``text``, the ``slots`` it was filled with and the ``templates``
    (unfilled sentences) it used. Not every slot appears in the text; ``says`` tells."""

    text: str
    slots: dict[str, str]
    templates: tuple[str, ...]

    def says(self, pattern: str) -> bool:
        """Whether one of the story's sentences contains the template fragment ``pattern``,
        e.g. ``"{place}"`` (the place is in the text) or ``"{name} felt {feeling}"``."""
        return any(pattern in template for template in self.templates)


def draw_story(rng: random.Random) -> Story:
    """One story of 3-6 sentences drawn with ``rng``, with its slots and templates."""
    slots = {
        "name": rng.choice(NAMES),
        "animal": rng.choice(ANIMALS),
        "place": rng.choice(PLACES),
        "obj": rng.choice(OBJECTS),
        "color": rng.choice(COLORS),
        "feeling": rng.choice(FEELINGS),
    }
    middle = rng.sample(_MIDDLES, k=rng.randint(1, 4))
    templates = (rng.choice(_OPENINGS), *middle, rng.choice(_ENDINGS))
    text = " ".join(t.format(**slots) for t in templates)
    return Story(text=text, slots=slots, templates=templates)


def generate_story(rng: random.Random) -> str:
    """One story of 3-6 sentences drawn with ``rng`` (the text of ``draw_story``)."""
    return draw_story(rng).text


def generate_stories(n: int, seed: int = 0) -> list[str]:
    """``n`` stories; the same ``seed`` always gives the same list."""
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n)]
