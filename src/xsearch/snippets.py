"""Snippets from the part of a passage that matched, with the matched terms marked.

:func:`best_snippet` picks the window of whole sentences (at most ``limit`` columns) that
holds the most distinct query tokens (:mod:`xsearch.lexical` tokens, so Chinese/Japanese/Thai
pairs match too). A cross-lingual hit usually shares no token with the query: then, if the
caller passes ``sentence_vectors`` (embeds texts) and ``query_vector``, the window closest to
the query is chosen; the caller does this for its top hits only. Otherwise the passage start.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Sequence

import numpy as np

from xsearch import lexical

SNIPPET_CHARS = 240
ELLIPSIS = "…"

# Sentence ends: Latin/Cyrillic/Greek . ! ?, CJK 。！？, Devanagari danda, Ethiopic ።, Arabic ؟,
# and line breaks.
_SENTENCE_END = re.compile(r"[.!?;]+[\"'”’)\]]*\s+|[。！？]+[」』”）]*\s*|[।॥።؟۔]+\s*|\n+")

Highlights = list[list[int]]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (whitespace trimmed, empties dropped)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


def _width(ch: str) -> int:
    if unicodedata.east_asian_width(ch) in "WF":
        return 2
    return 0 if unicodedata.category(ch) in ("Mn", "Me", "Cf") else 1


#: Display width + 1 of each code point seen so far (0: not looked up yet). ``unicodedata``
#: costs ~0.2 us a character, so each is looked up once; a text's widths are a numpy gather.
_TABLE = np.zeros(0x110000, dtype=np.uint8)


def columns(text: str) -> list[int]:
    """Display width before each character of ``text`` (``len(text) + 1`` prefix sums), as
    terminals set it: East Asian wide and fullwidth characters take two columns, combining
    marks and joiners none. So a Chinese snippet is not twice as long on screen as a French
    one, nor a Hindi one shorter."""
    if text.isascii():
        return list(range(len(text) + 1))
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    widths = _TABLE[cps]
    if not widths.all():
        new = np.unique(cps[widths == 0])
        _TABLE[new] = [_width(chr(cp)) + 1 for cp in new.tolist()]
        widths = _TABLE[cps]
    return [0, *np.cumsum(widths - 1).tolist()]


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of ``text`` on one line, at most ``limit`` columns."""
    return cut_to_columns(re.sub(r"\s+", " ", text).strip(), limit)


