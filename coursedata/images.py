"""Small captioned images for the image-input notebook (no network needed):
:func:`generate_shape_images`, a seeded generator of scenes with one or two coloured shapes
and their captions, e.g. "a red circle above a blue square"."""

from __future__ import annotations

import random

import torch
from torch import Tensor

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
}
# the first-named shape is in the top (above) or the left (left of) half: one caption per image
RELATIONS = {"above": True, "left of": False}  # relation -> stacked vertically?


def shape_coverage(shape: str, size: int, cy: float, cx: float, r: float) -> Tensor:
    """(size, size) in [0, 1]: how much of each pixel ``shape`` covers, centred at (cy, cx)
    with radius ``r`` (4 x 4 samples per pixel: smooth edges)."""
    samples = (torch.arange(4 * size, dtype=torch.float32) + 0.5) / 4
    dy, dx = samples[:, None] - cy, samples[None, :] - cx
    if shape == "circle":
        inside = dy**2 + dx**2 <= r**2
    elif shape == "square":
        inside = (dy.abs() <= 0.8 * r) & (dx.abs() <= 0.8 * r)
    elif shape == "triangle":  # pointing up: width grows from the apex down to the base
        inside = (dy >= -r) & (dy <= 0.8 * r) & (dx.abs() <= 0.6 * (dy + r))
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return inside.float().reshape(size, 4, size, 4).mean(dim=(1, 3))


def _paint(image: Tensor, shape: str, colour: str, cy: float, cx: float, r: float) -> None:
    cover = shape_coverage(shape, image.shape[-1], cy, cx, r)
    image.mul_(1 - cover).add_(cover * torch.tensor(COLOURS[colour])[:, None, None])


def _scene(rng: random.Random, size: int) -> tuple[Tensor, str]:
    image = torch.zeros(3, size, size)
    r = size / 6
    pairs = rng.sample([(c, s) for c in COLOURS for s in SHAPES], k=2)  # two different objects
    if rng.random() < 1 / 3:  # one shape, anywhere
        (colour, shape), margin = pairs[0], r + 1
        cy, cx = (rng.uniform(margin, size - margin) for _ in range(2))
        _paint(image, shape, colour, cy, cx, r)
        return image, f"a {colour} {shape}"
    relation = rng.choice(list(RELATIONS))
    for (colour, shape), along in zip(pairs, [size / 4, 3 * size / 4], strict=True):
        across = size / 2 + rng.uniform(-size / 8, size / 8)
        along += rng.uniform(-size / 16, size / 16)
        cy, cx = (along, across) if RELATIONS[relation] else (across, along)
        _paint(image, shape, colour, cy, cx, r)
    (c1, s1), (c2, s2) = pairs
    return image, f"a {c1} {s1} {relation} a {c2} {s2}"


def generate_shape_images(n: int, seed: int = 0, size: int = 16) -> tuple[Tensor, list[str]]:
    """``n`` RGB scenes (n, 3, size, size), float32 in [0, 1] on black, and their captions.

    A third of the scenes hold one shape ("a green triangle"), the others two different
    objects in the top and bottom (or left and right) halves, the top (left) one named first
    ("a red circle above a blue square", "a yellow square left of a red triangle"): each
    image has exactly one caption. The same ``seed`` always gives the same images and
    captions.
    """
    rng = random.Random(seed)
    scenes = [_scene(rng, size) for _ in range(n)]
    return torch.stack([image for image, _ in scenes]), [caption for _, caption in scenes]
