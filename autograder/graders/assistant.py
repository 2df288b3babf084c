"""Grader of the notebook "from a base model to an assistant" (part5_integration): the chat
format with its mask of trained tokens, and the supervised fine-tuning loss.

A tokenizer cannot cross into the sandbox, so the notebook's locked setup cell gives a
driver, ``render_with_tokenizer(vocab, merges, conversation)``: it builds the course's
byte-level BPE (``tokenizers/stories-512``) as a Hugging Face ``Tokenizer`` from its plain
vocabulary and merges, which the grader passes, calls the student's ``render_conversation``
and returns plain lists. The expected values come from ``reference_impl``:
:func:`~reference_impl.tokenizer.render_conversation` with the reference's tokenizer loaded
from the same files, and the fine-tuning loss the reference's way
(:func:`~reference_impl.data.render_examples`: targets are the ids shifted by one, -100
where the next token is not trained; :func:`~reference_impl.models.model.lm_loss`'s mean
cross-entropy), in float64.

``answer`` is called through ``answer_with_tiny_model`` on ``coursekit.gemini.tiny_gemini``
in float64, like notebook 5.2's ``generate``; the expected tokens are the reference's greedy
``generate`` with the end id as its stop id (:func:`~autograder.graders.train_and_chat.
expected_generation`), the end id left out.

The mask checks judge the student's mask against the student's own ids (a role token opens
a turn, ``<|end|>`` closes it), so that an ids mistake costs the ids checks and a mask
mistake the mask checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from autograder.checks import Case, Check, describe_plain_difference
from autograder.graders.base import Item, Signature, grad_case, seeded_randn
from autograder.graders.train_and_chat import expected_generation
from reference_impl.tokenizer import Tokenizer, render_conversation
from reference_impl.tokenizer.loading import load_tokenizer

FOLDER = Path(__file__).resolve().parents[2] / "tokenizers" / "stories-512"
EOT_ID, USER_ID, ASSISTANT_ID, END_ID = 256, 257, 258, 259

Conversation = list[dict[str, str]]


@cache
def course_files() -> tuple[dict[str, int], list[str]]:
    """The course tokenizer's vocabulary (token -> id) and merges ("a b" lines), as plain
    data for the driver."""
    vocab = json.loads((FOLDER / "vocab.json").read_text(encoding="utf-8"))
    lines = (FOLDER / "merges.txt").read_text(encoding="utf-8").split("\n")
    return vocab, [line for line in lines if line and not line.startswith("#version")]


@cache
def reference_tokenizer() -> Tokenizer:
    tok = load_tokenizer(str(FOLDER)).tokenizer
    assert isinstance(tok, Tokenizer)
    return tok


def expected_render(conversation: Conversation) -> tuple[list[int], list[bool]]:
    """The reference's chat format: (ids, trained mask)."""
    return render_conversation(reference_tokenizer(), conversation)


# --- render_conversation (through render_with_tokenizer) -----------------------------------

STORY = "Tom had a red kite. The kite fell into the park."
ONE_TURN: Conversation = [
    {"role": "user", "content": f"Read this story: {STORY}\nQuestion: Where did the kite fall?"},
    {"role": "assistant", "content": "the park"},
]
TWO_QUESTIONS: Conversation = [
    *ONE_TURN,
    {"role": "user", "content": "What did Tom have?"},
    {"role": "assistant", "content": "kite"},
]
QUOTES: Conversation = [
    {"role": "user", "content": 'Story: Mia said "hello!" to the dog.\n\nWho spoke?'},
    {"role": "assistant", "content": 'Mia\nshe said "hello!"\n'},
    {"role": "user", "content": "And then?"},
    {"role": "assistant", "content": "The dog was happy. "},
]
STORY_REQUEST: Conversation = [
    {"role": "user", "content": "Tell me a story about a cat named Lily."},
    {
        "role": "assistant",
        "content": "Once upon a time, there was a cat named Lily. She was happy.",
    },
]
EMPTY_ANSWER: Conversation = [
    {"role": "user", "content": "Say nothing."},
    {"role": "assistant", "content": ""},
]


def _pair(got: Any) -> str | None:
    if not isinstance(got, tuple) or len(got) != 2 or not all(isinstance(x, list) for x in got):
        return "render_conversation must return a tuple (ids, mask) of two lists"
    if len(got[0]) != len(got[1]):
        return f"the mask has {len(got[1])} entries for {len(got[0])} ids: one per id"
    return None


