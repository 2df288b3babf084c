"""The reference trainer: exact resume (after a stop or an interrupt), accumulation,
checkpoints, metrics, bf16 autocast, DDP with gloo, and the command's errors."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

from reference_impl.generation import load_model
from reference_impl.models import ModelConfig
from reference_impl.training import (
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    TrainError,
    train,
)
from reference_impl.utils.config import ConfigError

from .conftest import REPO

MODEL = dict(
    vocab_size=256,
    context_length=32,
    d_model=32,
    n_heads=4,
    n_kv_heads=2,
    n_layers=2,
    ffn_kind="swiglu",
    norm_kind="rmsnorm",
    pos_kind="rope",
    bias=False,
    dropout=0.1,
)  # dropout: resuming must restore the random state too


def experiment(data_dir: Path, **train_kw: object) -> ExperimentConfig:
    train_cfg = dict(
        max_iters=30,
        batch_size=4,
        lr=3e-3,
        min_lr=3e-4,
        warmup_iters=5,
        log_interval=1,
        eval_interval=10,
        eval_iters=2,
        device="cpu",
    )
    train_cfg |= train_kw
    return ExperimentConfig(
        model=ModelConfig(**MODEL),  # type: ignore[arg-type]
        train=TrainConfig(**train_cfg),  # type: ignore[arg-type]
        data=DataConfig(dataset="builtin", size="tiny", data_dir=str(data_dir)),
    )


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def straight(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """30 iterations without stopping."""
    out = tmp_path_factory.mktemp("straight")
    return train(experiment(data_dir), out, log=quiet), out


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_speed(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in lines(out)]


def test_stopped_and_resumed_run_equals_the_straight_run(straight, data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, out = straight
    train(experiment(data_dir), tmp_path, max_iters=12, log=quiet)
    resumed = train(experiment(data_dir), tmp_path, resume=True, log=quiet)
    assert resumed.iters_done == 30 and resumed.val_loss == result.val_loss
    assert without_speed(tmp_path) == without_speed(out)  # every loss and lr, bit for bit


def test_a_checkpoint_with_underived_config_fields_still_resumes(
    straight, data_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Checkpoints written before ModelConfig filled in its derived fields saved them as None."""
    result, _ = straight
    train(experiment(data_dir), tmp_path, max_iters=12, log=quiet)
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    ckpt["model_config"] |= {"head_dim": None, "d_ff": None}
    torch.save(ckpt, tmp_path / "model.pt")
    resumed = train(experiment(data_dir), tmp_path, resume=True, log=quiet)
    assert resumed.iters_done == 30 and resumed.val_loss == result.val_loss


