"""Lexical matching: a tokenisation for every script, and SQLite FTS5 over passages.

Text is tokenised here, in Python, and FTS5 only splits the result on spaces:

- a *word* is a run of letters, combining marks and digits (marks matter: Devanagari, Bengali,
  Tamil vowel signs are marks; Ethiopic words are letters between spaces or ፡ ።);
- runs in scripts written without spaces (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar) become
  overlapping pairs of characters (a base character with its marks counts as one), as Lucene's
  CJK analyzer does; a one-character run is kept as it is. Hangul is spaced but glues particles
  to nouns, so pairs match 서울 inside 서울에서;
- every token is NFKC-normalised and case-folded; ZWJ/ZWNJ are dropped; accents on Latin and
  Greek letters are kept (:data:`FOLD_DIACRITICS`, chosen by benchmarks/ranking_probe.py);
- marks and letter forms that writers of a script use or leave out at will are folded
  (:data:`SPELLING`): Arabic harakat and tatweel, hamza and madda on alef, alef maksura and teh
  marbuta, Persian/Urdu yeh, keheh and heh forms (as Lucene's Arabic and Persian normalisers
  do), Hebrew points, and the Devanagari nukta (as Lucene's Hindi normaliser does); the
  decimal digits of every script are ASCII digits (٢٠٢٣, ۲۰۲۳, २०२३ and 2023 are one token).

:func:`tokens` keeps each token's character span in the original text, so snippets can
highlight matches (CJK pairs included).

The FTS5 table is *contentless* (``content=''``): it stores the index only, the text stays in
``passages``. An external-content table over ``passages.text`` would hand FTS5 the raw text
for its ``rebuild``/``delete`` paths, which does not match what was indexed. Deleting a row
therefore uses the FTS5 ``'delete'`` command with :func:`fts_text` of the passage's text (see
:func:`delete`); :data:`VERSION` changes whenever tokenisation does, and an index whose stored
version differs must rebuild ``passages_fts``.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sqlite3
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import bm25

VERSION = 4
"""Tokenisation version, stored with the index (passages_fts is rebuilt when it changes): 2
:data:`SPELLING` (m008); 3 decimal digits of every script (m010); 4 Turkish İ is i (m012)."""

FOLD_DIACRITICS = False
"""Whether accents on Latin/Greek letters are removed. Measured on SIB-200 entity queries
(benchmarks/results/ranking_probe.md): no difference in any recall, so text stays as written."""

TABLE = "passages_fts"

MAX_SHARE: float = 0.01
"""Query tokens in more than this share of all passages are ignored: function words of any
language without a stop list. Measured: lexical-only mixed-pool own-language bias 0.87 -> 0.81
on entity queries, same recall."""

LANGUAGE_SHARE: float = 0.25
"""Query tokens in more than this share of one language's passages (and in more than
``LANGUAGE_MIN`` of them) are ignored too: a language with few passages in a mixed index has
function words rare in the whole index but in most of its own passages (Swahili "ya", "kwa"),
which would pull its off-topic passages above on-topic ones in other languages
(benchmarks/minority_lexical.py)."""
LANGUAGE_MIN = 5


def ddl(table: str = TABLE) -> list[str]:
    """``CREATE VIRTUAL TABLE`` statements: a contentless FTS5 table whose rowid is
    ``passages.id``, and its ``fts5vocab`` row table ``{table}_vocab`` (document frequency per
    token, read to drop tokens too common to mean anything). FTS5 only has to split on the
    spaces :func:`fts_text` puts between tokens, so every class a token can hold (letters,
    marks, digits, private use) is a token character; no FTS5 diacritic folding."""
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(body, content='', "
        "tokenize=\"unicode61 remove_diacritics 0 categories 'L* M* N* Co'\")",
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table}_vocab USING fts5vocab({table}, 'row')",
    ]


DDL = ddl()
"""The statements for ``passages_fts`` (unicode61 ``categories`` works on SQLite 3.40 here;
that version has no ``contentless_delete``, hence :func:`delete`)."""

MAX_QUERY_TOKENS = 64
"""Distinct query tokens kept (bounds the cost of an OR over a pasted page of text)."""

_JOINERS = "\u200c\u200d"
_NO_JOINERS = {ord(c): None for c in _JOINERS}


def _spelling() -> dict[int, str | None]:
    gone = [*range(0x064B, 0x0653), 0x0640, 0x0670,  # Arabic harakat, tatweel, dagger alef
            *range(0x0591, 0x05BE), 0x05BF, 0x05C1, 0x05C2, 0x05C4, 0x05C5, 0x05C7,  # Hebrew
            0x093C]  # Devanagari nukta (NFKC has already split क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़ from it)
    same = {"\u0622\u0623\u0625\u0671": "\u0627",  # alef with madda, hamza, wasla -> alef
            "\u0649\u06CC": "\u064A",  # alef maksura, Farsi yeh -> yeh
            "\u06A9": "\u0643",  # keheh -> kaf
            "\u0629\u06C0\u06C1": "\u0647",  # teh marbuta, heh with yeh, heh goal -> heh
            "\u0929": "\u0928", "\u0931": "\u0930", "\u0934": "\u0933"}  # ऩ ऱ ऴ
    return {**{cp: None for cp in gone},
            **{ord(c): base for forms, base in same.items() for c in forms}}


def _digit_zeros() -> tuple[int, ...]:
    from .unicode_marks import DIGIT_ZEROS, UNIDATA_VERSION

    if unicodedata.unidata_version == UNIDATA_VERSION:
        return DIGIT_ZEROS
    return tuple(cp for cp in range(0x80, sys.maxunicode + 1)
                 if unicodedata.category(chr(cp)) == "Nd" and unicodedata.digit(chr(cp)) == 0)


LETTERS: dict[int, str | None] = _spelling()
DIGITS: dict[int, str | None] = {zero + d: str(d) for zero in _digit_zeros() for d in range(10)}
SPELLING: dict[int, str | None] = {**LETTERS, **DIGITS}
"""Folded in every token (a ``str.translate`` table): optional marks removed, interchangeable
letter forms made one (:data:`LETTERS`, tokenisation 2), digits of every script made ASCII
(:data:`DIGITS`, 3: ٣ ۳ ३ ৩ -> 3), so a query typed without them finds text written with them."""

# Scripts without spaces between words (plus Hangul, see above): code point ranges.
_PAIRED = (
    (0x1000, 0x109F), (0x0E00, 0x0EFF), (0x1100, 0x11FF), (0x1780, 0x17FF), (0x2E80, 0x2FDF),
    (0x3005, 0x3007), (0x3021, 0x3029), (0x3040, 0x30FF), (0x3130, 0x318F), (0x31F0, 0x31FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F), (0x20000, 0x3134F),
)


def _ranges(pred) -> str:
    out, start = [], None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and pred(cp)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = None
    return "".join(out)


def _scan_marks() -> str:
    return _ranges(lambda cp: unicodedata.category(chr(cp)).startswith("M"))


@functools.cache
def _marks() -> str:
    from .unicode_marks import MARK_RANGES, UNIDATA_VERSION

    if unicodedata.unidata_version != UNIDATA_VERSION:
        return _scan_marks()
    return "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in MARK_RANGES)


@functools.cache
def _word_re() -> re.Pattern[str]:
    # letters, digits and "_" (\w), marks, joiners: one class runs twice as fast as
    # (?:[^\W_]|[marks]); :func:`_word_spans` splits the runs at "_"
    return re.compile(rf"[\w{_marks()}{_JOINERS}]+")


def _word_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of the maximal runs of letters, digits, marks and joiners (not "_")."""
    for run in _word_re().finditer(text):
        start, end = run.span()
        if "_" not in run.group():
            yield start, end
            continue
        for piece in run.group().split("_"):
            if piece:
                yield start, start + len(piece)
            start += len(piece) + 1


