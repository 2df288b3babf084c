"""Declarative grader checks and the comparisons behind them.

A grader is a list of :class:`Check`. Each check builds a :class:`Case` in the trusted
process (seeded inputs, and the reference's expected output and gradients on exactly
those inputs), the sandbox calls the student's object on the inputs, and
:func:`verify` compares the plain data that came back. Every failure message says what
differed: the shape, the dtype, or the values at which index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from autograder.sandbox import Unsupported, decode_value, encode_tensor


@dataclass
class Case:
    """Inputs of one call and what the reference gives on them."""

    args: list[Any]
    expected: Tensor
    kwargs: dict[str, Any] = field(default_factory=dict)
    grad_args: tuple[int, ...] = ()  # indices of args whose gradients are compared
    grad_output: Tensor | None = None
    expected_grads: list[Tensor] = field(default_factory=list)
    atol: float = 1e-6
    rtol: float = 1e-5
    extra: Callable[[Tensor], str | None] | None = None  # a further test of the output


@dataclass
class Check:
    """One graded property of an exercise, worth ``points``."""

    name: str
    points: float
    build: Callable[[], Case]
    hint: str = ""  # what to look at when it fails


def _encode_arg(value: Any, requires_grad: bool) -> Any:
    if isinstance(value, Tensor):
        return encode_tensor(value, requires_grad)
    return value


def call_step(step_id: str, function: str, case: Case) -> dict[str, Any]:
    """The sandbox step that calls the student's ``function`` on ``case``'s inputs."""
    step: dict[str, Any] = {
        "id": step_id,
        "kind": "call",
        "name": function,
        "args": [_encode_arg(a, i in case.grad_args) for i, a in enumerate(case.args)],
        "kwargs": {k: _encode_arg(v, False) for k, v in case.kwargs.items()},
    }
    if case.grad_output is not None:
        step["grad_output"] = encode_tensor(case.grad_output)
    return step


def compare_tensor(what: str, got: Any, expected: Tensor, atol: float, rtol: float) -> str | None:
    """None if ``got`` equals ``expected`` within tolerance, else what differed."""
    if isinstance(got, Unsupported):
        return f"{what}: expected a tensor, got {got.what}"
    if not isinstance(got, Tensor):
        return f"{what}: expected a tensor, got {type(got).__name__} ({str(got)[:60]})"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if got.dtype != expected.dtype:
        return f"{what}: dtype {got.dtype}, expected {expected.dtype}"
    if expected.dtype == torch.bool or not expected.is_floating_point():
        wrong = got != expected
    else:
        g, e = got.double(), expected.double()
        wrong = ~((g - e).abs() <= atol + rtol * e.abs()) | (g.isnan() != e.isnan())
        wrong &= ~(g.isnan() & e.isnan())
    if not bool(wrong.any()):
        return None
    index = tuple(int(i) for i in wrong.nonzero()[0])
    n_wrong, n = int(wrong.sum()), wrong.numel()
    return (
        f"{what}: {n_wrong} of {n} values differ; at index {index} got "
        f"{got[index].item():.6g}, expected {expected[index].item():.6g}"
    )


def verify(case: Case, result: dict[str, Any] | None) -> str | None:
    """Compare the sandbox result of one call with the case; None means the check passed."""
    if result is None:
        return "no result came back"
    out = decode_value(result.get("output"))
    problem = compare_tensor("output", out, case.expected, case.atol, case.rtol)
    if problem:
        return problem
    if case.extra is not None:
        if not isinstance(out, Tensor):
            return f"output: expected a tensor, got {getattr(out, 'what', type(out).__name__)}"
        problem = case.extra(out)
        if problem:
            return problem
    if case.grad_args:
        grads = decode_value(result.get("arg_grads")) or []
        for i, expected in zip(case.grad_args, case.expected_grads, strict=True):
            got = grads[i] if i < len(grads) else None
            if got is None:
                return f"gradient of argument {i}: none flowed back (detached, or not torch ops?)"
            problem = compare_tensor(
                f"gradient of argument {i}", got, expected, case.atol * 10, case.rtol * 10
            )
            if problem:
                return problem
    return None
