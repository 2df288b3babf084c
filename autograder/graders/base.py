"""What a graded item is (the student's object it calls, and its checks), and the seeded
inputs and gradient cases the graders build their checks from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from autograder.checks import Case, Check


@dataclass
class Item:
    """A graded exercise: the student's top-level ``function`` and the checks run on it."""

    function: str
    checks: list[Check]

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)


def seeded_randn(
    seed: int, *shape: int, scale: float = 1.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    """``scale`` * standard normal of ``shape``, the same for the same ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(tuple(shape), generator=g, dtype=dtype)


def grad_case(
    fn: Callable[..., Any], args: list[Any], grad_args: tuple[int, ...], seed: int
) -> Case:
    """Call ``fn`` on ``args``; compare the output and the gradients of ``grad_args`` for a
    random upstream gradient (seeded by ``seed``) of the (first) output."""
    inputs = [a.clone().requires_grad_(i in grad_args) if isinstance(a, Tensor) else a
              for i, a in enumerate(args)]  # fmt: skip
    out = fn(*inputs)
    first = out[0] if isinstance(out, tuple) else out
    g_out = seeded_randn(seed + 100, *first.shape, dtype=first.dtype)
    grads = torch.autograd.grad(first, [inputs[i] for i in grad_args], g_out)
    expected = tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()
    return Case(list(args), expected, grad_args=grad_args, grad_output=g_out,
                expected_grads=list(grads))  # fmt: skip
