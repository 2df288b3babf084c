"""Shared fixtures: deterministic torch, and the course data in ../shared when present."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # pytest -n 2 already uses both cores


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"course data not found at {SHARED_DATA} (only CI has ../shared)")
    return SHARED_DATA
