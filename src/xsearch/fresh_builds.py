"""Fresh databases: a new index or ``--full`` is built as ``xsearch.db.new-PID`` beside the
live database and renamed over it when complete. What a stopped run leaves: a complete one
is swapped in; an unfinished one is taken up by the next fresh run with the same settings and
paths, kept by writers that are not index runs, and dropped by the others (docs/design.md)."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from pathlib import Path

from . import segments as S
from .errors import CorruptIndexError
from .faults import point
from .index_dir import CONFIG, DATABASE, LOCK, SEGMENTS, IndexConfig, looks_like_index

NEW_DB_RE = "xsearch.db.new-"
#: Meta key of a fresh database: what its run was asked to index (the roots), so that only a
#: run asked the same takes it up.
BUILD_KEY = "build"
#: The settings that shape an index, by config key and the `xsearch index` flag that sets it.
SHAPING = {"model": "--model", "chunk_tokens": "--chunk-tokens", "chunk_overlap": "--overlap",
           "layout": "--layout", "centering": "--centering"}


def fresh_dbs(path: Path) -> list[Path]:
    return sorted(e for e in Path(path).glob(NEW_DB_RE + "*")
                  if e.name[len(NEW_DB_RE):].isdigit())


def read_rows(db: Path, *queries: str) -> list[list] | None:
    """The rows of each query, read from ``db`` without writing; None if it cannot be read."""
    try:
        # as_uri: a '#' or '?' in the folder's name would end a bare "file:" path
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return [con.execute(q).fetchall() for q in queries]
        finally:
            con.close()
    except (sqlite3.Error, UnicodeDecodeError):  # (a damaged page's text)
        return None


def _read(db: Path, *queries: str) -> tuple[dict, list] | None:
    """A fresh database's meta (complete, config, build) and the rows of ``queries``, read
    without writing; None if it cannot be read."""
    got = read_rows(db, "SELECT key, value FROM meta WHERE key IN "
                    f"('complete', 'config', '{BUILD_KEY}')", *queries)
    return None if got is None else (dict(got[0]), got[1:])


def live_labels(path: Path) -> list[tuple[str, str, int]]:
    """(name, description, position) of the live index's topic labels, which a --full
    rebuild keeps; none when there is no live index or it cannot be read (a rebuild is also
    how a damaged index is mended)."""
    if not (path / DATABASE).is_file():
        return []
    got = read_rows(path / DATABASE, "SELECT name, description, position FROM labels "
                                 "ORDER BY position")
    return [tuple(r) for r in got[0]] if got is not None else []


#: Meta key: the sha256 of the trained classifier whose labels the database holds ("": none).
CLASSIFIER_KEY = "classifier"


def kept_topics(path: Path, new_config: IndexConfig) -> tuple[list, str | None]:
    """What a --full rebuild keeps of the live index's topics: (labels, classifier record
    for the meta table). Zero-shot labels are kept (the run applies them again, with the new
    model if it changed), and a classifier that reads text (fine-tuned); one fitted on the
    old model's vectors fits no other model's and is dropped with its labels ("")."""
    labels = live_labels(path)
    got = read_rows(path / DATABASE, "SELECT value FROM meta WHERE key = "
                                 f"'{CLASSIFIER_KEY}'") if (path / DATABASE).is_file() else None
    record = got[0][0][0] if got and got[0] else None
    old = live_config(path)
    if old is not None and old.model != new_config.model:
        from .trained_labels import classifier_method

        if classifier_method(path) not in (None, "finetune"):  # (it reads text, not vectors)
            return [], ""
    return labels, record


def live_config(path: Path) -> IndexConfig | None:
    """The live index's committed settings, which a --full rebuild keeps unless asked
    otherwise; None when there is no live index or it cannot be read."""
    if not (path / DATABASE).is_file():
        return None
    got = read_rows(path / DATABASE, "SELECT value FROM meta WHERE key = 'config'")
    try:
        return IndexConfig.from_dict(json.loads(got[0][0][0]), str(path)) if got else None
    except (IndexError, ValueError, TypeError, KeyError, CorruptIndexError):
        return None


def live_record_fields(path: Path) -> dict[str, str]:
    """path -> the record fields (files.record_fields) each .jsonl/.csv file of the live index
    was read with, which a --full rebuild reads it with again; empty when there is no live
    index, it cannot be read, or it predates them."""
    if not (path / DATABASE).is_file():
        return {}
    got = read_rows(path / DATABASE, "SELECT path, record_fields FROM files "
                                 "WHERE record_fields IS NOT NULL")
    return dict(got[0]) if got is not None else {}


def _describe(db: Path, meta: dict, files: int) -> dict | None:
    """One :func:`unfinished_builds` row (None if its meta is unreadable)."""
    try:
        config = json.loads(meta.get("config") or "{}")
        started = config.get("created_at")
        paths = json.loads(meta.get(BUILD_KEY) or "[]")
    except (ValueError, AttributeError):
        return None
    size = sum(Path(str(db) + x).stat().st_size for x in ("", "-wal")
               if Path(str(db) + x).exists())
    settings = {k: config.get(k) for k in SHAPING}
    return {"files": files, "bytes": size, "paths": paths, "started": started,
            "settings": settings}


def _about(db: Path) -> dict | None:
    got = _read(db, "SELECT count(*) FROM files")
    if got is None or got[0].get("complete") == "1":
        return None
    return _describe(db, got[0], got[1][0][0][0])


def unfinished_builds(path: Path) -> list[dict]:
    """Fresh databases not yet complete (a new index or --full), newest first: ``{"files",
    "bytes", "paths", "started", "running"}``; ``running`` is the one a live `xsearch index`
    is building now, the others a stopped run left to take up."""
    out = []
    writing = being_written(path)
    for db in fresh_dbs(path):
        row = _about(db)
        if row is not None:
            row["running"] = writing and _alive(int(db.name[len(NEW_DB_RE):]))
            out.append(row)
    return sorted(out, key=lambda b: b["started"] or 0, reverse=True)


def being_written(path: Path) -> bool:
    """Whether a writer holds the index's lock now (tried without waiting, creating nothing)."""
    try:
        fd = os.open(Path(path) / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the shared lock, if it was taken
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def unfinished_segment_files(path: Path) -> set[str] | None:
    """Segment files the stopped fresh builds beside the live index name (None: unreadable)."""
    names: set[str] = set()
    for db in fresh_dbs(path):
        got = _read(db, "SELECT name, kind FROM segments")
        if got is None:
            return None
        names |= {f for name, kind in got[1][0] for f in S.files_of(name, kind)}
    return names


def highest_segment_seq(folder: Path) -> int:
    """The highest sequence number of any segment file in ``folder`` (0 if none)."""
    best = 0
    if folder.is_dir():
        for entry in os.scandir(folder):
            if S.NAME_RE.match(entry.name):
                best = max(best, int(entry.name[1:9]))
    return best


def swap_in(path: Path, new_db: Path) -> None:
    """Rename a complete fresh database over the live one, their WALs folded in first."""
    live = path / DATABASE
    if live.exists():
        try:  # fold the old WAL in, so removing it below can lose nothing
            con = sqlite3.connect(str(live), timeout=30)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
        except (sqlite3.Error, UnicodeDecodeError):  # damaged: what it held is replaced
            pass
    for suffix in ("-wal", "-shm", "-journal"):
        (path / (DATABASE + suffix)).unlink(missing_ok=True)
    # Fold the new database's own WAL in first: after a kill its last commits live there.
    con = sqlite3.connect(str(new_db), timeout=30)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode = DELETE")
    finally:
        con.close()
    for suffix in ("-wal", "-shm", "-journal"):
        Path(str(new_db) + suffix).unlink(missing_ok=True)
    point("finish:old-wal-removed")
    os.replace(new_db, live)


def recover(path: Path, keep_unfinished: bool = False) -> None:
    """Finish what a killed writer left (call with the write lock held); an unfinished fresh
    database is removed unless ``keep_unfinished`` (``IndexWriter.open`` decides)."""
    recover_or_sweep(path, keep_unfinished=keep_unfinished)


#: Config keys that may differ between a stopped fresh build and the run taking it up: the
#: start time, and the engine (every e5-small engine's vectors go in one index).
_RESUME_MAY_DIFFER = ("created_at", "engine")


def _same_build(raw: str, config: IndexConfig) -> bool:
    """Whether an unfinished fresh database was begun with ``config``'s settings."""
    try:
        mine = json.loads(raw)
    except ValueError:
        return False
    wanted = json.loads(config.to_json())
    return isinstance(mine, dict) and \
        {k: v for k, v in mine.items() if k not in _RESUME_MAY_DIFFER} == \
        {k: v for k, v in wanted.items() if k not in _RESUME_MAY_DIFFER}


def recover_or_sweep(path: Path, resume: IndexConfig | None = None,
                     keep_unfinished: bool = False, build: str = ""
                     ) -> tuple[Path | None, list[dict]]:
    """A finished fresh database left by a kill mid-swap is swapped in. Of the unfinished
    ones, the newest begun with ``resume``'s config and the same ``build`` is kept; the rest
    are removed (all of them kept with ``keep_unfinished``). Returns the one kept and what
    was removed (:func:`unfinished_builds` rows, for a warning)."""
    unfinished: list[tuple[float, Path, str | None]] = []
    for entry in fresh_dbs(path):
        meta = (_read(entry) or ({}, []))[0]
        raw = meta.get("config")
        if meta.get("complete") == "1" and raw:
            swap_in(path, entry)
            IndexConfig.from_dict(json.loads(raw), str(path)).write(path / CONFIG)
            continue
        same_paths = meta.get(BUILD_KEY) == build
        unfinished.append((entry.stat().st_mtime, entry, raw if same_paths else None))
    if keep_unfinished:
        return None, []
    kept, dropped = None, []
    for _, entry, raw in sorted(unfinished, reverse=True):
        if kept is None and resume is not None and raw is not None and _same_build(raw, resume):
            kept = entry
            continue
        about = _about(entry)
        if about is not None:
            dropped.append(about)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(entry) + suffix).unlink(missing_ok=True)
    return kept, dropped


def drop_if_empty(path: Path, db: Path) -> bool:
    """Remove a fresh database of the index at ``path`` that holds no file yet, and the
    segment files nothing committed names (a run that failed before its first commit:
    nothing to take up, and on a full disk they are the room the next run needs); whether
    it was removed."""
    got = read_rows(db, "SELECT count(*) FROM files")
    if got is None or got[0][0][0]:
        return False
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    live = read_rows(path / DATABASE, "SELECT name, kind FROM segments") if \
        (path / DATABASE).exists() else [[]]
    if live is not None:
        sweep_segments(path, {f for name, kind in live[0] for f in S.files_of(name, kind)})
    return True


def sweep_segments(path: Path, live: set[str], dry_run: bool = False) -> list[str]:
    """Delete the segment files of the index at ``path`` that neither the live database
    (``live``: the files it names) nor a stopped fresh build kept for the run that takes it
    up names; none when a stopped build cannot be read (rather than its files). ``dry_run``:
    only name them."""
    kept = unfinished_segment_files(path)
    return [] if kept is None else S.sweep(path / SEGMENTS, live | kept, dry_run)


def needs_fresh_database(path: Path, full: bool) -> bool:
    return full or not looks_like_index(path) or not (path / DATABASE).exists()
