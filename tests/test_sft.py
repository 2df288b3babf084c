"""From a base model to an assistant: the chat format (against transformers'
``apply_chat_template`` with the same template and its assistant mask), the fine-tuning
data, supervised fine-tuning in the reference trainer (initialised from a base checkpoint,
trained on the assistant's tokens only, resumed exactly), ``scripts/sft.py`` and
``scripts/chat.py`` on a fine-tuned checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from coursedata import instruction_splits
from reference_impl.data.chat import get_chat_batch, render_examples
from reference_impl.generation import load_model
from reference_impl.generation.assistant import plain_prompt, qa_accuracy
from reference_impl.models import ModelConfig, lm_loss
from reference_impl.tokenizer import (
    ASSISTANT,
    END,
    EOT,
    ByteTokenizer,
    has_chat_format,
    load_tokenizer,
    render_conversation,
    render_prompt,
)
from reference_impl.training import DataConfig, ExperimentConfig, TrainConfig, TrainError, train

from .conftest import REPO, run_script

TOKENIZER = str(REPO / "tokenizers/stories-512")
CONVERSATION = [
    {
        "role": "user",
        "content": "Read this story: Tom had a red ball.\nQuestion: What did Tom have?",
    },
    {"role": "assistant", "content": "ball"},
    {"role": "user", "content": "Which word describes the ball?"},
    {"role": "assistant", "content": "red"},
]
# The chat format as a Jinja chat template, the assistant's part in a generation block.
TEMPLATE = (
    "{{ '<|endoftext|>' }}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{{ '<|user|>' + m['content'] + '<|end|>' }}{% else %}{{ '<|assistant|>' }}"
    "{% generation %}{{ m['content'] + '<|end|>' }}{% endgeneration %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tok() -> Any:
    return load_tokenizer(TOKENIZER).tokenizer


def hf_tokenizer() -> Any:
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast(
        f"{TOKENIZER}/vocab.json",
        f"{TOKENIZER}/merges.txt",
        eos_token=EOT,
        bos_token=EOT,
        unk_token=EOT,
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|end|>"],
    )


# --- the chat format ------------------------------------------------------------------------


def test_shipped_tokenizer_reserves_the_chat_tokens(tok: Any) -> None:
    assert has_chat_format(tok)
    assert [tok.special_ids[t] for t in (EOT, "<|user|>", ASSISTANT, END)] == [256, 257, 258, 259]
    assert not has_chat_format(ByteTokenizer())


@pytest.mark.parametrize("turns", [2, 4])
def test_render_equals_transformers_chat_template_and_assistant_mask(tok: Any, turns: int) -> None:
    conversation = CONVERSATION[:turns]
    ids, trained = render_conversation(tok, conversation)
    hf = hf_tokenizer().apply_chat_template(
        conversation,
        chat_template=TEMPLATE,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert ids == hf["input_ids"]
    assert [int(t) for t in trained] == hf["assistant_masks"]
    prompt = hf_tokenizer().apply_chat_template(
        conversation[: turns - 1],
        chat_template=TEMPLATE,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
    )
    assert render_prompt(tok, conversation[: turns - 1]) == prompt["input_ids"]


def test_only_the_answers_and_their_end_are_trained(tok: Any) -> None:
    ids, trained = render_conversation(tok, CONVERSATION)
    kept = [i for i, t in zip(ids, trained, strict=True) if t]
    assert tok.decode(kept) == f"ball{END}red{END}"
    assert tok.decode(ids) == (
        f"{EOT}<|user|>{CONVERSATION[0]['content']}{END}{ASSISTANT}ball{END}"
        f"<|user|>{CONVERSATION[2]['content']}{END}{ASSISTANT}red{END}"
    )


@pytest.mark.parametrize(
    ("conversation", "message"),
    [
        ([{"role": "system", "content": "hi"}], "role must be 'user' or 'assistant'"),
        ([{"role": "user", "content": 3}], "content must be a string"),
    ],
)
def test_bad_conversations_are_clear_errors(tok: Any, conversation: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_conversation(tok, conversation)
    with pytest.raises(ValueError, match="ends with a user message"):
        render_prompt(tok, CONVERSATION)
    with pytest.raises(ValueError, match="no chat tokens"):
        render_conversation(ByteTokenizer(), CONVERSATION)


# --- the fine-tuning data -------------------------------------------------------------------


def test_examples_are_shifted_and_masked(tok: Any) -> None:
    examples = render_examples(tok, [CONVERSATION], context_length=200)
    ids, trained = render_conversation(tok, CONVERSATION)
    assert examples.inputs[0].tolist() == ids[:-1]
    want = [i if t else -100 for i, t in zip(ids[1:], trained[1:], strict=True)]
    assert examples.targets[0].tolist() == want
    assert (
        examples.n_trained == sum(trained) == len(tok.encode("ball")) + len(tok.encode("red")) + 2
    )
    short = render_examples(tok, [CONVERSATION, CONVERSATION[:2]], context_length=len(ids) - 2)
    assert (len(short), short.dropped) == (1, 1)
    with pytest.raises(ValueError, match="no conversation fits"):
        render_examples(tok, [CONVERSATION], context_length=5)


def test_batches_pad_inputs_and_never_train_on_padding(tok: Any) -> None:
    train_set, _ = instruction_splits(40, 5, seed=0)
    examples = render_examples(tok, train_set, context_length=256)
    x, y = get_chat_batch(examples, 8, pad_id=256, generator=torch.Generator().manual_seed(0))
    again = get_chat_batch(examples, 8, pad_id=256, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    lengths = [int((row != 256).sum()) for row in x[:, 1:]]  # position 0 is <|endoftext|>
    assert x.shape[1] == max(lengths) + 1
    for row in range(8):
        end = lengths[row] + 1
        assert (x[row, end:] == 256).all() and (y[row, end:] == -100).all()
        assert (y[row, :end] != -100).any()


# --- fine-tuning in the reference trainer ---------------------------------------------------

MODEL = dict(
    vocab_size=512,
    context_length=160,
    d_model=32,
    n_heads=4,
    n_kv_heads=2,
    n_layers=2,
    ffn_kind="swiglu",
    norm_kind="rmsnorm",
    pos_kind="rope",
    bias=False,
    dropout=0.0,
)


def experiment(data_dir: Path, dataset: str = "builtin", **train_kw: Any) -> ExperimentConfig:
    cfg = (
        dict(
            max_iters=12,
            batch_size=4,
            lr=1e-3,
            min_lr=1e-4,
            warmup_iters=2,
            log_interval=1,
            eval_interval=6,
            eval_iters=2,
            device="cpu",
        )
        | train_kw
    )
    return ExperimentConfig(
        ModelConfig(**MODEL),  # type: ignore[arg-type]
        TrainConfig(**cfg),
        DataConfig(dataset=dataset, size="tiny", tokenizer=TOKENIZER, data_dir=str(data_dir)),
    )


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny base model pretrained for a few iterations with the chat-ready tokenizer."""
    data = tmp_path_factory.mktemp("data")
    out = tmp_path_factory.mktemp("base")
    train(experiment(data, max_iters=8), out, log=quiet)
    return out / "model.pt"


