"""Graded items' declared signatures (:class:`~autograder.graders.base.Signature`) against
the notebooks' code and the graders' own cases.

- :func:`stub_signature` reads a function's or class's parameters from a notebook;
- :func:`declared_problems` says where they differ from the declaration;
- :func:`shape_problems` says where a check's inputs or expected output do not have the
  declared shapes (a grader building a case the stub's contract does not allow).
"""

from __future__ import annotations

import ast
from typing import Any

import nbformat
from torch import Tensor

from autograder.checks import Case
from autograder.graders.base import Item, Signature


def _parameters(args: ast.arguments, *, drop_self: bool) -> str:
    """Parameters as source text without annotations (and without a leading ``self``)."""
    args = ast.arguments(
        posonlyargs=[ast.arg(a.arg) for a in args.posonlyargs],
        args=[ast.arg(a.arg) for a in args.args],
        vararg=args.vararg and ast.arg(args.vararg.arg),
        kwonlyargs=[ast.arg(a.arg) for a in args.kwonlyargs],
        kw_defaults=args.kw_defaults,
        kwarg=args.kwarg and ast.arg(args.kwarg.arg),
        defaults=args.defaults,
    )
    if drop_self and (args.posonlyargs or args.args):
        (args.posonlyargs or args.args).pop(0)
    return ast.unparse(args)


def _parse(params: str) -> ast.arguments:
    function = ast.parse(f"def f({params}): pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    return function.args


def normalized(params: str) -> str:
    """``params`` as :func:`stub_signature` writes them (``1e-5`` becomes ``1e-05``)."""
    return _parameters(_parse(params), drop_self=False)


def _method(cls: ast.ClassDef, name: str) -> str | None:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return _parameters(node.args, drop_self=True)
    return None


def stub_signature(nb: nbformat.NotebookNode, name: str) -> tuple[str, str | None] | None:
    """``(params, forward)`` of the first top-level ``def``/``class`` ``name`` in the
    notebook's code cells (a class's ``__init__`` and ``forward`` without ``self``), or None
    when no cell defines it. Lines starting with ``%`` or ``!`` are skipped."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        code = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return _parameters(node.args, drop_self=False), None
            if isinstance(node, ast.ClassDef) and node.name == name:
                return _method(node, "__init__") or "", _method(node, "forward")
    return None


def declared_problems(nb: nbformat.NotebookNode, item_id: str, item: Item, where: str) -> list[str]:
    """How ``where`` (e.g. "the release stub") differs from ``item``'s declared signature."""
    found = stub_signature(nb, item.function)
    if found is None:
        return [f"{item_id}: {where} defines no {item.function!r}"]
    params, forward = found
    sig = item.signature
    problems = []
    if params != normalized(sig.params):
        what = "__init__" if forward is not None or sig.forward is not None else item.function
        problems.append(
            f"{item_id}: {where} writes {what}({params}), the grader declares ({sig.params})"
        )
    if sig.forward is not None and forward != normalized(sig.forward):
        problems.append(
            f"{item_id}: {where} writes forward({forward}), the grader declares ({sig.forward})"
        )
    return problems


def _dims(shape: str) -> list[str]:
    """``"(B, (H // p) * W, d)"`` -> ``["B", "(H // p) * W", "d"]``; ``"()"`` -> ``[]``."""
    inner = shape.strip()
    if not (inner.startswith("(") and inner.endswith(")")):
        raise ValueError(f"shape {shape!r} must be written in parentheses")
    inner = inner[1:-1]
    dims, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            dims.append(current.strip())
            current = ""
            continue
        depth += (ch == "(") - (ch == ")")
        current += ch
    if current.strip():
        dims.append(current.strip())
    return dims


def _match(
    what: str, value: Any, shape: str, bound: dict[str, Any], deferred: list[tuple[str, Any, str]]
) -> str | None:
    """Match a tensor's shape to ``shape``, binding names in ``bound``; expressions are
    checked later (``deferred``), when every name is known."""
    if not isinstance(value, Tensor):
        return None
    dims, sizes = _dims(shape), tuple(value.shape)
    stars = [i for i, d in enumerate(dims) if d == "..." or d.startswith("*")]
    if len(stars) > 1:
        return f"{what}: declared shape {shape} has more than one '...'/'*name'"
    if stars:
        i = stars[0]
        n_rest = len(dims) - 1
        if len(sizes) < n_rest:
            return f"{what}: shape {sizes} has fewer than the {n_rest} dims of {shape}"
        head, mid, tail = dims[:i], sizes[i : len(sizes) - (n_rest - i)], dims[i + 1 :]
        star = dims[i]
        if star.startswith("*"):
            name = star[1:]
            if name in bound and bound[name] != mid:
                return f"{what}: dims {mid} of {sizes}, but {star} is {bound[name]} elsewhere"
            bound[name] = mid
        pairs = list(zip(head, sizes[:i], strict=True)) + list(
            zip(tail, sizes[len(sizes) - len(tail) :], strict=True)
        )
    elif len(dims) != len(sizes):
        return f"{what}: shape {sizes}, declared {shape} ({len(dims)} dims)"
    else:
        pairs = list(zip(dims, sizes, strict=True))
    for dim, size in pairs:
        if dim.isidentifier():
            if dim in bound and bound[dim] != size:
                return f"{what}: shape {sizes} has {dim} = {size}, but {dim} = {bound[dim]}"
            bound[dim] = size
        else:
            deferred.append((what, size, dim))
    return None


def _bind(names: list[str], args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    values = dict(zip(names, args, strict=False))
    values.update({k: v for k, v in kwargs.items() if k in names})
    return values


def _names(params: str) -> list[str]:
    args = _parse(params)
    return [a.arg for a in args.posonlyargs + args.args]


def case_problems(sig: Signature, case: Case) -> list[str]:
    """Where ``case``'s inputs and expected output disagree with ``sig.shapes``."""
    values = _bind(_names(sig.forward or sig.params), case.args, case.kwargs)
    if case.module is not None:
        values |= _bind(_names(sig.params), case.module.args, case.module.kwargs)
    bound: dict[str, Any] = {
        k: v for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool)
    }
    expected = case.expected
    if isinstance(expected, tuple):
        values |= {f"return[{i}]": e for i, e in enumerate(expected)}
    else:
        values["return"] = expected
    problems: list[str] = []
    deferred: list[tuple[str, Any, str]] = []
    for name, shape in sig.shapes.items():
        if name in values:
            problem = _match(name, values[name], shape, bound, deferred)
            if problem:
                problems.append(problem)
    for what, size, expression in deferred:
        try:
            # the expression is the grader's own declaration, evaluated over bound sizes only
            want = eval(expression, {"__builtins__": {}}, dict(bound))
        except NameError as e:
            problems.append(f"{what}: cannot evaluate dim {expression!r}: {e}")
            continue
        if want != size:
            problems.append(f"{what}: dim {expression} = {want}, but the tensor has {size}")
    return problems


def shape_problems(item_id: str, item: Item) -> list[str]:
    """Every disagreement between ``item``'s checks and its declared shapes."""
    unknown = set(item.signature.shapes) - set(
        _names(item.signature.forward or item.signature.params)
    )
    unknown = {n for n in unknown if n != "return" and not n.startswith("return[")}
    problems = (
        [f"{item_id}: shapes given for unknown parameters {sorted(unknown)}"] if unknown else []
    )
    for check in item.checks:
        problems += [
            f"{item_id}: check {check.name!r}: {p}"
            for p in case_problems(item.signature, check.build())
        ]
    return problems
