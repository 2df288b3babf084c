"""Supervised fine-tuning data: conversations rendered in the chat format, and padded
batches whose targets are the assistant's tokens only.

The conversations are the course's offline instruction set (``coursedata.instructions``:
story requests and questions about a given story, with exact answers and held-out stories).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from coursedata import instruction_splits
from coursedata.instructions import Conversation
from reference_impl.tokenizer import ByteTokenizer, Tokenizer, render_conversation

#: Conversations per split for ``data.size`` (train, held-out validation).
CHAT_SIZES = {
    "tiny": (400, 50),
    "small": (6000, 300),
    "medium": (20000, 500),
    "full": (60000, 1000),
}


def instruction_conversations(
    size: str, seed: int = 0
) -> tuple[list[Conversation], list[Conversation]]:
    """(train, held-out) conversations of the instruction set; the held-out ones are
    questions about stories that no training conversation holds."""
    if size not in CHAT_SIZES:
        raise ValueError(f"data.size: one of {sorted(CHAT_SIZES)}, got {size!r}")
    return instruction_splits(*CHAT_SIZES[size], seed=seed)


@dataclass
class ChatExamples:
    """Rendered conversations: ``inputs[i]`` (n_i,) and ``targets[i]`` (n_i,), the next
    token where it is trained on, -100 elsewhere; ``dropped`` counts those that did not fit
    in the context."""

    inputs: list[Tensor]
    targets: list[Tensor]
    dropped: int

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def n_trained(self) -> int:
        return sum(int((t != -100).sum()) for t in self.targets)


def render_examples(
    tokenizer: Tokenizer | ByteTokenizer,
    conversations: Sequence[Conversation],
    context_length: int,
) -> ChatExamples:
    """Each conversation as (inputs, targets) shifted by one, as in pretraining; those
    longer than ``context_length`` inputs are left out (and counted)."""
    inputs, targets, dropped = [], [], 0
    for conversation in conversations:
        ids, trained = render_conversation(tokenizer, conversation)
        if len(ids) - 1 > context_length:
            dropped += 1
            continue
        x, y = torch.tensor(ids[:-1]), torch.tensor(ids[1:])
        inputs.append(x)
        targets.append(y.masked_fill(~torch.tensor(trained[1:]), -100))
    if not inputs:
        raise ValueError(f"no conversation fits in context_length={context_length}")
    return ChatExamples(inputs, targets, dropped)


def get_chat_batch(
    examples: ChatExamples,
    batch_size: int,
    pad_id: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``batch_size`` random examples padded to the longest: x (B, L) int64 (``pad_id``
    after the end) and y (B, L) int64 (-100 after the end: padding is never trained)."""
    picks = torch.randint(len(examples), (batch_size,), generator=generator).tolist()
    length = max(len(examples.inputs[i]) for i in picks)
    x = torch.full((batch_size, length), pad_id, dtype=torch.long)
    y = torch.full((batch_size, length), -100, dtype=torch.long)
    for row, i in enumerate(picks):
        n = len(examples.inputs[i])
        x[row, :n], y[row, :n] = examples.inputs[i], examples.targets[i]
    return x, y
