"""Encoding and decoding with a trained byte-level BPE, and GPT-2's vocabulary files."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from functools import lru_cache

from reference_impl.tokenizer.bpe import Pair, merge
from reference_impl.tokenizer.pretokenize import PRETOKEN_RE, special_pattern, split_special

#: What a pair without a merge ranks as: after every real merge.
_NO_MERGE = (1 << 62, (-1, -1), -1)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (``vocab.json`` stores tokens
    as strings of these): printable Latin-1 bytes map to themselves, the rest to U+0100+."""
    keep = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def _gpt2_string_to_latin1() -> dict[int, int]:
    """A ``str.translate`` table from GPT-2's characters to the Latin-1 characters of their
    bytes; every other character below 256 goes to U+FFFF, which Latin-1 cannot encode."""
    table = dict.fromkeys(range(256), 0xFFFF)
    table.update({ord(c): b for b, c in bytes_to_unicode().items()})
    return table


def _from_gpt2_string(token: str) -> bytes:
    try:  # translate and encode run in C: loading GPT-2's 150,000 token strings is fast
        return token.translate(_gpt2_string_to_latin1()).encode("latin-1")
    except UnicodeEncodeError as e:
        raise ValueError(f"{token!r} is not a GPT-2 byte-level token") from e


def _to_gpt2_string(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


class Tokenizer:
    """Byte-level BPE: ``encode`` text -> ids, ``decode`` ids -> text.

    ``vocab`` maps id -> bytes, ``merges`` lists merged byte pairs in training order (a
    lower index merges first). ``special_tokens`` are never split; they are added to the
    vocabulary if missing, and where they overlap the longest one matches.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: list[str] | None = None,
    ) -> None:
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.special_tokens = list(dict.fromkeys(special_tokens or []))
        self.bytes_to_id = {b: i for i, b in self.vocab.items()}
        for token in self.special_tokens:
            if token.encode("utf-8") not in self.bytes_to_id:
                new_id = max(self.vocab, default=-1) + 1
                self.vocab[new_id] = token.encode("utf-8")
                self.bytes_to_id[token.encode("utf-8")] = new_id
        self.special_ids = {t: self.bytes_to_id[t.encode("utf-8")] for t in self.special_tokens}
        self._special_re = special_pattern(self.special_tokens)
        missing = [bytes([b]) for b in range(256) if bytes([b]) not in self.bytes_to_id]
        if missing:
            raise ValueError(
                f"the vocabulary lacks {len(missing)} single bytes, e.g. {missing[0]!r}"
            )
        self._byte_ids = [self.bytes_to_id[bytes([b])] for b in range(256)]
        self._ranks: dict[Pair, tuple[int, Pair, int]] = {}  # pair -> (rank, pair, merged)
        for rank, (a, b) in enumerate(self.merges):
            try:
                pair = (self.bytes_to_id[a], self.bytes_to_id[b])
                merged = self.bytes_to_id[a + b]
            except KeyError as e:
                raise ValueError(
                    f"merge {rank} {(a, b)!r} uses a token not in the vocabulary"
                ) from e
            self._ranks.setdefault(pair, (rank, pair, merged))
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_files(
        cls,
        vocab_path: str | os.PathLike[str],
        merges_path: str | os.PathLike[str],
        special_tokens: list[str] | None = None,
    ) -> Tokenizer:
        """Load GPT-2's format: ``vocab.json`` ({token string: id}) and ``merges.txt``
        (one "a b" pair per line, an optional ``#version`` header)."""
        with open(vocab_path, encoding="utf-8") as f:
            raw = json.load(f)
        vocab = {int(i): _from_gpt2_string(token) for token, i in raw.items()}
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip() or (n == 1 and line.startswith("#version")):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError(f"{merges_path}:{n}: expected two tokens, got {line!r}")
                merges.append((_from_gpt2_string(parts[0]), _from_gpt2_string(parts[1])))
        return cls(vocab, merges, special_tokens)

    def save(self, vocab_path: str | os.PathLike[str], merges_path: str | os.PathLike[str]) -> None:
        """Write GPT-2's format (readable by :meth:`from_files` and Hugging Face)."""
        with open(vocab_path, "w", encoding="utf-8") as f:
            json.dump(
                {_to_gpt2_string(b): i for i, b in sorted(self.vocab.items())},
                f,
                ensure_ascii=False,
            )
        with open(merges_path, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for a, b in self.merges:
                f.write(f"{_to_gpt2_string(a)} {_to_gpt2_string(b)}\n")

    def _bpe(self, pretoken: str) -> list[int]:
        """Merge the bytes of one pre-token: always the pair of lowest merge rank first.
        The ids are cached (a text repeats a few thousand pre-tokens most of the time)."""
        cached = self._cache.get(pretoken)
        if cached is not None:
            return cached
        word = [self._byte_ids[b] for b in pretoken.encode("utf-8")]
        while len(word) > 1:
            # The lowest (rank, pair, merged) of the word's pairs, looked up and compared in C.
            pairs = itertools.pairwise(word)
            rank, pair, merged = min(map(self._ranks.get, pairs, itertools.repeat(_NO_MERGE)))
            if rank == _NO_MERGE[0]:
                break
            word = merge(word, pair, merged)
        if len(self._cache) < 100_000:
            self._cache[pretoken] = word
        return word

    def _encode_plain(self, text: str, ids: list[int]) -> None:
        """Append the ids of ``text`` (no special tokens in it) to ``ids``."""
        cache = self._cache  # looked up here first: most pre-tokens are cache hits
        for pretoken in PRETOKEN_RE.findall(text):
            ids += cache.get(pretoken) or self._bpe(pretoken)  # cached ids are never []

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        ids: list[int] = []
        for piece, is_special in split_special(text, self._special_re):
            if is_special:
                ids.append(self.special_ids[piece])
            else:
                self._encode_plain(piece, ids)
        return ids

    def _special_tail(self, buf: str) -> int:
        """Where the end of ``buf`` that could still grow into a special token starts."""
        longest = max((len(t) for t in self.special_tokens), default=0)
        for p in range(max(0, len(buf) - longest + 1), len(buf)):
            tail = buf[p:]
            if any(len(tail) < len(t) and t.startswith(tail) for t in self.special_tokens):
                return p
        return len(buf)

    def _encode_prefix(self, buf: str) -> tuple[list[int], int]:
        """Ids of the longest start of ``buf`` that later text cannot change, and its length.

        Held back: an end that could still grow into a special token (and any special
        match reaching into it, which a longer special token might replace), and the last
        two pre-tokens before that, since the regex's choice for them may depend on what
        follows (``"don'"`` + ``"t"``; a whitespace run before a word).
        """
        hold = self._special_tail(buf)
        ids: list[int] = []
        pos, end = 0, hold
        if self._special_re is not None:
            for m in self._special_re.finditer(buf):
                if m.end() > hold:
                    end = min(m.start(), hold)
                    break
                self._encode_plain(buf[pos : m.start()], ids)
                ids.append(self.special_ids[m[0]])
                pos = m.end()
        matches = list(PRETOKEN_RE.finditer(buf, pos, end))
        if len(matches) <= 2:
            return ids, pos
        for m in matches[:-2]:
            ids.extend(self._bpe(m[0]))
        return ids, matches[-2].start()

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        """Ids of ``"".join(iterable)``, produced lazily: memory stays bounded by the longest
        chunk and pre-token, whatever the input's size (e.g. a file object, line by line)."""
        buf = ""
        for chunk in iterable:
            buf += chunk
            ids, used = self._encode_prefix(buf)
            yield from ids
            buf = buf[used:]
        yield from self.encode(buf)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD, never an error."""
        try:
            data = b"".join(self.vocab[i] for i in ids)
        except KeyError as e:
            raise ValueError(f"token id {e.args[0]} is not in the vocabulary") from None
        return data.decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return len(self.vocab)
