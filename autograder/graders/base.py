"""What a graded item is (the student's object it calls, and its checks), and the seeded
inputs and the function and module cases the graders build their checks from."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from autograder.checks import Case, Check, ModuleInit


@dataclass(frozen=True)
class Signature:
    """How the notebook's stub declares a graded object, written once beside its checks.

    ``params`` are the parameters as the stub writes them (names and defaults, no
    annotations): a function's, or a class's ``__init__``'s without ``self``; ``forward``
    is a class's ``forward`` parameters without ``self`` (None for a function). ``shapes``
    gives each tensor parameter's shape and the result's (``"return"``, or
    ``"return[i]"`` for a tuple) in named dims, e.g. ``"(B, T, d_model)"``: a dim is a name,
    a number, an expression of names (``"H * n_rep"``) or ``...`` for any leading dims, and
    a name that is also an int parameter means that parameter's value.

    ``python -m autograder.authoring`` compares the source solution's and the release
    stub's parameters with ``params``/``forward``, and every check's inputs and expected
    output with ``shapes``.
    """

    params: str
    forward: str | None = None
    shapes: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Item:
    """A graded exercise: the student's top-level ``function``, the checks run on it and
    the signature its stub declares."""

    function: str
    checks: list[Check]
    signature: Signature

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
    inputs = [
        a.clone().requires_grad_(i in grad_args) if isinstance(a, Tensor) else a
        for i, a in enumerate(args)
    ]
    out = fn(*inputs)
    first = out[0] if isinstance(out, tuple) else out
    g_out = seeded_randn(seed + 100, *first.shape, dtype=first.dtype)
    grads = torch.autograd.grad(first, [inputs[i] for i in grad_args], g_out)
    expected = tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()
    return Case(
        list(args), expected, grad_args=grad_args, grad_output=g_out, expected_grads=list(grads)
    )


def module_case(
    ref: nn.Module,
    args: list[Any],
    init_args: list[Any],
    *,
    init_kwargs: dict[str, Any] | None = None,
    state: dict[str, Tensor] | None = None,
    forward: Callable[..., Any] | None = None,
    grad_args: tuple[int, ...] = (),
    params: bool | Collection[str] = False,
    grad_seed: int | torch.Generator | None = None,
    allow_unused: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Case:
    """The student's module, built with ``init_args`` and ``init_kwargs`` and loaded with
    ``state`` (by default a copy of ``ref``'s state dict), called on ``args``; the expected
    output is ``forward`` (by default ``ref`` itself) on the same args.

    Gradients are compared for a standard normal upstream gradient of the (first) output:
    ``seeded_randn(grad_seed, ...)`` for an int, the generator's next draw for a generator.
    They are those of the args at ``grad_args`` and of ``ref``'s parameters: all of them
    (``params=True``), none, or those named (in ``ref.named_parameters()`` order). With
    ``allow_unused``, parameters without a gradient (experts no token chose) or with an
    all-zero one are left out instead of failing.
    """
    if state is None:
        state = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    init = ModuleInit(list(init_args), dict(init_kwargs or {}), state)
    inputs = [
        a.clone().requires_grad_(i in grad_args) if isinstance(a, Tensor) else a
        for i, a in enumerate(args)
    ]
    out = (forward or ref)(*inputs)
    expected = tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()
    case = Case(list(args), expected, module=init, atol=atol, rtol=rtol)
    if isinstance(params, bool):
        named = list(ref.named_parameters()) if params else []
    else:
        named = [(n, p) for n, p in ref.named_parameters() if n in params]
    if not grad_args and not named:
        return case
    first = out[0] if isinstance(out, tuple) else out
    if isinstance(grad_seed, torch.Generator):
        g_out = torch.randn(first.shape, generator=grad_seed, dtype=first.dtype)
    elif grad_seed is not None:
        g_out = seeded_randn(grad_seed, *first.shape, dtype=first.dtype)
    else:
        raise ValueError("a module case with gradients needs a grad_seed")
    wrt = [inputs[i] for i in grad_args] + [p for _, p in named]
    found = torch.autograd.grad(first, wrt, g_out, allow_unused=allow_unused)
    case.grad_args, case.grad_output = grad_args, g_out
    case.expected_grads = list(found[: len(grad_args)])
    param_grads = dict(zip([n for n, _ in named], found[len(grad_args) :], strict=True))
    if allow_unused:  # no gradient or an all-zero one: nothing to compare
        param_grads = {
            n: g for n, g in param_grads.items() if g is not None and bool(g.abs().sum() > 0)
        }
    case.expected_param_grads = param_grads
    return case
