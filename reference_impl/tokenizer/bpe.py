"""Byte-level BPE training with incremental pair counts.

Each distinct pre-token (a "word") has a count, and is stored as a ``str`` whose
characters are token ids (``chr(id)``): the 256 bytes are the Latin-1 characters, so a
word starts as its UTF-8 bytes decoded as Latin-1, a pair of tokens is a 2-character
string, and merging a pair everywhere in a word is one ``str.replace`` (run in C).

The trainer keeps the count of every adjacent pair over all words, and for each pair the
words that may contain it. Merging the best pair then touches only those words, and in
them only the pairs next to each occurrence change: ``x a b y`` loses ``(x, a)``,
``(a, b)`` and ``(b, y)`` and gains ``(x, ab)`` and ``(ab, y)``. The best pair comes from a
heap with lazy deletion: a pair whose count changed is pushed again, and an entry whose
count is stale is skipped when it comes out.

Tie-breaking (deterministic): among pairs of equal count, the lexicographically greater
pair of byte strings ``(vocab[a], vocab[b])`` is merged first (the convention of CS336's
tests; Hugging Face's trainer prefers the smaller pair of ids instead).
"""

from __future__ import annotations

import heapq
import os
from collections import defaultdict

from tqdm import tqdm

from reference_impl.tokenizer.pretokenize import count_file

Pair = tuple[int, int]
#: A heap entry: (-count, descending keys of the pair's two tokens, the pair as a str).
Entry = tuple[int, str, str, str]

_COMPLEMENT = bytes(range(255, -1, -1))


def merge(word: list[int], pair: Pair, new_id: int) -> list[int]:
    """``word`` with every non-overlapping occurrence of ``pair``, left to right, replaced by
    ``new_id``: the one merge step of encoding (training does it with ``str.replace``)."""
    out, i, n, (a, b) = [], 0, len(word), pair
    while i < n:
        if word[i] == a and i + 1 < n and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def descending_key(token: bytes) -> str:
    """A string that sorts in the reverse order of ``token``: each byte x becomes the
    character 255 - x, then a U+0100 end marker (so a prefix sorts after its extensions).
    It lets Python's built-in tuple comparison order the heap (a ``__lt__`` written in
    Python would be called about a million times)."""
    return token.translate(_COMPLEMENT).decode("latin-1") + "\u0100"


def count_pairs(words: list[str], freq: list[int]) -> tuple[dict[str, int], dict[str, set[int]]]:
    """How often each adjacent pair occurs (weighted by word counts), and the indices of
    the words that contain it."""
    pair_count: dict[str, int] = defaultdict(int)
    where: dict[str, set[int]] = defaultdict(set)
    for w, (word, f) in enumerate(zip(words, freq, strict=True)):
        for i in range(len(word) - 1):
            pair_count[word[i : i + 2]] += f
            where[word[i : i + 2]].add(w)
    return pair_count, where


def merge_words(
    words: list[str], freq: list[int], where: dict[str, set[int]], pair: str, new: str
) -> dict[str, int]:
    """Merge ``pair`` into the token ``new`` in every word listed under it, in place, listing
    each word under the pairs it gains; returns how the count of each pair changed.

    Around each occurrence, ``x a b y`` becomes ``x new y``: ``(x, a)``, ``(a, b)`` and
    ``(b, y)`` are lost, ``(x, new)`` and ``(new, y)`` gained. Two adjacent occurrences
    ``a b a b`` turn ``(b, a)`` into ``(new, new)``. This is the trainer's inner loop, written
    as one loop: a helper called per word cost a tenth of the training time."""
    delta: dict[str, int] = defaultdict(int)
    a, b = pair[0], pair[1]
    for w in where.pop(pair):
        word = words[w]
        if pair not in word:
            continue  # the word lost the pair to an earlier merge (it stays listed)
        merged = words[w] = word.replace(pair, new)
        f = freq[w]
        j = merged.find(new)
        while j >= 0:
            delta[pair] -= f
            if j:
                left = merged[j - 1]
                delta[(b if left == new else left) + a] -= f
                gained = left + new
                delta[gained] += f
                where[gained].add(w)
            right = merged[j + 1 : j + 2]
            if right and right != new:
                delta[b + right] -= f
                gained = new + right
                delta[gained] += f
                where[gained].add(w)
            j = merged.find(new, j + 1)
    return delta


def pop_best(heap: list[Entry], pair_count: dict[str, int]) -> str | None:
    """The pair of highest count (ties: the greater bytes), or None when none is left."""
    while heap:
        neg, _, _, pair = heapq.heappop(heap)
        if pair_count.get(pair) == -neg:
            return pair
    return None


def train_bpe(
    input_path: str | os.PathLike[str],
    vocab_size: int,
    special_tokens: list[str],
    num_processes: int | None = None,
    progress: bool | None = None,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train a byte-level BPE tokenizer on the UTF-8 text file ``input_path``.

    Returns ``(vocab, merges)``: ``vocab`` maps id -> bytes (0..255 the single bytes, then
    ``special_tokens``, then one id per merge), ``merges`` lists the merged byte pairs in
    order. ``vocab_size`` counts all three; training stops early if no pair is left.
    ``num_processes`` (default: 1 below 4 MB, else up to 8) count pre-tokens in parallel;
    ``progress`` (default: when there are 2,000 merges or more) shows a tqdm bar.
    """
    special_tokens = list(dict.fromkeys(special_tokens))
    n_merges = vocab_size - 256 - len(special_tokens)
    if n_merges < 0:
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than 256 bytes + {len(special_tokens)} "
            "special tokens"
        )
    if num_processes is None:
        big = os.path.getsize(input_path) > 4 << 20
        num_processes = min(8, os.cpu_count() or 1) if big else 1
    counts = count_file(input_path, special_tokens, num_processes)

    vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
    for token in special_tokens:
        vocab[len(vocab)] = token.encode("utf-8")
    keys = {chr(i): descending_key(b) for i, b in vocab.items()}  # by token character
    words = [w.encode("utf-8").decode("latin-1") for w in counts]
    freq = list(counts.values())
    pair_count, where = count_pairs(words, freq)
    heap = [(-c, keys[p[0]], keys[p[1]], p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    show = progress if progress is not None else n_merges >= 2000
    for _ in tqdm(range(n_merges), desc="BPE merges", disable=not show):
        pair = pop_best(heap, pair_count)
        if pair is None:
            break
        a, b = vocab[ord(pair[0])], vocab[ord(pair[1])]
        new = chr(len(vocab))
        vocab[len(vocab)] = a + b
        keys[new] = descending_key(a + b)
        merges.append((a, b))
        for p, d in merge_words(words, freq, where, pair, new).items():
            if d:
                count = pair_count[p] = pair_count[p] + d
                if count > 0:
                    heapq.heappush(heap, (-count, keys[p[0]], keys[p[1]], p))
    return vocab, merges
