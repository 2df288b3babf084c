"""Byte-level BPE training with incremental pair counts.

Each distinct pre-token (a "word") is a sequence of token ids with a count. The trainer
keeps the count of every adjacent pair over all words, and for each pair the words that
contain it. Merging the best pair then touches only those words: their old pairs are
subtracted and their new pairs added, instead of recounting the corpus. The best pair
comes from a max-heap with lazy deletion (an entry whose count is stale is skipped).

Tie-breaking (deterministic): among pairs of equal count, the lexicographically greater
pair of byte strings ``(vocab[a], vocab[b])`` is merged first (the convention of CS336's
tests; Hugging Face's trainer prefers the smaller pair of ids instead).
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections import defaultdict

from tqdm import tqdm

from reference_impl.tokenizer.pretokenize import count_file

Pair = tuple[int, int]


class _Key:
    """Heap key: higher count first, then the greater pair of byte strings."""

    __slots__ = ("count", "pair_bytes")

    def __init__(self, count: int, pair_bytes: tuple[bytes, bytes]) -> None:
        self.count, self.pair_bytes = count, pair_bytes

    def __lt__(self, other: _Key) -> bool:
        if self.count != other.count:
            return self.count > other.count
        return self.pair_bytes > other.pair_bytes


def _pairs(word: list[int]) -> list[Pair]:
    return list(itertools.pairwise(word))


def merge(word: list[int], pair: Pair, new_id: int) -> list[int]:
    """``word`` with every non-overlapping occurrence of ``pair``, left to right, replaced by
    ``new_id``: the one merge step of training and of encoding."""
    out, i, a, b = [], 0, pair[0], pair[1]
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


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
    words = [list(w.encode("utf-8")) for w in counts]
    freq = list(counts.values())

    pair_count: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for w, word in enumerate(words):
        for pair in _pairs(word):
            pair_count[pair] += freq[w]
            where[pair].add(w)
    heap = [(_Key(c, (vocab[p[0]], vocab[p[1]])), p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    show = progress if progress is not None else n_merges >= 2000
    bar = tqdm(total=n_merges, desc="BPE merges", disable=not show)
    while len(merges) < n_merges and heap:
        key, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != key.count or key.count <= 0:
            continue  # stale entry
        new_id = len(vocab)
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((vocab[pair[0]], vocab[pair[1]]))
        changed: set[Pair] = set()
        for w in list(where[pair]):
            old = words[w]
            new = merge(old, pair, new_id)
            for p in _pairs(old):
                pair_count[p] -= freq[w]
                where[p].discard(w)
                changed.add(p)
            for p in _pairs(new):
                pair_count[p] += freq[w]
                where[p].add(w)
                changed.add(p)
            words[w] = new
        del pair_count[pair], where[pair]
        changed.discard(pair)
        for p in changed:
            c = pair_count[p]
            if c > 0:
                heapq.heappush(heap, (_Key(c, (vocab[p[0]], vocab[p[1]])), p))
            else:
                del pair_count[p]
                where.pop(p, None)
        bar.update()
    bar.close()
    return vocab, merges