def _ids_match(expected: list[int]) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        problem = _pair(got)
        if problem:
            return problem
        ids = got[0]
        if not ids or ids[0] != EOT_ID:
            return f"the ids must start with <|endoftext|> ({EOT_ID}), got {ids[:3]}..."
        if ids[-1] != END_ID:
            return f"each turn ends with <|end|> ({END_ID}); the ids end with {ids[-1]}"
        return describe_plain_difference("ids", ids, expected)

    return check


def _turns(ids: list[int]) -> list[tuple[str, int, int]]:
    """(role, index of its role token, index of its <|end|> or len(ids)) of each turn in
    ``ids``."""
    roles = {USER_ID: "user", ASSISTANT_ID: "assistant"}
    found, i = [], 0
    while i < len(ids):
        if ids[i] in roles:
            end = ids.index(END_ID, i + 1) if END_ID in ids[i + 1 :] else len(ids)
            found.append((roles[ids[i]], i, end))
            i = end
        i += 1
    return found


def _mask_property(
    what: str, wrong: Callable[[list[int], list[Any]], str | None]
) -> Callable[[Any], str | None]:
    """Judge the mask against the student's own ids: ``wrong(ids, mask)`` names a problem."""

    def check(got: Any) -> str | None:
        problem = _pair(got)
        if problem:
            return problem
        ids, mask = got
        if not _turns(ids):
            return f"{what}: no <|user|> ({USER_ID}) or <|assistant|> ({ASSISTANT_ID}) in the ids"
        return wrong(ids, mask)

    return check


def _user_untrained(ids: list[int], mask: list[Any]) -> str | None:
    trained = set()
    for role, start, end in _turns(ids):
        if role == "assistant":
            trained |= set(range(start + 1, min(end + 1, len(ids))))
    bad = [i for i in range(len(ids)) if mask[i] and i not in trained and ids[i] != ASSISTANT_ID]
    if bad:
        return (
            f"the mask trains the prompt's tokens (position {bad[0]}, id {ids[bad[0]]}): the "
            "loss must be on the assistant's tokens only, never on the user's text, "
            "<|endoftext|> or the user's <|end|>"
        )
    return None


def _role_untrained(ids: list[int], mask: list[Any]) -> str | None:
    bad = [start for role, start, _ in _turns(ids) if role == "assistant" and mask[start]]
    if bad:
        return (
            f"the mask trains the <|assistant|> role token (position {bad[0]}): the prompt "
            "always gives it, so it is never trained (mask off by one?)"
        )
    return None


def _end_trained(ids: list[int], mask: list[Any]) -> str | None:
    for role, _, end in _turns(ids):
        if role == "assistant" and end < len(ids) and not mask[end]:
            return (
                f"the assistant's <|end|> (position {end}) is not trained: the model never "
                "learns to stop"
            )
    return None


def _every_answer_trained(ids: list[int], mask: list[Any]) -> str | None:
    answers = [(s, e) for role, s, e in _turns(ids) if role == "assistant"]
    for n, (start, end) in enumerate(answers):
        missing = [i for i in range(start + 1, end) if not mask[i]]  # its content
        if missing:
            return (
                f"assistant turn {n + 1} of {len(answers)}: position {missing[0]} of its "
                "content is not trained; every assistant message is trained, not only the "
                "first"
            )
    return None


def _full_match(expected: tuple[list[int], list[bool]]) -> Callable[[Any], str | None]:
    def check(got: Any) -> str | None:
        problem = _ids_match(expected[0])(got)
        if problem:
            return problem
        return describe_plain_difference("mask", [bool(m) for m in got[1]], expected[1])

    return check


def _render_case(
    conversation: Conversation,
    extra: Callable[[tuple[list[int], list[bool]]], Callable[[Any], str | None]],
) -> Case:
    vocab, merges = course_files()
    return Case([vocab, merges, conversation], None, extra=extra(expected_render(conversation)))


def _ids_case(conversation: Conversation) -> Case:
    return _render_case(conversation, lambda e: _ids_match(e[0]))


def _property_case(
    conversation: Conversation, what: str, wrong: Callable[[list[int], list[Any]], str | None]
) -> Case:
    return _render_case(conversation, lambda _: _mask_property(what, wrong))


