"""The index database's schema as numbered migrations (sqlite-utils style): each runs once,
in order, recorded in ``_migrations``; ``Store`` applies the pending ones in one transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

import sqlite_utils

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


@migration
def m003_segments(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE passages ADD COLUMN segment INTEGER")
    db.execute("CREATE INDEX passages_segment ON passages(segment)")
    db.execute(
        """CREATE TABLE segments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            language TEXT NOT NULL,
            kind TEXT NOT NULL,
            n INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            checksum TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE TABLE tombstones (passage_id INTEGER PRIMARY KEY, segment INTEGER NOT NULL)")
    # Exact per-language sums, so means and covariances follow every write in O(changed).
    db.execute(
        "CREATE TABLE lang_stats (language TEXT PRIMARY KEY, n INTEGER NOT NULL, "
        "sum BLOB NOT NULL, outer BLOB NOT NULL)"
    )
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta (key, value) VALUES ('generation', '0')")
    db.execute(
        """CREATE TABLE failed_files (
            path TEXT PRIMARY KEY,
            content_hash TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            at REAL NOT NULL
        )"""
    )


UpgradeProgress = Callable[[int, int], None]
#: Passages tokenised (and read) at a time when the lexical index is made again.
RETOKENISE_STEP = 2000
_UPGRADE_PROGRESS: ContextVar[UpgradeProgress | None] = ContextVar("upgrade_progress",
                                                                   default=None)


@contextlib.contextmanager
def upgrade_progress(tell: UpgradeProgress | None) -> Iterator[None]:
    """While inside, a migration that tokenises every passage again calls ``tell(done,
    total)`` after each ``RETOKENISE_STEP`` passages (in the thread that opens the database)."""
    token = _UPGRADE_PROGRESS.set(tell)
    try:
        yield
    finally:
        _UPGRADE_PROGRESS.reset(token)


def upgrade_events(notify: Callable[[str, dict], None]) -> UpgradeProgress:
    """An upgrade's progress told to ``notify`` as ``("upgrading", {"done", "total",
    "step"})``: ``step``, the passages told at a time (fewer at the end)."""
    return lambda done, total: notify("upgrading", {"done": done, "total": total,
                                                    "step": RETOKENISE_STEP})


def _tokenise_every_passage(db: sqlite_utils.Database) -> None:
    """Give every passage to the (empty) FTS5 table, ``RETOKENISE_STEP`` at a time, with
    today's tokenisation, and record its version."""
    from . import lexical

    tell = _UPGRADE_PROGRESS.get()
    total = db.execute("SELECT count(*) FROM passages").fetchone()[0] if tell else 0
    last = done = 0
    while rows := db.execute("SELECT id, text FROM passages WHERE id > ? ORDER BY id LIMIT ?",
                             [last, RETOKENISE_STEP]).fetchall():
        lexical.insert(db.conn, rows)
        last = rows[-1][0]
        done += len(rows)
        if tell:
            tell(done, total)
    _record_lexical_version(db)


def _record_lexical_version(db: sqlite_utils.Database) -> None:
    from . import lexical

    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('lexical_version', ?)",
               [str(lexical.VERSION)])


def _lexical_current(conn: sqlite3.Connection | sqlite_utils.Database) -> bool:
    """Whether the passages are tokenised with today's ``lexical.VERSION``."""
    from . import lexical

    row = conn.execute("SELECT value FROM meta WHERE key = 'lexical_version'").fetchone()
    return row is not None and row[0] == str(lexical.VERSION)


@migration
def m004_lexical(db: sqlite_utils.Database) -> None:
    """FTS5 over every passage (xsearch.lexical tokenisation), and the per-language sums of
    query- and passage-mode vectors of a few passages, for the query offset per language."""
    from . import lexical

    lexical.create(db.conn)
    _tokenise_every_passage(db)
    db.execute("CREATE TABLE lang_offsets (language TEXT PRIMARY KEY, n INTEGER NOT NULL, "
               "q_sum BLOB NOT NULL, p_sum BLOB NOT NULL)")


@migration
def m005_lexical_lengths(db: sqlite_utils.Database) -> None:
    """Every passage's length in FTS5 tokens, and FTS5's instance vocabulary: BM25 computed
    in numpy (xsearch.bm25), not by ``bm25()`` once per matching passage."""
    from . import bm25, lexical

    bm25.create(db.conn, lexical.TABLE)
    bm25.rebuild(db.conn, lexical.TABLE)


@migration
def m006_lang_stats_triangles(db: sqlite_utils.Database) -> None:
    """Each language's sum of outer products as its upper triangle (half the bytes). The
    migration's name is what keeps an older xsearch, which reads whole matrices, from
    opening an index written this way ("made by a newer xsearch")."""
    from .lang_sums import pack_outer, unpack_outer

    rows = db.execute("SELECT language, sum, outer FROM lang_stats").fetchall()
    for language, total, outer in rows:
        dim = len(total) // 8  # the sum is float64
        db.execute("UPDATE lang_stats SET outer = ? WHERE language = ?",
                   [pack_outer(unpack_outer(outer, dim)), language])



