"""FTS5's BM25, computed in numpy from each query word's postings (the same numbers, faster).

FTS5's ``bm25()`` is called once per matching row and looks up that row's length on each
call: at a million passages a sentence query matches ~17k of them and the calls cost ~20 ms.
Here each kept query word's postings (passage ids with repeats, one per occurrence) come from
an ``fts5vocab`` instance table in one statement, and every passage's length in tokens from
``lexical_lengths``, a table written in the same transactions as the FTS5 rows. The score is
then FTS5's own formula (``fts5_aux.c``: k1 = 1.2, b = 0.75, idf = log((N - n + 0.5) /
(n + 0.5)), at least 1e-6; N and the average length from FTS5's averages record), term by term
in the order of the query's phrases, in float64, so it equals ``bm25()`` to the bit
(``tests/test_bm25.py`` compares them).
"""

from __future__ import annotations

import functools
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

LENGTHS = "lexical_lengths"
#: passage ids per row of ``lexical_lengths`` (uint32 each: 64 KB a row, so a write
#: rewrites little and a million passages load as 62 rows)
CHUNK = 16384
K1, B = 1.2, 0.75


def create(conn: sqlite3.Connection, table: str) -> None:
    """The lengths table and the instance vocabulary of FTS5 table ``table``."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {LENGTHS} (chunk INTEGER PRIMARY KEY, "
                 "lengths BLOB NOT NULL)")
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table}_instance USING "
                 f"fts5vocab({table}, 'instance')")


def rebuild(conn: sqlite3.Connection, table: str) -> None:
    """Write every passage's length again from FTS5's own per-row sizes."""
    conn.execute(f"DELETE FROM {LENGTHS}")
    for rows in _size_pages(conn, table):
        _store(conn, rows)


def record(conn: sqlite3.Connection, ids: Iterable[int], table: str) -> None:
    """Store the lengths of the newly indexed passages ``ids`` (in their transaction: FTS5
    writes a row's size when the row is inserted, its postings only at commit). New ids are
    above every older one (AUTOINCREMENT), so their range is read, not a list of them."""
    new = {int(i) for i in ids}
    if new:
        _store(conn, [r for rows in _size_pages(conn, table, min(new) - 1, max(new))
                      for r in rows if r[0] in new])


def has_lengths(conn: sqlite3.Connection) -> bool:
    """Whether the index has its lengths table (migration m005; a reader may open one
    without it)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [LENGTHS]).fetchone() \
        is not None


def mismatches(conn: sqlite3.Connection, table: str) -> int:
    """How many passages' stored lengths differ from FTS5's sizes (reads them all: for
    ``xsearch check``)."""
    lengths = lengths_of(conn)
    return sum(i >= len(lengths) or int(lengths[i]) != _varint(sz, 0)[0]
               for rows in _size_pages(conn, table) for i, sz in rows)


def _size_pages(conn: sqlite3.Connection, table: str, after: int = 0, upto: int = 2 ** 62
                ) -> Iterator[list[tuple[int, bytes]]]:
    """FTS5's per-row size records ``(id, record)`` for ids in (after, upto], 50,000 at a
    time in id order."""
    while rows := conn.execute(f"SELECT id, sz FROM {table}_docsize WHERE id > ? AND id <= ? "
                               "ORDER BY id LIMIT 50000", [after, upto]).fetchall():
        yield rows
        after = rows[-1][0]


def lengths_of(conn: sqlite3.Connection) -> np.ndarray:
    """Every stored length, indexed by passage id (0 where there is none)."""
    rows = conn.execute(f"SELECT chunk, lengths FROM {LENGTHS} ORDER BY chunk").fetchall()
    out = np.zeros(((rows[-1][0] + 1) if rows else 0) * CHUNK, dtype=np.uint32)
    for chunk, blob in rows:
        out[chunk * CHUNK:(chunk + 1) * CHUNK] = np.frombuffer(blob, dtype="<u4")
    return out


