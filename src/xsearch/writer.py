"""The write side of an index: the lock, atomic creation and ``--full`` (what stopped runs
leave: ``fresh_builds.py``), the schema-2 upgrade, write transactions that add segments, and
merges.

Order inside every write, for crash safety: segment files are written, fsync'd and renamed
into place *before* the SQLite transaction that names them commits; files that no commit
names are swept by the next writer. Nothing outside the index's own name patterns is touched.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import fresh_builds as FB
from . import merging
from . import segment_kinds as K
from . import segments as S
from .errors import CorruptIndexError, IndexLockedError
from .faults import point
from .fileio import fsync_dir
from .index_dir import (
    CONFIG,
    DATABASE,
    LEGACY_VECTORS,
    LOCK,
    SEGMENTS,
    IndexConfig,
    IndexDir,
    ReadOnlyIndexError,
    is_own_folder,
    looks_like_index,
)
from .store import SCHEMA_VERSION, Store
from .write_failures import write_errors, write_failure  # noqa: F401 - (part of this API)


@contextmanager
def private_files() -> Iterator[None]:
    """Files created inside are 0600 and folders 0700: an index holds the user's text."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def prepare_folder(path: Path) -> bool:
    """Refuse a place that is not ours before anything is written there; create it if new
    (True: it was made now)."""
    if path.exists() and not path.is_dir():
        raise CorruptIndexError(f"index path {path} is a file, not a directory")
    if path.is_dir():
        if not is_own_folder(path):
            raise CorruptIndexError(
                f"{path} is not empty and is not an xsearch index; choose another --index")
        if not os.access(path, os.W_OK | os.X_OK) or (
                (path / DATABASE).exists() and not os.access(path / DATABASE, os.W_OK)):
            raise ReadOnlyIndexError(f"index {path} is read-only; cannot write to it")
        _segments_folder_or_none(path)
        return False
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ReadOnlyIndexError(f"cannot create index {path}: {probe} is not writable")
    try:
        path.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise ReadOnlyIndexError(f"cannot create index {path}: {exc.strerror}") from exc
    return True