RENDER_CHECKS = [
    Check(
        "one question and its answer: the ids",
        0.75,
        lambda: _ids_case(ONE_TURN),
        "<|endoftext|> first; then for each message its role token (<|user|> or "
        "<|assistant|>), tokenizer.encode(content).ids, and <|end|>; return plain lists",
    ),
    Check(
        "two questions about one story: the ids",
        0.5,
        lambda: _ids_case(TWO_QUESTIONS),
        "every message, in order, each as role token + its content encoded on its own + "
        "<|end|>; <|endoftext|> only once, at the very start",
    ),
    Check(
        "the user's tokens are not trained",
        0.5,
        lambda: _property_case(TWO_QUESTIONS, "user's tokens", _user_untrained),
        "mask True only on an assistant message's content and its <|end|>; False for "
        "<|endoftext|> and everything in a user turn",
    ),
    Check(
        "the <|assistant|> role token is not trained",
        0.5,
        lambda: _property_case(TWO_QUESTIONS, "role token", _role_untrained),
        "the role token opens the turn but the prompt gives it: its mask entry is False, the "
        "content's and <|end|>'s are True",
    ),
    Check(
        "the assistant's <|end|> is trained",
        0.5,
        lambda: _property_case(ONE_TURN, "<|end|>", _end_trained),
        "train on the <|end|> that closes an assistant message: that is how the model "
        "learns to stop",
    ),
    Check(
        "every assistant turn is trained, not only the first",
        0.5,
        lambda: _property_case(QUOTES, "every answer", _every_answer_trained),
        "set the mask for each message from its own role, inside the loop over messages",
    ),
    Check(
        "a story request: ids and mask equal the chat format",
        0.5,
        lambda: _render_case(STORY_REQUEST, _full_match),
        "ids [<|endoftext|>, <|user|>, *user ids, <|end|>, <|assistant|>, *answer ids, "
        "<|end|>] and mask False up to <|assistant|> included, True after it",
    ),
    Check(
        "an empty assistant message: only its <|end|> is trained",
        0.25,
        lambda: _render_case(EMPTY_ANSWER, _full_match),
        "an empty content encodes to no ids; the turn is then <|assistant|>, <|end|>, and "
        "<|end|> is still trained",
    ),
]


# --- sft_loss -------------------------------------------------------------------------------


def expected_sft_loss(logits: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
    """The reference's SFT loss: targets = ids shifted by one, -100 where the next token is
    not trained (``render_examples``), then the mean cross-entropy over the rest
    (``lm_loss``, here in the logits' dtype)."""
    targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
    v = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, v), targets.reshape(-1), ignore_index=-100)


def chat_mask(lengths: list[tuple[int, int]], pad: int = 0) -> Tensor:
    """One row of a chat mask: for each (prompt, answer) turn, prompt False then answer
    True; then ``pad`` False."""
    row: list[bool] = []
    for prompt, answer in lengths:
        row += [False] * prompt + [True] * answer
    return torch.tensor(row + [False] * pad)


def _loss_case(
    seed: int,
    masks: list[Tensor],
    vocab: int = 11,
    scale: float = 2.0,
    dtype: torch.dtype = torch.float64,
    grad: bool = False,
) -> Case:
    mask = torch.stack(masks)
    b, t = mask.shape
    logits = seeded_randn(seed, b, t, vocab, scale=scale).to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, vocab, (b, t), generator=g)
    args: list[object] = [logits, ids, mask]
    if grad:
        return grad_case(expected_sft_loss, args, (0,), seed)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    return Case(args, expected_sft_loss(logits, ids, mask), atol=tol, rtol=tol)


