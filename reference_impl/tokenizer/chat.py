"""The chat format: a conversation as token ids, with a mask of the tokens to train on.

A conversation is a list of ``{"role": "user" | "assistant", "content": str}`` messages
(the shape of Hugging Face chat templates). It is rendered as ::

    <|endoftext|><|user|>Where is Tom?<|end|><|assistant|>the park<|end|><|user|>...

``<|endoftext|>`` opens it (a document boundary, as in pretraining); each turn is its
role's token, the content encoded on its own (no BPE merge crosses a turn's edge) and
``<|end|>``. Supervised fine-tuning trains on the assistant's content and its ``<|end|>``
only (so that the model learns to answer, and to stop), never on the user's text or on
the ``<|assistant|>`` token, which the prompt always gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reference_impl.tokenizer.byte import ByteTokenizer
from reference_impl.tokenizer.specials import ASSISTANT, CHAT_TOKENS, END, EOT, USER
from reference_impl.tokenizer.tokenizer import Tokenizer

ROLES = {"user": USER, "assistant": ASSISTANT}

Message = Mapping[str, str]


def has_chat_format(tokenizer: Tokenizer | ByteTokenizer) -> bool:
    """Whether ``tokenizer`` has ``<|endoftext|>`` and the chat tokens as special tokens."""
    specials = getattr(tokenizer, "special_ids", {})
    return all(t in specials for t in (EOT, *CHAT_TOKENS))


def _special_ids(tokenizer: Tokenizer | ByteTokenizer) -> dict[str, int]:
    if not has_chat_format(tokenizer):
        raise ValueError(
            f"the tokenizer has no chat tokens ({', '.join(CHAT_TOKENS)}): use one trained "
            "with them, e.g. tokenizers/stories-512 (scripts/train_tokenizer.py)"
        )
    assert isinstance(tokenizer, Tokenizer)
    return tokenizer.special_ids


def _turn(
    tokenizer: Tokenizer | ByteTokenizer, ids: dict[str, int], message: Message, index: int
) -> list[int]:
    role = message.get("role")
    if role not in ROLES:
        raise ValueError(f"message {index}: role must be 'user' or 'assistant', got {role!r}")
    content = message.get("content")
    if not isinstance(content, str):
        raise ValueError(f"message {index}: content must be a string")
    return [ids[ROLES[role]], *tokenizer.encode(content), ids[END]]


def render_conversation(
    tokenizer: Tokenizer | ByteTokenizer, conversation: Sequence[Message]
) -> tuple[list[int], list[bool]]:
    """Token ids of ``conversation`` and, per id, whether it is trained on (an assistant
    message's content or its ``<|end|>``)."""
    ids = _special_ids(tokenizer)
    tokens, train = [ids[EOT]], [False]
    for i, message in enumerate(conversation):
        turn = _turn(tokenizer, ids, message, i)
        tokens += turn
        is_answer = message["role"] == "assistant"
        train += [False] + [is_answer] * (len(turn) - 1)  # never the role token itself
    return tokens, train


def render_prompt(
    tokenizer: Tokenizer | ByteTokenizer, conversation: Sequence[Message]
) -> list[int]:
    """The ids that ask for the next assistant message: ``conversation`` (ending with a user
    message) rendered, then ``<|assistant|>``."""
    if not conversation or conversation[-1].get("role") != "user":
        raise ValueError("a prompt ends with a user message")
    tokens, _ = render_conversation(tokenizer, conversation)
    return [*tokens, _special_ids(tokenizer)[ASSISTANT]]