def cut_to_columns(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` columns, else its start and an ellipsis."""
    cols = columns(text)
    if cols[-1] <= limit:
        return text
    return text[:bisect_right(cols, limit - 1) - 1].rstrip() + ELLIPSIS


def folded(token: str) -> str:
    """A token without accents on Latin and Greek letters: what a match is marked by, so
    "eruption" marks "éruption" (ranking keeps accents, :data:`lexical.FOLD_DIACRITICS`)."""
    return lexical.normalize(token, fold_diacritics=True)


def _windows(text: str, limit: int, cols: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive sentences that fit in ``limit`` columns; a longer sentence alone."""
    sents = sentence_spans(text)
    out = []
    for i, (a, b) in enumerate(sents):
        end = b
        for _, b2 in sents[i + 1 :]:
            if cols[b2] - cols[a] > limit:
                break
            end = b2
        out.append((a, end))
    return out


def _merge(spans: list[tuple[int, int]]) -> Highlights:
    out: Highlights = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def cluster_starts(text: str, i: int) -> bool:
    """Whether a user-perceived character starts at ``text[i]``: not a mark (Thai tone mark,
    Devanagari vowel sign, even one that takes a column), not a joiner, not the letter after a
    virama or a ZWJ (a conjunct such as क्ष, an emoji sequence)."""
    ch, before = text[i], text[i - 1]
    if "\U0001f3fb" <= ch <= "\U0001f3ff" or "\U000e0020" <= ch <= "\U000e007f":
        return False  # a skin tone, a flag's tag letters: part of the emoji before
    if "\U0001f1e6" <= ch <= "\U0001f1ff":  # regional indicators pair into one flag
        n = 0
        while i - n - 1 >= 0 and "\U0001f1e6" <= text[i - n - 1] <= "\U0001f1ff":
            n += 1
        return n % 2 == 0
    return (unicodedata.category(ch)[0] != "M" and ch not in "\u200c\u200d"
            and before != "\u200d" and unicodedata.combining(before) != 9)


def _cut(text: str, a: int, b: int, limit: int, focus: int, cols: list[int]
         ) -> tuple[int, int]:
    """A sub-span of [a, b) at most ``limit`` columns around ``focus``, cut at spaces if any."""
    if cols[b] - cols[a] <= limit:
        return a, b
    lo = bisect_left(cols, max(cols[a], min(cols[focus] - limit // 3, cols[b] - limit)), a, b)
    hi = bisect_right(cols, cols[lo] + limit, lo, b + 1) - 1
    if lo > a:
        sp = text.find(" ", lo, lo + 20)
        lo = sp + 1 if sp != -1 else lo
    if hi < b:
        sp = text.rfind(" ", hi - 20, hi)
        hi = sp if sp > lo else hi
    # Not inside a user-perceived character: a Thai tone mark after the "…", half an emoji.
    while a < lo < b and not cluster_starts(text, lo):
        lo += 1
    while lo < hi < b and not cluster_starts(text, hi):
        hi -= 1
    return lo, hi


# Thai, Lao, Myanmar, Khmer: a character pair is a piece of a syllable, not a word (in Han
# text two characters often are a word, so lone Han pairs stay).
_SYLLABIC = re.compile(r"^[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]+$")


def syllable_pair(token: str) -> bool:
    """A Thai, Lao, Myanmar or Khmer character pair (a piece of a syllable)."""
    return bool(_SYLLABIC.match(token))


def _real_matches(matches: list[tuple[str, int, int]], qtoks: set[str]) -> list:
    """Drop a lone Thai/Lao/Khmer/Myanmar pair that shares no character with another matched
    pair when the query has several pairs: 'กา' of กาแฟ inside อาราบิกา is not a match."""
    if sum(1 for t in qtoks if syllable_pair(t)) <= 1:
        return matches
    out = []
    for i, (tok, s, e) in enumerate(matches):
        if not syllable_pair(tok):
            out.append((tok, s, e))
            continue
        near = [m for j, m in enumerate(matches) if j != i and m[1] < e and s < m[2]]
        if near:
            out.append((tok, s, e))
    return out


def best_snippet(
    text: str,
    query: str,
    limit: int = SNIPPET_CHARS,
    sentence_vectors: Callable[[Sequence[str]], np.ndarray] | None = None,
    query_vector: np.ndarray | None = None,
    terms: Collection[str] | None = None,
    tokens: list[tuple[str, int, int]] | None = None,
) -> tuple[str, Highlights]:
    """``(snippet, highlights)``: the best window of ``text`` for ``query``, at most ``limit``
    columns (:func:`columns`; an ellipsis marks a cut), and ``[start, end]`` offsets into the
    snippet of the query's tokens found there, accents aside (overlapping CJK pairs merged into
    one range). ``terms`` replaces the query's tokens, e.g. without the ones too common to
    count (:func:`xsearch.lexical.informative_tokens`); ``tokens`` are
    ``lexical.tokens(text, fold_diacritics=True)`` when the caller has them already."""
    if limit <= 2:
        raise ValueError(f"limit must be > 2, not {limit}")
    qtoks = {folded(t) for t in (lexical.query_tokens(query) if terms is None else terms)}
    toks = lexical.tokens(text, fold_diacritics=True) if tokens is None else tokens
    ptoks = _real_matches([t for t in toks if t[0] in qtoks], qtoks)
    cols = columns(text)
    windows = _windows(text, limit, cols) or [(0, len(text))]
    best, best_score = windows[0], 0.0
    for a, b in windows:
        found = {t for t, s, e in ptoks if s >= a and e <= b}
        score = len(found) + 0.01 * sum(1 for _, s, e in ptoks if s >= a and e <= b)
        if score > best_score:
            best, best_score = (a, b), score
    if best_score == 0 and sentence_vectors is not None and query_vector is not None:
        vecs = np.asarray(sentence_vectors([text[a:b] for a, b in windows]))
        best = windows[int(np.argmax(vecs @ np.asarray(query_vector)))]
    a, b = best
    focus = next((s for _, s, e in ptoks if s >= a and e <= b), a)
    a, b = _cut(text, a, b, limit - 2, focus, cols)
    prefix = ELLIPSIS if a > 0 else ""
    suffix = ELLIPSIS if b < len(text.rstrip()) else ""
    snippet = prefix + text[a:b] + suffix
    shift = len(prefix) - a
    highlights = _merge([(s + shift, e + shift) for _, s, e in ptoks if s >= a and e <= b])
    return snippet, highlights


def render(snippet: str, highlights: Highlights, color: bool = True) -> str:
    """The snippet for a terminal: matched terms bold and underlined (plain text without
    ``color``)."""
    if not color or not highlights:
        return snippet
    import click

    out, pos = [], 0
    for a, b in highlights:
        out.append(snippet[pos:a])
        out.append(click.style(snippet[a:b], bold=True, underline=True))
        pos = b
    out.append(snippet[pos:])
    return "".join(out)


_SPACES = re.compile(r"\s+")


def flatten(text: str, highlights: list) -> tuple[str, list[list[int]]]:
    """Runs of white space as one space, with the highlight offsets moved to match."""
    flat = _SPACES.sub(" ", text).strip()

    def where(p: int) -> int:  # where text[p] lands: the length of text[:p] flattened
        return len(_SPACES.sub(" ", text[:p]).lstrip())

    out = []
    for a, b in highlights:
        lo, hi = where(a), min(where(b), len(flat))
        if lo < hi:
            out.append([lo, hi])
    return flat, out
