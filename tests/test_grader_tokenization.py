"""The grader of the tokenization notebook: the source notebook gets full marks, other
correct answers too, each realistic mistake loses exactly the points it should with a
message that names it, and the grader's expected values agree with independent peers
(Hugging Face ``tokenizers`` for encoding, Python's own codecs and string methods).

To stay within the time budget, answers to different exercises share one sandbox run: run
k replaces each exercise's solution cell by its k-th answer (cells are graded independently,
which ``test_untouched_cells_keep_full_marks`` checks; the wrong answers never call the
other exercises' functions).
"""

from __future__ import annotations

import re

import pytest

from autograder.checks import Check
from autograder.graders.tokenization import (
    COUNT_PAIRS_CHECKS,
    DECODE_CHECKS,
    ENCODE_CHECKS,
    MERGE_CHECKS,
    SPLIT_CHECKS,
    TRAIN_CHECKS,
)
from reference_impl.tokenizer.tokenizer import bytes_to_unicode

from .conftest import REPO
from .fixtures.tokenization_mistakes import (
    COUNT_PAIRS_MISTAKES,
    DECODE_MISTAKES,
    ENCODE_MISTAKES,
    MERGE_MISTAKES,
    SPLIT_MISTAKES,
    TRAIN_MISTAKES,
)
from .notebook_grading import (  # noqa: F401  (the standard tests, collected here)
    exercises_of,
    test_answers_score_exactly,
    test_items_are_graded_fairly,
    test_source_notebook_gets_full_marks,
    test_untouched_cells_keep_full_marks,
)

SOURCE = REPO / "source/part4_training/tokenization.ipynb"

# solution cell -> its answers; test cell, item and points come from the notebook
EXERCISES = exercises_of(
    SOURCE,
    {
        "count_pairs": COUNT_PAIRS_MISTAKES,
        "merge": MERGE_MISTAKES,
        "split_special": SPLIT_MISTAKES,
        "train_bpe": TRAIN_MISTAKES,
        "encode": ENCODE_MISTAKES,
        "decode": DECODE_MISTAKES,
    },
)


# --- the grader's expected values against independent peers ---------------------------------


@pytest.mark.parametrize("check", COUNT_PAIRS_CHECKS, ids=lambda c: c.name)
def test_pair_counts_match_substring_counts(check: Check) -> None:
    """Each pair's count, recounted by scanning every position of every word."""
    case = check.build()
    (words,) = case.args
    peer: dict[tuple[int, int], int] = {}
    for word, freq in words.items():
        for i in range(len(word) - 1):
            peer[word[i], word[i + 1]] = peer.get((word[i], word[i + 1]), 0) + freq
    assert case.expected == peer


@pytest.mark.parametrize("check", MERGE_CHECKS, ids=lambda c: c.name)
def test_merge_matches_bytes_replace(check: Check) -> None:
    """bytes.replace merges non-overlapping occurrences from the left, like merge."""
    case = check.build()
    ids, (a, b), new_id = case.args
    marker = 0x100  # ids fit in two bytes each
    data = b"".join(i.to_bytes(2, "big") for i in ids)
    replaced = data.replace(
        a.to_bytes(2, "big") + b.to_bytes(2, "big"), marker.to_bytes(2, "big") * 2
    )
    peer = [int.from_bytes(replaced[i : i + 2], "big") for i in range(0, len(replaced), 2)]
    out: list[int] = []
    skip = False
    for x in peer:  # each replaced pair left two markers: keep one new_id
        if x == marker and not skip:
            out.append(new_id)
            skip = True
        elif x == marker:
            skip = False
        else:
            out.append(x)
    assert marker not in ids and case.expected == out


@pytest.mark.parametrize("check", SPLIT_CHECKS, ids=lambda c: c.name)
def test_split_matches_python_re(check: Check) -> None:
    case = check.build()
    text, tokens = case.args
    if not tokens:
        peer = [text] if text else []
    else:
        alternation = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
        peer = [p for p in re.split(f"({alternation})", text) if p]
    assert case.expected == peer and "".join(peer) == text


def _hf(vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]], specials: list[str]):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    table = bytes_to_unicode()

    def as_str(token: bytes) -> str:
        return "".join(table[b] for b in token)

    model = models.BPE(
        {as_str(t): i for i, t in vocab.items()}, [(as_str(a), as_str(b)) for a, b in merges]
    )
    hf = HFTokenizer(model)
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.add_special_tokens(specials)
    return hf


@pytest.mark.parametrize("check", ENCODE_CHECKS, ids=lambda c: c.name)
def test_encode_matches_hugging_face(check: Check) -> None:
    case = check.build()
    text, vocab, merges = case.args
    hf = _hf(vocab, merges, case.kwargs.get("special_tokens", []))
    assert case.expected == hf.encode(text).ids


@pytest.mark.parametrize("check", DECODE_CHECKS, ids=lambda c: c.name)
def test_decode_matches_python_codec(check: Check) -> None:
    case = check.build()
    ids, vocab = case.args
    assert case.expected == b"".join(vocab[i] for i in ids).decode("utf-8", "replace")


@pytest.mark.parametrize("check", TRAIN_CHECKS, ids=lambda c: c.name)
def test_trained_vocab_layout(check: Check) -> None:
    """The reference's vocabulary: bytes, then the special tokens, then one id per merge."""
    case = check.build()
    _, vocab_size, specials = case.args
    vocab, merges = case.expected
    assert len(vocab) <= vocab_size and list(vocab) == list(range(len(vocab)))
    assert all(vocab[i] == bytes([i]) for i in range(256))
    assert [vocab[256 + k] for k in range(len(specials))] == [t.encode() for t in specials]
    first = 256 + len(specials)
    assert [vocab[first + k] for k in range(len(merges))] == [a + b for a, b in merges]
    assert len(set(merges)) == len(merges)
