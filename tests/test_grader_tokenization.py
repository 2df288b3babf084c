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
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from autograder.checks import Check
from autograder.graders import ITEMS
from autograder.graders.tokenization import (
    COUNT_PAIRS_CHECKS,
    DECODE_CHECKS,
    ENCODE_CHECKS,
    MERGE_CHECKS,
    SPLIT_CHECKS,
    TRAIN_CHECKS,
)
from autograder.harness import CellReport, grade_notebook
from autograder.sandbox import Limits
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

SOURCE = REPO / "source/part4_training/tokenization.ipynb"
LIMITS = Limits(step_timeout=8.0, memory_bytes=3 << 30)

# solution cell -> (its test cell, its item, the cell's points, answers)
EXERCISES = {
    "count_pairs": ("count_pairs_tests", "tokenization.count_pairs", 3.0, COUNT_PAIRS_MISTAKES),
    "merge": ("merge_tests", "tokenization.merge", 3.0, MERGE_MISTAKES),
    "split_special": ("split_special_tests", "tokenization.split_special_tokens", 3.0,
                      SPLIT_MISTAKES),
    "train_bpe": ("train_bpe_tests", "tokenization.train_bpe", 4.0, TRAIN_MISTAKES),
    "encode": ("encode_tests", "tokenization.encode", 4.0, ENCODE_MISTAKES),
    "decode": ("decode_tests", "tokenization.decode", 3.0, DECODE_MISTAKES),
}  # fmt: skip
ANSWERS = [(cell, name) for cell, ex in EXERCISES.items() for name in ex[3]]
RUNS = max(len(ex[3]) for ex in EXERCISES.values())

Reports = dict[str, CellReport]


def failed(cell: CellReport) -> dict[str, str]:
    return {c.name: c.message for c in cell.checks if not c.passed}


@pytest.fixture(scope="module")
def source_report() -> Reports:
    return {c.grade_id: c for c in grade_notebook(SOURCE, LIMITS).cells}


@pytest.fixture(scope="module")
def graded_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Reports]:
    """Run k of the answers, graded once and kept for the module."""
    cache: dict[int, Reports] = {}

    def run(k: int) -> Reports:
        if k not in cache:
            nb = nbformat.read(str(SOURCE), as_version=4)
            for cell in nb.cells:
                ex = EXERCISES.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
                if ex is not None and k < len(ex[3]):
                    cell.source = list(ex[3].values())[k][0]
            path = Path(tmp_path_factory.mktemp(f"run{k}")) / "tokenization.ipynb"
            nbformat.write(nb, str(path))
            cache[k] = {c.grade_id: c for c in grade_notebook(path, LIMITS).cells}
        return cache[k]

    return run


def test_source_notebook_gets_full_marks(source_report: Reports) -> None:
    assert set(source_report) == {ex[0] for ex in EXERCISES.values()}
    for test_cell, item, points, _ in EXERCISES.values():
        cell = source_report[test_cell]
        assert cell.item == item
        assert cell.max_points == points == ITEMS[item].points
        assert cell.points == points and not cell.flags and not cell.error, failed(cell)


def test_items_have_five_checks_or_more() -> None:
    for _, item, _, answers in EXERCISES.values():
        assert len(ITEMS[item].checks) >= 5
        assert all(0.5 <= c.points <= 1.0 and c.hint for c in ITEMS[item].checks)
        assert sum(1 for _, pts, _ in answers.values() if pts < ITEMS[item].points) >= 3


@pytest.mark.parametrize(("cell", "name"), ANSWERS, ids=[f"{c}-{n}" for c, n in ANSWERS])
def test_answers_score_exactly(graded_run: Callable[[int], Reports], cell: str, name: str) -> None:
    test_cell, _, _, answers = EXERCISES[cell]
    _, expected, message = answers[name]
    report = graded_run(list(answers).index(name))[test_cell]
    assert report.points == expected, failed(report)
    assert not report.flags and not report.error, (report.flags, report.error)
    if message is not None:
        assert any(message in m for m in failed(report).values()), failed(report)


def test_untouched_cells_keep_full_marks(graded_run: Callable[[int], Reports]) -> None:
    for k in range(RUNS):
        for test_cell, _, points, answers in EXERCISES.values():
            if k >= len(answers):
                assert graded_run(k)[test_cell].points == points


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
    replaced = data.replace(a.to_bytes(2, "big") + b.to_bytes(2, "big"),
                            marker.to_bytes(2, "big") * 2)  # fmt: skip
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

    model = models.BPE({as_str(t): i for i, t in vocab.items()},
                       [(as_str(a), as_str(b)) for a, b in merges])  # fmt: skip
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