@migration
def m007_record_fields(db: sqlite_utils.Database) -> None:
    """The record fields (--text-field, --id-field) each .jsonl/.csv file was read with, as
    JSON: a later run reads a changed file the same way, and reads a file again when it is
    given other fields. NULL for other formats and for files indexed before this step."""
    db.execute("ALTER TABLE files ADD COLUMN record_fields TEXT")
    db.execute("ALTER TABLE failed_files ADD COLUMN record_fields TEXT")


@migration
def m008_lexical_spelling(db: sqlite_utils.Database) -> None:
    """Lexical tokenisation 2 (``lexical.SPELLING``): when any passage holds a character it
    folds, every passage is tokenised again (FTS5 rows and their lengths); otherwise only the
    version is recorded. Nothing to do when m004 has just tokenised them."""
    from . import lexical

    # What NFKC turns into them too: nukta letters, Hebrew and Arabic presentation forms.
    _tokenise_again_if_any(db, [(cp, cp) for cp in lexical.SPELLING]
                           + [(0x0958, 0x095F), (0xFB1D, 0xFDFF), (0xFE70, 0xFEFF)])


#: Passages from which a lexical re-tokenising upgrade is announced (~4 s on 2 cores).
ANNOUNCE_RETOKENISING = 10_000


def upgrade_note(db_path: Path) -> str | None:
    """What to say before the index database at ``db_path`` is opened to write, when a
    pending migration (m008, m010, m012) will tokenise every passage again (minutes at a
    million); None otherwise, and when it cannot be read (opening it says what is wrong)."""
    from .store import Store

    try:
        store = Store(db_path, readonly=True)
    except Exception:
        return None
    try:
        conn = store.db.conn
        done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
        if {"m008_lexical_spelling", "m010_lexical_digits",
                "m012_lexical_dotted_i"} <= done or _lexical_current(conn):
            return None
        n = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
    finally:
        store.close()
    if n < ANNOUNCE_RETOKENISING:
        return None
    return (f"upgrading the index: its {n:,} passages are tokenised again for the lexical "
            "index, once (about 7 minutes a million passages on 2 cores)")


def _tokenise_again_if_any(db: sqlite_utils.Database, ranges: list[tuple[int, int]]) -> None:
    """Unless the index is tokenised with today's version: tokenise every passage again when
    one holds a character in ``ranges`` (FTS5 rows and their lengths); else record the
    version only."""
    from . import bm25, lexical

    if _lexical_current(db):
        return
    pattern = "*[" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]*"
    if not db.execute("SELECT 1 FROM passages WHERE text GLOB ? LIMIT 1", [pattern]).fetchone():
        _record_lexical_version(db)
        return
    db.execute(f"INSERT INTO {lexical.TABLE}({lexical.TABLE}) VALUES ('delete-all')")
    _tokenise_every_passage(db)
    if bm25.has_lengths(db.conn):
        bm25.rebuild(db.conn, lexical.TABLE)


@migration
def m009_cut_by(db: sqlite_utils.Database) -> None:
    """The limits (--max-mb, --max-text-mb, --read-timeout, --max-chars) that refused a file
    or left records of it out, as JSON: a later run that raises one reads the file again.
    NULL when nothing was cut, and for files read before this step."""
    db.execute("ALTER TABLE files ADD COLUMN cut_by TEXT")
    db.execute("ALTER TABLE failed_files ADD COLUMN cut_by TEXT")


@migration
def m010_lexical_digits(db: sqlite_utils.Database) -> None:
    """Lexical tokenisation 3: decimal digits of every script fold to ASCII (and Thai, Lao,
    Myanmar and Khmer digits are no longer paired); passages holding any are tokenised again
    as m008 does. Nothing to do after m004 or m008, which tokenise with version 3."""
    from . import lexical

    _tokenise_again_if_any(db, [(cp, cp) for cp in lexical.DIGITS])


@migration
def m011_files_by_hash(db: sqlite_utils.Database) -> None:
    """Files by content hash: a new path is looked up among them, so a file indexed through
    a symlink is not indexed again through its real path (nor the other way round)."""
    db.execute("CREATE INDEX files_content_hash ON files(content_hash)")


@migration
def m012_lexical_dotted_i(db: sqlite_utils.Database) -> None:
    """Lexical tokenisation 4: a Turkish İ folds to i (casefolding left a combining dot);
    passages holding one are tokenised again as m008 does."""
    _tokenise_again_if_any(db, [(0x0130, 0x0130), (0x0307, 0x0307)])


SCHEMA_VERSION = len(MIGRATIONS)

READERS_MAY_SKIP = frozenset({"m005_lexical_lengths", "m006_lang_stats_triangles",
                               "m007_record_fields", "m008_lexical_spelling", "m009_cut_by",
                               "m010_lexical_digits", "m011_files_by_hash",
                               "m012_lexical_dotted_i"})
"""Migrations a reader does without (it takes the slower way until a writer applies them: the
lengths are a faster path, and whole outer-product matrices still read; record fields, the
limits of m009 and the hash index of m011 matter only to indexing; until m008 and m010, a
query word written with a folded mark or letter form, or a number in another script's digits,
does not match the same word in the lexical index): a query on an index that lacks only these
does not ask for an upgrade."""
