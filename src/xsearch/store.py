"""The SQLite half of an index, and its commit point: files, documents, passages, the list of
vector segments, tombstones, per-language vector statistics and the index's own config.

Vectors live only in segment files (``segments.py``); a segment is part of the index exactly
when a committed ``segments`` row names it.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from .errors import CorruptIndexError
from .schema import (  # noqa: F401 - SCHEMA_VERSION re-exported
    MIGRATIONS,
    READERS_MAY_SKIP,
    SCHEMA_VERSION,
)


@dataclass
class PassageRow:
    """A passage ready to be written (vector included)."""

    ordinal: int
    char_start: int
    char_end: int
    text: str
    language: str
    language_score: float
    n_tokens: int
    vector: np.ndarray | None = None


@dataclass
class DocumentRow:
    record_id: str
    title: str
    content_hash: str
    n_chars: int
    language: str
    passages: list[PassageRow]


def _in_chunks(ids: list, size: int = 500) -> Iterator[tuple[list, str]]:
    """(ids, "?,?,...") in slices that stay under SQLite's limit on bound variables."""
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        yield part, ",".join("?" * len(part))


class NeedsUpgradeError(CorruptIndexError):
    """The database is older than this xsearch; a writer must migrate it first."""


class Store:
    """Typed access to the index database.

    ``readonly`` opens SQLite with ``mode=ro`` (``immutable=1`` when the folder itself cannot
    be written), runs no migration and never writes.
    """

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lexical_new: list[int] = []  # passages given to FTS5 in this transaction
        try:
            conn = self._connect(readonly)
            # No sqlite-utils plugins: xsearch needs none, and finding them imports
            # importlib.metadata and scans every installed package (~0.14 s a process).
            self.db = sqlite_utils.Database(conn, execute_plugins=False)
            self.db.execute("PRAGMA foreign_keys = ON")
            if readonly:
                self._check_migrations(apply=False)
            else:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = FULL")
                self._check_migrations(apply=True)
        except sqlite3.DatabaseError as exc:
            raise CorruptIndexError(f"index database {self.path} is unreadable: {exc}") from exc

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        if not readonly:
            # One writer thread at a time uses it (the indexer hands it to its commit thread).
            return sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
        uri = self.path.resolve().as_uri()
        writable_dir = os.access(self.path.parent, os.W_OK)
        has_wal = self.path.with_name(self.path.name + "-wal").exists()
        mode = "?mode=ro" if writable_dir or has_wal else "?immutable=1"
        conn = sqlite3.connect(uri + mode, uri=True, timeout=30, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A read-only folder whose WAL index cannot be created: read the file as it is.
            conn.close()
            conn = sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None)
        return conn

    def _check_migrations(self, apply: bool) -> None:
        if not self.db["_migrations"].exists():
            if not apply:
                raise CorruptIndexError(f"{self.path} is not an xsearch database")
            with self.transaction():
                self._migrate(MIGRATIONS, create=True)
            return
        done = {r["name"] for r in self.db.query("SELECT name FROM _migrations")}
        unknown = done - {name for name, _ in MIGRATIONS}
        if unknown:
            raise CorruptIndexError(
                f"index database {self.path} was made by a newer xsearch "
                f"(unknown migrations: {', '.join(sorted(unknown))}); upgrade xsearch"
            )
        pending = [(name, fn) for name, fn in MIGRATIONS if name not in done]
        if pending and not apply and {name for name, _ in pending} <= READERS_MAY_SKIP:
            return
        if pending and not apply:
            raise NeedsUpgradeError(
                f"index {self.path.parent} was made by an older xsearch (schema {len(done)}, "
                f"this one uses {SCHEMA_VERSION}); upgrade it with: xsearch check --repair "
                f"--index {self.path.parent}"
            )
        if pending:
            with self.transaction():
                self._migrate(pending)

    def _migrate(self, pending: list, create: bool = False) -> None:
        """Apply migrations inside the caller's transaction: an upgrade happens whole or not
        at all, and a new database costs one commit (one fsync), not one per migration."""
        if create:
            self.db.execute(
                "CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
        for name, fn in pending:
            fn(self.db)
            self.db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, time.time()]
            )

    def check(self) -> list[str]:
        """Problems SQLite's quick check finds (empty when the database is sound)."""
        try:
            rows = self.db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [f"database is corrupt: {exc}"]
        return [] if rows and rows[0][0] == "ok" else [f"database: {r[0]}" for r in rows]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; bumps the generation that readers compare."""
        self.db.execute("BEGIN IMMEDIATE")
        self._lexical_new = []
        try:
            yield
            self.record_lexical()
            if self.db["meta"].exists():
                self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                                "WHERE key = 'generation'")
            self.db.execute("COMMIT")
        except BaseException:
            # A full disk or an I/O error may have rolled it back already (SQLite does, for
            # some errors): the error to report is the first one, not ROLLBACK's.
            if self.db.conn.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def record_lexical(self) -> None:
        """Record the lengths of the passages given to FTS5 in this transaction so far (which
        BM25 needs; done when it commits, or sooner by a writer with time to spare)."""
        if self._lexical_new:
            from . import bm25, lexical

            bm25.record(self.db.conn, self._lexical_new, lexical.TABLE)
            self._lexical_new = []

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: everything read inside sees the same committed state."""
        if self.db.conn.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.conn.close()

    # -- meta --------------------------------------------------------------------------

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                        "UPDATE SET value = excluded.value", [key, value])

    def generation(self) -> int:
        return int(self.meta("generation", "0") or 0)

    # -- files -------------------------------------------------------------------------

    def files(self) -> dict[str, dict]:
        return {r["path"]: r for r in self.db.query("SELECT * FROM files")}

    def documents_of(self, path: str) -> dict[str, dict]:
        rows = self.db.query("SELECT * FROM documents WHERE path = ?", [path])
        return {r["record_id"]: r for r in rows}

    def passage_ids_of_documents(self, doc_ids: Iterable[int]) -> list[int]:
        return [r[0] for part, marks in _in_chunks(list(doc_ids)) for r in self.db.execute(
            f"SELECT id FROM passages WHERE document_id IN ({marks})", part)]

    def upsert_file(self, path: str, content_hash: str, size: int, mtime: float, fmt: str,
                    record_fields: str | None = None, cut_by: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO files (path, content_hash, size, mtime, format, indexed_at, "
            "record_fields, cut_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO "
            "UPDATE SET content_hash=excluded.content_hash, size=excluded.size, "
            "mtime=excluded.mtime, format=excluded.format, indexed_at=excluded.indexed_at, "
            "record_fields=excluded.record_fields, cut_by=excluded.cut_by",
            [path, content_hash, size, mtime, fmt, time.time(), record_fields, cut_by],
        )
        self.db.execute("DELETE FROM failed_files WHERE path = ?", [path])

    def rename_file(self, old: str, new: str, size: int, mtime: float) -> None:
        """Move a file's documents to a new path (ON UPDATE CASCADE carries documents)."""
        self.db.execute(
            "UPDATE files SET path = ?, size = ?, mtime = ?, indexed_at = ? WHERE path = ?",
            [new, size, mtime, time.time(), old],
        )

    def failed_files(self) -> dict[str, dict]:
        return {r["path"]: r for r in self.db.query("SELECT * FROM failed_files")}

    def record_failure(self, path: str, content_hash: str, kind: str, reason: str,
                       record_fields: str | None = None, cut_by: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO failed_files (path, content_hash, kind, reason, at, record_fields, "
            "cut_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "content_hash=excluded.content_hash, kind=excluded.kind, reason=excluded.reason, "
            "at=excluded.at, record_fields=excluded.record_fields, cut_by=excluded.cut_by",
            [path, content_hash, kind, reason, time.time(), record_fields, cut_by],
        )

    def forget_failure(self, path: str) -> None:
        self.db.execute("DELETE FROM failed_files WHERE path = ?", [path])

    def delete_documents(self, doc_ids: Iterable[int]) -> list[tuple[int, str, int, str]]:
        """Delete documents and their passages; their vectors become tombstones and their
        lexical entries are removed.

        Returns (passage id, language, segment id, text) of every passage removed, so the
        caller can take their vectors out of the per-language statistics.
        """
        from . import lexical

        ids = list(doc_ids)
        removed: list[tuple[int, str, int, str]] = []
        for part, marks in _in_chunks(ids):
            removed += [tuple(r) for r in self.db.execute(
                "SELECT id, language, segment, text FROM passages "
                f"WHERE document_id IN ({marks})", part)]
        pids = [r[0] for r in removed]
        lexical.delete(self.db.conn, [(r[0], r[3]) for r in removed])
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO tombstones (passage_id, segment) VALUES (?, ?)",
            [(r[0], r[2]) for r in removed if r[2] is not None])
        for part, marks in _in_chunks(pids):
            self.db.execute(f"DELETE FROM passages WHERE id IN ({marks})", part)
        for part, marks in _in_chunks(ids):
            self.db.execute(f"DELETE FROM documents WHERE id IN ({marks})", part)
        return removed

    def delete_file(self, path: str) -> list[tuple[int, str, int, str]]:
        docs = self.documents_of(path)
        removed = self.delete_documents(d["id"] for d in docs.values())
        self.db.execute("DELETE FROM files WHERE path = ?", [path])
        return removed

    def insert_document(self, path: str, doc: DocumentRow) -> tuple[int, list[int]]:
        """Insert a document and its passages; returns (document id, passage ids)."""
        cur = self.db.execute(
            "INSERT INTO documents (path, record_id, title, content_hash, n_chars, language, "
            "n_passages) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [path, doc.record_id, doc.title, doc.content_hash, doc.n_chars, doc.language,
             len(doc.passages)],
        )
        doc_id = cur.lastrowid
        pids = []
        for p in doc.passages:
            cur = self.db.execute(
                "INSERT INTO passages (document_id, ordinal, char_start, char_end, text, language, "
                "language_score, n_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [doc_id, p.ordinal, p.char_start, p.char_end, p.text, p.language,
                 p.language_score, p.n_tokens],
            )
            pids.append(cur.lastrowid)
        from . import lexical

        lexical.insert(self.db.conn, [(pid, p.text) for pid, p in zip(pids, doc.passages,
                                                                      strict=True)])
        self._lexical_new += pids  # their lengths (xsearch.bm25), when the transaction ends
        return doc_id, pids

    def assign_segment(self, passage_ids: list[int], segment_id: int) -> None:
        self.db.conn.executemany("UPDATE passages SET segment = ? WHERE id = ?",
                                 [(segment_id, int(i)) for i in passage_ids])

    # -- segments and tombstones -------------------------------------------------------

    def segments(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM segments ORDER BY id"))

    def add_segment(self, language: str, info) -> int:
        cur = self.db.execute(
            "INSERT INTO segments (name, language, kind, n, bytes, fingerprint, checksum, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [info.name, language, info.kind, info.n, info.nbytes, info.fingerprint,
             info.checksum, time.time()],
        )
        return int(cur.lastrowid)

    def next_segment_seq(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'segments'"
                              ).fetchone()
        return (row[0] if row else 0) + 1

    def segment_seq_at_least(self, seq: int) -> None:
        """New segments are numbered above ``seq`` (inside a transaction). sqlite_sequence
        has no unique key: INSERT OR REPLACE would add a second row, not replace the first."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'segments'"
                              ).fetchone()
        if row is None:
            self.db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('segments', ?)",
                            [seq])
        elif row[0] < seq:
            self.db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'segments'", [seq])

    def replace_segments(self, old_ids: list[int], new_id: int) -> None:
        """Point the passages of ``old_ids`` at ``new_id`` and drop the old rows (a merge)."""
        for part, marks in _in_chunks(old_ids):
            self.db.execute(f"UPDATE passages SET segment = ? WHERE segment IN ({marks})",
                            [new_id, *part])
            self.db.execute(f"DELETE FROM tombstones WHERE segment IN ({marks})", part)
            self.db.execute(f"DELETE FROM segments WHERE id IN ({marks})", part)

    def tombstones(self) -> dict[int, np.ndarray]:
        """Tombstoned passage ids per segment id, each sorted."""
        out: dict[int, list[int]] = {}
        for pid, seg in self.db.execute("SELECT passage_id, segment FROM tombstones"):
            out.setdefault(seg, []).append(pid)
        return {seg: np.sort(np.array(v, dtype=np.int64)) for seg, v in out.items()}

    def live_ids_of_segment(self, segment_id: int) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM passages WHERE segment = ? ORDER BY id",
                               [segment_id]).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    # -- per-language statistics -------------------------------------------------------

    def lang_stats(self, with_outer: bool = False) -> dict[str, tuple]:
        """language -> (n, sum) or (n, sum, outer) as float64 arrays."""
        cols = "language, n, sum" + (", outer" if with_outer else "")
        out = {}
        for row in self.db.execute(f"SELECT {cols} FROM lang_stats"):
            vec = np.frombuffer(row[2], dtype=np.float64)
            out[row[0]] = ((row[1], vec, unpack_outer(row[3], len(vec))) if with_outer
                           else (row[1], vec))
        return out

    def update_lang_stats(self, language: str, vectors: np.ndarray, sign: int = 1) -> None:
        """Add (sign=1) or remove (sign=-1) these vectors from the language's sums."""
        if not len(vectors):
            return
        v = np.asarray(vectors, dtype=np.float64)
        dim = v.shape[1]
        row = self.db.execute("SELECT n, sum, outer FROM lang_stats WHERE language = ?",
                              [language]).fetchone()
        if row:
            n, total = row[0], np.frombuffer(row[1], dtype=np.float64).copy()
            outer = unpack_outer(row[2], dim)
        else:
            n, total, outer = 0, np.zeros(dim), np.zeros((dim, dim))
        n += sign * len(v)
        total += sign * v.sum(axis=0)
        outer = outer + sign * (v.T @ v)
        if n <= 0:
            self.db.execute("DELETE FROM lang_stats WHERE language = ?", [language])
            return
        self.db.execute(
            "INSERT INTO lang_stats (language, n, sum, outer) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(language) DO UPDATE SET n=excluded.n, sum=excluded.sum, "
            "outer=excluded.outer",
            [language, n, total.tobytes(), pack_outer(outer)],
        )

    def lang_offsets(self) -> dict[str, tuple[int, np.ndarray, np.ndarray]]:
        """language -> (n, sum of query-mode vectors, sum of passage-mode vectors)."""
        return {r[0]: (r[1], np.frombuffer(r[2], dtype=np.float64),
                       np.frombuffer(r[3], dtype=np.float64))
                for r in self.db.execute("SELECT language, n, q_sum, p_sum FROM lang_offsets")}

    def add_lang_offset(self, language: str, q: np.ndarray, p: np.ndarray) -> None:
        """Add query- and passage-mode vectors of the same texts to a language's sums."""
        if not len(q):
            return
        old = self.lang_offsets().get(language)
        n = len(q) + (old[0] if old else 0)
        qs = np.asarray(q, dtype=np.float64).sum(axis=0) + (old[1] if old else 0.0)
        ps = np.asarray(p, dtype=np.float64).sum(axis=0) + (old[2] if old else 0.0)
        self.db.execute("INSERT OR REPLACE INTO lang_offsets (language, n, q_sum, p_sum) "
                        "VALUES (?, ?, ?, ?)", [language, n, qs.tobytes(), ps.tobytes()])

    def clear_lang_stats(self) -> None:
        self.db.execute("DELETE FROM lang_stats")

    # -- reading -----------------------------------------------------------------------

    def passage_ids(self) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM passages ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def legacy_vectors(self, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in slices from a schema-2 ``vectors`` table, for the upgrade."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT passage_id, vector FROM vectors WHERE passage_id > ? "
                "ORDER BY passage_id LIMIT 50000", [last]).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (np.array([r[0] for r in rows], dtype=np.int64),
                   np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows]).reshape(-1,
                                                                                           dim))

    def hits(self, ids: list[int]) -> dict[int, dict]:
        """Passage rows joined with their document, for display."""
        out: dict[int, dict] = {}
        for part, marks in _in_chunks(ids):
            rows = self.db.query(
                "SELECT p.id, p.ordinal, p.char_start, p.char_end, p.text, p.language, "
                "p.n_tokens, p.topic, p.topic_score, p.document_id, d.path, d.record_id, "
                "d.title, d.language AS doc_language, d.topic AS doc_topic FROM passages p "
                f"JOIN documents d ON d.id = p.document_id WHERE p.id IN ({marks})",
                part,
            )
            out.update((r["id"], r) for r in rows)
        return out

    def counts(self) -> dict[str, int]:
        q = self.db.execute
        return {
            "files": q("SELECT count(*) FROM files").fetchone()[0],
            "documents": q("SELECT count(*) FROM documents").fetchone()[0],
            "passages": q("SELECT count(*) FROM passages").fetchone()[0],
        }


def pack_outer(outer: np.ndarray) -> bytes:
    """A symmetric sum of outer products as its upper triangle, row by row, in float32 (half
    the bytes of the whole matrix: 13 languages were 7.7 MB of data/corpus's 8.2 MB index)."""
    return np.ascontiguousarray(outer[_upper(len(outer))], dtype=np.float32).tobytes()


def unpack_outer(blob: bytes, dim: int) -> np.ndarray:
    """The (dim, dim) float64 matrix from :func:`pack_outer`'s bytes, or from the whole float32
    matrix that indexes written before it hold."""
    flat = np.frombuffer(blob, dtype=np.float32)
    if len(flat) == dim * dim:
        return flat.astype(np.float64).reshape(dim, dim)
    if len(flat) != dim * (dim + 1) // 2:
        raise ValueError(f"a sum of outer products of {len(flat)} values is not {dim}-d")
    out = np.empty((dim, dim))
    rows, cols = _upper(dim)
    out[rows, cols] = flat
    out[cols, rows] = flat
    return out


@functools.cache
def _upper(dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(dim)
