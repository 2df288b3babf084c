"""The pip path (pyproject.toml) and the conda path (environment.yml) pin the same set."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

import yaml

from .conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["test"]
    pins = {}
    for spec in specs:
        m = PIN.match(spec)
        assert m, f"pyproject.toml: {spec!r} is not an exact '==' pin"
        pins[m[1].lower()] = m[2]
    return pins


def conda_pins() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["name"] == "gemini-workshop"
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = {}
    for spec in pip:
        m = PIN.match(spec)
        assert m, f"environment.yml: {spec!r} is not an exact '==' pin"
        pins[m[1].lower()] = m[2]
    return pins, conda


def test_pip_and_conda_pin_the_same_versions() -> None:
    pip, (conda, conda_pkgs) = pyproject_pins(), conda_pins()
    assert pip == conda, {
        "only in pyproject": sorted(set(pip.items()) - set(conda.items())),
        "only in environment.yml": sorted(set(conda.items()) - set(pip.items())),
    }
    assert "python=3.11" in conda_pkgs


def test_required_packages_are_pinned() -> None:
    pins = pyproject_pins()
    for name in (
        "torch",
        "nbgrader",
        "jupyterlab",
        "nbval",
        "pytest",
        "sentencepiece",
        "tokenizers",
        "datasets",
        "matplotlib",
        "pyyaml",
        "tqdm",
        "tensorboard",
        "transformers",
        "ruff",
        "mypy",
    ):
        assert name in pins, name


def test_installed_versions_are_the_pinned_ones() -> None:
    for name, pinned in pyproject_pins().items():
        installed = version(name).split("+")[0]  # torch reports 2.13.0+cpu
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned}"
