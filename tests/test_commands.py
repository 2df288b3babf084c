"""scripts/generate.py and scripts/chat.py on a small trained checkpoint: output, flags,
and a one-line error (exit 2, no traceback) for every mistake a user can make."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reference_impl.generation import generate, load_model
from reference_impl.models import ModelConfig
from reference_impl.training import (
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    train,
)

from .conftest import run_script


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cmd")
    exp = ExperimentConfig(
        model=ModelConfig(
            vocab_size=256,
            context_length=48,
            d_model=48,
            n_heads=4,
            n_kv_heads=2,
            n_layers=2,
            ffn_kind="swiglu",
            norm_kind="rmsnorm",
            pos_kind="rope",
            bias=False,
        ),
        train=TrainConfig(
            max_iters=150,
            batch_size=16,
            lr=3e-3,
            min_lr=3e-4,
            warmup_iters=10,
            log_interval=50,
            eval_interval=150,
            eval_iters=2,
            device="cpu",
        ),
        data=DataConfig(dataset="builtin", size="tiny", data_dir=str(root / "data")),
    )
    train(exp, root / "run", log=lambda _: None)
    return root / "run" / "model.pt"


def test_generate_prints_prompt_and_continuation_only(checkpoint: Path) -> None:
    args = [
        "--checkpoint",
        str(checkpoint),
        "--prompt",
        "Once upon a time",
        "--temperature",
        "0",
        "--max-new-tokens",
        "40",
    ]
    out = run_script("generate.py", *args)
    assert out.returncode == 0, out.stderr
    model, tok, _ = load_model(checkpoint)
    ids = generate(model, torch.tensor([tok.encode("Once upon a time")]), 40, temperature=0.0)
    assert out.stdout == tok.decode(ids[0].tolist()) + "\n"
    assert out.stdout.startswith("Once upon a time") and "tokens generated" in out.stderr
    assert run_script("generate.py", *args, "--no-kv-cache").stdout == out.stdout


def test_generate_sampling_is_seeded_and_beams_run(checkpoint: Path) -> None:
    args = [
        "--checkpoint",
        str(checkpoint),
        "--max-new-tokens",
        "30",
        "--top-k",
        "20",
        "--top-p",
        "0.9",
        "--repetition-penalty",
        "1.2",
    ]
    first, again = (
        run_script("generate.py", *args, "--seed", "3"),
        run_script("generate.py", *args, "--seed", "3"),
    )
    assert first.returncode == 0 and first.stdout == again.stdout
    beams = run_script(
        "generate.py", "--checkpoint", str(checkpoint), "--beams", "3", "--max-new-tokens", "20"
    )
    assert beams.returncode == 0 and beams.stdout.startswith("Once upon a time"), beams.stderr


def test_generate_beyond_the_context_keeps_going(checkpoint: Path) -> None:
    out = run_script(
        "generate.py",
        "--checkpoint",
        str(checkpoint),
        "--max-new-tokens",
        "100",
        "--temperature",
        "0",
    )
    assert out.returncode == 0 and "100 tokens generated" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "/nonexistent/model.pt"], "no checkpoint at /nonexistent/model.pt"),
        (["--prompt", "x" * 60], "the prompt is 60 tokens, the model's context is 48"),
        (["--prompt", ""], "the prompt is empty"),
        (["--temperature", "-1"], "--temperature: must be >= 0"),
        (["--top-p", "1.5"], "--top-p: must be in (0, 1]"),
        (["--top-k", "0"], "--top-k: must be >= 1"),
        (["--beams", "0"], "--beams: must be >= 1"),
        (["--max-new-tokens", "0"], "--max-new-tokens: must be >= 1"),
    ],
)
def test_generate_user_errors_are_one_line(checkpoint: Path, args: list[str], message: str) -> None:
    full = ["--checkpoint", str(checkpoint), *args] if "--checkpoint" not in args else args
    out = run_script("generate.py", *full)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_checkpoint_whose_config_does_not_fit_its_weights(
    checkpoint: Path, tmp_path: Path
) -> None:
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["model_config"]["d_model"] = 64
    torch.save(ckpt, tmp_path / "bad.pt")
    out = run_script("generate.py", "--checkpoint", str(tmp_path / "bad.pt"))
    assert out.returncode == 2 and "weights do not fit its model config" in out.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    out = run_script("generate.py", "--checkpoint", str(tmp_path / "junk.pt"))
    assert out.returncode == 2 and "not a readable checkpoint" in out.stderr


def test_chat_answers_each_turn_and_quits(checkpoint: Path) -> None:
    turns = "".join(f"tell me a story number {i}\n" for i in range(6)) + "/quit\n"
    out = run_script(
        "chat.py", "--checkpoint", str(checkpoint), "--max-new-tokens", "20", stdin=turns
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("model> ") == 6 and out.stdout.rstrip().endswith("bye")
    # six turns overflow the 48-token context: the history is cut from the front, no error
    assert "Traceback" not in out.stderr


def test_chat_ends_cleanly_at_end_of_input(checkpoint: Path) -> None:
    out = run_script("chat.py", "--checkpoint", str(checkpoint), stdin="hello\n")
    assert out.returncode == 0 and out.stdout.count("model> ") == 1 and "bye" in out.stdout


def test_help_of_every_command() -> None:
    for script in ("train.py", "generate.py", "chat.py", "download_data.py"):
        out = run_script(script, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout, script