@functools.cache
def _paired_re() -> re.Pattern[str]:
    cls = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in _PAIRED)
    # a paired-script character with the marks that follow it = one unit; Thai, Lao,
    # Myanmar and Khmer digits are not paired: a number is one word in any script
    return re.compile(rf"(?!\d)[{cls}][{_marks()}{_JOINERS}]*")


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def _fold(token: str) -> str:
    # accents off Latin/Greek letters only: Indic vowel signs are marks too and must stay
    if token.isascii():
        return token
    out = []
    for ch in unicodedata.normalize("NFD", token):
        if _is_mark(ch) and out and (ord(out[-1]) < 0x0400 or 0x1E00 <= ord(out[-1]) < 0x2000):
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def normalize(token: str, fold_diacritics: bool | None = None) -> str:
    """NFKC + casefold (+ accent folding when asked), joiners removed."""
    return _normalized(token, _folding(fold_diacritics))


def _folding(fold_diacritics: bool | None) -> bool:
    return bool(FOLD_DIACRITICS if fold_diacritics is None else fold_diacritics)


@functools.lru_cache(maxsize=1 << 16)
def _normalized(token: str, fold: bool) -> str:
    # Cached: the same words come back in every passage (indexing, snippets).
    text = unicodedata.normalize("NFKC", token).casefold().translate(_NO_JOINERS)
    if not text.isascii():
        # İ casefolds to i and a combining dot: İSTANBUL is istanbul (it matched only a
        # query typed with İ)
        text = text.replace("i\u0307", "i").translate(SPELLING)
    return _fold(text) if fold else text