@contextmanager
def write_lock(path: Path, made: bool = False) -> Iterator[None]:
    """One writer per index; a second one fails at once instead of interleaving. A failed
    write inside (disk full, I/O error) comes out as one :class:`IndexWriteError`. ``made``:
    the folder was made for this writer, and goes again if it fails before any database
    is written (a wrong --model left a folder holding a lock file alone)."""
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ReadOnlyIndexError(f"cannot lock index {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLockedError(f"index {path} is being written by another process") from exc
        with write_errors(path):
            yield
    except BaseException:
        if made:
            _unmake(path)  # still locked: a second writer fails at once, it never waits
        raise
    finally:
        os.close(fd)


def _unmake(path: Path) -> None:
    """Remove a folder made for a writer that failed, if it holds nothing but what that
    writer began with: its lock, config and an empty segments folder."""
    try:
        names = {p.name for p in path.iterdir()}
        if not names <= {LOCK, CONFIG, SEGMENTS} or (
                SEGMENTS in names and any((path / SEGMENTS).iterdir())):
            return
        for name in (CONFIG, LOCK):
            (path / name).unlink(missing_ok=True)
        if SEGMENTS in names:
            (path / SEGMENTS).rmdir()
        path.rmdir()
    except OSError:
        pass  # left as it is: the next run takes it as its own


@contextmanager
def lock_existing(path: Path) -> Iterator[None]:
    """:func:`write_lock` for a writer of an index that must exist (rm, check --repair,
    label): a path holding no index of ours is refused, with the error opening it gives,
    before the lock file is made among the user's files; an older schema passes (the writer
    upgrades it)."""
    if not (looks_like_index(path) and is_own_folder(path)):
        IndexDir.open(path).close()
    _segments_folder_or_none(path)
    with private_files(), write_lock(path):
        yield


def _segments_folder_or_none(path: Path) -> None:
    """Refuse an index whose ``segments`` is a file ("File exists" was all a writer said)."""
    if (path / SEGMENTS).exists() and not (path / SEGMENTS).is_dir():
        raise CorruptIndexError(f"index {path}: {SEGMENTS} is a file, not the folder of its "
                                "vectors; move it away (xsearch does not delete it)")


@dataclass
class Written:
    """Passage ids a write added and removed."""

    added: list[int]
    removed: int


class IndexWriter:
    """An index opened for writing (inside :func:`write_lock`)."""

    def __init__(self, path: Path, index: IndexDir, new_db: Path | None) -> None:
        self.path = path
        self.index = index
        self.store = index.store
        self.config = index.config
        self._new_db = new_db  # a fresh database to rename over the live one in finish()
        self.compacted = 0  # segments folded together while this run wrote
        self.folder = path / SEGMENTS
        #: Files an interrupted run had already committed to the fresh database taken up.
        self.resumed_files = 0
        #: Stopped fresh builds removed on opening (``unfinished_builds`` rows).
        self.dropped_builds: list[dict] = []

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, new_config: IndexConfig | None, build: str = "",
             keep_unfinished: bool = False) -> IndexWriter:
        """Open the live index, or start a fresh one when ``new_config`` is given: the fresh
        database an interrupted run left with the same config and ``build`` (what it was
        asked to index) is taken up where it stopped (:attr:`resumed_files` tells how many
        files it held), any other is removed (:attr:`dropped_builds` says what) unless
        ``keep_unfinished`` (a live writer that is not an index run: rm, check --repair)."""
        keep = keep_unfinished and new_config is None
        unfinished, dropped = FB.recover_or_sweep(path, resume=new_config, build=build,
                                                  keep_unfinished=keep)
        if unfinished is not None:
            writer = cls._resume(path, unfinished)
        elif new_config is None:
            index = IndexDir.open(path, readonly=False)
            writer = cls(path, index, None)
            writer._upgrade_legacy()
            if keep:
                writer._name_above_every_file()
            writer.sweep()
            # A `label --train` stopped between its labels' commit and its classifier's swap
            # is finished (what a model change dropped is said by the labelling, not here).
            from .trained_labels import settle_classifier

            settle_classifier(path, index.store.meta(FB.CLASSIFIER_KEY), drop=False)
        else:
            writer = cls._create(path, new_config, build)
        writer.dropped_builds = dropped
        return writer

    @classmethod
    def _create(cls, path: Path, new_config: IndexConfig, build: str) -> IndexWriter:
        new_db = path / f"{FB.NEW_DB_RE}{os.getpid()}"
        store = Store(new_db)
        point("create:db")
        try:
            with store.transaction():
                store.set_meta("config", new_config.to_json())
                store.set_meta("complete", "0")
                store.set_meta(FB.BUILD_KEY, build)
                store.db.execute("DROP TABLE IF EXISTS vectors")
                store.segment_seq_at_least(FB.highest_segment_seq(path / SEGMENTS))
                # A --full rebuild keeps the topic labels (the index run applies them again),
                # as it keeps a trained classifier, which lives beside the database (but not
                # one fitted on vectors of a model the index no longer has).
                labels, classifier = FB.kept_topics(path, new_config)
                store.db.conn.executemany(
                    "INSERT INTO labels (name, description, position) VALUES (?, ?, ?)",
                    labels)
                if classifier is not None:
                    store.set_meta(FB.CLASSIFIER_KEY, classifier)
        except BaseException:
            store.close()
            raise
        return cls(path, IndexDir(path, new_config, store, readonly=False), new_db)

    @classmethod
    def stopped_build(cls, path: Path, new_db: Path) -> IndexWriter:
        """A stopped fresh build, opened to change it where it is (``abort`` closes it; it is
        not swapped in)."""
        return cls._resume(path, new_db)

    @classmethod
    def _resume(cls, path: Path, new_db: Path) -> IndexWriter:
        store = Store(new_db)
        try:
            config = IndexConfig.from_dict(json.loads(store.meta("config")), str(new_db))
            with store.transaction():
                # A killed run may have renamed a segment file into place without committing
                # it: new names start above every file, and finish() sweeps the strays.
                store.segment_seq_at_least(FB.highest_segment_seq(path / SEGMENTS))
            writer = cls(path, IndexDir(path, config, store, readonly=False), new_db)
            writer.resumed_files = store.db.execute("SELECT count(*) FROM files").fetchone()[0]
        except BaseException:
            store.close()
            raise
        return writer

    def _upgrade_legacy(self) -> None:
        """Schema 2 kept vectors in SQLite and one FAISS file: move them into segments."""
        db = self.store.db
        if not db["vectors"].exists():
            return
        with self.store.transaction():
            lang_of = dict(db.execute("SELECT id, language FROM passages").fetchall())
            by_lang: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
            for ids, mat in self.store.legacy_vectors(self.config.dim):
                langs = np.array([lang_of.get(int(i)) or "und" for i in ids])
                for lang in np.unique(langs):
                    keep = langs == lang
                    by_lang[str(lang)].append((ids[keep], mat[keep]))
            self.store.clear_lang_stats()
            for lang, parts in by_lang.items():
                ids = np.concatenate([p[0] for p in parts])
                mat = np.vstack([p[1] for p in parts])
                self._add_segment(lang, ids, mat)
            point("upgrade:segments")
            db.execute("DROP TABLE vectors")
            self.config.schema_version = SCHEMA_VERSION
            self.store.set_meta("config", self.config.to_json())
        self.config.write(self.path / CONFIG)
        for name in [LEGACY_VECTORS, *(p.name for p in self.path.glob(LEGACY_VECTORS + ".tmp-*"))]:
            (self.path / name).unlink(missing_ok=True)

    def sweep(self) -> list[str]:
        """Delete segment files that the committed state does not name (nor a stopped fresh
        build kept for the run that takes it up).

        While a fresh database is being built the live one still names its own segments, so
        nothing is swept until :meth:`finish` has swapped the fresh one in.
        """
        if self._new_db is not None:
            return []
        return FB.sweep_segments(self.path, {f for r in self.store.segments()
                                             for f in S.files_of(r["name"], r["kind"])})

    def _name_above_every_file(self) -> None:
        """New segments of the live index get names above every file, a kept stopped fresh
        build's included, so that neither writes over the other's."""
        highest = FB.highest_segment_seq(self.folder)
        if highest >= self.store.next_segment_seq():
            with self.store.transaction():
                self.store.segment_seq_at_least(highest)

    # -- writing -------------------------------------------------------------------------

    def _add_segment(self, language: str, ids: np.ndarray, vectors: np.ndarray,
                     kind: str = K.FLAT) -> int:
        """Write a segment and record it (inside a transaction); returns its id."""
        name = S.segment_name(self.store.next_segment_seq(), language)
        info = S.write_segment(self.folder, name, ids, vectors, kind)
        point("segment:written")
        seg_id = self.store.add_segment(language, info)
        self.store.assign_segment(ids.tolist(), seg_id)
        self.store.update_lang_stats(language, vectors, +1)
        return seg_id

    def _forget(self, removed: list[tuple]) -> None:
        """Take removed passages' vectors out of the per-language sums."""
        by_seg: dict[int, list[int]] = defaultdict(list)
        for pid, _lang, seg, *_ in removed:
            if seg is not None:
                by_seg[seg].append(pid)
        if not by_seg:
            return  # nothing to read back (and no O(#segments) read per written file)
        rows = {r["id"]: r for r in self.store.segments()}
        for seg_id, pids in by_seg.items():
            row = rows.get(seg_id)
            seg = self.index.vectors.segment(row) if row else None
            if seg is None:
                continue  # a lost segment: `xsearch check --repair` recomputes the sums
            vecs = seg.reconstruct(np.array(sorted(pids), dtype=np.int64))
            self.store.update_lang_stats(row["language"], vecs, -1)

    def write_many(self, files: list[tuple], vectors: np.ndarray,
                   offsets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Written:
        """Several files in one transaction; ``vectors`` row order = passages in order. Each
        file is (path, fingerprint, format, document ids to drop, documents[, record fields[,
        cut_by]]). ``offsets`` adds query- and passage-mode vectors of sample texts per
        language (the query offset of that language, see centering.py)."""
        return self.begin_write(files).commit(vectors, offsets)

    def begin_write(self, files: list[tuple]) -> OpenWrite:
        """:meth:`write_many` begun before the vectors exist: the files' rows (lexical index
        included) in a transaction that :meth:`OpenWrite.commit` or ``discard`` ends."""
        return OpenWrite(self, files)

    def _write_rows(self, files: list[tuple]) -> tuple[list[int], list[str], int]:
        added, langs, removed_total = [], [], 0  # the new passages, their languages
        for path, fingerprint, fmt, drop, docs, *fields in files:
            self.store.upsert_file(path, *fingerprint, fmt, *fields)
            self.store.set_aside(drop)  # deleted after the new documents took their passages
            for d in docs:
                added += self.store.insert_document(path, d)[1]
                langs += [p.language or "und" for p in d.to_embed]
            removed = self.store.delete_documents(drop)
            self._forget(removed)
            removed_total += len(removed)
        self.store.record_lexical()
        point("write:rows")
        return added, langs, removed_total

    def _write_vectors(self, added: list[int], langs: list[str], vectors: np.ndarray,
                       offsets: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> None:
        for lang, (q, p) in (offsets or {}).items():
            self.store.add_lang_offset(lang, q, p)
        if len(added) != len(vectors):
            raise ValueError("one vector per passage is needed")
        ids, lang_arr = np.array(added, dtype=np.int64), np.array(langs)
        for lang in sorted(set(langs)):
            keep = lang_arr == lang
            self._add_segment(lang, ids[keep], np.asarray(vectors)[keep])
        point("write:before-commit")

    def delete_files(self, paths: list[str]) -> int:
        with self.store.transaction():
            removed = sum(self.remove_file(p) for p in paths)
            point("delete:rows")
            return removed

    def remove_file(self, path: str) -> int:
        """Take a file's passages out (inside the caller's transaction); how many."""
        removed = self.store.delete_file(path)
        self._forget(removed)
        return len(removed)

    # -- merging (the policy: ``merging.py``) ----------------------------------------------

    def _target_kind(self, n: int) -> str:
        return merging.target_kind(self.config.layout, n)

    def merge(self, force: bool = False, upgrade: bool = False) -> int:
        """Apply the merge policy at the end of a run (:func:`merging.merge`)."""
        return merging.merge(self, force, upgrade)

    def compact(self) -> int:
        """Fold small flat segments together while a run writes (:func:`merging.compact`)."""
        n = merging.compact(self)
        self.compacted += n
        return n

    # -- finishing -----------------------------------------------------------------------

    def record_engine(self, engine: str) -> None:
        """A fresh database records the engine that made its vectors (a live index keeps the
        one that created it: any engine's vectors query alike)."""
        if self._new_db is not None and engine and self.config.engine != engine:
            self.config.engine = engine
            with self.store.transaction():
                self.store.set_meta("config", self.config.to_json())

    def finish(self) -> None:
        """Make a fresh database the live one (atomic rename), then sweep what it replaced."""
        if self._new_db is None:
            self.index.close()
            return
        with self.store.transaction():
            self.store.set_meta("complete", "1")
        point("finish:complete")
        self.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.store.db.execute("PRAGMA journal_mode = DELETE")
        self.index.close()
        FB.swap_in(self.path, self._new_db)
        point("finish:swapped")
        self.config.write(self.path / CONFIG)
        fsync_dir(self.path)
        store = Store(self.path / DATABASE)
        try:
            names = {f for r in store.segments() for f in S.files_of(r["name"], r["kind"])}
            S.sweep(self.folder, names)
            for name in [LEGACY_VECTORS, *(p.name for p in
                                           self.path.glob(LEGACY_VECTORS + ".tmp-*"))]:
                (self.path / name).unlink(missing_ok=True)
        finally:
            store.close()

    def abort(self) -> None:
        self.index.close()
        if self._new_db is not None:
            FB.drop_if_empty(self.path, self._new_db)


class OpenWrite:
    """A write transaction holding files' rows, waiting for their vectors (one thread)."""

    def __init__(self, writer: IndexWriter, files: list[tuple]) -> None:
        self._writer = writer
        self._transaction = writer.store.transaction()
        self._transaction.__enter__()
        try:
            self.added, self._langs, self.removed = writer._write_rows(files)
        except BaseException as exc:
            self._end(exc)
            raise

    def commit(self, vectors: np.ndarray,
               offsets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Written:
        """Add the vectors (row order = passages in order) and commit."""
        try:
            self._writer._write_vectors(self.added, self._langs, vectors, offsets)
        except BaseException as exc:
            self._end(exc)
            raise
        self._end(None)
        point("write:after-commit")
        return Written(added=self.added, removed=self.removed)

    def discard(self) -> None:
        """Roll back: nothing of these files is written."""
        self._end(_Discarded())

    def _end(self, exc: BaseException | None) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:  # an exception rolls it back, None commits
            transaction.__exit__(type(exc) if exc else None, exc, None)


class _Discarded(Exception):
    """How a write no longer wanted leaves its transaction."""

