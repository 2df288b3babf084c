"""The declared-signature checks (autograder/signatures.py) read stubs as written and catch
cases whose shapes break the declaration."""

from __future__ import annotations

import nbformat
import pytest
import torch

from autograder.checks import Case, ModuleInit
from autograder.graders import ITEMS
from autograder.graders.base import Signature
from autograder.signatures import case_problems, normalized, shape_problems, stub_signature


def _nb(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_stub_signature_reads_functions_and_classes() -> None:
    nb = _nb(
        "%matplotlib inline\nimport torch",
        "def f(x: torch.Tensor, k: int = 2, *, eps=1e-5) -> torch.Tensor:\n    ...",
        "class M(torch.nn.Module):\n    def __init__(self, d, n=4):\n        super().__init__()"
        "\n    def forward(self, x, mask=None):\n        return x",
        "def f(y):\n    pass",  # a later redefinition is not the stub
    )
    assert stub_signature(nb, "f") == ("x, k=2, *, eps=1e-05", None)
    assert stub_signature(nb, "M") == ("d, n=4", "x, mask=None")
    assert stub_signature(nb, "g") is None
    assert normalized("x, k=2, *, eps=1e-5") == "x, k=2, *, eps=1e-05"


def _case(*args: object, expected: object = None, **kwargs: object) -> Case:
    return Case(list(args), expected, dict(kwargs))


@pytest.mark.parametrize(
    ("shapes", "case", "problem"),
    [
        (
            {"x": "(B, T, d)"},
            _case(torch.zeros(2, 3)),
            "x: shape (2, 3), declared (B, T, d) (3 dims)",
        ),
        (
            {"x": "(B, T)", "y": "(B, T)"},
            _case(torch.zeros(2, 3), torch.zeros(2, 4)),
            "y: shape (2, 4) has T = 4, but T = 3",
        ),
        (
            {"x": "(B, n)"},
            _case(torch.zeros(2, 3), n=5),
            "x: shape (2, 3) has n = 3, but n = 5",  # n is the int argument
        ),
        (
            {"x": "(B, H, T)", "return": "(B, H * n, T)"},
            _case(torch.zeros(2, 3, 4), n=2, expected=torch.zeros(2, 3, 4)),
            "return: dim H * n = 6, but the tensor has 3",
        ),
        (
            {"x": "(*L, d)", "y": "(*L)"},
            _case(torch.zeros(2, 3, 5), torch.zeros(2, 4)),
            "y: dims (2, 4) of (2, 4), but *L is (2, 3) elsewhere",
        ),
        (
            {"x": "(*L, T, d)"},
            _case(torch.zeros(3)),
            "x: shape (3,) has fewer than the 2 dims of (*L, T, d)",
        ),
    ],
    ids=["rank", "dim-clash", "int-param", "expression", "star-clash", "too-few"],
)
def test_case_problems_catch_shapes_off_the_declaration(
    shapes: dict[str, str], case: Case, problem: str
) -> None:
    assert case_problems(Signature("x, y, n", shapes=shapes), case) == [problem]


def test_case_problems_accept_what_the_declaration_allows() -> None:
    sig = Signature(
        "q, k, n, mask=None",
        shapes={"q": "(*L, T, d)", "k": "(*L, S, d)", "mask": "(..., T, S)", "return[0]": "(n,)"},
    )
    q, k, mask = torch.zeros(2, 3, 4, 8), torch.zeros(2, 3, 6, 8), torch.ones(2, 1, 4, 6)
    assert case_problems(sig, _case(q, k, 5, mask=mask, expected=(torch.zeros(5), 1))) == []


def test_module_cases_bind_init_and_forward_arguments() -> None:
    sig = Signature("d_model, n_heads", forward="x", shapes={"x": "(B, T, d_model)"})
    case = Case([torch.zeros(2, 5, 16)], None, module=ModuleInit([32, 4]))
    assert case_problems(sig, case) == ["x: shape (2, 5, 16) has d_model = 16, but d_model = 32"]


def test_every_grader_declares_shapes_its_checks_keep() -> None:
    problems = [p for item_id, item in ITEMS.items() for p in shape_problems(item_id, item)]
    assert problems == []
    assert all(item.signature.params for item in ITEMS.values() if item.function != "causal_mask")