def tokens(text: str, fold_diacritics: bool | None = None) -> list[tuple[str, int, int]]:
    """``(token, start, end)`` for every token of ``text``; spans index into ``text``."""
    out: list[tuple[str, int, int]] = []
    paired = _paired_re()
    if paired.search(text) is None and "_" not in text:  # words only: the common case
        fold = _folding(fold_diacritics)
        out = [(_normalized(run.group(), fold), *run.span())
               for run in _word_re().finditer(text)]
        return [t for t in out if t[0]]
    for start, end in _word_spans(text):
        pos = start
        units = list(paired.finditer(text, start, end))
        if not units:
            _word(text, start, end, out, fold_diacritics)
            continue
        group: list[tuple[int, int]] = []
        for unit in units:
            if unit.start() != pos or (group and group[-1][1] != unit.start()):
                _pairs(text, group, out, fold_diacritics)
                group = []
                _word(text, pos, unit.start(), out, fold_diacritics)
            group.append(unit.span())
            pos = unit.end()
        _pairs(text, group, out, fold_diacritics)
        _word(text, pos, end, out, fold_diacritics)
    return out


def _word(text: str, start: int, end: int, out: list, fold: bool | None) -> None:
    if start < end:
        tok = normalize(text[start:end], fold)
        if tok:
            out.append((tok, start, end))


def _pairs(text: str, units: list[tuple[int, int]], out: list, fold: bool | None) -> None:
    if len(units) == 1:
        _word(text, units[0][0], units[0][1], out, fold)
    for (a, _), (_, b) in zip(units[:-1], units[1:], strict=True):
        _word(text, a, b, out, fold)


def token_set(text: str, fold_diacritics: bool | None = None) -> set[str]:
    """The distinct tokens of ``text``."""
    return {t for t, _, _ in tokens(text, fold_diacritics)}


def fts_text(text: str, fold_diacritics: bool | None = None) -> str:
    """What goes into the FTS5 ``body`` column: the tokens joined by spaces."""
    return " ".join(t for t, _, _ in tokens(text, fold_diacritics))


def fts_query(query: str, fold_diacritics: bool | None = None) -> str | None:
    """A safe FTS5 MATCH expression: every distinct token double-quoted, OR-ed; None when the
    query has no token. Tokens hold only letters, marks and digits, so no FTS5 syntax (quotes,
    ``*``, ``:``, ``NEAR``, ``AND``...) can come from the user."""
    return match_expression(query_tokens(query, fold_diacritics))


def query_tokens(query: str, fold_diacritics: bool | None = None) -> list[str]:
    """Distinct tokens of ``query`` in order, at most :data:`MAX_QUERY_TOKENS`."""
    toks = dict.fromkeys(t for t, _, _ in tokens(query, fold_diacritics))
    return list(toks)[:MAX_QUERY_TOKENS]


def match_expression(toks: Sequence[str]) -> str | None:
    """``"a" OR "b"`` with every token quoted (quotes doubled); None for no tokens."""
    if not toks:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in toks)


def document_frequency(
    conn: sqlite3.Connection, toks: Sequence[str], table: str = TABLE,
    cache: dict[str, int] | None = None,
) -> dict[str, int]:
    """Passages containing each token (0 for tokens the index has never seen). ``cache``
    keeps the counts between calls for one committed state of the index: ``fts5vocab``
    counts a token by reading its whole posting list (0.35 ms a token at 1M passages)."""
    def read(missing: list[str]) -> dict[str, int]:
        out = dict.fromkeys(missing, 0)
        for start in range(0, len(missing), 500):
            part = missing[start : start + 500]
            marks = ",".join("?" * len(part))
            out.update(conn.execute(
                f"SELECT term, doc FROM {table}_vocab WHERE term IN ({marks})", part))
        return out

    return _through_cache(toks, cache, read)


