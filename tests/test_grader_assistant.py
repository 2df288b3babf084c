"""The grader of the notebook "from a base model to an assistant": the source notebook gets
full marks, other correct answers too, each realistic mistake loses exactly the points it
should with a message that names it, and the grader's expected values agree with
independent peers (Hugging Face ``tokenizers`` loading the course tokenizer from its files,
the reference's ``render_examples`` targets with ``lm_loss``, a loss written out position by
position, the given ``MiniGemini``'s own greedy decoding without a cache).

Answers to different exercises share one sandbox run: run k replaces each exercise's
solution cell by its k-th answer (cells are graded independently).
"""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from autograder.checks import Check
from autograder.graders.assistant import (
    ANSWER_CHECKS,
    FOLDER,
    LOSS_CHECKS,
    RENDER_CHECKS,
    course_files,
    expected_render,
    reference_tokenizer,
)
from coursedata import instruction_splits
from coursekit.gemini import tiny_gemini
from reference_impl.data.chat import render_examples
from reference_impl.models.model import lm_loss

from .conftest import REPO
from .fixtures.assistant_mistakes import ANSWER_MISTAKES, LOSS_MISTAKES, RENDER_MISTAKES
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part5_integration/assistant.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {"render_conversation": RENDER_MISTAKES, "sft_loss": LOSS_MISTAKES, "answer": ANSWER_MISTAKES},
)

SPECIALS = ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"]


def hf_tokenizer() -> Tokenizer:
    """The course tokenizer as Hugging Face loads it from its files (the notebook's way)."""
    tok = Tokenizer(models.BPE.from_file(str(FOLDER / "vocab.json"), str(FOLDER / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    return tok


def test_the_tokenizer_reserves_the_chat_tokens() -> None:
    vocab, merges = course_files()
    assert [vocab[t] for t in SPECIALS] == [256, 257, 258, 259]
    assert len(vocab) == 512 and all(len(m.split(" ")) == 2 for m in merges)
    assert reference_tokenizer().special_ids == dict(zip(SPECIALS, range(256, 260), strict=True))


def test_hugging_face_encodes_like_the_reference() -> None:
    """The student's tokenizer (Hugging Face) and the grader's (the reference) give the same
    ids on every message of the instruction set and on awkward text."""
    hf, ref = hf_tokenizer(), reference_tokenizer()
    train, test = instruction_splits(200, 40, seed=3)
    texts = [m["content"] for c in train + test for m in c]
    texts += ['He said "hi!"\n\n  ok\ttabs', "", " ", "café naïve", "a\r\nb  c   d"]
    for text in texts:
        assert hf.encode(text).ids == ref.encode(text), text


@pytest.mark.parametrize("check", RENDER_CHECKS, ids=lambda c: c.name)
def test_render_expected_matches_hugging_face(check: Check) -> None:
    """Rendering with Hugging Face by hand gives what the grader expects, and its checks
    accept it."""
    case = check.build()
    conversation = case.args[2]
    hf = hf_tokenizer()
    ids, mask = [256], [False]
    for m in conversation:
        content = hf.encode(m["content"]).ids
        role = 257 if m["role"] == "user" else 258
        ids += [role, *content, 259]
        mask += [False] + [m["role"] == "assistant"] * (len(content) + 1)
    assert expected_render(conversation) == (ids, mask)
    assert case.extra is not None and case.extra((ids, mask)) is None
    last = len(mask) - (2 if "every" in check.name else 1)  # the last answer's <|end|> or content
    flipped = [not m if i == last else m for i, m in enumerate(mask)]
    if "ids" not in check.name and "user" not in check.name and "role" not in check.name:
        assert case.extra((ids, flipped)) is not None


@pytest.mark.parametrize("check", LOSS_CHECKS, ids=lambda c: c.name)
def test_loss_expected_matches_the_reference_and_a_loss_by_hand(check: Check) -> None:
    case = check.build()
    logits, ids, mask = case.args
    # the reference's targets (render_examples: ids[1:], -100 where not trained) and lm_loss
    targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
    ref = lm_loss(logits[:, :-1], targets)
    assert abs(float(case.expected) - float(ref)) < 1e-4 * max(1.0, abs(float(ref)))
    logp = torch.log_softmax(logits.double(), dim=-1)
    terms = [
        -logp[b, t, ids[b, t + 1]]
        for b in range(ids.size(0))
        for t in range(ids.size(1) - 1)
        if mask[b, t + 1]
    ]
    assert terms and abs(float(case.expected) - float(torch.stack(terms).mean())) < 1e-4


def test_render_examples_uses_the_same_shift() -> None:
    """The reference's SFT data (render_examples) are the chat format's ids shifted by one,
    -100 where the next token is not trained: the grader's loss selects the same tokens."""
    conversation = RENDER_CHECKS[1].build().args[2]
    examples = render_examples(reference_tokenizer(), [conversation], 160)
    ids, mask = expected_render(conversation)
    want = torch.tensor(ids[1:]).masked_fill(~torch.tensor(mask[1:]), -100)
    assert torch.equal(examples.targets[0], want)
    assert torch.equal(examples.inputs[0], torch.tensor(ids[:-1]))


@pytest.mark.parametrize("check", ANSWER_CHECKS, ids=lambda c: c.name)
def test_answer_expected_is_greedy_decoding_of_the_given_model(check: Check) -> None:
    """The expected answer is MiniGemini's own greedy decoding (no cache, float64) up to
    the end id, with no near-tie that rounding could flip."""
    case = check.build()
    seed, prompt, end_id, max_new = case.args
    model = tiny_gemini(seed).double()
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(torch.tensor([ids]))[0, -1]
            top2 = logits.topk(2).values
            assert float(top2[0] - top2[1]) > 1e-6
            if int(logits.argmax()) == end_id:
                break
            ids.append(int(logits.argmax()))
    assert case.expected == ids[len(prompt) :] and end_id not in case.expected
