"""Visible tests with messages a student can act on: which shape, dtype or index differed."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

#: Fast mode (``GW_FAST=1``): notebooks train for seconds instead of minutes.
FAST = os.environ.get("GW_FAST", "0") not in ("", "0", "false", "False")


def describe_difference(
    what: str, got: Any, expected: Tensor, atol: float = 1e-6, rtol: float = 1e-5
) -> str | None:
    """None if ``got`` equals ``expected`` (within atol + rtol * |expected|), else what differed."""
    if not isinstance(got, Tensor):
        return f"{what}: expected a tensor, got {type(got).__name__} ({str(got)[:60]})"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if got.dtype != expected.dtype:
        return f"{what}: dtype {got.dtype}, expected {expected.dtype}"
    if expected.dtype == torch.bool or not expected.is_floating_point():
        wrong = got != expected
    else:
        g, e = got.detach().double(), expected.detach().double()
        both_nan = g.isnan() & e.isnan()
        same = (g == e) | both_nan  # equal infinities too (inf - inf is NaN)
        close = e.isfinite() & ((g - e).abs() <= atol + rtol * e.abs())
        wrong = ~(same | close)
    if not bool(wrong.any()):
        return None
    index = tuple(int(i) for i in wrong.nonzero()[0])
    return (
        f"{what}: {int(wrong.sum())} of {wrong.numel()} values differ; at index {index} got "
        f"{got[index].item():.6g}, expected {expected[index].item():.6g}"
    )


def assert_close(
    got: Any, expected: Tensor, what: str = "output", atol: float = 1e-6, rtol: float = 1e-5
) -> None:
    """Raise an AssertionError that says what differed (shape, dtype, or the first bad index)."""
    problem = describe_difference(what, got, expected, atol, rtol)
    if problem:
        raise AssertionError(problem)
