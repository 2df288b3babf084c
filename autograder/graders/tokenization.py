"""Grader of the tokenization notebook (part4_training): byte-level BPE from pair counts to
training, encoding, decoding and special tokens.

Every exercise is a plain function on plain data (tuples of ids, {id: bytes} vocabularies,
[(bytes, bytes)] merges, strings), compared exactly. Expected values come from
``reference_impl.tokenizer``: ``train_bpe`` (on the case's text written to a temporary
file), ``Tokenizer.encode``/``decode``, and the pre-tokenizer's ``split_special`` and
``count_pretokens``. Inputs are small, so that a naive trainer (recounting every pair after
each merge) finishes each check well within the sandbox's time limit.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import Counter
from functools import cache

from autograder.checks import Case, Check
from autograder.graders.base import Item, Signature
from coursekit import generate_stories
from reference_impl.tokenizer import Tokenizer
from reference_impl.tokenizer import train_bpe as reference_train_bpe
from reference_impl.tokenizer.bpe import merge
from reference_impl.tokenizer.pretokenize import count_pretokens, special_pattern, split_special

EOT = "<|endoftext|>"
Vocab = dict[int, bytes]
Merges = list[tuple[bytes, bytes]]


def _stories(n: int, seed: int, sep: str = " ") -> str:
    return sep.join(generate_stories(n, seed))


def _trained(text: str, vocab_size: int, special_tokens: list[str]) -> tuple[Vocab, Merges]:
    """The reference trainer on ``text`` (it reads a file: one on the trusted side)."""
    fd, path = tempfile.mkstemp(suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return reference_train_bpe(path, vocab_size, special_tokens, progress=False)
    finally:
        os.unlink(path)


def _byte_vocab(*merged: bytes) -> Vocab:
    """The 256 single bytes, then ``merged`` tokens in order."""
    vocab = {i: bytes([i]) for i in range(256)}
    for token in merged:
        vocab[len(vocab)] = token
    return vocab


# --- count_pairs ----------------------------------------------------------------------------


def _words(text: str) -> dict[tuple[int, ...], int]:
    """Pre-token counts of ``text`` as {tuple of byte ids: count}."""
    return {tuple(w.encode("utf-8")): c for w, c in count_pretokens(text).items()}


def _pairs_case(words: dict[tuple[int, ...], int]) -> Case:
    expected: Counter[tuple[int, int]] = Counter()
    for word, count in words.items():
        for pair in itertools.pairwise(word):
            expected[pair] += count
    return Case([words], dict(expected))


COUNT_PAIRS_CHECKS = [
    Check(
        "pairs of a short sentence's words",
        0.5,
        lambda: _pairs_case(_words("the cat sat on the mat, the end")),
        "for each word, each adjacent pair (word[i], word[i+1]) adds the word's count; "
        "return a dict {(a, b): count}",
    ),
    Check(
        "a pair repeated within a word counts each time",
        0.5,
        lambda: _pairs_case({(1, 1, 1, 1): 1, (2, 3, 2, 3): 2}),
        "(1, 1, 1, 1) holds the pair (1, 1) three times: count every position, not each "
        "distinct pair once per word",
    ),
    Check(
        "counts weighted by word frequency",
        0.5,
        lambda: _pairs_case({(5, 6): 7, (6, 5): 1, (5, 6, 5): 3}),
        "a word that occurs 7 times adds 7 to each of its pairs: add words[word], not 1",
    ),
    Check(
        "no pairs across words",
        0.5,
        lambda: _pairs_case({(10, 20): 1, (30, 40): 1, (50,): 4}),
        "pairs stay inside one word: the last id of a word and the first of the next "
        "are not a pair",
    ),
    Check(
        "single-id and empty words: no pairs",
        0.5,
        lambda: _pairs_case({(7,): 10, (): 3}),
        "a word of fewer than two ids has no pairs; with no pairs return an empty dict",
    ),
    Check(
        "merged ids (above 255) and multi-byte text",
        0.5,
        lambda: _pairs_case({**_words("héllo wörld 🙂🙂 日本語 " * 3), (300, 301, 300): 2}),
        "ids are any integers (merged tokens get ids from 256 up); count bytes of "
        "multi-byte characters like any others",
    ),
]


# --- merge ----------------------------------------------------------------------------------


def _merge_case(ids: list[int], pair: tuple[int, int], new_id: int) -> Case:
    return Case([list(ids), pair, new_id], merge(list(ids), pair, new_id))


MERGE_CHECKS = [
    Check(
        "a pair at the start, in the middle and at the end",
        0.5,
        lambda: _merge_case([1, 2, 5, 1, 2, 3, 1, 2], (1, 2), 256),
        "replace every occurrence, scanning left to right; the last two ids can be a "
        "pair too (loop while i + 1 < len(ids))",
    ),
    Check(
        "overlapping occurrences: [1, 1, 1] -> [9, 1]",
        0.5,
        lambda: _merge_case([1, 1, 1], (1, 1), 9),
        "after merging ids[i], ids[i+1], skip both (i += 2): occurrences must not overlap",
    ),
    Check(
        "a run of four: [7, 7, 7, 7, 7] -> [300, 300, 7]",
        0.5,
        lambda: _merge_case([7, 7, 7, 7, 7], (7, 7), 300),
        "scan from the left, skipping both ids of each merged pair",
    ),
    Check(
        "no occurrence leaves the ids unchanged",
        0.5,
        lambda: _merge_case([2, 1, 3, 2, 2], (1, 2), 256),
        "only the ordered pair (a, b) merges: (b, a) or a alone stay as they are; return a list",
    ),
    Check(
        "an empty list",
        0.5,
        lambda: _merge_case([], (1, 2), 256),
        "an empty list (or a single id) has no pair: return an empty (or the same) list",
    ),
    Check(
        "every occurrence in the bytes of a sentence",
        0.5,
        lambda: _merge_case(list(b"the cat, the hat and the bat"), (116, 104), 256),
        "replace every occurrence, not only the first one",
    ),
]


# --- train_bpe ------------------------------------------------------------------------------


def _train_case(text: str, vocab_size: int, special_tokens: list[str]) -> Case:
    vocab, merges = _trained(text, vocab_size, special_tokens)
    return Case([text, vocab_size, list(special_tokens)], (vocab, merges))


SENNRICH = ("low " * 5 + "lower " * 2 + "widest " * 3 + "newest " * 6).strip()

TRAIN_CHECKS = [
    Check(
        "a small text, 10 merges",
        1.0,
        lambda: _train_case(SENNRICH, 267, [EOT]),
        "count the pre-tokens, then repeat: count adjacent pairs weighted by word "
        "counts, merge the most frequent pair in every word, add it to vocab and merges",
    ),
    Check(
        "ties broken by the greater pair of bytes",
        0.5,
        lambda: _train_case("xy ab", 259, []),
        "among pairs of equal count merge max((vocab[a], vocab[b])) as bytes: the "
        "lexicographically greater pair, not the first found or the smaller",
    ),
    Check(
        "special tokens get ids 256.. and are never merged",
        0.5,
        lambda: _train_case(_stories(20, 1, sep=EOT), 300, [EOT, "<pad>"]),
        "vocab: 0..255 the bytes, then the special tokens in order, then one id per "
        "merge; split the text at special tokens first so no pair reaches into one",
    ),
    Check(
        "pre-tokenized: no merge across spaces or punctuation",
        0.5,
        lambda: _train_case("aa aa aa aa. bb, bb! aa bb", 262, []),
        "merge only inside the pre-tokens of GPT2_PATTERN (regex.findall), never across "
        "a space or punctuation",
    ),
    Check(
        "emoji and mixed scripts (multi-byte UTF-8)",
        0.5,
        lambda: _train_case("héllo wörld 🙂🙂 日本語 日本 " * 4, 280, []),
        "train on text.encode('utf-8') bytes of each pre-token, not on characters",
    ),
    Check(
        "a tiny text runs out of pairs before vocab_size",
        0.5,
        lambda: _train_case("ab ab", 300, [EOT]),
        "stop when no pair is left (the vocabulary is then smaller than vocab_size)",
    ),
    Check(
        "200 stories, 40 merges",
        0.5,
        lambda: _train_case(_stories(200, 7, sep=EOT), 297, [EOT]),
        "merges in order; each merge's pair counts come from the words after all earlier merges",
    ),
]


# --- encode ---------------------------------------------------------------------------------


def _encode_case(
    text: str, vocab: Vocab, merges: Merges, special_tokens: list[str] | None = None
) -> Case:
    expected = Tokenizer(vocab, merges, special_tokens).encode(text)
    kwargs = {} if special_tokens is None else {"special_tokens": list(special_tokens)}
    return Case([text, vocab, merges], expected, kwargs)


@cache
def _stories_bpe_cached(specials: tuple[str, ...]) -> tuple[Vocab, Merges]:
    return _trained(_stories(100, 3, sep=EOT), 256 + len(specials) + 60, list(specials))


def _stories_bpe(specials: list[str]) -> tuple[Vocab, Merges]:
    """60 merges learned on 100 stories (copies: the cached ones stay untouched)."""
    vocab, merges = _stories_bpe_cached(tuple(specials))
    return dict(vocab), list(merges)


def _story_case(text: str, specials: list[str] | None = None) -> Case:
    vocab, merges = _stories_bpe(specials or [EOT])
    return _encode_case(text, vocab, merges, specials)


ENCODE_CHECKS = [
    Check(
        "a sentence, with merges learned on stories",
        1.0,
        lambda: _story_case("Once upon a time, Lily saw a red ball in the park."),
        "pre-tokenize with GPT2_PATTERN, then within each pre-token start from its "
        "UTF-8 bytes and apply merges",
    ),
    Check(
        "the lowest-rank merge first, not the leftmost pair",
        0.5,
        lambda: _encode_case(
            "abc abcd", _byte_vocab(b"bc", b"ab", b"cd"), [(b"b", b"c"), (b"a", b"b"), (b"c", b"d")]
        ),
        "repeatedly merge the pair with the lowest rank (index in merges) anywhere in "
        "the pre-token, not the first mergeable pair from the left nor the longest "
        "vocabulary entry",
    ),
    Check(
        "special tokens map to their ids",
        0.5,
        lambda: _story_case(f"{EOT}The end.{EOT}{EOT}Tom", [EOT]),
        "split out the special tokens first; each becomes the single id of its bytes in vocab",
    ),
    Check(
        "overlapping special tokens: the longest wins",
        0.5,
        lambda: _story_case(f"a{EOT}{EOT}b{EOT}", [EOT, EOT + EOT]),
        "try longer special tokens first (sort by length, longest first)",
    ),
    Check(
        "no merge across pre-tokens",
        0.5,
        lambda: _encode_case(
            "the the, the",
            _byte_vocab(b"e ", b" t", b"th"),
            [(b"e", b" "), (b" ", b"t"), (b"t", b"h")],
        ),
        "apply merges within each pre-token of GPT2_PATTERN separately, never on the whole text",
    ),
    Check(
        "emoji, mixed scripts, contractions and whitespace runs",
        0.5,
        lambda: _story_case("Don't   stop 🙂 héllo 日本語\n\n  they're", None),
        "use GPT2_PATTERN with regex.findall (not str.split): it keeps spaces and "
        "splits contractions; unknown characters fall back to their bytes",
    ),
    Check(
        "the empty text",
        0.5,
        lambda: _story_case("", [EOT]),
        "the empty text has no tokens: return []",
    ),
]


# --- decode ---------------------------------------------------------------------------------


def _decode_case(ids: list[int], vocab: Vocab) -> Case:
    return Case([list(ids), vocab], Tokenizer(vocab, []).decode(ids))


def _story_round_trip(text: str) -> Case:
    vocab, merges = _stories_bpe([EOT])
    return _decode_case(Tokenizer(vocab, merges, [EOT]).encode(text), vocab)


DECODE_CHECKS = [
    Check(
        "ids of a sentence round trip",
        0.5,
        lambda: _story_round_trip("One day, Mia went to the beach with a kite."),
        "join the bytes vocab[i] of all ids, then decode the whole bytes string once",
    ),
    Check(
        "a character split across tokens (é = 0xC3 0xA9)",
        0.5,
        lambda: _decode_case([104, 0xC3, 0xA9, 256], _byte_vocab(b"llo")),
        "decode the concatenated bytes, not each token on its own: one character's "
        "bytes can sit in different tokens",
    ),
    Check(
        "invalid UTF-8 becomes U+FFFD",
        0.5,
        lambda: _decode_case([255, 104, 105, 0x80], _byte_vocab()),
        "bytes.decode('utf-8', errors='replace'): never raise on invalid bytes",
    ),
    Check(
        "a truncated character at the end",
        0.5,
        lambda: _decode_case([104, 0xF0, 0x9F, 0x99], _byte_vocab()),
        "decode with errors='replace' (a model can stop in the middle of a character)",
    ),
    Check(
        "no ids: the empty string",
        0.5,
        lambda: _decode_case([], _byte_vocab()),
        "an empty list of ids decodes to ''",
    ),
    Check(
        "merged tokens, emoji and spaces",
        0.5,
        lambda: _story_round_trip("Tom  and 🙂 the dog, 日本語!"),
        "concatenate the tokens' bytes with nothing in between (spaces are part of the "
        "tokens), then decode",
    ),
]


# --- split_special_tokens -------------------------------------------------------------------


def _split_case(text: str, special_tokens: list[str]) -> Case:
    pieces = [p for p, _ in split_special(text, special_pattern(special_tokens))]
    return Case([text, list(special_tokens)], pieces)


SPLIT_CHECKS = [
    Check(
        "one special token between two pieces",
        0.5,
        lambda: _split_case(f"Hello world.{EOT}Once upon a time", [EOT]),
        "return the text around each special token and the special token itself, in order",
    ),
    Check(
        "special tokens adjacent and at both edges",
        0.5,
        lambda: _split_case(f"{EOT}{EOT}a b{EOT}", [EOT]),
        "drop empty pieces: text that starts, ends or has two special tokens in a row "
        "gives no '' pieces",
    ),
    Check(
        "overlapping special tokens: the longest first",
        0.5,
        lambda: _split_case(f"x{EOT}{EOT}y{EOT}z", [EOT, EOT + EOT]),
        "match longer special tokens first: sort them by length, longest first, in the alternation",
    ),
    Check(
        "regex metacharacters in special tokens",
        0.5,
        lambda: _split_case("a[SEP]b.c*d[SEP]", ["[SEP]", ".c*"]),
        "escape the special tokens (regex.escape) before joining them with '|'",
    ),
    Check(
        "no special tokens: the whole text",
        0.5,
        lambda: _split_case("no special tokens here <|endoftext|>", []),
        "with an empty list of special tokens return [text] (an empty pattern would "
        "match everywhere)",
    ),
    Check(
        "the empty text: no pieces",
        0.5,
        lambda: _split_case("", [EOT]),
        "the empty text has no pieces: return []",
    ),
]


ITEMS: dict[str, Item] = {
    "tokenization.count_pairs": Item("count_pairs", COUNT_PAIRS_CHECKS, Signature("words")),
    "tokenization.merge": Item("merge", MERGE_CHECKS, Signature("ids, pair, new_id")),
    "tokenization.train_bpe": Item(
        "train_bpe", TRAIN_CHECKS, Signature("text, vocab_size, special_tokens")
    ),
    "tokenization.encode": Item(
        "encode", ENCODE_CHECKS, Signature("text, vocab, merges, special_tokens=None")
    ),
    "tokenization.decode": Item("decode", DECODE_CHECKS, Signature("ids, vocab")),
    "tokenization.split_special_tokens": Item(
        "split_special_tokens", SPLIT_CHECKS, Signature("text, special_tokens")
    ),
}