def language_frequency(conn: sqlite3.Connection, toks: Sequence[str], table: str = TABLE,
                       cache: dict[str, dict[str, int]] | None = None
                       ) -> dict[str, dict[str, int]]:
    """Per token, the passages containing it in each language (``cache`` as for
    :func:`document_frequency`; ask only for tokens already rare in the whole index: each
    reads the token's postings)."""
    def read(missing: list[str]) -> dict[str, dict[str, int]]:
        return {t: dict(conn.execute(
            f"SELECT coalesce(p.language, 'und'), count(DISTINCT i.doc) FROM {table}_instance "
            "AS i JOIN passages AS p ON p.id = i.doc WHERE i.term = ? GROUP BY 1", [t]))
            for t in missing}

    return _through_cache(toks, cache, read)


def _through_cache(toks: Sequence[str], cache: dict | None,
                   read: Callable[[list[str]], dict]) -> dict:
    """Each token's value from ``cache``, ``read`` for the ones it lacks (then kept there; a
    cache past 100,000 tokens starts again)."""
    wanted = list(dict.fromkeys(toks))
    known = {t: cache[t] for t in wanted if t in cache} if cache is not None else {}
    missing = [t for t in wanted if t not in known]
    got = read(missing) if missing else {}
    if cache is not None and got:
        if len(cache) > 100_000:
            cache.clear()
        cache.update(got)
    return {t: known[t] if t in known else got[t] for t in wanted}


def _rare_in_each_language(conn: sqlite3.Connection, toks: Sequence[str], table: str,
                           sizes: dict[str, int], cache: dict | None) -> list[str]:
    """The tokens not common in any one language's passages (``sizes``: passages per
    language), see ``LANGUAGE_SHARE``."""
    freq = language_frequency(conn, toks, table, cache)
    return [t for t in toks if not any(
        sizes.get(lang) and n > max(LANGUAGE_SHARE * sizes[lang], LANGUAGE_MIN)
        for lang, n in freq[t].items())]


def create(conn: sqlite3.Connection, table: str = TABLE) -> None:
    """Create ``passages_fts`` (or ``table``) if it is not there."""
    for stmt in ddl(table):
        conn.execute(stmt)


def insert(conn: sqlite3.Connection, rows: Iterable[tuple[int, str]], table: str = TABLE) -> None:
    """Index ``(passage_id, text)`` rows (inside the caller's transaction)."""
    conn.executemany(
        f"INSERT INTO {table}(rowid, body) VALUES (?, ?)",
        ((pid, fts_text(text)) for pid, text in rows),
    )


def delete(conn: sqlite3.Connection, rows: Iterable[tuple[int, str]], table: str = TABLE) -> None:
    """Remove ``(passage_id, text)`` rows; ``text`` must be what was inserted for that id."""
    conn.executemany(
        f"INSERT INTO {table}({table}, rowid, body) VALUES ('delete', ?, ?)",
        ((pid, fts_text(text)) for pid, text in rows),
    )


