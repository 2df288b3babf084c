"""The instruction (chat) data: seeded, exact answers taken from the story's own text, questions
asked only when answerable, a held-out split, and the story generator left unchanged."""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections import Counter

import pytest

from coursedata import (
    Story,
    answer_of,
    draw_story,
    exact_match,
    generate_stories,
    generate_story,
    instruction_splits,
    make_instruction_data,
    questions_for,
    story_of,
    story_questions,
    story_request,
)
from coursedata import stories as S
from coursedata.instructions import QUESTION_KINDS, QUESTIONS

from .conftest import REPO

VOCAB = {*S.NAMES, *S.ANIMALS, *S.PLACES, *S.OBJECTS, *S.COLORS, *S.FEELINGS}
ALLOWED = set(string.ascii_letters + string.digits + ' !",.?:\n')


def sha(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", text))


def is_qa(conversation: list[dict[str, str]]) -> bool:
    return "\n" in conversation[0]["content"]


def story(*templates: str, **slots: str) -> Story:
    """A story built by hand from the generator's own sentence templates."""
    assert all(t in S._OPENINGS + S._MIDDLES + S._ENDINGS for t in templates)
    text = " ".join(t.format(**slots) for t in templates)
    return Story(text=text, slots=slots, templates=templates)


# Four hand-built stories that, between them, use every question in QUESTIONS.
A = story(
    "One day, {name} went to the {place} with a {color} {obj}.",
    '{name} asked the {animal}, "Can you help me find my {obj}?"',
    "The {obj} fell into the {place}, and {name} began to cry.",
    "They went home, and {name} was very {feeling}.",
    **dict(name="Tom", animal="fox", place="park", obj="kite", color="red", feeling="happy"),
)
B = story(  # no animal, no place, and the feeling is the day's, not Mia's
    "{name} had a {color} {obj}. {name} loved it very much.",
    "{name} saw a {color} {obj} under a tree.",
    '{name} said, "Thank you!" and smiled. The day was {feeling} and bright.',
    **dict(name="Mia", animal="bird", place="beach", obj="ball", color="blue", feeling="sad"),
)
C = story(  # no adjective
    "There was a little {animal} who lived near the {place}.",
    "The {animal} wanted to play with the {obj}, but it was too high.",
    "Then it started to rain, and {name} felt {feeling}.",
    "From that day on, {name} always kept the {obj} safe.",
    **dict(name="Leo", animal="frog", place="river", obj="drum", color="green", feeling="tired"),
)
D = story(  # no object
    "Once upon a time, there was a {feeling} {animal} named {name}.",
    "{name} and the {animal} ran to the {place} together.",
    "In the end, {name} and the {animal} became best friends.",
    **dict(name="Zoe", animal="bear", place="school", obj="hat", color="soft", feeling="proud"),
)


# --- the story generator is unchanged ---------------------------------------------------------

# Computed from coursedata/stories.py before draw_story existed (the pretraining corpus and the
# shipped tokenizers/stories-512 depend on these exact texts).
GOLDEN = {
    (0, 1000): "29d35e76249210fd0ca6a1b43c5d5aac87b86a4e0049a19e189f6c95d5dfe4e4",
    (1, 1000): "e517e1bd76ee77584303f1240410cc6385daf06ec60df90e50f124058d68b397",
    (42, 200): "c68b48ec1e54ff5068c5713dc4fc131691780612422d205c21a3fd19d8c399d0",
    (1234, 50): "3f765d694db2ea7b7527d8bbfceb2cb22f140f1d5994a972e722b2a9123f4ce4",
}


@pytest.mark.parametrize(("seed", "n"), sorted(GOLDEN))
def test_generate_stories_is_unchanged(seed: int, n: int) -> None:
    assert sha(generate_stories(n, seed)) == GOLDEN[seed, n]


def test_generate_story_is_unchanged() -> None:
    rng = random.Random(7)
    texts = [generate_story(rng) for _ in range(300)]
    assert sha(texts) == "2726a7e90abe6a2275ab422e46e0f518b6a4e5ea78b1a9022f1abc2a7e2b316c"
    assert generate_stories(1, 0)[0].startswith("One day, Anna went to the park with a soft hat.")


def test_draw_story_is_generate_story_with_its_slots() -> None:
    a, b = random.Random(3), random.Random(3)
    for _ in range(200):
        drawn = draw_story(a)
        assert drawn.text == generate_story(b)
        assert drawn.text == " ".join(t.format(**drawn.slots) for t in drawn.templates)
        assert 3 <= len(drawn.templates) <= 6
        assert drawn.says("{name}") and drawn.slots["name"] in drawn.text
        assert drawn.says("{place}") == (f"the {drawn.slots['place']}" in drawn.text)
    assert a.getstate() == b.getstate()  # the same draws from the rng


# --- questions: by hand -----------------------------------------------------------------------


def test_questions_for_story_a_by_hand() -> None:
    assert A.text == (
        'One day, Tom went to the park with a red kite. Tom asked the fox, "Can you help me find '
        'my kite?" The kite fell into the park, and Tom began to cry. They went home, and Tom was '
        "very happy."
    )
    assert set(questions_for(A)) == {
        ("name", "What is the name of the main character?", "Tom"),
        ("name", "What name is in the story?", "Tom"),
        ("animal", "What animal is in the story?", "fox"),
        ("animal", "Which animal is in the story?", "fox"),
        ("animal", "Which animal did Tom ask for help?", "fox"),
        ("place", "Where did Tom go one day?", "the park"),
        ("place", "Where did the kite fall?", "the park"),
        ("object", "What did Tom take to the park?", "kite"),
        ("object", "What did Tom ask the fox to find?", "kite"),
        ("object", "What fell into the park?", "kite"),
        ("adjective", "Which word describes the kite?", "red"),
        ("adjective", "What was the kite like?", "red"),
        ("feeling", "How did Tom feel at the end?", "happy"),
    }


def test_questions_for_story_b_by_hand_no_place_animal_or_feeling() -> None:
    """B names a beach, a bird and a sad day in its slots, but its text has no place, no animal
    and no feeling of Mia's: none is asked about."""
    assert "beach" not in B.text and "bird" not in B.text
    assert set(questions_for(B)) == {
        ("name", "What is the name of the main character?", "Mia"),
        ("name", "What name is in the story?", "Mia"),
        ("object", "What did Mia have?", "ball"),
        ("object", "What did Mia see under a tree?", "ball"),
        ("adjective", "Which word describes the ball?", "blue"),
        ("adjective", "What was the ball like?", "blue"),
    }


def test_questions_for_story_c_by_hand() -> None:
    assert set(questions_for(C)) == {
        ("name", "What is the name of the main character?", "Leo"),
        ("name", "What name is in the story?", "Leo"),
        ("animal", "What animal is in the story?", "frog"),
        ("animal", "Which animal is in the story?", "frog"),
        ("animal", "What animal lived near the river?", "frog"),
        ("place", "What place did the frog live near?", "the river"),
        ("object", "What did the frog want to play with?", "drum"),
        ("object", "What did Leo always keep safe?", "drum"),
        ("feeling", "How did Leo feel when it started to rain?", "tired"),
    }


def test_questions_for_story_d_by_hand() -> None:
    assert set(questions_for(D)) == {
        ("name", "What is the name of the main character?", "Zoe"),
        ("name", "What name is in the story?", "Zoe"),
        ("animal", "What animal is in the story?", "bear"),
        ("animal", "Which animal is in the story?", "bear"),
        ("place", "Where did Zoe and the bear run?", "the school"),
        ("feeling", "How did Zoe feel at the start?", "proud"),
    }


def test_the_hand_built_stories_cover_every_question_and_kind() -> None:
    assert all(any(s.says(q.pattern) for s in (A, B, C, D)) for q in QUESTIONS)
    assert {k for s in (A, B, C, D) for k, _, _ in questions_for(s)} == set(QUESTION_KINDS)


def test_story_questions_on_a_given_story() -> None:
    pairs = {(q, a) for _, q, a in questions_for(A)}
    for seed in range(50):
        conversation = story_questions(random.Random(seed), A)
        assert [m["role"] for m in conversation][:2] == ["user", "assistant"]
        first = conversation[0]["content"]
        assert story_of(conversation) == A.text
        question = first.split("\n")[1].removeprefix("Question: ")
        assert (question, conversation[1]["content"]) in pairs
        if len(conversation) == 4:
            assert (conversation[2]["content"], conversation[3]["content"]) in pairs
            assert conversation[2]["content"] != question


# --- questions: over thousands ----------------------------------------------------------------


def qa_turns(conversation: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(question, answer) for each user turn of a QA conversation."""
    first = conversation[0]["content"].split("\n")[1].removeprefix("Question: ")
    questions = [first, *(m["content"] for m in conversation[2::2])]
    return list(zip(questions, [m["content"] for m in conversation[1::2]], strict=True))


def test_every_answer_is_verbatim_in_the_story_and_questions_are_answerable() -> None:
    """Independent of how questions are chosen: the answer is in the story's text, every story
    word in the question is too, and a feeling is asked only when the story says it of the
    character (not only "The day was happy")."""
    data = make_instruction_data(3000, seed=5, kinds=("qa",))
    for conversation in data:
        text = story_of(conversation)
        assert text and text in conversation[0]["content"]
        for question, answer in qa_turns(conversation):
            assert answer.lower() in text.lower(), (text, question, answer)
            assert 1 <= len(answer.split()) <= 2
            assert words(question) & VOCAB <= words(text), (text, question)
            if answer.startswith("the "):  # a place, where the text puts something
                place = answer.removeprefix("the ")
                assert place in S.PLACES
                assert any(f"{w} the {place}" in text for w in ("to", "into", "near"))
            if answer in S.FEELINGS:
                assert answer in re.sub(r"The day was \w+ and bright", "", text)


def test_question_kinds_are_mixed() -> None:
    kinds: Counter[str] = Counter()
    for seed in range(2000):
        rng = random.Random(seed)
        drawn = draw_story(rng)
        kind_of = {q: k for k, q, _ in questions_for(drawn)}
        conversation = story_questions(rng, drawn)
        kinds.update(kind_of[q] for q, _ in qa_turns(conversation))
    assert set(kinds) == set(QUESTION_KINDS)
    assert min(kinds.values()) > 0.05 * sum(kinds.values()), kinds


def test_no_place_question_without_a_place_in_the_text() -> None:
    placeless = 0
    for seed in range(3000):
        rng = random.Random(seed)
        drawn = draw_story(rng)
        if drawn.says("{place}"):
            continue
        placeless += 1
        assert drawn.slots["place"] not in drawn.text
        conversation = story_questions(rng, drawn)
        assert not any(a.startswith("the ") for _, a in qa_turns(conversation))
        assert "place" not in {k for k, _, _ in questions_for(drawn)}
    assert placeless > 300


# --- story requests ---------------------------------------------------------------------------


def test_story_requests_name_what_the_story_has() -> None:
    data = make_instruction_data(3000, seed=9, kinds=("story",))
    requests = set()
    for conversation in data:
        (user, assistant) = conversation
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert "\n" not in user["content"]
        asked = words(user["content"]) & VOCAB
        assert asked and asked <= words(assistant["content"]), conversation
        if m := re.search(r"a (\w+) named (\w+)", user["content"]):
            assert f"{m[1]} named {m[2]}" in assistant["content"]
        if m := re.search(r"and a (\w+) (\w+)[.?]", user["content"]):
            assert f"a {m[1]} {m[2]}" in assistant["content"]
        requests.add(re.sub(r"[A-Z][a-z]+", "X", user["content"]))
    assert len(requests) > 20


def test_story_requests_for_a_given_story_by_hand() -> None:
    asked = {story_request(random.Random(s), D)[0]["content"] for s in range(300)}
    subjects = {re.sub(r"^.* about |[.?]$", "", request) for request in asked}
    assert subjects == {"Zoe", "a bear named Zoe", "Zoe and a bear", "Zoe going to the school"}
    assert {story_request(random.Random(s), D)[1]["content"] for s in range(20)} == {D.text}


# --- the data set and the split ---------------------------------------------------------------


def test_deterministic_per_seed() -> None:
    assert make_instruction_data(300, seed=3) == make_instruction_data(300, seed=3)
    assert make_instruction_data(300, seed=3) != make_instruction_data(300, seed=4)
    assert instruction_splits(200, 50, seed=1) == instruction_splits(200, 50, seed=1)
    assert instruction_splits(200, 50, seed=1) != instruction_splits(200, 50, seed=2)


def test_mixed_kinds_and_well_formed_messages() -> None:
    data = make_instruction_data(2000, seed=0)
    assert len(data) == 2000
    share = sum(map(is_qa, data)) / len(data)
    assert 0.4 < share < 0.6
    assert any(len(c) == 4 for c in data)  # some second questions
    for conversation in data:
        roles = [m["role"] for m in conversation]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        assert all(set(m) == {"role", "content"} and m["content"] for m in conversation)
        assert set("".join(m["content"] for m in conversation)) <= ALLOWED
    assert all(not is_qa(c) for c in make_instruction_data(100, 0, kinds=("story",)))
    with pytest.raises(ValueError):
        make_instruction_data(3, 0, kinds=("poem",))


def test_split_holds_out_its_stories_and_tests_qa_only() -> None:
    train, test = instruction_splits(4000, 1000, seed=0)
    assert (len(train), len(test)) == (4000, 1000)
    assert all(is_qa(c) for c in test)
    assert {is_qa(c) for c in train} == {True, False}
    test_stories = {story_of(c) for c in test}
    train_stories = {story_of(c) for c in train}
    assert len(test_stories) > 900 and not test_stories & train_stories
    everything_train = "\n".join(m["content"] for c in train for m in c)
    assert not any(s in everything_train for s in list(test_stories)[:200])


# --- answers and matching ---------------------------------------------------------------------


def test_answer_of_is_the_last_assistant_message() -> None:
    conversation = story_questions(random.Random(1), B)
    assert answer_of(conversation) == conversation[-1]["content"]
    assert answer_of(conversation) in {"Mia", "ball", "blue"}
    with pytest.raises(ValueError):
        answer_of(conversation[:-1])


@pytest.mark.parametrize(
    ("prediction", "expected", "match"),
    [
        ("the park", "the park", True),
        ("The park.", "the park", True),
        ("  tom \n", "Tom", True),
        ("TOM!", "Tom", True),
        ("red?!", "red", True),
        ("park", "the park", False),
        ("the  park", "the park", False),
        ("a red kite", "kite", False),
        ("Tom and Mia", "Tom", False),
        (".Tom", "Tom", False),
        ("", "Tom", False),
    ],
)
def test_exact_match(prediction: str, expected: str, match: bool) -> None:
    assert exact_match(prediction, expected) is match


def test_conversations_are_short_in_stories_512_tokens() -> None:
    from tokenizers import ByteLevelBPETokenizer

    folder = REPO / "tokenizers" / "stories-512"
    tok = ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    data = make_instruction_data(1000, seed=0)
    lengths = [len(tok.encode("\n".join(m["content"] for m in c)).ids) for c in data]
    assert sum(n <= 150 for n in lengths) >= 0.98 * len(lengths)
    assert max(lengths) <= 200
