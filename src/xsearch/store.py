"""The SQLite half of an index: files, documents, passages and their vectors.

Vectors are kept here too (as float32 blobs), so the FAISS file is a cache that can always be
rebuilt from SQLite: a crash between the SQLite commit and the FAISS write loses nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from .errors import CorruptIndexError

MigrationFn = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[tuple[str, MigrationFn]] = []


def migration(fn: MigrationFn) -> MigrationFn:
    """Register a schema step; steps run once each, in order, recorded in ``_migrations``."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE files (
            path TEXT PRIMARY KEY,
            content_hash TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime REAL NOT NULL,
            format TEXT NOT NULL,
            indexed_at REAL NOT NULL
        )"""
    )
    # AUTOINCREMENT: passage ids are FAISS ids and must never be reused, or a stale FAISS
    # file could point an old vector at a new passage.
    db.execute(
        """CREATE TABLE documents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL REFERENCES files(path) ON UPDATE CASCADE,
            record_id TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            n_chars INTEGER NOT NULL,
            language TEXT,
            n_passages INTEGER NOT NULL DEFAULT 0,
            topic TEXT,
            topic_score REAL,
            UNIQUE (path, record_id)
        )"""
    )
    db.execute(
        """CREATE TABLE passages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            document_id INTEGER NOT NULL REFERENCES documents(id),
            ordinal INTEGER NOT NULL,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            text TEXT NOT NULL,
            language TEXT,
            language_score REAL,
            n_tokens INTEGER NOT NULL,
            topic TEXT,
            topic_score REAL
        )"""
    )
    db.execute("CREATE INDEX passages_document ON passages(document_id)")
    db.execute("CREATE INDEX passages_language ON passages(language)")
    db.execute(
        "CREATE TABLE vectors (passage_id INTEGER PRIMARY KEY REFERENCES passages(id), "
        "vector BLOB NOT NULL)"
    )


@migration
def m002_labels(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE labels (name TEXT PRIMARY KEY, description TEXT NOT NULL, "
        "position INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX passages_topic ON passages(topic)")


SCHEMA_VERSION = len(MIGRATIONS)


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
    vector: np.ndarray


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


class Store:
    """Typed access to the index database."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise CorruptIndexError(f"index database {self.path} is unreadable: {exc}") from exc

    def _migrate(self) -> None:
        if not self.db["_migrations"].exists():
            self.db.execute(
                "CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
        done = {r["name"] for r in self.db.query("SELECT name FROM _migrations")}
        unknown = done - {name for name, _ in MIGRATIONS}
        if unknown:
            raise CorruptIndexError(
                f"index database {self.path} was made by a newer xsearch "
                f"(unknown migrations: {', '.join(sorted(unknown))})"
            )
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                fn(self.db)
                self.db.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, time.time()]
                )

    def check(self) -> None:
        """Raise CorruptIndexError unless SQLite's quick check passes."""
        try:
            row = self.db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CorruptIndexError(f"index database {self.path} is corrupt: {exc}") from exc
        if row[0] != "ok":
            raise CorruptIndexError(f"index database {self.path} is corrupt: {row[0]}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.conn.close()

    # -- files -------------------------------------------------------------------------

    def files(self) -> dict[str, dict]:
        return {r["path"]: r for r in self.db.query("SELECT * FROM files")}

    def documents_of(self, path: str) -> dict[str, dict]:
        rows = self.db.query("SELECT * FROM documents WHERE path = ?", [path])
        return {r["record_id"]: r for r in rows}

    def passage_ids_of_documents(self, doc_ids: Iterable[int]) -> list[int]:
        return [r[0] for part, marks in _in_chunks(list(doc_ids)) for r in self.db.execute(
            f"SELECT id FROM passages WHERE document_id IN ({marks})", part)]

    def upsert_file(self, path: str, content_hash: str, size: int, mtime: float, fmt: str) -> None:
        self.db.execute(
            "INSERT INTO files (path, content_hash, size, mtime, format, indexed_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "content_hash=excluded.content_hash, size=excluded.size, mtime=excluded.mtime, "
            "format=excluded.format, indexed_at=excluded.indexed_at",
            [path, content_hash, size, mtime, fmt, time.time()],
        )

    def rename_file(self, old: str, new: str, size: int, mtime: float) -> None:
        """Move a file's documents to a new path (ON UPDATE CASCADE carries documents)."""
        self.db.execute(
            "UPDATE files SET path = ?, size = ?, mtime = ?, indexed_at = ? WHERE path = ?",
            [new, size, mtime, time.time(), old],
        )

    def delete_documents(self, doc_ids: Iterable[int]) -> list[int]:
        """Delete documents with their passages and vectors; returns the passage ids removed."""
        ids = list(doc_ids)
        pids = self.passage_ids_of_documents(ids)
        for part, marks in _in_chunks(pids):
            self.db.execute(f"DELETE FROM vectors WHERE passage_id IN ({marks})", part)
            self.db.execute(f"DELETE FROM passages WHERE id IN ({marks})", part)
        for part, marks in _in_chunks(ids):
            self.db.execute(f"DELETE FROM documents WHERE id IN ({marks})", part)
        return pids

    def delete_file(self, path: str) -> list[int]:
        docs = self.documents_of(path)
        pids = self.delete_documents(d["id"] for d in docs.values())
        self.db.execute("DELETE FROM files WHERE path = ?", [path])
        return pids

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
            self.db.execute(
                "INSERT INTO vectors (passage_id, vector) VALUES (?, ?)",
                [cur.lastrowid, np.asarray(p.vector, dtype=np.float32).tobytes()],
            )
        return doc_id, pids

    # -- vectors -----------------------------------------------------------------------

    def passage_ids(self) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM passages ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def vectors(self, ids: Iterable[int] | None = None, dim: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) for the given passage ids, or all of them."""
        if ids is None:
            rows = self.db.execute("SELECT passage_id, vector FROM vectors ORDER BY passage_id")
            rows = rows.fetchall()
        else:
            rows = []
            for part, marks in _in_chunks(list(ids)):
                rows += self.db.execute(
                    f"SELECT passage_id, vector FROM vectors WHERE passage_id IN ({marks})", part
                ).fetchall()
        out_ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not rows:
            return out_ids, np.zeros((0, dim or 0), dtype=np.float32)
        mat = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return out_ids, mat

    # -- reading -----------------------------------------------------------------------

    def hits(self, ids: list[int]) -> dict[int, dict]:
        """Passage rows joined with their document, for display."""
        out: dict[int, dict] = {}
        for part, marks in _in_chunks(ids):
            rows = self.db.query(
                "SELECT p.id, p.ordinal, p.char_start, p.char_end, p.text, p.language, "
                "p.n_tokens, p.topic, p.topic_score, d.path, d.record_id, d.title, "
                "d.language AS doc_language, d.topic AS doc_topic FROM passages p "
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
