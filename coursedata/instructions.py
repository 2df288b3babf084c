"""A seeded instruction (chat) data set from the story world, for supervised fine-tuning.

Offline and exact: every conversation is built from a ``Story`` drawn by the same generator as
the pretraining corpus, and a question is only asked when the sentence that answers it is in
the story's text. A conversation is a list of messages ``{"role": "user" | "assistant",
"content": str}``, the shape of Hugging Face chat templates. Two kinds:

- ``"story"``: the user asks for a story about something ("Tell me a story about a cat named
  Tom."); the assistant answers with a story that really has those things in it.
- ``"qa"``: the user gives a story and asks one question ("Read this story: ...\\nQuestion:
  Where did the kite fall?"); the assistant answers with a short exact answer. Sometimes a
  second user turn asks a second question about the same story.

Question kinds and their one canonical answer form (always verbatim in the story's text):

=========  =====================  ===============================================
kind       answer form            example question -> answer
=========  =====================  ===============================================
name       the name               What name is in the story? -> Tom
animal     the bare noun          Which animal did Tom ask for help? -> fox
place      "the" + the noun       Where did the kite fall? -> the park
object     the bare noun          What did Tom always keep safe? -> kite
adjective  the one word (colour,  Which word describes the kite? -> red
           size or feel)
feeling    the bare adjective     How did Tom feel at the end? -> happy
=========  =====================  ===============================================

``answer_of`` gives a conversation's expected answer and ``exact_match`` compares a model's.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from coursedata.stories import Story, draw_story

Message = dict[str, str]
Conversation = list[Message]

KINDS = ("story", "qa")


class Question(NamedTuple):
    """A question of ``kind``, asked only when the story ``says(pattern)``."""

    kind: str
    pattern: str
    phrasings: tuple[str, ...]
    answer: str


# Each question is tied to the one sentence template (``pattern``) that answers it, so that
# the answer is in the text and nothing else in the story could also answer it (e.g. no
# "Where did Tom go?": "They went home" would answer it too).
QUESTIONS = (
    Question(
        "name",
        "{name}",
        ("What is the name of the main character?", "What name is in the story?"),
        "{name}",
    ),
    Question(
        "animal",
        "{animal}",
        ("What animal is in the story?", "Which animal is in the story?"),
        "{animal}",
    ),
    Question(
        "animal", "asked the {animal}", ("Which animal did {name} ask for help?",), "{animal}"
    ),
    Question(
        "animal", "lived near the {place}", ("What animal lived near the {place}?",), "{animal}"
    ),
    Question("place", "went to the {place}", ("Where did {name} go one day?",), "the {place}"),
    Question(
        "place", "ran to the {place}", ("Where did {name} and the {animal} run?",), "the {place}"
    ),
    Question("place", "fell into the {place}", ("Where did the {obj} fall?",), "the {place}"),
    Question(
        "place",
        "lived near the {place}",
        ("What place did the {animal} live near?",),
        "the {place}",
    ),
    Question("object", "had a {color} {obj}", ("What did {name} have?",), "{obj}"),
    Question("object", "with a {color} {obj}", ("What did {name} take to the {place}?",), "{obj}"),
    Question("object", "saw a {color} {obj}", ("What did {name} see under a tree?",), "{obj}"),
    Question(
        "object", "play with the {obj}", ("What did the {animal} want to play with?",), "{obj}"
    ),
    Question("object", "find my {obj}", ("What did {name} ask the {animal} to find?",), "{obj}"),
    Question("object", "The {obj} fell", ("What fell into the {place}?",), "{obj}"),
    Question("object", "kept the {obj} safe", ("What did {name} always keep safe?",), "{obj}"),
    Question(
        "adjective",
        "a {color} {obj}",
        ("Which word describes the {obj}?", "What was the {obj} like?"),
        "{color}",
    ),
    Question(
        "feeling",
        "{feeling} {animal} named {name}",
        ("How did {name} feel at the start?",),
        "{feeling}",
    ),
    Question(
        "feeling",
        "{name} felt {feeling}",
        ("How did {name} feel when it started to rain?",),
        "{feeling}",
    ),
    Question(
        "feeling", "{name} was very {feeling}", ("How did {name} feel at the end?",), "{feeling}"
    ),
)
QUESTION_KINDS = ("name", "animal", "place", "object", "adjective", "feeling")

_QA_PROMPTS = (
    "Read this story: {story}\nQuestion: {question}",
    "Here is a story: {story}\nQuestion: {question}",
    "Story: {story}\n{question}",
)
_SECOND_QUESTION_P = 0.25  # how often a second user turn asks about the same story

# What a story request may name, each when the story says ``pattern`` (so it is in the text).
_SUBJECTS = (
    ("{name}", "{name}"),
    ("{animal} named {name}", "a {animal} named {name}"),
    ("the {animal}", "{name} and a {animal}"),
    ("a {color} {obj}", "{name} and a {color} {obj}"),
    ("{obj}", "{name} and the {obj}"),
    ("to the {place}", "{name} going to the {place}"),
    ("{animal} who lived near the {place}", "a {animal} who lives near the {place}"),
    ("{name} felt {feeling}", "{name} feeling {feeling}"),
    ("{name} was very {feeling}", "{name} feeling {feeling}"),
)
_REQUESTS = (
    "Tell me a story about {subject}.",
    "Can you tell me a story about {subject}?",
    "Please write a short story about {subject}.",
    "I want a story about {subject}.",
)


def story_request(rng: random.Random, story: Story | None = None) -> Conversation:
    """The user asks for a story about things that the assistant's story (``story``, or one
    drawn with ``rng``) then contains."""
    story = draw_story(rng) if story is None else story
    subjects = [subject for pattern, subject in _SUBJECTS if story.says(pattern)]
    subject = rng.choice(subjects).format(**story.slots)
    request = rng.choice(_REQUESTS).format(subject=subject)
    return [{"role": "user", "content": request}, {"role": "assistant", "content": story.text}]


def questions_for(story: Story) -> list[tuple[str, str, str]]:
    """Every question that ``story``'s text answers, as (kind, question, answer)."""
    return [
        (q.kind, phrasing.format(**story.slots), q.answer.format(**story.slots))
        for q in QUESTIONS
        if story.says(q.pattern)
        for phrasing in q.phrasings
    ]


