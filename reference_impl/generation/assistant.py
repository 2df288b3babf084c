"""Answering in a conversation, and exact-match accuracy on held-out questions: a
fine-tuned model in the chat format, a base model prompted with plain text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from coursedata import answer_of, exact_match
from coursedata.instructions import Conversation
from reference_impl.generation.decoding import generate
from reference_impl.models import TransformerLM
from reference_impl.tokenizer import END, EOT, ByteTokenizer, Tokenizer, render_prompt


def _greedy(
    model: TransformerLM, ids: list[int], max_new_tokens: int, stop_ids: list[int]
) -> list[int]:
    room = model.config.context_length - len(ids)
    if room < 1:
        raise ValueError(f"the prompt's {len(ids)} tokens fill the context")
    idx = torch.tensor([ids], device=next(model.parameters()).device)
    out = generate(model, idx, min(max_new_tokens, room), temperature=0.0, stop_ids=stop_ids)
    new = out[0, len(ids) :].tolist()
    return new[: new.index(stop_ids[0])] if stop_ids[0] in new else new


def chat_answer(
    model: TransformerLM,
    tokenizer: Tokenizer | ByteTokenizer,
    conversation: Sequence[dict[str, str]],
    max_new_tokens: int = 32,
) -> str:
    """The model's greedy next assistant message for ``conversation`` (ending with a user
    message), in the chat format, up to ``<|end|>``."""
    assert isinstance(tokenizer, Tokenizer)
    ids = render_prompt(tokenizer, conversation)
    end = tokenizer.special_ids[END]
    return tokenizer.decode(_greedy(model, ids, max_new_tokens, [end])).strip()


def plain_prompt(conversation: Sequence[dict[str, str]]) -> str:
    """A base model's prompt for the same question: the turns as plain text, each answer
    after "Answer:", ending with "Answer:" for the one to give."""
    text = ""
    for m in conversation:
        text += f"{m['content']}\nAnswer:" if m["role"] == "user" else f" {m['content']}\n"
    return text


def plain_answer(
    model: TransformerLM,
    tokenizer: Tokenizer | ByteTokenizer,
    conversation: Sequence[dict[str, str]],
    max_new_tokens: int = 32,
) -> str:
    """A base model's greedy continuation of :func:`plain_prompt`, up to the end of the
    line (or ``<|endoftext|>``)."""
    ids = tokenizer.encode(plain_prompt(conversation))
    eot = getattr(tokenizer, "special_ids", {}).get(EOT)
    new = _greedy(model, ids, max_new_tokens, [eot] if eot is not None else [0])
    return tokenizer.decode(new).split("\n")[0].strip()


@dataclass
class QAResult:
    """Exact-match accuracy over held-out questions, and each (question, answer, reply)."""

    correct: int = 0
    asked: int = 0
    skipped: int = 0  # conversations whose prompt did not fit in the context
    replies: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.asked, 1)


@torch.no_grad()
def qa_accuracy(
    model: TransformerLM,
    tokenizer: Tokenizer | ByteTokenizer,
    conversations: Sequence[Conversation],
    chat: bool = True,
    max_new_tokens: int = 16,
) -> QAResult:
    """Ask each conversation's last question (its earlier turns given, with their true
    answers) and compare the reply with the answer by :func:`exact_match`; ``chat`` uses
    the chat format, else :func:`plain_prompt`."""
    answer = chat_answer if chat else plain_answer
    result = QAResult()
    for conversation in conversations:
        prompt = conversation[:-1]
        try:
            reply = answer(model, tokenizer, prompt, max_new_tokens)
        except ValueError:  # the prompt leaves no room for an answer
            result.skipped += 1
            continue
        expected = answer_of(conversation)
        result.asked += 1
        result.correct += exact_match(reply, expected)
        result.replies.append((prompt[-1]["content"].split("\n")[-1], expected, reply))
    return result
