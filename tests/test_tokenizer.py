"""The reference BPE tokenizer: GPT-2 parity with Hugging Face ``tokenizers`` id for id,
round trips, streaming, and training checked against a naive trainer, Hugging Face's
trainer and sentencepiece."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.tokenizer import Tokenizer, train_bpe
from reference_impl.tokenizer.bpe import merge_words
from reference_impl.tokenizer.pretokenize import (
    GPT2_PATTERN,
    PRETOKEN_RE,
    count_file,
    count_pretokens,
)
from reference_impl.tokenizer.tokenizer import _from_gpt2_string

from .conftest import SHARED_DATA

GPT2 = SHARED_DATA / "gpt2"
TEXT = SHARED_DATA / "text"
EOT = "<|endoftext|>"
needs_data = pytest.mark.skipif(not GPT2.is_dir(), reason=f"no course data at {SHARED_DATA}")

EDGE_CASES = [
    "",
    " ",
    "a",
    "hello world",
    "Hello, World!",
    "emoji 🙂👍🏽 and 🇫🇷 flags",
    "日本語とEnglishとРусский текст and العربية",
    "   lots    of   space\n\n\n  \t ",
    "trailing space ",
    "\n",
    "1234567890 3.14159 1,000,000 2nd",
    "don't we'll I'm you're they've",
    "DON'T 'S 'll",
    "tabs\tand\r\nwindows lines",
    "ＦＵＬＬ ｗｉｄｔｈ",
    "\u200b zero width",
    f"{EOT}",
    f"{EOT}{EOT}",
    f"a{EOT}b",
    f"<|endoftext{EOT}|>",
    f"{EOT[:-1]} not special",
    "a" * 500,
    " " * 300 + "x",
]


@cache
def gpt2() -> Tokenizer:
    return Tokenizer.from_files(GPT2 / "gpt2_vocab.json", GPT2 / "gpt2_merges.txt", [EOT])


@cache
def hf_gpt2():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    hf = HFTokenizer(
        models.BPE.from_file(str(GPT2 / "gpt2_vocab.json"), str(GPT2 / "gpt2_merges.txt"))
    )
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([EOT])
    return hf


def texts() -> list[Path]:
    return sorted(TEXT.iterdir()) if TEXT.is_dir() else []


@needs_data
@pytest.mark.parametrize("path", texts(), ids=lambda p: p.name)
def test_gpt2_parity_on_course_texts(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    ids = gpt2().encode(text)
    assert ids == hf_gpt2().encode(text).ids
    assert gpt2().decode(ids) == text


@needs_data
@pytest.mark.parametrize("text", EDGE_CASES)
def test_gpt2_parity_on_edge_cases(text: str) -> None:
    assert gpt2().encode(text) == hf_gpt2().encode(text).ids
    assert gpt2().decode(gpt2().encode(text)) == text


@needs_data
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_gpt2_parity_and_round_trip_on_any_unicode(text: str) -> None:
    ids = gpt2().encode(text)
    assert ids == hf_gpt2().encode(text).ids
    assert gpt2().decode(ids) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("'sdmtlvre aé1 \n\t.🙂’")), max_size=60) | st.text())
def test_the_factored_pattern_matches_what_gpt2s_pattern_matches(text: str) -> None:
    assert PRETOKEN_RE.findall(text) == regex.compile(GPT2_PATTERN).findall(text)


@needs_data
@pytest.mark.parametrize("name", ["tinyshakespeare.txt", "corpus.en", "german.txt"])
def test_the_factored_pattern_matches_gpt2s_on_course_texts(name: str) -> None:
    text = (TEXT / name).read_text(encoding="utf-8")
    assert PRETOKEN_RE.findall(text) == regex.compile(GPT2_PATTERN).findall(text)


@needs_data
@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab '’\n\t.1🙂<|endoftext>")), max_size=60),
    st.lists(st.integers(0, 60), max_size=8),
)
def test_encode_iterable_equals_encode_however_cut(text: str, cuts: list[int]) -> None:
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    assert list(gpt2().encode_iterable(chunks)) == gpt2().encode(text)


@needs_data
def test_encode_iterable_is_lazy_on_an_endless_stream() -> None:
    def lines():  # never ends: only a lazy encoder can return
        for n in itertools.count():
            yield f"Line {n}: the cat sat on the mat.\n"

    first = list(itertools.islice(gpt2().encode_iterable(lines()), 1000))
    text = "".join(itertools.islice(lines(), 200))
    assert first == gpt2().encode(text)[:1000]


@needs_data
def test_encode_iterable_reads_a_file_line_by_line() -> None:
    path = TEXT / "tinyshakespeare.txt"
    with path.open(encoding="utf-8") as f:
        streamed = list(gpt2().encode_iterable(f))
    assert streamed == gpt2().encode(path.read_text(encoding="utf-8"))


@needs_data
def test_decode_replaces_invalid_utf8_and_rejects_unknown_ids() -> None:
    tok = gpt2()
    half = tok.bytes_to_id[b"\xe6"]  # the first byte of a three-byte character
    assert tok.decode([half]) == "\ufffd"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([10**9])


def test_overlapping_special_tokens_match_longest_first() -> None:
    vocab = {i: bytes([i]) for i in range(256)}
    tok = Tokenizer(vocab, [], special_tokens=[EOT, EOT + EOT])
    double, single = tok.special_ids[EOT + EOT], tok.special_ids[EOT]
    assert tok.encode(EOT * 3) == [double, single]
    assert list(tok.encode_iterable([EOT, EOT, "x"])) == [double, ord("x")]


# --- training --------------------------------------------------------------------------


def naive_train(text: str, vocab_size: int, special: list[str]) -> list[tuple[bytes, bytes]]:
    """Recount every pair after every merge: slow and obviously right."""
    words = Counter(
        {
            tuple(bytes([b]) for b in w.encode()): c
            for w, c in count_pretokens(text, special).items()
        }
    )
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < vocab_size - 256 - len(special):
        pairs: Counter[tuple[bytes, bytes]] = Counter()
        for word, c in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += c
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        new: Counter[tuple[bytes, ...]] = Counter()
        for word, c in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    return merges


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([*"aab bcd\n!é🙂", EOT]), max_size=120).map("".join))
def test_training_equals_the_naive_trainer(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("bpe") / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    vocab, merges = train_bpe(path, 300, [EOT])
    assert merges == naive_train(text, 300, [EOT])
    assert vocab[256] == EOT.encode()
    assert [vocab[257 + i] for i in range(len(merges))] == [a + b for a, b in merges]


@needs_data
def test_training_on_real_text_equals_the_naive_trainer() -> None:
    path = TEXT / "tinystories_sample.txt"
    _, merges = train_bpe(path, 400, [EOT])
    assert len(merges) == 400 - 257
    assert merges == naive_train(path.read_text(encoding="utf-8"), 400, [EOT])


@needs_data
@pytest.mark.parametrize(
    ("name", "vocab_size", "digest"),
    [("corpus.en", 500, "dcd99d49f9687d7f"), ("tinyshakespeare.txt", 5000, "ed7423aa6ccc9004")],
)
def test_training_merges_are_pinned_on_real_text(name: str, vocab_size: int, digest: str) -> None:
    """The exact merges (a hash of them) of the bench's two trainings: a faster trainer
    must not change a single merge or its order, ties included."""
    _, merges = train_bpe(TEXT / name, vocab_size, [EOT], progress=False)
    assert len(merges) == vocab_size - 257
    assert hashlib.sha256(repr(merges).encode()).hexdigest()[:16] == digest


@given(st.text(alphabet="abc", max_size=12), st.integers(1, 5))
def test_merge_words_reports_exactly_how_the_pair_counts_change(word: str, f: int) -> None:
    def pairs(w: str) -> Counter[str]:
        return Counter(w[i : i + 2] for i in range(len(w) - 1))

    for pair in ("ab", "aa"):
        words, where = [word, "c"], defaultdict(set, {pair: {0, 1}})  # "c" listed but stale
        delta = merge_words(words, [f, 7], where, pair, "N")
        merged = word.replace(pair, "N")
        assert words == [merged, "c"]
        change = pairs(merged)
        change.subtract(pairs(word))
        assert {p: d for p, d in delta.items() if d} == {p: f * d for p, d in change.items() if d}
        assert all(where[p] == {0} for p in pairs(merged) if "N" in p)  # listed under its gains
        assert pair not in where


def test_special_tokens_are_never_merged_across(tmp_path: Path) -> None:
    path = tmp_path / "docs.txt"
    path.write_text(f"ab{EOT}ba{EOT}" * 50, encoding="utf-8")
    vocab, merges = train_bpe(path, 270, [EOT])
    assert all(b"<" not in a + b and b"|" not in a + b for a, b in merges), merges
    assert sorted(vocab.values()).count(EOT.encode()) == 1


def test_training_rejects_a_vocab_too_small(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="smaller than 256 bytes"):
        train_bpe(path, 256, [EOT])


@needs_data
def test_parallel_pretokenization_counts_the_same(tmp_path: Path) -> None:
    text = (TEXT / "tinystories_sample.txt").read_text(encoding="utf-8")
    path = tmp_path / "docs.txt"
    path.write_text(EOT.join([text] * 6), encoding="utf-8")
    assert count_file(path, [EOT], num_processes=2) == count_file(path, [EOT], num_processes=1)
    assert train_bpe(path, 300, [EOT], num_processes=2) == train_bpe(
        path, 300, [EOT], num_processes=1
    )


@needs_data
def test_saved_tokenizer_loads_in_hugging_face_with_the_same_ids(tmp_path: Path) -> None:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    vocab, merges = train_bpe(TEXT / "corpus.en", 500, [EOT])
    ours = Tokenizer(vocab, merges, [EOT])
    ours.save(tmp_path / "vocab.json", tmp_path / "merges.txt")
    again = Tokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt", [EOT])
    assert again.vocab == ours.vocab and again.merges == ours.merges
    hf = HFTokenizer(
        models.BPE.from_file(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    )
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.add_special_tokens([EOT])
    text = (TEXT / "tinystories_sample.txt").read_text(encoding="utf-8") + EOT + "Ünïcödé 🙂"
    assert ours.encode(text) == hf.encode(text).ids


def hf_train(path: Path, vocab_size: int) -> list[tuple[bytes, bytes]]:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.train(
        [str(path)],
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOT],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    raw = json.loads(hf.to_str())["model"]["merges"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in raw]
    return [(_from_gpt2_string(a), _from_gpt2_string(b)) for a, b in pairs]


@needs_data
def test_training_agrees_with_hugging_face_up_to_ties() -> None:
    """Both trainers merge the most frequent pair; they break ties differently (we take the
    greater pair of bytes, Hugging Face the smaller pair of ids). So the merge lists agree
    until the first tie, and there the two choices have exactly the same count."""
    path = TEXT / "corpus.en"
    _, ours = train_bpe(path, 500, [EOT])
    theirs = hf_train(path, 500)
    assert len(ours) == len(theirs) == 243
    k = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
    assert k >= 10
    counts = Counter()  # pair counts after the k shared merges
    words = {w: c for w, c in count_pretokens(path.read_text(encoding="utf-8"), [EOT]).items()}
    for word, c in words.items():
        parts = [bytes([b]) for b in word.encode()]
        for a, b in ours[:k]:
            i = 0
            while i < len(parts) - 1:
                if (parts[i], parts[i + 1]) == (a, b):
                    parts[i : i + 2] = [a + b]
                i += 1
        for pair in itertools.pairwise(parts):
            counts[pair] += c
    assert counts[ours[k]] == counts[theirs[k]] == max(counts.values())
    assert ours[k] > theirs[k]  # our tie-break: the greater pair of bytes
    assert len(set(ours) & set(theirs)) / len(ours) > 0.95


@needs_data
def test_training_shares_most_pieces_with_sentencepiece(tmp_path: Path) -> None:
    """sentencepiece's BPE merges characters, not bytes, with "▁" for a space, and cuts
    words by Unicode script rather than GPT-2's regex. Given as many merges as it made,
    our trainer learns almost the same pieces (94% on corpus.en; the rest are mostly
    pieces that mix digits and punctuation, which GPT-2's regex keeps apart)."""
    import sentencepiece as spm

    path = TEXT / "corpus.en"
    spm.SentencePieceTrainer.train(
        input=str(path),
        model_prefix=str(tmp_path / "sp"),
        vocab_size=500,
        model_type="bpe",
        character_coverage=1.0,
        minloglevel=2,
        num_threads=1,
    )
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "sp.model"))
    pieces = [sp.id_to_piece(i).replace("▁", " ") for i in range(sp.get_piece_size())]
    theirs = {p for p in pieces if len(p) > 1 and not p.startswith("<")}  # merged pieces
    vocab, _ = train_bpe(path, 257 + len(theirs), [EOT])
    ours = {b.decode("utf-8", errors="replace") for b in vocab.values()}
    shared = len(theirs & ours) / len(theirs)
    assert shared > 0.9, f"only {shared:.0%} of sentencepiece's pieces are ours"
