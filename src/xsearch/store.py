"""The SQLite half of an index, and its commit point: files, documents, passages, the list of
vector segments, tombstones, per-language vector statistics (``lang_sums``) and the index's
own config.

Vectors live only in segment files (``segments.py``); a segment is part of the index exactly
when a committed ``segments`` row names it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlite_utils

from .errors import CorruptIndexError, damaged, first_line
from .lang_sums import LangSums
from .rows import DocumentRow, PassageRow, text_key  # noqa: F401 - the rows it writes
from .schema import (  # noqa: F401 - SCHEMA_VERSION re-exported
    MIGRATIONS,
    READERS_MAY_SKIP,
    SCHEMA_VERSION,
)


def _in_chunks(ids: list, size: int = 500) -> Iterator[tuple[list, str]]:
    """(ids, "?,?,...") in slices that stay under SQLite's limit on bound variables."""
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        yield part, ",".join("?" * len(part))


class NeedsUpgradeError(CorruptIndexError):
    """The database is older than this xsearch; a writer must migrate it first."""


#: The live database's name (``index_dir.DATABASE``): never made anew where it is.
_LIVE = "xsearch.db"


class Store(LangSums):
    """Typed access to the index database.

    ``readonly`` opens SQLite with ``mode=ro`` (``immutable=1`` when the folder itself cannot
    be written), runs no migration and never writes.
    """

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        # A database is made only where there was none (or a build's own, emptied by a
        # kill): an emptied live xsearch.db is damage, not a new index (`check --repair`
        # once made it one, and swept every segment file).
        try:
            self._may_create = self.path.stat().st_size == 0 and self.path.name != _LIVE
        except FileNotFoundError:
            self._may_create = True
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
                if not self._may_create and not self.db["_migrations"].exists():
                    self._check_migrations(apply=True)  # refuses it, before any write
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = FULL")
                self._check_migrations(apply=True)
        except sqlite3.OperationalError as exc:  # busy, locked, cannot open: not damage
            raise CorruptIndexError(f"index database {self.path} is unreadable: "
                                    f"{first_line(exc)}") from exc
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # (schema text, damaged)
            raise CorruptIndexError(damaged(exc, self.path)) from exc

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
            # A read-only folder whose WAL index cannot be created: read the file as it is,
            # unless its WAL holds commits, which that reading would not show (it showed the
            # index as it was before them, without a word).
            conn.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if has_wal and wal.stat().st_size > 0:
                raise CorruptIndexError(
                    f"index {self.path.parent} has commits in {wal.name} that a read-only "
                    f"folder cannot show (SQLite needs to make {self.path.name}-shm beside "
                    "it): open it once where it can be written, or copy it with its -shm file"
                ) from None
            conn = sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None)
        return conn

    def _check_migrations(self, apply: bool) -> None:
        if not self.db["_migrations"].exists():
            if not apply or not self._may_create:
                raise CorruptIndexError(f"{self.path} is not an xsearch database" + (
                    "; xsearch index PATH --full rebuilds the index" if apply else ""))
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

    def passages_of_files(self, paths: list[str]) -> int:
        """How many passages these files hold."""
        return sum(self.db.execute(
            "SELECT count(*) FROM passages p JOIN documents d ON d.id = p.document_id "
            f"WHERE d.path IN ({marks})", part).fetchone()[0]
            for part, marks in _in_chunks(paths))

    def paths_with_hash(self, content_hash: str, besides: str, limit: int) -> list[str]:
        """Up to ``limit`` indexed files with this content hash, other than ``besides``."""
        return [r[0] for r in self.db.execute(
            "SELECT path FROM files WHERE content_hash = ? AND path != ? LIMIT ?",
            [content_hash, besides, limit])]

    def reusable_passages(self, doc_ids: Iterable[int]) -> dict[bytes, list[tuple]]:
        """Passages of these documents that have a vector, by :func:`text_key`: [(id,
        language, language score, (topic, topic score))] in order, for the new version of
        their file to keep."""
        out: dict[bytes, list[tuple]] = {}
        for part, marks in _in_chunks(list(doc_ids)):
            self._gather(out, "SELECT id, text, language, language_score, topic, topic_score "
                              "FROM passages "
                              f"WHERE document_id IN ({marks}) AND segment IS NOT NULL "
                              "ORDER BY id", part)
        return out

    def reusable_of_files(self, paths: list[str], limit: int) -> dict[bytes, list[tuple]]:
        """:meth:`reusable_passages` of every document of these files, up to ``limit``
        passages (a file renamed and edited, or text moved out of a deleted file)."""
        out: dict[bytes, list[tuple]] = {}
        left = limit
        for part, marks in _in_chunks(list(paths)):
            left -= self._gather(out, "SELECT p.id, p.text, p.language, p.language_score, "
                                      "p.topic, p.topic_score FROM passages p JOIN documents "
                                      f"d ON d.id = p.document_id WHERE d.path IN ({marks}) "
                                      "AND p.segment IS NOT NULL ORDER BY p.id LIMIT ?",
                                 [*part, left])
            if left <= 0:
                break
        return out

    def _gather(self, out: dict[bytes, list[tuple]], sql: str, params: list) -> int:
        n = 0
        for pid, text, lang, score, topic, topic_score in self.db.execute(sql, params):
            out.setdefault(text_key(text), []).append((pid, lang, score, (topic, topic_score)))
            n += 1
        return n

    def set_aside(self, doc_ids: list[int]) -> None:
        """Give documents about to be deleted record ids no new document has, so their
        file's new documents can be inserted (and keep their passages) first."""
        for part, marks in _in_chunks(doc_ids):
            self.db.execute("UPDATE documents SET record_id = char(1) || id "
                            f"WHERE id IN ({marks})", part)

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
        """Insert a document and its passages; returns (document id, ids of the passages
        added, in order: those of ``doc.to_embed``)."""
        cur = self.db.execute(
            "INSERT INTO documents (path, record_id, title, content_hash, n_chars, language, "
            "n_passages) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [path, doc.record_id, doc.title, doc.content_hash, doc.n_chars, doc.language,
             len(doc.passages)],
        )
        doc_id = cur.lastrowid
        new = []
        for p in doc.passages:
            topic = p.topic or (None, None)
            if p.keep is not None:  # same text, same vector and lexical entry: moved here
                self.db.execute("UPDATE passages SET document_id = ?, ordinal = ?, "
                                "char_start = ?, char_end = ?, topic = ?, "
                                "topic_score = ? WHERE id = ?",
                                [doc_id, p.ordinal, p.char_start, p.char_end, *topic, p.keep])
                continue
            cur = self.db.execute(
                "INSERT INTO passages (document_id, ordinal, char_start, char_end, text, language, "
                "language_score, n_tokens, topic, topic_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?)", [doc_id, p.ordinal, p.char_start, p.char_end, p.text, p.language,
                       p.language_score, p.n_tokens, *topic],
            )
            new.append((cur.lastrowid, p.text))
        from . import lexical

        lexical.insert(self.db.conn, new)
        pids = [pid for pid, _ in new]
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
                "d.title, d.language AS doc_language, d.topic AS doc_topic, "
                "f.size AS file_size, f.mtime AS file_mtime FROM passages p "
                "JOIN documents d ON d.id = p.document_id "
                f"LEFT JOIN files f ON f.path = d.path WHERE p.id IN ({marks})",
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

