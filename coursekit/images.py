"""Real images for the image-input notebook: scikit-learn's bundled handwritten digits
(8 x 8), captioned "the digit 7". The seeded shape scenes are in :mod:`coursedata.images`."""

from __future__ import annotations

import torch
from torch import Tensor


def load_digit_images() -> tuple[Tensor, list[str]]:
    """scikit-learn's 1,797 handwritten digits as (1797, 1, 8, 8) float32 in [0, 1], and
    their captions ("the digit 7"). Bundled with scikit-learn: nothing is downloaded."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    return images, [f"the digit {int(t)}" for t in digits.target]