def test_fine_tuning_starts_from_the_base_weights(base: Path, tmp_path: Path) -> None:
    exp = experiment(tmp_path, "instructions", init_from=str(base), lr=1e-12, min_lr=0.0)
    train(exp, tmp_path / "sft", max_iters=1, log=quiet)
    tuned, _, ckpt = load_model(tmp_path / "sft/model.pt")
    pretrained, _, _ = load_model(base)
    assert ckpt["chat_format"] is True
    for (name, a), b in zip(
        tuned.state_dict().items(), pretrained.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_fine_tuning_resumes_exactly(base: Path, tmp_path: Path) -> None:
    exp = experiment(tmp_path, "instructions", init_from=str(base))
    straight = train(exp, tmp_path / "a", log=quiet)
    train(exp, tmp_path / "b", max_iters=5, log=quiet)
    resumed = train(exp, tmp_path / "b", resume=True, log=quiet)
    assert resumed.losses[11] == straight.losses[11]
    a, b = torch.load(tmp_path / "a/model.pt"), torch.load(tmp_path / "b/model.pt")
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name


def test_the_loss_ignores_everything_but_the_answers(base: Path, tok: Any) -> None:
    """Changing the user's words changes no trained target; the SFT loss equals the mean
    cross-entropy over the answer tokens alone."""
    model, _, _ = load_model(base)
    examples = render_examples(tok, [CONVERSATION], 160)
    x, y = examples.inputs[0][None], examples.targets[0][None]
    logits = model(x)
    keep = y[0] != -100
    by_hand = torch.nn.functional.cross_entropy(logits[0][keep], y[0][keep])
    torch.testing.assert_close(lm_loss(logits, y), by_hand)


def test_init_from_must_fit_the_architecture(base: Path, tmp_path: Path) -> None:
    exp = experiment(tmp_path, "instructions", init_from=str(base))
    exp.model = ModelConfig(**(MODEL | {"n_layers": 3}))  # type: ignore[arg-type]
    with pytest.raises(TrainError, match=r"n_layers=2.*base model's architecture"):
        train(exp, tmp_path / "x", log=quiet)
    exp = experiment(tmp_path, "instructions", init_from=str(tmp_path / "none.pt"))
    with pytest.raises(TrainError, match=r"train\.init_from"):
        train(exp, tmp_path / "y", log=quiet)


# --- the commands ---------------------------------------------------------------------------


def test_sft_command_fine_tunes_and_reports_both_accuracies(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft"
    args = ["--checkpoint", str(base), "--out-dir", str(out), "--max-iters", "4"]
    result = run_script("sft.py", *args, "--size", "tiny", "--eval-questions", "6")
    assert result.returncode == 0, result.stderr
    assert "base " in result.stdout and "fine-tuned " in result.stdout
    record = json.loads((out / "eval.json").read_text())
    assert record["iters"] == 4 and 0.0 <= record["fine_tuned"]["accuracy"] <= 1.0
    assert record["base"]["asked"] + record["base"]["skipped"] == 6
    _, _, ckpt = load_model(out / "model.pt")
    assert ckpt["chat_format"] and ckpt["train_config"]["init_from"] == str(base)

    chat = run_script(
        "chat.py",
        "--checkpoint",
        str(out / "model.pt"),
        "--max-new-tokens",
        "5",
        stdin="Who is Tom?\n/new\n" + "word " * 400 + "\nhi\n/quit\n",
    )
    assert chat.returncode == 0, chat.stderr
    assert "new chat" in chat.stderr
    replies = [line for line in chat.stdout.split("you> ") if line.startswith("model>")]
    assert len(replies) == 3, chat.stdout
    assert "the context holds 160" in replies[1]


def test_sft_command_errors_are_one_line(tmp_path: Path) -> None:
    missing = run_script("sft.py", "--checkpoint", str(tmp_path / "none.pt"))
    assert missing.returncode == 2 and "error:" in missing.stderr
    assert "Traceback" not in missing.stderr
    # A base pretrained with the byte tokenizer has no chat tokens.
    exp = experiment(tmp_path / "data", max_iters=2)
    exp.data.tokenizer = "bytes"
    exp.model = ModelConfig(**(MODEL | {"vocab_size": 256}))  # type: ignore[arg-type]
    train(exp, tmp_path / "bytes", log=quiet)
    result = run_script("sft.py", "--checkpoint", str(tmp_path / "bytes/model.pt"))
    assert result.returncode == 2 and "no chat tokens" in result.stderr


def test_qa_accuracy_counts_every_question(base: Path, tok: Any) -> None:
    model, _, _ = load_model(base)
    _, held_out = instruction_splits(10, 8, seed=3)
    for chat in (True, False):
        result = qa_accuracy(model, tok, held_out, chat=chat, max_new_tokens=4)
        assert result.asked + result.skipped == 8
        assert result.correct == sum(r[1].lower() == r[2].lower() for r in result.replies)
    assert plain_prompt(CONVERSATION[:3]) == (
        f"{CONVERSATION[0]['content']}\nAnswer: ball\n{CONVERSATION[2]['content']}\nAnswer:"
    )


def test_a_base_checkpoint_still_chats_in_plain_text(base: Path) -> None:
    chat = run_script("chat.py", "--checkpoint", str(base), "--max-new-tokens", "3", stdin="hi\n")
    assert chat.returncode == 0 and "model>" in chat.stdout
    assert "new chat" not in chat.stderr  # the plain-text loop of a base model