def _ask(
    rng: random.Random, story: Story, exclude: Question | None = None
) -> tuple[Question, str, str]:
    """A kind uniformly, then one of its questions that ``story`` answers (not ``exclude``):
    the question, its text and its canonical answer."""
    questions = [q for q in QUESTIONS if story.says(q.pattern) and q is not exclude]
    kind = rng.choice([k for k in QUESTION_KINDS if any(q.kind == k for q in questions)])
    question = rng.choice([q for q in questions if q.kind == kind])
    text = rng.choice(question.phrasings).format(**story.slots)
    return question, text, question.answer.format(**story.slots)


def story_questions(rng: random.Random, story: Story | None = None) -> Conversation:
    """The user gives a story (``story``, or one drawn with ``rng``) and asks a question; the
    assistant gives the short answer. Sometimes (``_SECOND_QUESTION_P``) a second user turn
    asks another question about the same story."""
    story = draw_story(rng) if story is None else story
    first, question, answer = _ask(rng, story)
    prompt = rng.choice(_QA_PROMPTS).format(story=story.text, question=question)
    conversation = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    if rng.random() < _SECOND_QUESTION_P:
        _, question, answer = _ask(rng, story, exclude=first)
        conversation += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    return conversation


_BUILDERS = {"story": story_request, "qa": story_questions}


def _draw(rng: random.Random, n: int, kinds: tuple[str, ...]) -> list[Conversation]:
    """``n`` conversations, each of a kind drawn from ``kinds``."""
    unknown = set(kinds) - set(_BUILDERS)
    if not kinds or unknown:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds}")
    return [_BUILDERS[rng.choice(kinds)](rng) for _ in range(n)]


def make_instruction_data(
    n: int, seed: int = 0, kinds: tuple[str, ...] = KINDS
) -> list[Conversation]:
    """``n`` conversations of the given ``kinds``, mixed; the same ``seed`` gives the same."""
    return _draw(random.Random(seed), n, kinds)


def story_of(conversation: Conversation) -> str:
    """The story a conversation is about: the one the user gave, or the assistant told."""
    first = conversation[0]["content"]
    for prompt in _QA_PROMPTS:
        prefix = prompt.split("{story}")[0]
        if first.startswith(prefix) and "\n" in first:
            return first[len(prefix) :].split("\n")[0]
    return conversation[1]["content"]


def instruction_splits(
    n_train: int, n_test: int, seed: int = 0
) -> tuple[list[Conversation], list[Conversation]]:
    """(train, test): test holds QA conversations only (for exact-match accuracy), train both
    kinds; no test story occurs in train (train conversations with one are drawn again)."""
    test = _draw(random.Random(f"instructions-test-{seed}"), n_test, ("qa",))
    held_out = {story_of(c) for c in test}
    rng = random.Random(f"instructions-train-{seed}")
    train: list[Conversation] = []
    while len(train) < n_train:
        train += [c for c in _draw(rng, 1, KINDS) if story_of(c) not in held_out]
    return train, test


def answer_of(conversation: Conversation) -> str:
    """The expected final assistant answer of ``conversation``."""
    last = conversation[-1]
    if last["role"] != "assistant":
        raise ValueError("the conversation does not end with an assistant message")
    return last["content"]


def _normalise(text: str) -> str:
    """Lower case, no surrounding whitespace, no trailing punctuation (".!?,;:")."""
    return text.strip().rstrip(".!?,;:").rstrip().casefold()


def exact_match(prediction: str, answer: str) -> bool:
    """Whether ``prediction`` is ``answer`` up to case, surrounding whitespace and trailing
    punctuation (so "The park." matches "the park", but "park" does not)."""
    return _normalise(prediction) == _normalise(answer)
