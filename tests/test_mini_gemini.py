"""configs/mini_gemini.yaml end to end with the commands, unchanged: train (with the
load-balancing loss logged), generate with and without the KV cache, chat, prepare data
with the shipped BPE tokenizer, which scripts/train_tokenizer.py rebuilds exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reference_impl.generation import load_model
from reference_impl.models import SlidingKVCache, TransformerLM
from reference_impl.tokenizer import load_tokenizer
from reference_impl.training import load_experiment

from .conftest import REPO, run_script

CONFIG = REPO / "configs/mini_gemini.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The mini-gemini architecture as shipped, made cheaper to train: the tiny story
    split, batches of 4 x 64 tokens, a window of 8, a short warmup."""
    root = tmp_path_factory.mktemp("mini")
    cfg = root / "mini.yaml"
    text = (
        CONFIG.read_text()
        .replace("batch_size: 16", "batch_size: 4")
        .replace("context_length: 128", "context_length: 64")
        .replace("sliding_window: 32", "sliding_window: 8")
        .replace("warmup_iters: 100", "warmup_iters: 10")
        .replace("log_interval: 100", "log_interval: 10")
        .replace("size: small", f"size: tiny\n  data_dir: {root / 'data'}")
    )
    assert text.count("data_dir") == 1
    cfg.write_text(text)
    args = ["--config", str(cfg), "--max-iters", "40", "--sample-tokens", "20"]
    result = run_script("train.py", *args, "--out-dir", str(root / "run"))
    assert result.returncode == 0, result.stderr
    return root / "run", result.stdout


def test_mini_gemini_trains_with_the_load_balancing_loss(trained: tuple[Path, str]) -> None:
    run_dir, stdout = trained
    lines = [line.split() for line in stdout.splitlines() if line.startswith("iter")]
    assert lines and all(line[4] == "aux" for line in lines), stdout
    losses = [float(line[3]) for line in lines]
    assert losses[-1] < losses[0] - 1.0, stdout
    records = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    aux = [r["aux_loss"] for r in records if "loss" in r]
    # two MoE layers, top-2 of 4 experts: uniform routing would give 2 * 2
    assert all(0 < a < 8 for a in aux), aux
    model, tok, _ = load_model(run_dir / "model.pt")
    assert model.config.attn_pattern == "LLG" and model.config.ffn_pattern == "DM"
    assert getattr(tok, "special_ids", {}).get("<|endoftext|>") == 256


def test_generate_with_and_without_the_cache_agree(trained: tuple[Path, str]) -> None:
    """Greedy ids over more than twice the window (8 here), cache and no cache."""
    run_dir, _ = trained
    args = ["--checkpoint", str(run_dir / "model.pt"), "--temperature", "0"]
    args += ["--max-new-tokens", "40", "--prompt", "Once upon a time"]
    cached, plain = (
        run_script("generate.py", *args),
        run_script("generate.py", *args, "--no-kv-cache"),
    )
    assert cached.returncode == 0 and plain.returncode == 0, cached.stderr + plain.stderr
    assert cached.stdout == plain.stdout
    assert cached.stdout.startswith("Once upon a time")
    assert "40 tokens generated" in cached.stderr
    model, _, _ = load_model(run_dir / "model.pt")
    cache = model.new_cache(1)
    assert sum(isinstance(c, SlidingKVCache) for c in cache.layers) == 4


def test_chat_replies_and_quits(trained: tuple[Path, str]) -> None:
    run_dir, _ = trained
    args = ["--checkpoint", str(run_dir / "model.pt"), "--temperature", "0"]
    result = run_script("chat.py", *args, stdin="Hello\nTell me a story\n/quit\n")
    assert result.returncode == 0, result.stderr
    replies = [line for line in result.stdout.splitlines() if line.startswith("you> model>")]
    assert len(replies) == 2 and result.stdout.rstrip().endswith("bye"), result.stdout
    assert "<|endoftext|>" not in result.stdout


def test_download_data_uses_the_bpe_tokenizer(tmp_path: Path) -> None:
    args = ["--dataset", "builtin", "--size", "tiny", "--data-dir", str(tmp_path)]
    result = run_script("download_data.py", *args, "--tokenizer", "tokenizers/stories-512")
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "builtin-tiny-stories-512/train.json").read_text())
    assert meta["vocab_size"] == 512 and meta["num_tokens"] > 0


def test_shipped_tokenizer_is_what_train_tokenizer_builds(tmp_path: Path) -> None:
    result = run_script("train_tokenizer.py", "--out", str(tmp_path / "tok"))
    assert result.returncode == 0, result.stderr
    for name in ("vocab.json", "merges.txt"):
        shipped = (REPO / "tokenizers/stories-512" / name).read_bytes()
        assert (tmp_path / "tok" / name).read_bytes() == shipped, name
    tok = load_tokenizer(str(REPO / "tokenizers/stories-512"))
    text = "Once upon a time, there was a happy cat named Lily.<|endoftext|>Tom"
    ids = tok.encode(text)
    assert tok.tokenizer.decode(ids) == text and 256 in ids
    assert len(ids) < len(text.encode()) / 3  # the stories' words are single tokens


def test_large_config_is_the_same_architecture_at_gpu_scale() -> None:
    mini, large = load_experiment(CONFIG).model, load_experiment(REPO / "configs/large_model.yaml")
    same = ("attn_pattern", "ffn_pattern", "qk_norm", "sandwich_norm", "embed_scale", "ffn_kind")
    assert {k: getattr(large.model, k) for k in same} == {k: getattr(mini, k) for k in same}
    with torch.device("meta"):
        sizes = [TransformerLM(c).num_parameters() for c in (mini, large.model)]
    assert sizes[1] > 100 * sizes[0]
