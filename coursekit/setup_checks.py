"""The checks of the setup notebook (part0_setup/00_setup_and_verification).

Each check returns a :class:`Result`: passed, failed, or information, one line of detail,
and, when it failed, one line saying exactly what to run to fix it. Nothing here imports
``reference_impl`` or ``autograder``.
"""

from __future__ import annotations

import importlib.util
import math
import platform
import sys
import time
import tomllib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursedata import generate_stories
from coursekit.testing import FAST

PYTHON = (3, 11)
ROOT = Path(__file__).resolve().parents[1]  # the course root (coursekit is installed editable)
INSTALL = "cd {root} && make test  # or: .venv/bin/pip install -e '.[test]'"


@dataclass
class Result:
    """One check: ``ok`` is True (passed), False (failed) or None (information)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "info"}[self.ok]
        text = f"[{mark}] {self.name}: {self.detail}"
        return f"{text}\n       fix: {self.fix}" if self.ok is False and self.fix else text


def check_python(info: tuple[int, int] | None = None) -> Result:
    """The course pins Python 3.11 (the exact pins of pyproject.toml are for 3.11)."""
    major, minor = info or sys.version_info[:2]
    found = f"Python {major}.{minor} ({sys.executable})"
    if (major, minor) == PYTHON:
        return Result("python", True, found)
    return Result(
        "python",
        False,
        f"{found}; the course needs Python 3.11",
        f"install Python 3.11, then: cd {ROOT} && rm -rf .venv && make test PYTHON=python3.11",
    )


def pinned_versions(root: Path = ROOT) -> dict[str, str]:
    """The exact pins of ``pyproject.toml`` (dependencies and test extras)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["test"]
    return dict(spec.split("==", 1) for spec in specs if "==" in spec)


def installed_version(name: str) -> str | None:
    try:
        return version(name).split("+")[0]  # torch reports 2.13.0+cpu
    except PackageNotFoundError:
        return None


def check_packages(root: Path = ROOT) -> Result:
    """Every pinned package is installed at its pinned version."""
    try:
        pins = pinned_versions(root)
    except (OSError, KeyError, tomllib.TOMLDecodeError) as e:
        return Result(
            "packages",
            False,
            f"cannot read {root / 'pyproject.toml'}: {e}",
            "run this notebook from a clone of the course (git clone ...)",
        )
    wrong = []
    for name, pinned in pins.items():
        got = installed_version(name)
        if got != pinned:
            wrong.append(f"{name} {got or 'missing'} (pinned {pinned})")
    if wrong:
        return Result(
            "packages",
            False,
            f"{len(wrong)} of {len(pins)} differ: "
            + ", ".join(wrong[:4])
            + (" ..." if len(wrong) > 4 else ""),
            INSTALL.format(root=root),
        )
    return Result("packages", True, f"all {len(pins)} pinned versions installed")


def check_kernel(root: Path = ROOT) -> Result:
    """This kernel runs the course's ``.venv`` (conda users: the gemini-workshop env)."""
    prefix = Path(sys.prefix).resolve()
    venv = (root / ".venv").resolve()
    if prefix == venv or prefix.name == "gemini-workshop":
        return Result("kernel", True, f"{sys.executable}")
    return Result(
        "kernel",
        None,
        f"{sys.executable} is not the course's .venv; fine if the "
        f"packages above pass, else start JupyterLab with: cd {root} && make lab",
    )


def check_device() -> Result:
    """Where tensors run: CUDA, Apple MPS, or the CPU (every notebook is sized for a CPU)."""
    threads = f"{torch.get_num_threads()} CPU threads"
    if torch.cuda.is_available():
        return Result("device", None, f"CUDA: {torch.cuda.get_device_name(0)}; {threads}")
    if torch.backends.mps.is_available():
        return Result("device", None, f"Apple MPS; {threads}")
    return Result(
        "device",
        None,
        f"CPU only ({platform.processor() or platform.machine()}, "
        f"{threads}): every notebook is sized for a laptop CPU",
    )


