"""The results cache: one JSON file (``$GW_PROGRESS_CACHE``, else
``~/.cache/gemini-workshop/progress.json``) that maps a key of a notebook's code, the time limit
per cell and the environment to its exercises' statuses, so an unchanged notebook is not run
again; the newest entries are kept, and a cache that cannot be read or written is no error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from coursekit.progress.scan import _source

CACHE_VERSION = 1
CACHE_ENTRIES = 200  # the newest results kept in the cache file


def cache_path() -> Path:
    if os.environ.get("GW_PROGRESS_CACHE"):
        return Path(os.environ["GW_PROGRESS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gemini-workshop" / "progress.json"


def _load_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
        if data.get("version") == CACHE_VERSION and isinstance(data.get("entries"), dict):
            return dict(data["entries"])
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def _save_cache(entries: dict[str, Any]) -> None:
    newest = sorted(entries.items(), key=lambda kv: kv[1].get("time", 0))[-CACHE_ENTRIES:]
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": dict(newest)}))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: no cache, still correct


def _environment() -> list[str]:
    """What besides the code decides a result: the Python and the packages' versions (a
    student who fixes their environment gets fresh results)."""
    from importlib.metadata import PackageNotFoundError, version

    found = [sys.executable]
    for name in ("torch", "numpy", "gemini-workshop"):
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    return found


def _key(cells: list[dict[str, Any]], timeout: float) -> str:
    code = [_source(c) for c in cells if c.get("cell_type") == "code"]
    key = [CACHE_VERSION, timeout, _environment(), code]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()
