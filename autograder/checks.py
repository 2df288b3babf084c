"""Declarative grader checks and the comparisons behind them.

A grader is a list of :class:`Check`. Each check builds a :class:`Case` in the trusted
process (seeded inputs, and the reference's expected output and gradients on exactly
those inputs), the sandbox calls the student's object on the inputs, and
:func:`verify` compares the plain data that came back. Every failure message says what
differed: the shape, the dtype, or the values at which index.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from autograder.sandbox import Unsupported, decode_value, encode_tensor
from coursekit.testing import describe_difference


@dataclass
class ModuleInit:
    """How to build the student's module: constructor arguments and the reference's weights."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Case:
    """Inputs of one call and what the reference gives on them."""

    args: list[Any]
    expected: Any  # a tensor, plain data (lists, tuples, dicts, bytes, str, numbers), or
    # None: then only ``extra`` judges the output
    kwargs: dict[str, Any] = field(default_factory=dict)
    module: ModuleInit | None = None  # set when the graded object is a module class
    grad_args: tuple[int, ...] = ()  # indices of args whose gradients are compared
    grad_output: Tensor | None = None
    expected_grads: list[Tensor] = field(default_factory=list)
    expected_param_grads: dict[str, Tensor] = field(default_factory=dict)
    atol: float = 1e-6
    rtol: float = 1e-5
    extra: Callable[[Any], str | None] | None = None  # a further test of the output


@dataclass
class Check:
    """One graded property of an exercise, worth ``points``."""

    name: str
    points: float
    build: Callable[[], Case]
    hint: str = ""  # what to look at when it fails


def _encode(value: Any, requires_grad: bool = False) -> Any:
    if isinstance(value, Tensor):
        return encode_tensor(value, requires_grad)
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def call_step(step_id: str, function: str, case: Case) -> dict[str, Any]:
    """The sandbox step that calls the student's ``function`` on ``case``'s inputs."""
    step: dict[str, Any] = {
        "id": step_id,
        "kind": "call",
        "name": function,
        "args": [_encode(a, i in case.grad_args) for i, a in enumerate(case.args)],
        "kwargs": _encode(case.kwargs),
    }
    if case.module is not None:
        step["module"] = {
            "args": _encode(case.module.args),
            "kwargs": _encode(case.module.kwargs),
            "state_dict": _encode(case.module.state_dict),
        }
    if case.grad_output is not None:
        step["grad_output"] = encode_tensor(case.grad_output)
    return step


def compare_tensor(what: str, got: Any, expected: Tensor, atol: float, rtol: float) -> str | None:
    """None if ``got`` equals ``expected`` within tolerance, else what differed."""
    if isinstance(got, Unsupported):
        return f"{what}: expected a tensor, got {got.what}"
    return describe_difference(what, got, expected, atol, rtol)


def describe_plain_difference(
    what: str, got: Any, expected: Any, atol: float = 1e-6, rtol: float = 1e-5
) -> str | None:
    """None if ``got`` equals ``expected`` (same types too; tensors and floats within
    ``atol + rtol * |expected|``), else the first difference, located."""
    if isinstance(got, Unsupported):
        return f"{what}: expected {type(expected).__name__}, got {got.what}"
    if isinstance(expected, Tensor):
        return compare_tensor(what, got, expected, atol, rtol)
    if isinstance(expected, float) and type(got) in (int, float):
        if abs(got - expected) <= atol + rtol * abs(expected) or got == expected:
            return None
        return f"{what}: got {got!r}, expected {expected!r}"
    if type(got) is not type(expected) and not (
        isinstance(expected, (int, float)) and type(got) in (int, float) and got == expected
    ):
        return f"{what}: expected a {type(expected).__name__}, got a {type(got).__name__}"
    if isinstance(expected, (list, tuple)):
        for i, (g, e) in enumerate(zip(got, expected, strict=False)):
            problem = describe_plain_difference(f"{what}[{i}]", g, e, atol, rtol)
            if problem:
                return problem
        if len(got) != len(expected):
            return f"{what}: length {len(got)}, expected {len(expected)}"
        return None
    if isinstance(expected, dict):
        missing = [k for k in expected if k not in got]
        if missing:
            return f"{what}: {len(missing)} keys missing, e.g. {missing[0]!r}"
        extra = [k for k in got if k not in expected]
        if extra:
            return f"{what}: {len(extra)} unexpected keys, e.g. {extra[0]!r}"
        for k, e in expected.items():
            problem = describe_plain_difference(f"{what}[{k!r}]", got[k], e, atol, rtol)
            if problem:
                return problem
        return None
    if got != expected:
        return f"{what}: got {_short(got)}, expected {_short(expected)}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _compare_grad(what: str, got: Any, expected: Tensor, case: Case) -> str | None:
    if got is None:
        return f"{what}: no gradient flowed back (detached, or not built from torch ops?)"
    return compare_tensor(what, got, expected, case.atol * 10, case.rtol * 10)


def verify(case: Case, result: dict[str, Any] | None) -> str | None:
    """Compare the result of one call with the case; None means the check passed."""
    if result is None:
        return "no result came back"
    out = decode_value(result.get("output"))
    if isinstance(case.expected, Tensor):
        problem = compare_tensor("output", out, case.expected, case.atol, case.rtol)
        if problem:
            return problem
    elif case.expected is not None:
        problem = describe_plain_difference("output", out, case.expected, case.atol, case.rtol)
        if problem:
            return problem
    elif isinstance(out, Unsupported):
        return f"output: expected a tensor, got {out.what}"
    if case.extra is not None:
        problem = case.extra(out)
        if problem:
            return problem
    if case.grad_args:
        grads = decode_value(result.get("arg_grads"))
        grads = grads if isinstance(grads, list) else []
        for i, expected in zip(case.grad_args, case.expected_grads, strict=True):
            got = grads[i] if i < len(grads) else None
            problem = _compare_grad(f"gradient of argument {i}", got, expected, case)
            if problem:
                return problem
    if case.expected_param_grads:
        grads = decode_value(result.get("param_grads"))
        grads = grads if isinstance(grads, dict) else {}
        for name, expected in case.expected_param_grads.items():
            problem = _compare_grad(f"gradient of {name}", grads.get(name), expected, case)
            if problem:
                return problem
    return None
