"""Split a document's text into passages that fit a model's token budget.

Passages are built from sentences (and lines), packed greedily up to the budget, with an
optional overlap carried into the next passage. Every passage keeps its character span in the
source text, so a hit can point back to where it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Sentence ends: Latin/Cyrillic punctuation, Devanagari danda, Ethiopic full stop, Arabic and
# Urdu stops, CJK full-width stops (which need no following space).
_SENTENCE_END = re.compile(
    r"(?<=[.!?;:…])[\"'”’»)\]]*\s+"
    r"|(?<=[।॥።፧؟۔])\s*"
    r"|(?<=[。！？；])\s*"
    r"|\n\s*"
)
_WORD = re.compile(r"\S+\s*")
#: Texts up to this many characters per token of the budget are first counted whole. e5's
#: tokenizer averages 1.35 (Chinese) to 4.6 (Indonesian) characters a token on SIB-200: a
#: longer text seldom fits, and counting it whole first would only add a count (SIB-200 in
#: files of ten sentences, 1,000-1,500 characters, cost 20% more counting at 6).
_WHOLE_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Chunk:
    """A passage: ``text == source[start:end]``."""

    start: int
    end: int
    text: str
    n_tokens: int


def _segments(text: str) -> list[tuple[int, int]]:
    """Sentence-like spans covering the non-blank parts of ``text``."""
    spans = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() <= pos:
            continue
        spans.append((pos, m.end()))
        pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _split_long(
    text: str, start: int, end: int, budget: int, count: Callable[[str], int]
) -> list[tuple[int, int]]:
    """Split one over-long span at word boundaries, or at characters for unspaced scripts."""
    words = [(start + m.start(), start + m.end()) for m in _WORD.finditer(text[start:end])]
    if len(words) <= 1 or (end - start) / max(len(words), 1) > 40:
        # Unspaced script (or one giant token): cut by characters, halving until it fits.
        pieces, pos = [], start
        while pos < end:
            size = min(end - pos, budget * 4)
            while size > 1 and count(text[pos : pos + size]) > budget:
                size = size * 3 // 4
            pieces.append((pos, pos + size))
            pos += size
        return pieces
    pieces, cur_start, cur_tokens = [], words[0][0], 0
    for a, b in words:
        n = count(text[a:b])
        if cur_tokens and cur_tokens + n > budget:
            pieces.append((cur_start, a))
            cur_start, cur_tokens = a, 0
        if n > budget:  # a single "word" longer than the budget (a URL, a base64 blob...)
            pieces.extend(_split_long(text, a, b, budget, count) if b - a > 1 else [(a, b)])
            cur_start, cur_tokens = b, 0
            continue
        cur_tokens += n
    if cur_start < end:
        pieces.append((cur_start, end))
    return [(a, b) for a, b in pieces if b > a]


def chunk_text(
    text: str,
    count_tokens: Callable[[str], int],
    max_tokens: int = 256,
    overlap_tokens: int = 0,
) -> list[Chunk]:
    """Split ``text`` into passages of at most ``max_tokens`` content tokens.

    ``count_tokens`` counts a string's tokens without special tokens or prefixes; the caller
    subtracts those from the model limit. ``overlap_tokens`` of trailing sentences are repeated
    at the start of the next passage.
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap_tokens = max(0, min(overlap_tokens, max_tokens // 2))
    if len(text) <= max_tokens * _WHOLE_CHARS_PER_TOKEN:
        # A text that fits whole is one passage, counted once. Counted sentence by sentence
        # it may not fit: each sentence counts its own word-start token (with a budget of
        # 230, 12 of data/corpus's 71 texts, of 205-222 tokens, added up to 232-246 and were
        # cut into a passage and a short overlapping tail). And one count instead of one per
        # sentence and one per passage: the counts are what indexing waits for once the
        # tokenizer has loaded.
        whole = _make_chunk(text, 0, len(text), count_tokens)
        if whole.n_tokens <= max_tokens:
            return [whole] if whole.text else []
    units: list[tuple[int, int, int]] = []
    for a, b in _segments(text):
        n = count_tokens(text[a:b])
        if n <= max_tokens:
            units.append((a, b, n))
        else:
            units.extend((x, y, count_tokens(text[x:y]))
                         for x, y in _split_long(text, a, b, max_tokens, count_tokens))

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + units[j][2] <= max_tokens):
            total += units[j][2]
            j += 1
        chunks.append(_make_chunk(text, units[i][0], units[j - 1][1], count_tokens))
        if j >= len(units):
            break
        # Step back over trailing units for the overlap, but always move forward.
        back, carried = j, 0
        while overlap_tokens and back - 1 > i and carried + units[back - 1][2] <= overlap_tokens:
            back -= 1
            carried += units[back][2]
        i = back
    return chunks


def _make_chunk(text: str, start: int, end: int, count: Callable[[str], int]) -> Chunk:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    start, end = start + lead, end - trail
    body = text[start:end]
    return Chunk(start=start, end=end, text=body, n_tokens=count(body))