def _store(conn: sqlite3.Connection, rows: Sequence[tuple[int, bytes]]) -> None:
    """Write ``(id, FTS5 size record)`` rows into their chunks."""
    if not rows:
        return
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    sizes = np.array([_varint(r[1], 0)[0] for r in rows], dtype=np.uint32)
    for chunk in sorted(set((ids // CHUNK).tolist())):  # np.unique imports numpy.ma: 16 ms
        row = conn.execute(f"SELECT lengths FROM {LENGTHS} WHERE chunk = ?", [chunk]).fetchone()
        arr = np.frombuffer(row[0], dtype="<u4").copy() if row else np.zeros(CHUNK, "<u4")
        sel = ids // CHUNK == chunk
        arr[ids[sel] - chunk * CHUNK] = sizes[sel]
        conn.execute(f"INSERT OR REPLACE INTO {LENGTHS} (chunk, lengths) VALUES (?, ?)",
                     [chunk, arr.tobytes()])


def _varint(blob: bytes, i: int) -> tuple[int, int]:
    """SQLite's (and FTS5's) variable-length integer at ``blob[i]``: (value, next offset)."""
    value = 0
    for n in range(9):
        byte = blob[i + n]
        if n == 8:
            return (value << 8) | byte, i + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, i + n + 1
    raise AssertionError("unreachable")


_SCRATCH = threading.local()


@functools.lru_cache(maxsize=65536)
def stored_as_written(token: str) -> bool:
    """Whether FTS5 keeps ``token`` as the very term it indexes (its tokenizer folds case
    by tables of its own): asked once per word of an empty in-memory table made like the
    index's (``lexical.ddl``), so a word missing from the vocabulary costs no query."""
    from . import lexical

    conn = getattr(_SCRATCH, "conn", None)
    if conn is None:
        conn = _SCRATCH.conn = sqlite3.connect(":memory:", check_same_thread=False)
        for stmt in lexical.ddl("t"):
            conn.execute(stmt)
    with conn:
        conn.execute("INSERT INTO t(rowid, body) VALUES (1, ?)", [token])
        terms = [r[0] for r in conn.execute("SELECT term FROM t_vocab")]
        conn.execute("INSERT INTO t(t, rowid, body) VALUES ('delete', 1, ?)", [token])
    return terms == [token]


@dataclass
class Corpus:
    """What BM25 needs of the whole table for one committed state."""

    rows: int
    avgdl: float
    lengths: np.ndarray

    @classmethod
    def load(cls, conn: sqlite3.Connection, table: str) -> Corpus | None:
        """None when the index has no lengths table yet (then FTS5 scores)."""
        if not has_lengths(conn):
            return None
        row = conn.execute(f"SELECT block FROM {table}_data WHERE id = 1").fetchone()
        rows = tokens = 0
        if row is not None and row[0]:
            rows, at = _varint(row[0], 0)
            tokens = _varint(row[0], at)[0] if at < len(row[0]) else 0
        return cls(rows=rows, avgdl=float(tokens) / float(rows) if rows else 0.0,
                   lengths=lengths_of(conn))


def search(conn: sqlite3.Connection, table: str, toks: Sequence[str], df: dict[str, int],
           k: int, corpus: Corpus, allowed: Iterable[int] | None, also: Iterable[int]
           ) -> list[tuple[int, float, bool]] | None:
    """``(passage id, BM25, is_extra)``: the top ``k`` best first (ties by id), then the
    ``also`` passages that match but are not among them, by id. ``toks`` in the order of the
    MATCH expression's phrases; ``df`` their document frequencies (from the same committed
    state). None when a word is not a term as FTS5 stores it (a case folding of FTS5's own
    would match it to another): the caller asks FTS5 then."""
    per: list[tuple[float, np.ndarray, np.ndarray]] = []
    for t in toks:
        if not df[t]:  # in no passage as written (a query word the index lacks)
            if not stored_as_written(t):
                return None
            continue
        got = conn.execute(f"SELECT group_concat(doc) FROM {table}_instance WHERE term = ?",
                           [t]).fetchone()[0]
        if not got:
            continue
        docs = np.fromstring(got, dtype=np.int64, sep=",")
        if len(docs) > 1 and (np.diff(docs) < 0).any():
            docs = np.sort(docs)
        starts = np.flatnonzero(np.concatenate(([True], docs[1:] != docs[:-1])))
        freq = np.diff(np.append(starts, len(docs))).astype(np.float64)
        idf = math.log((corpus.rows - df[t] + 0.5) / (df[t] + 0.5))
        per.append((idf if idf > 0.0 else 1e-6, docs[starts], freq))
    if not per:
        return []
    ids = np.sort(np.concatenate([d for _, d, _ in per]))
    ids = ids[np.concatenate(([True], ids[1:] != ids[:-1]))]
    if ids[-1] >= len(corpus.lengths) or not corpus.lengths[ids].all():
        return None  # a passage without a stored length: not this index's state
    length = corpus.lengths[ids].astype(np.float64)
    score = np.zeros(len(ids))
    for idf, docs, freq in per:  # fts5_aux.c's order of operations, phrase by phrase
        at = np.searchsorted(ids, docs)
        score[at] += idf * ((freq * (K1 + 1.0))
                            / (freq + K1 * (1 - B + B * length[at] / corpus.avgdl)))
    if allowed is not None:
        keep = np.isin(ids, np.fromiter(allowed, dtype=np.int64))
        ids, score = ids[keep], score[keep]
    top = np.arange(len(ids))
    if len(ids) > k:
        cut = np.partition(score, len(score) - k)[len(score) - k]
        top = np.flatnonzero(score >= cut)
    top = top[np.lexsort((ids[top], -score[top]))][:k]
    out = [(i, s, False) for i, s in zip(ids[top].tolist(), score[top].tolist(), strict=True)]
    shown = set(ids[top].tolist())
    extra = np.unique(np.asarray([int(i) for i in also if int(i) not in shown],
                                 dtype=np.int64))
    at = np.searchsorted(ids, extra)
    hit = at < len(ids)
    hit[hit] = ids[at[hit]] == extra[hit]
    out += [(i, s, True) for i, s in zip(extra[hit].tolist(), score[at[hit]].tolist(),
                                         strict=True)]
    return out
