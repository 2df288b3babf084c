"""Where training text comes from: the built-in stories, local files, or TinyStories.

Every source yields documents (strings) for a split, ``"train"`` or ``"validation"``.
Nothing here needs the network except TinyStories on first use, and even that is
read from a local copy (written by ``scripts/download_data.py``) or from the Hugging
Face cache when the hub cannot be reached.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from coursedata import generate_stories
from reference_impl.tokenizer import EOT

TINYSTORIES = "roneneldan/TinyStories"
SPLITS = ("train", "validation")
#: Number of (train, validation) stories per size; None means the whole split.
SIZES: dict[str, tuple[int | None, int | None]] = {
    "tiny": (2_000, 200),
    "small": (20_000, 2_000),
    "medium": (200_000, 10_000),
    "full": (None, None),
}


class DataUnavailable(RuntimeError):
    """The data asked for cannot be found or fetched; the message says what to do."""


def _check(split: str, size: str | None = None) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if size is not None and size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")


def builtin_documents(split: str, size: str = "small") -> list[str]:
    """Seeded generated stories; the two splits use different seeds (no shared stories
    except by chance: the generator's space is small)."""
    _check(split, size)
    n_train, n_val = SIZES[size]
    n = (n_train or 100_000) if split == "train" else (n_val or 10_000)
    return generate_stories(n, seed=0 if split == "train" else 1)


def local_documents(
    path: str | os.PathLike[str], split: str, val_fraction: float = 0.1
) -> list[str]:
    """Documents of a UTF-8 text file, or of every ``*.txt`` file under a directory.

    Documents are separated by ``<|endoftext|>`` where the text has it; one file without
    separators is one document, and then its last ``val_fraction`` of characters is the
    validation split. Otherwise the last ``val_fraction`` of documents is.
    """
    _check(split)
    path = Path(path)
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise DataUnavailable(f"no text at {path}: give a UTF-8 .txt file or a folder of them")
    docs: list[str] = []
    for f in files:
        docs += [d for d in f.read_text(encoding="utf-8").split(EOT) if d.strip()]
    if not docs:
        raise DataUnavailable(f"{path} holds no text")
    if len(docs) < 10:
        text = EOT.join(docs)
        cut = int(len(text) * (1 - val_fraction))
        return [text[:cut]] if split == "train" else [text[cut:]]
    cut = max(1, int(len(docs) * (1 - val_fraction)))
    return docs[:cut] if split == "train" else docs[cut:]


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hugging Face hub opens within ``timeout`` seconds."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def local_copy(data_dir: str | os.PathLike[str], split: str) -> Path:
    """Where ``download_data`` keeps the text of a TinyStories split."""
    return Path(data_dir) / "tinystories" / f"{split}.txt"


def tinystories_documents(
    split: str, size: str = "small", data_dir: str | os.PathLike[str] = "data"
) -> Iterator[str]:
    """TinyStories stories: from the local copy under ``data_dir`` if there is one, else
    through Hugging Face ``datasets`` (streamed from the hub when reachable, else from the
    cache). Raises :class:`DataUnavailable`, with what to do, when none of those works."""
    _check(split, size)
    limit = SIZES[size][SPLITS.index(split)]
    copy = local_copy(data_dir, split)
    if copy.is_file():
        docs = (d.strip() for d in copy.read_text(encoding="utf-8").split(EOT))
        yield from itertools.islice((d for d in docs if d), limit)
        return
    online = hub_reachable()
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"  # read from the cache, without retrying the hub
    try:
        import datasets

        if not online:
            datasets.config.HF_HUB_OFFLINE = True
        ds = datasets.load_dataset(TINYSTORIES, split=split, streaming=online)
        texts = (row["text"].strip() for row in ds)
        yield from itertools.islice((t for t in texts if t), limit)
    except Exception as e:
        where = (
            "the hub is unreachable and it is not in the Hugging Face cache"
            if not online
            else f"the download failed ({type(e).__name__}: {str(e)[:200]})"
        )
        raise DataUnavailable(
            f"TinyStories ({split}) is not available: {where}, and there is no local copy "
            f"at {copy}. Run `python scripts/download_data.py --dataset tinystories` where "
            "the network is available (or copy its data/ folder here), or use the offline "
            "corpus: --dataset builtin."
        ) from None


def documents(
    dataset: str, split: str, size: str = "small", data_dir: str | os.PathLike[str] = "data"
) -> Iterator[str]:
    """Documents of ``dataset``: ``builtin``, ``tinystories``, or a path to text."""
    if dataset in ("builtin", "stories"):
        yield from builtin_documents(split, size)
    elif dataset == "tinystories":
        yield from tinystories_documents(split, size, data_dir)
    elif Path(dataset).exists():
        yield from local_documents(dataset, split)
    else:
        raise DataUnavailable(
            f"unknown dataset {dataset!r}: use builtin, tinystories, or a path to a .txt "
            "file or a folder of them"
        )