def test_interrupted_run_keeps_its_iterations_and_resumes_exactly(
    straight, data_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    result, out = straight

    def interrupt_at_17(message: str) -> None:
        if message.startswith("iter     17"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(experiment(data_dir), tmp_path, log=interrupt_at_17)
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ckpt["iter"] == 18  # iteration 17 had finished: nothing lost
    resumed = train(experiment(data_dir), tmp_path, resume=True, log=quiet)
    assert without_speed(tmp_path) == without_speed(out)
    assert resumed.val_loss == result.val_loss


def test_metrics_checkpoint_and_tensorboard(straight) -> None:  # type: ignore[no-untyped-def]
    result, out = straight
    records = lines(out)
    train_lines = [r for r in records if "loss" in r]
    assert [r["iter"] for r in train_lines] == list(range(30))
    assert set(train_lines[0]) == {"iter", "loss", "lr", "tokens_per_s"}
    evals = [r for r in records if "val_loss" in r]
    assert [r["iter"] for r in evals] == [10, 20, 30]
    assert evals[-1]["val_loss"] == result.val_loss < evals[0]["val_loss"]
    assert train_lines[-1]["loss"] < train_lines[0]["loss"] - 1.0
    assert any((out / "tb").glob("events.out.tfevents.*"))
    model, tok, ckpt = load_model(out)  # weights_only=True
    assert ckpt["iter"] == 30 and ckpt["tokenizer"] == {"kind": "bytes"}
    assert tok.decode(tok.encode("héllo")) == "héllo" and not model.training


def test_accumulated_micro_batches_equal_one_big_batch(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kw = dict(max_iters=1, warmup_iters=0, eval_interval=100)
    big = experiment(data_dir, batch_size=8, **kw)
    small = experiment(data_dir, batch_size=4, grad_accum_steps=2, **kw)
    for exp in (big, small):
        exp.model.dropout = 0.0
    train(big, tmp_path / "big", log=quiet)
    train(small, tmp_path / "small", log=quiet)
    a, b = (
        torch.load(tmp_path / n / "model.pt", weights_only=True)["model"] for n in ("big", "small")
    )
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5, msg=name)


def test_bf16_autocast_path_trains(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = train(experiment(data_dir, dtype="bfloat16", max_iters=8), tmp_path, log=quiet)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    assert result.losses[7] < result.losses[0]


def test_an_existing_run_is_never_overwritten_by_accident(straight, data_dir) -> None:  # type: ignore[no-untyped-def]
    _, out = straight
    with pytest.raises(TrainError, match="pass --resume to continue it, or --overwrite"):
        train(experiment(data_dir), out, log=quiet)
    other = experiment(data_dir)
    other.model.d_model = 64
    with pytest.raises(TrainError, match=r"trained with model\.d_model=32, the config says 64"):
        train(other, out, resume=True, log=quiet)


def test_resume_without_a_checkpoint_says_so(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrainError, match="--resume: no checkpoint at"):
        train(experiment(data_dir), tmp_path, resume=True, log=quiet)


def test_a_time_limited_run_follows_the_clock_and_stops_on_time(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """train.time_limit: the schedule's 30 positions spread over 1.5 s; the run goes on for as
    many iterations as fit (far more than 30 at this size) and ends at min_lr, on time."""
    exp = experiment(data_dir, time_limit=1.5, eval_interval=10_000)
    began = time.perf_counter()
    result = train(exp, tmp_path, log=quiet)
    took = time.perf_counter() - began
    records = [r for r in lines(tmp_path) if "lr" in r]
    lrs = [r["lr"] for r in records]
    assert result.iters_done == len(records) > 60  # 30 is the schedule's length, not a stop
    assert lrs[0] == pytest.approx(3e-3 / 5)  # the first warm-up step
    peak = lrs.index(max(lrs))
    assert max(lrs) > 0.95 * 3e-3 and peak < len(lrs) // 3  # warm-up: 5/30 of the time
    assert all(a >= b for a, b in itertools.pairwise(lrs[peak:]))  # then down the cosine
    assert lrs[-1] == pytest.approx(3e-4, abs=3e-5)  # at min_lr when the time is up
    # halfway down the cosine at position 17.5 of 30: about 58 % of the time (not iteration 17)
    halfway = next(i for i, lr in enumerate(lrs) if i > peak and lr <= (3e-3 + 3e-4) / 2)
    assert 0.35 < halfway / len(lrs) < 0.8
    assert 1.5 < took < 1.5 + 10  # the first iteration, the time, one evaluation, the save
    assert torch.load(tmp_path / "model.pt", weights_only=True)["iter"] == result.iters_done
    with pytest.raises(TrainError, match="follows the clock, so it cannot continue"):
        train(exp, tmp_path, resume=True, log=quiet)
    capped = train(exp, tmp_path / "capped", max_iters=7, log=quiet)  # --max-iters still stops
    assert capped.iters_done == 7

    said: list[str] = []

    def interrupt_at_3(message: str) -> None:
        said.append(message)
        if message.startswith("iter      3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(exp, tmp_path / "cut", log=interrupt_at_3)
    assert "iterations for 1.5 s (a schedule of 30)" in said[0]
    assert said[-1].endswith("a run that follows the clock cannot be resumed; its weights load")
    assert torch.load(tmp_path / "cut/model.pt", weights_only=True)["iter"] == 4


def test_time_limit_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="time_limit: must be > 0 seconds, got 0"):
        TrainConfig(time_limit=0)


def write_config(path: Path, data_dir: Path, **train_kw: object) -> Path:
    exp = experiment(data_dir, **train_kw)
    path.write_text(
        yaml.safe_dump(
            {"model": exp.model.to_dict(), "train": asdict(exp.train), "data": asdict(exp.data)}
        )
    )
    return path


def test_ddp_with_gloo_on_two_processes(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "c.yaml", data_dir, max_iters=6, log_interval=1, eval_interval=3)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            "scripts/train.py",
            "--config",
            str(cfg),
            "--out-dir",
            str(tmp_path / "run"),
            "--sample-tokens",
            "5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "x 2;" in out.stdout  # the main process reports a world of two
    assert out.stdout.count("validation loss") == 1  # only the main process writes and samples
    records = lines(tmp_path / "run")
    assert [r["iter"] for r in records if "loss" in r] == list(range(6))
    assert torch.load(tmp_path / "run/model.pt", weights_only=True)["iter"] == 6


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/train.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_cli_help_and_user_errors(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("--help").returncode == 0
    for args, message in [
        (["--config", str(tmp_path / "none.yaml")], "none.yaml"),
        (
            [
                "--config",
                str(write_config(tmp_path / "c.yaml", data_dir)),
                "--data",
                str(tmp_path / "missing.txt"),
                "--out-dir",
                str(tmp_path / "o"),
            ],
            "unknown dataset",
        ),
        (
            ["--config", str(write_config(tmp_path / "c.yaml", data_dir)), "--max-iters", "0"],
            "--max-iters: must be >= 1",
        ),
        (
            [
                "--config",
                str(write_config(tmp_path / "c.yaml", data_dir)),
                "--resume",
                "--out-dir",
                str(tmp_path / "nothing"),
            ],
            "--resume: no checkpoint",
        ),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr


def test_wandb_without_the_package_is_a_clear_error(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # wandb is optional and not among the pinned packages: asking for it says what to install
    with pytest.raises(TrainError, match=r"train\.wandb: true needs `pip install wandb`"):
        train(experiment(data_dir, wandb=True, max_iters=2), tmp_path, log=quiet)