def check_data(root: Path = ROOT) -> list[Result]:
    """The offline story generator (always there) and TinyStories (optional, when cached)."""
    stories = generate_stories(200, seed=0)
    same = stories == generate_stories(200, seed=0)
    chars = sum(map(len, stories))
    results = [
        Result(
            "offline corpus",
            same and chars > 10_000,
            f"generate_stories: 200 stories, {chars:,} characters, deterministic: {same}",
            f"cd {root} && git status coursedata/  # restore coursedata/stories.py",
        )
    ]
    copy = root / "data" / "tinystories" / "train.txt"
    if copy.is_file():
        size = copy.stat().st_size / 2**20
        results.append(Result("TinyStories", True, f"cached at {copy} ({size:.1f} MB)"))
    else:
        results.append(
            Result(
                "TinyStories",
                None,
                "not cached (optional: the notebooks use "
                "the offline stories); with the network: python "
                "scripts/download_data.py --dataset tinystories --size small",
            )
        )
    return results


def check_reference_impl() -> Result:
    """Whether the reference implementation (the answers) can be imported from this kernel."""
    if importlib.util.find_spec("reference_impl") is None:
        return Result("reference_impl", True, "not importable here: your answers are your own")
    return Result(
        "reference_impl",
        None,
        "importable in this kernel: this is a self-study "
        "clone, and reference_impl/ holds the course's answers. Don't import it in "
        "an exercise: the graders' kernel refuses the import and that cell gets no "
        "points.",
    )


class _CharMLP(nn.Module):
    """Next character from the previous ``context`` characters: (B, context) -> (B, vocab)."""

    def __init__(self, vocab: int, context: int = 8, d: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.net = nn.Sequential(
            nn.Linear(context * d, hidden), nn.Tanh(), nn.Linear(hidden, vocab)
        )

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.net(self.emb(idx).flatten(1))


def smoke_training(seconds: float | None = None, seed: int = 0) -> tuple[Result, list[float]]:
    """Train a character MLP on the offline stories for ``seconds`` (10, or 2 in fast mode);
    the loss must fall well below its start. Returns the result and the losses."""
    seconds = seconds if seconds is not None else (2.0 if FAST else 10.0)
    torch.manual_seed(seed)
    text = "\n".join(generate_stories(300, seed=seed))
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text])
    context = 8
    model = _CharMLP(len(chars), context)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(losses) < 20:
        i = torch.randint(0, len(data) - context - 1, (64,))
        x = torch.stack([data[j : j + context] for j in i.tolist()])
        loss = F.cross_entropy(model(x), data[i + context])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    k = max(1, len(losses) // 10)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    fell = math.isfinite(last) and last < 0.8 * first
    detail = (
        f"{len(losses)} steps in {time.perf_counter() - start:.1f} s: loss {first:.2f} "
        f"-> {last:.2f} (uniform guess: {math.log(len(chars)):.2f})"
    )
    fix = (
        f"the loss did not fall: reinstall the pinned torch with: cd {ROOT} && "
        ".venv/bin/pip install --force-reinstall torch==2.13.0"
    )
    return Result("smoke training", fell, detail, "" if fell else fix), losses


def run_all(root: Path = ROOT, *, train: bool = True) -> list[Result]:
    """Every check, in the notebook's order."""
    results = [
        check_python(),
        check_packages(root),
        check_kernel(root),
        check_device(),
        *check_data(root),
        check_reference_impl(),
    ]
    if train:
        results.append(smoke_training()[0])
    return results


def report(results: list[Result]) -> bool:
    """Print one line per check (and, under each failure, the one line that fixes it);
    True when nothing failed."""
    for r in results:
        print(r.line())
    failed = [r.name for r in results if r.ok is False]
    print("\nall checks passed" if not failed else f"\n{len(failed)} failed: {', '.join(failed)}")
    return not failed


if __name__ == "__main__":
    sys.exit(0 if report(run_all()) else 1)
