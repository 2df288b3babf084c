"""Reading nbgrader's metadata off notebook cells (dicts or ``nbformat`` nodes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def nbgrader_meta(cell: Mapping[str, Any]) -> dict[str, Any]:
    """The cell's ``metadata.nbgrader`` dict itself (edits reach the cell); a new empty dict
    when it has none or it is malformed."""
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, Mapping) else None
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: Mapping[str, Any]) -> str | None:
    """The cell's nbgrader ``grade_id``, or None."""
    value = nbgrader_meta(cell).get("grade_id")
    return str(value) if value is not None else None