LOSS_CHECKS = [
    Check(
        "one conversation: the mean loss over the trained next tokens",
        0.75,
        lambda: _loss_case(41, [chat_mask([(4, 3), (3, 2)])]),
        "logits[:, t] predicts ids[:, t + 1]: compare logits[:, :-1] with ids[:, 1:] and "
        "keep the positions where mask[:, 1:] is True",
    ),
    Check(
        "a padded batch: padding (mask False) counts for nothing",
        0.5,
        lambda: _loss_case(42, [chat_mask([(3, 4)], pad=5), chat_mask([(5, 7)])]),
        "padding has mask False, so the same selection drops it; average over the trained "
        "tokens of the whole batch",
    ),
    Check(
        "the mask moves with the targets: mask[:, t + 1] decides position t",
        0.75,
        lambda: _loss_case(43, [chat_mask([(2, 1), (2, 1), (2, 1), (2, 1)])]),
        "shift the mask like the targets (mask[:, 1:]): the answer's first token is "
        "predicted from the position BEFORE it (the role token)",
    ),
    Check(
        "gradients reach the logits",
        0.5,
        lambda: _loss_case(44, [chat_mask([(3, 3), (2, 2)])] * 2, grad=True),
        "build the loss from torch operations on logits (no .item(), no float(), no numpy)",
    ),
    Check(
        "a 0-dim mean over the trained tokens, not a sum",
        0.5,
        lambda: _loss_case(
            45, [chat_mask([(2, 9)]), chat_mask([(6, 5)]), chat_mask([(1, 3)], pad=7)]
        ),
        "divide by the number of trained next tokens (F.cross_entropy's 'mean' with "
        "ignore_index=-100 does), not by B * T; return a 0-dim tensor",
    ),
    Check(
        "large float32 logits: softmax over the vocabulary, stably",
        0.5,
        lambda: _loss_case(
            46, [chat_mask([(4, 6)]), chat_mask([(3, 7)])], scale=60.0, dtype=torch.float32
        ),
        "use F.cross_entropy or log_softmax over the LAST dim (the vocabulary); "
        "log(softmax(...)) gives log 0 = -inf when logits are large",
    ),
    Check(
        "one trained token: the loss is its negative log-probability",
        0.5,
        lambda: _loss_case(47, [chat_mask([(6, 1)], pad=3)], vocab=17),
        "with one trained next token the mean is just -log p(that token) at the position before it",
    ),
]


# --- answer (through answer_with_tiny_model) ------------------------------------------------


def expected_answer(seed: int, prompt: list[int], end_id: int, max_new_tokens: int) -> list[int]:
    """The reference's greedy continuation on the tiny model, up to ``end_id`` (left out)."""
    new = expected_generation(seed, prompt, max_new_tokens, end_id)
    return new[:-1] if new and new[-1] == end_id else new


def _tokens(seed: int, n: int, vocab: int = 64) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n,), generator=g).tolist()


def _answer_case(seed: int, prompt: list[int], max_new: int, end_at: int | None = None) -> Case:
    """``end_at``: the end id is the token greedy decoding emits at that step (None: a
    token it never emits within max_new)."""
    free = expected_generation(seed, prompt, max_new + 1, None)
    end_id = free[end_at] if end_at is not None else min(set(range(64)) - set(free))
    return Case([seed, prompt, end_id, max_new], expected_answer(seed, prompt, end_id, max_new))


ANSWER_CHECKS = [
    Check(
        "an end id never emitted: exactly max_new_tokens greedy tokens",
        0.5,
        lambda: _answer_case(51, [5, 9], 10),
        "at most max_new_tokens tokens (the loop runs max_new_tokens times): each the "
        "argmax of the LAST position's logits; return a list of ints",
    ),
    Check(
        "a longer prompt: continue after its last token",
        0.5,
        lambda: _answer_case(52, _tokens(52, 9), 8),
        "the next token comes from logits[0, -1] (the last position), not logits[0, 0]",
    ),
    Check(
        "stops at the end id and leaves it out",
        0.5,
        lambda: _answer_case(53, _tokens(53, 4), 12, end_at=3),
        "when the next token is end_id, stop before appending it: the answer is the "
        "tokens before <|end|>",
    ),
    Check(
        "the end id as the very first token: an empty answer",
        0.5,
        lambda: _answer_case(54, _tokens(54, 3), 10, end_at=0),
        "check for end_id on every new token, the first one included",
    ),
    Check(
        "the end id just after max_new_tokens: all max_new_tokens tokens",
        0.5,
        lambda: _answer_case(63, _tokens(63, 2), 5, end_at=5),
        "generate at most max_new_tokens tokens: the loop runs max_new_tokens times, no "
        "more, no fewer",
    ),
    Check(
        "max_new_tokens 0 gives no tokens",
        0.5,
        lambda: _answer_case(56, [1, 2, 3], 0),
        "return an empty list when there is nothing to generate",
    ),
]


ITEMS: dict[str, Item] = {
    "assistant.render_conversation": Item(
        "render_with_tokenizer",
        RENDER_CHECKS,
        Signature("vocab, merges, conversation"),
    ),
    "assistant.sft_loss": Item(
        "sft_loss",
        LOSS_CHECKS,
        Signature(
            "logits, ids, mask",
            shapes={"logits": "(B, T, V)", "ids": "(B, T)", "mask": "(B, T)", "return": "()"},
        ),
    ),
    "assistant.answer": Item(
        "answer_with_tiny_model",
        ANSWER_CHECKS,
        Signature("seed, prompt_ids, end_id, max_new_tokens"),
    ),
}