def search(
    conn: sqlite3.Connection,
    query: str,
    k: int,
    allowed_ids: Sequence[int] | set[int] | None = None,
    table: str = TABLE,
    max_share: float | None = MAX_SHARE,
    n_docs: int | None = None,
    normalize: bool = False,
    also: Sequence[int] = (),
    df_cache: dict[str, int] | None = None,
    corpus: bm25.Corpus | None = None,
    language_sizes: dict[str, int] | None = None,
    language_cache: dict | None = None,
) -> list[tuple[int, float]]:
    """Top ``k`` ``(passage_id, score)`` by BM25 (score = -bm25(), higher is better), then the
    scores of the passages in ``also`` that match but are not among them.

    Query tokens found in more than ``max_share`` of the ``n_docs`` passages (counted when not
    given) are dropped: in any language these are function words, and OR-ing them pulls in
    every passage of the query's language. ``allowed_ids`` restricts the hits (an empty set
    gives no hits). A query without (remaining) tokens gives no hits. ``normalize`` divides
    the score by the sum of the query tokens' idf: about the share of the query's (idf-weighted)
    tokens the passage holds, ~1 for a passage of average length holding each once, whatever
    the query; fused with a calibrated dense score by :func:`xsearch.ranking.hybrid_scores`.
    ``df_cache``: see :func:`document_frequency`. ``corpus`` (:meth:`bm25.Corpus.load`):
    the same scores computed in numpy, without FTS5's ``bm25()`` per matching passage.
    ``language_sizes`` (passages per language) also drops tokens common in one language's
    passages (``LANGUAGE_SHARE``; ``language_cache`` keeps their counts).
    """
    toks = query_tokens(query)
    scale = 1.0
    df: dict[str, int] | None = None
    if (max_share is not None or normalize) and toks:
        if n_docs is None:
            n_docs = _count(conn, table)
        df = document_frequency(conn, toks, table, df_cache)
        if max_share is not None:
            toks = _kept(conn, toks, table, df, max_share, n_docs, language_sizes,
                         language_cache)
        if normalize:
            scale = sum(_idf(n_docs, df[t]) for t in toks) or 1.0
    match = match_expression(toks)
    if match is None or k <= 0 or (allowed_ids is not None and not allowed_ids):
        return []
    if corpus is not None:
        from . import bm25

        got = bm25.search(conn, table, toks,
                          df or document_frequency(conn, toks, table, df_cache), int(k),
                          corpus, allowed_ids, also)
        if got is not None:
            return [(pid, score / scale) for pid, score, _ in got]
    # One statement: FTS5 scores every match before any ORDER BY ... LIMIT, and bm25()
    # counts each token's passages for its idf once per statement. The matches are kept in a
    # table (SQLite materialises a CTE used twice), the top k and the ``also`` passages are
    # read from it: a second statement for ``also`` cost 15 ms a query at 10k passages and
    # 35 ms at 1M, and handing every match to Python 7 ms at 1M.
    where, args = f"{table} MATCH ?", [match]
    if allowed_ids is not None:
        where += " AND rowid IN (SELECT value FROM json_each(?))"
        args.append(json.dumps(sorted(int(i) for i in allowed_ids)))
    rest = sorted({int(i) for i in also})
    rows = conn.execute(
        f"WITH m AS (SELECT rowid AS id, bm25({table}) AS s FROM {table} WHERE {where}) "
        "SELECT id, s, 0 FROM (SELECT id, s FROM m ORDER BY s, id LIMIT ?) UNION ALL "
        "SELECT id, s, 1 FROM m WHERE id IN (SELECT value FROM json_each(?))",
        [*args, int(k), json.dumps(rest)]).fetchall()
    top = sorted((r for r in rows if not r[2]), key=lambda r: (r[1], r[0]))
    out = [(int(pid), -float(s) / scale) for pid, s, _ in top]
    seen = {pid for pid, _ in out}
    out += [(int(pid), -float(s) / scale) for pid, s, extra in sorted(rows, key=lambda r: r[0])
            if extra and pid not in seen]
    return out


def informative_tokens(
    conn: sqlite3.Connection,
    query: str,
    table: str = TABLE,
    max_share: float = MAX_SHARE,
    n_docs: int | None = None,
    df_cache: dict[str, int] | None = None,
) -> list[str]:
    """The query tokens :func:`search` matches on (those in at most ``max_share`` of the
    passages): what a snippet should highlight."""
    return informative(conn, query_tokens(query), table, max_share, n_docs, df_cache)


def informative(
    conn: sqlite3.Connection,
    toks: Sequence[str],
    table: str = TABLE,
    max_share: float = MAX_SHARE,
    n_docs: int | None = None,
    df_cache: dict[str, int] | None = None,
    language_sizes: dict[str, int] | None = None,
    language_cache: dict | None = None,
) -> list[str]:
    """Those of ``toks`` in at most ``max_share`` of the passages, and not common in one
    language's (as :func:`search` keeps them; frequencies are read only for these tokens: a
    snippet asks only for the query tokens its passage holds)."""
    if not toks:
        return []
    n = _count(conn, table) if n_docs is None else n_docs
    df = document_frequency(conn, toks, table, df_cache)
    return _kept(conn, toks, table, df, max_share, n, language_sizes, language_cache)


def _kept(conn: sqlite3.Connection, toks: Sequence[str], table: str, df: dict[str, int],
          max_share: float, n_docs: int, language_sizes: dict[str, int] | None,
          language_cache: dict | None) -> list[str]:
    """The tokens in at most ``max_share`` of the ``n_docs`` passages and, given
    ``language_sizes``, not common in one language's: the one rule for what a search matches
    on and what a snippet marks."""
    kept = [t for t in toks if df[t] <= max_share * n_docs]
    if language_sizes:
        kept = _rare_in_each_language(conn, kept, table, language_sizes, language_cache)
    return kept


def _count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _idf(n_docs: int, df: int) -> float:
    # FTS5's bm25 idf (fts5_aux.c): log((N - n + 0.5) / (n + 0.5)), at least 1e-6
    return max(math.log((n_docs - df + 0.5) / (df + 0.5)), 1e-6)
