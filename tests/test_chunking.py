"""Chunking with the real e5 tokenizer: budgets, offsets, overlap, unspaced scripts."""

from __future__ import annotations

import pytest

from xsearch.chunking import chunk_text
from xsearch.embedders import get_embedder


@pytest.fixture(scope="module")
def count():
    return get_embedder().count_content_tokens


TEXT = (
    "Bread needs flour, water and salt. The dough rises overnight! Bake it hot.\n\n"
    "नमस्ते। यह एक वाक्य है। दूसरा वाक्य यहाँ है।\n"
    "面包需要面粉。发酵需要时间。烤箱要预热。\n"
    "ዳቦ ለመጋገር ዱቄት ያስፈልጋል። እርሾም ያስፈልጋል።\n"
) * 8


def test_chunks_fit_budget_and_point_back_into_the_text(count):
    chunks = chunk_text(TEXT, count, max_tokens=40, overlap_tokens=0)
    assert len(chunks) > 5
    for c in chunks:
        assert TEXT[c.start : c.end] == c.text
        assert c.text == c.text.strip()
        assert c.n_tokens == count(c.text)
        assert c.n_tokens <= 42  # sentence sums can differ by a token at joins
    # Without overlap, passages are in order and do not overlap.
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))
    # Every non-blank character is covered.
    covered = sum(c.end - c.start for c in chunks)
    assert covered >= len(TEXT.replace("\n\n", "")) * 0.9


def test_overlap_repeats_trailing_sentences(count):
    chunks = chunk_text(TEXT, count, max_tokens=40, overlap_tokens=15)
    overlaps = [a.end > b.start for a, b in zip(chunks, chunks[1:], strict=False)]
    assert any(overlaps)
    assert all(b.start > a.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_unspaced_and_over_long_text_is_cut(count):
    zh = "太阳能电池板把阳光变成电力村庄里的学校和诊所都用上了电" * 40
    chunks = chunk_text(zh, count, max_tokens=64)
    assert len(chunks) > 3
    assert all(c.n_tokens <= 64 for c in chunks)
    assert "".join(c.text for c in chunks) == zh
    blob = "x" * 5000  # one "word" longer than any budget
    assert all(c.n_tokens <= 64 for c in chunk_text(blob, count, max_tokens=64))


def test_blank_text_has_no_chunks(count):
    assert chunk_text("   \n\n  ", count) == []
    with pytest.raises(ValueError):
        chunk_text("text", count, max_tokens=2)


def test_a_text_that_fits_whole_is_one_passage_counted_once(count):
    text = "  " + TEXT[:300] + "\n"
    calls = []

    def counting(t: str) -> int:
        calls.append(t)
        return count(t)

    budget = count(text.strip())
    chunks = chunk_text(text, counting, max_tokens=budget)
    assert [(c.text, c.n_tokens) for c in chunks] == [(text.strip(), budget)]
    assert chunks[0].start == 2 and text[chunks[0].start:chunks[0].end] == chunks[0].text
    assert calls == [text.strip()]
    # One token less and it is cut, every piece within the budget.
    cut = chunk_text(text, count, max_tokens=budget - 1)
    assert len(cut) >= 2 and all(c.n_tokens <= budget - 1 for c in cut)
