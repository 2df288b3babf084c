"""The data pipeline: sources (built-in, local text, TinyStories offline and online),
token files written atomically and read memory-mapped, batches, and download_data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reference_impl.data import (
    DataUnavailable,
    documents,
    get_batch,
    open_token_file,
    prepare,
    sources,
    write_token_file,
)
from reference_impl.data.sources import local_copy
from reference_impl.tokenizer import EOT, load_tokenizer

from .conftest import REPO


def test_builtin_splits_are_seeded_and_differ() -> None:
    train = list(documents("builtin", "train", "tiny"))
    assert len(train) == 2000 and train == list(documents("builtin", "train", "tiny"))
    val = list(documents("builtin", "validation", "tiny"))
    assert len(val) == 200 and val[:20] != train[:20]


def test_local_text_file_is_split_by_characters(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("x" * 900 + "y" * 100)
    assert list(documents(str(path), "train")) == ["x" * 900]
    assert list(documents(str(path), "validation")) == ["y" * 100]


def test_local_folder_is_split_by_documents(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(EOT.join(f"doc {i}" for i in range(15)))
    (tmp_path / "b.txt").write_text(EOT.join(f"more {i}" for i in range(5)))
    train = list(documents(str(tmp_path), "train"))
    val = list(documents(str(tmp_path), "validation"))
    assert len(train) == 18 and val == ["more 3", "more 4"]


def test_unknown_dataset_says_what_exists() -> None:
    with pytest.raises(DataUnavailable, match="builtin, tinystories, or a path"):
        list(documents("no-such-dataset", "train"))


def test_tinystories_reads_the_local_copy(shared_data: Path, tmp_path: Path) -> None:
    sample = (shared_data / "text" / "tinystories_sample.txt").read_text(encoding="utf-8")
    for split in ("train", "validation"):
        local_copy(tmp_path, split).parent.mkdir(parents=True, exist_ok=True)
        local_copy(tmp_path, split).write_text(sample, encoding="utf-8")
    docs = list(documents("tinystories", "train", "tiny", data_dir=tmp_path))
    assert len(docs) == len([d for d in sample.split(EOT) if d.strip()]) >= 5
    assert docs[0].startswith("Once upon a time")


def test_tinystories_streams_from_the_hub_when_reachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name: str, split: str, streaming: bool):  # type: ignore[no-untyped-def]
        calls.append((name, split, streaming))
        return ({"text": f" story {i} "} for i in range(10**9))  # endless: must be sliced

    monkeypatch.setattr(sources, "hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    docs = list(documents("tinystories", "validation", "tiny", data_dir=tmp_path))
    assert calls == [("roneneldan/TinyStories", "validation", True)]
    assert len(docs) == 200 and docs[0] == "story 0"


def test_tinystories_offline_without_copy_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sources, "hub_reachable", lambda: False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(DataUnavailable, match="--dataset builtin"):
        list(documents("tinystories", "train", "tiny", data_dir=tmp_path))


def test_download_data_without_network_exits_2_with_a_message(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/download_data.py"),
            "--dataset",
            "tinystories",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 2, out.stderr
    assert "error: TinyStories (train) is not available" in out.stderr
    assert "--dataset builtin" in out.stderr and "Traceback" not in out.stderr


def test_download_data_builtin_writes_token_files(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/download_data.py"),
            "--size",
            "tiny",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    ids, meta = open_token_file(tmp_path / "builtin-tiny-bytes" / "train.bin", vocab_size=256)
    assert meta.split == "train" and meta.num_tokens == len(ids) > 100_000
    first = next(iter(documents("builtin", "train", "tiny")))
    assert bytes(ids[: len(first.encode())].tolist()).decode() == first


def test_prepare_with_a_trained_bpe_appends_end_of_text(shared_data: Path, tmp_path: Path) -> None:
    from reference_impl.tokenizer import Tokenizer, train_bpe

    vocab, merges = train_bpe(shared_data / "text" / "tinystories_sample.txt", 300, [EOT])
    bpe_dir = tmp_path / "bpe300"
    bpe_dir.mkdir()
    Tokenizer(vocab, merges, [EOT]).save(bpe_dir / "vocab.json", bpe_dir / "merges.txt")
    metas = prepare("builtin", "tiny", str(bpe_dir), out_dir=tmp_path)
    ids, meta = open_token_file(tmp_path / "builtin-tiny-bpe300" / "validation.bin")
    assert meta.eot_id == 256 and meta.vocab_size == 300 == metas["train"].vocab_size
    assert int((ids == 256).sum()) == 200  # one end-of-text after each story
    tok = load_tokenizer(str(bpe_dir))
    first = next(iter(documents("builtin", "validation", "tiny")))
    assert list(ids[: len(tok.encode(first)) + 1]) == [*tok.encode(first), 256]


def test_a_retrained_tokenizer_never_reads_stale_token_files(
    shared_data: Path, tmp_path: Path
) -> None:
    """Token files record the tokenizer's fingerprint: the same folder name with other
    merges (a retrained tokenizer) is not prepared, and the trainer rebuilds its files."""
    from reference_impl.data import is_prepared
    from reference_impl.tokenizer import Tokenizer, train_bpe

    bpe_dir = tmp_path / "bpe"
    bpe_dir.mkdir()
    corpus = shared_data / "text" / "tinystories_sample.txt"
    for size in (300, 290):
        vocab, merges = train_bpe(corpus, size, [EOT])
        Tokenizer(vocab, merges, [EOT]).save(bpe_dir / "vocab.json", bpe_dir / "merges.txt")
        assert not is_prepared("builtin", "tiny", str(bpe_dir), tmp_path)
        prepare("builtin", "tiny", str(bpe_dir), out_dir=tmp_path)
        assert is_prepared("builtin", "tiny", str(bpe_dir), tmp_path)
    _, meta = open_token_file(tmp_path / "builtin-tiny-bpe" / "train.bin")
    assert meta.vocab_size == 290
    (tmp_path / "builtin-tiny-bpe" / "train.json").write_text("{broken")
    assert not is_prepared("builtin", "tiny", str(bpe_dir), tmp_path)


def test_token_file_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    write_token_file(
        path, [[1, 2, 3]], tokenizer="bytes", vocab_size=256, split="train", source="test"
    )

    def broken():  # type: ignore[no-untyped-def]
        yield [7] * 10
        raise KeyboardInterrupt  # interrupted halfway

    with pytest.raises(KeyboardInterrupt):
        write_token_file(
            path, broken(), tokenizer="bytes", vocab_size=256, split="train", source="test", block=4
        )
    ids, meta = open_token_file(path)  # the previous file, whole
    assert list(ids) == [1, 2, 3] and meta.num_tokens == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin", "t.json"]


def test_token_file_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"download_data\.py"):
        open_token_file(tmp_path / "missing.bin")
    path = tmp_path / "t.bin"
    write_token_file(
        path, [list(range(100))], tokenizer="bytes", vocab_size=256, split="train", source="test"
    )
    with pytest.raises(ValueError, match="model expects a vocabulary of 50257"):
        open_token_file(path, vocab_size=50257)
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(ValueError, match="damaged"):
        open_token_file(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable metadata"):
        open_token_file(path)


def test_large_vocabularies_use_uint32(tmp_path: Path) -> None:
    meta = write_token_file(
        tmp_path / "big.bin",
        [[70_000, 1]],
        tokenizer="x",
        vocab_size=100_000,
        split="train",
        source="test",
    )
    ids, _ = open_token_file(tmp_path / "big.bin")
    assert meta.dtype == "uint32" and list(ids) == [70_000, 1]
    assert json.loads((tmp_path / "big.json").read_text())["vocab_size"] == 100_000


def test_get_batch_from_a_memmap_equals_get_batch_from_a_tensor(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, 5000)
    write_token_file(
        tmp_path / "t.bin",
        [data.tolist()],
        tokenizer="bytes",
        vocab_size=256,
        split="train",
        source="test",
    )
    ids, _ = open_token_file(tmp_path / "t.bin")
    x1, y1 = get_batch(ids, 8, 32, torch.Generator().manual_seed(3))
    x2, y2 = get_batch(torch.from_numpy(data), 8, 32, torch.Generator().manual_seed(3))
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.dtype == torch.int64
    assert torch.equal(x1[:, 1:], y1[:, :-1])
