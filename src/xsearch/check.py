"""``xsearch check``: the full integrity checks that opening an index no longer does.

Checks SQLite, every segment file against its recorded checksum and passage ids, the
per-language statistics, the passage lengths BM25 reads (against FTS5's own), the config
mirror and the model fingerprint. ``repair`` re-embeds
the passages of a damaged or missing segment from the text SQLite keeps, recomputes the
statistics and rewrites the config mirror; it also upgrades an index of an older schema.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import numpy as np

from . import bm25, lexical
from .centering import PROBE_KEY, decode_vector, fingerprint_matches
from .errors import CorruptIndexError, first_line
from .index_dir import CONFIG, DATABASE, IndexDir
from .schema import upgrade_events, upgrade_note, upgrade_progress
from .segment_kinds import HNSW, IVFS
from .segments import files_of
from .writer import IndexWriter, lock_existing


def _segment_problems(index: IndexDir) -> tuple[list[dict], list[dict]]:
    """(problems, rows of segments that must be rebuilt)."""
    problems, bad = [], []
    store = index.store
    tombs = store.tombstones()
    for row in store.segments():
        paths = [index.path / "segments" / f for f in files_of(row["name"], row["kind"])]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            problems.append({"what": "segment missing", "detail": f"{row['name']}: "
                             + ", ".join(missing)})
            bad.append(row)
            continue
        if not index.vectors.whole(row):
            problems.append({"what": "segment checksum", "detail": f"{row['name']} does not "
                             "match the database (damaged or replaced)"})
            bad.append(row)
            continue
        seg = index.vectors.segment(row)
        if seg is None:
            problems.append({"what": "segment unreadable", "detail": row["name"]})
            bad.append(row)
            continue
        have = seg.all_ids()
        live = store.live_ids_of_segment(row["id"])
        dead = tombs.get(row["id"], np.zeros(0, dtype=np.int64))
        if not np.isin(live, have).all() or not np.isin(dead, have).all():
            problems.append({"what": "segment ids", "detail": f"{row['name']} lacks vectors of "
                             "passages the database gives it"})
            bad.append(row)
    return problems, bad


def _stray_segment_files(index: IndexDir) -> list[str]:
    """Segment files that neither the committed state nor a stopped build names: what the
    next writer's sweep deletes (none while a writer is at work: those are its own)."""
    from . import segments as S
    from .fresh_builds import being_written, sweep_segments

    if being_written(index.path):
        return []
    named = {f for r in index.store.segments() for f in S.files_of(r["name"], r["kind"])}
    return sorted(sweep_segments(index.path, named, dry_run=True))


def _orphans(index: IndexDir) -> list[int]:
    rows = index.store.db.execute(
        "SELECT id FROM passages WHERE segment IS NULL OR segment NOT IN "
        "(SELECT id FROM segments)").fetchall()
    return [r[0] for r in rows]


def _stats_problems(index: IndexDir, sound: bool = True) -> list[dict]:
    """Per-language statistics that do not add up: their counts, and (``sound``: every
    segment readable) their sums, computed again from the vectors (damage inside the
    database's pages changed them unseen, and every query's relevance with them)."""
    stored = index.store.lang_stats(with_outer=True)
    counts = dict(index.store.db.execute(
        "SELECT language, count(*) FROM passages WHERE segment IS NOT NULL GROUP BY language"
    ).fetchall())
    out = []
    for lang in sorted(set(stored) | set(counts)):
        n = stored.get(lang, (0,))[0]
        if n != counts.get(lang, 0):
            out.append({"what": "language statistics", "detail": f"{lang}: {n} recorded, "
                        f"{counts.get(lang, 0)} passages"})
    if out or not sound:
        return out
    sums: dict[str, list] = {}
    for lang, vecs in _live_by_language(index):
        v = np.asarray(vecs, dtype=np.float64)
        got = sums.setdefault(lang, [0.0, 0.0])
        got[0], got[1] = got[0] + v.sum(axis=0), got[1] + v.T @ v
    # IVF's 8-bit codes give back vectors near those summed, not those: not compared.
    lossy = {r["language"] for r in index.store.segments() if r["kind"] in IVFS}
    for lang, (n, total, outer) in sorted(stored.items()):
        if lang in lossy:
            continue
        want = sums.get(lang)
        # float64 sums of unit vectors: what rounding leaves is far below 1e-6 per vector
        if want is None or not (np.allclose(total, want[0], rtol=0, atol=1e-6 * n + 1e-9)
                                and np.allclose(outer, want[1], rtol=0, atol=1e-6 * n + 1e-9)):
            out.append({"what": "language statistics", "detail": f"{lang}: the stored sums "
                        "are not those of its vectors (damaged)"})
    return out


def _live_by_language(index: IndexDir):
    """(language, live vectors) of each segment, as the statistics count them."""
    for ids, vecs in index.vectors.iter_live():
        lang = index.store.db.execute("SELECT language FROM passages WHERE id = ?",
                                      [int(ids[0])]).fetchone()[0]
        yield lang or "und", vecs


def check_index(path: Path, repair: bool = False, embedder=None, model_check: bool = True,
                notify=None) -> dict:
    """Report (and with ``repair`` fix) what is wrong with the index at ``path``;
    ``notify(event, info)`` hears of a long upgrade before it starts."""
    path = Path(path)
    if repair:
        with lock_existing(path):
            if notify is not None and (note := upgrade_note(path / DATABASE)):
                notify("note", {"message": note})
            # Migrates an older schema; a stopped --full rebuild stays for `index --full`.
            try:  # opening the writer rewrites it from the database's copy
                before = (path / CONFIG).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                before = None
            with upgrade_progress(notify and upgrade_events(notify)):
                writer = IndexWriter.open(path, None, keep_unfinished=True)
            try:
                report = _check(writer.index, embedder, model_check)
                report["repaired"] = _repair(writer, report, embedder)
                if before != writer.config.to_json():
                    report["repaired"].append(f"rewrote {CONFIG} from the database's copy")
                writer.finish()
            except BaseException:
                writer.abort()
                raise
        after = check_index(path, repair=False, embedder=embedder, model_check=False)
        report["after"] = after["problems"]
        return report
    index = IndexDir.open(path)
    try:
        return _check(index, embedder, model_check)
    finally:
        index.close()


def _sqlite_problems(store) -> list[str]:
    """What SQLite's quick check finds (empty when the database is sound)."""
    try:
        rows = store.db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [f"database is corrupt: {first_line(exc)}"]
    if rows and rows[0][0] == "ok":
        return _text_problems(store)
    more = f" (and {len(rows) - 3} more)" if len(rows) > 3 else ""  # one a page: thousands
    return ["; ".join(first_line(r[0]) for r in rows[:3]) + more]


#: (table, key, text column) whose text SQLite keeps as it was given: damage within a page's
#: content passes its quick check, and the text no longer reads as UTF-8 where it is used.
_TEXTS = (("passages", "id", "text"), ("documents", "id", "title"), ("meta", "key", "value"),
          ("files", "path", "path"))


def _text_problems(store) -> list[str]:
    """Text that is no longer UTF-8 (a query read "Could not decode to UTF-8 column 'text'"
    while check said ok)."""
    conn = store.db.conn
    factory, conn.text_factory = conn.text_factory, bytes
    out = []
    try:
        for table, key, column in _TEXTS:
            bad = []
            for k, value in conn.execute(f"SELECT {key}, {column} FROM {table}"):
                try:
                    value.decode("utf-8")
                except (UnicodeDecodeError, AttributeError):
                    bad.append(k)
            if bad:
                first = bad[0].decode("utf-8", "replace") if isinstance(bad[0], bytes) \
                    else bad[0]
                out.append(f"{table}.{column} of {len(bad)} row(s) is not UTF-8 text "
                           f"(damaged; first: {key} {first}); `xsearch index PATHS --full` "
                           "rebuilds the index from your files")
    finally:
        conn.text_factory = factory
    return out


def _check(index: IndexDir, embedder, model_check: bool) -> dict:
    problems = [{"what": "database", "detail": d} for d in _sqlite_problems(index.store)]
    if problems:  # the other checks read what is damaged: they would only fail
        return {"index": str(index.path), "ok": False, "problems": problems, "notes": [],
                "_bad": [], "_orphans": 0}
    seg_problems, bad = _segment_problems(index)
    problems += seg_problems
    orphans = _orphans(index)
    if orphans:
        problems.append({"what": "passages without vectors", "detail": f"{len(orphans)} passages"})
    problems += _stats_problems(index, sound=not bad)
    has_lengths = bm25.has_lengths(index.store.db.conn)
    wrong = bm25.mismatches(index.store.db.conn, lexical.TABLE) if has_lengths else 0
    if wrong:
        problems.append({"what": "lexical lengths", "detail": f"{wrong} passages' lengths "
                         "differ from the full-text index's"})
    try:
        on_disk = (index.path / CONFIG).read_text(encoding="utf-8")
    except OSError:
        on_disk = None
    if on_disk != index.config.to_json() and index.store.meta("config") is not None:
        problems.append({"what": "config", "detail": f"{CONFIG} differs from the committed one"})
    if model_check:
        from .embedders import get_embedder

        stored = decode_vector(index.store.meta(PROBE_KEY))
        emb = embedder or get_embedder(index.config.model, purpose="query")
        if stored is not None and (len(stored) != emb.dim or not fingerprint_matches(emb,
                                                                                     stored)):
            problems.append({"what": "model", "detail": f"{index.config.model} does not make "
                             "the vectors this index was built with; rebuild with --full"})
    notes = []
    if not has_lengths:
        notes.append("the index predates the passage lengths that make hybrid search faster; "
                     "xsearch check --repair (or the next xsearch index) adds them")
    stray = _stray_segment_files(index)
    if stray:
        notes.append(f"{len(stray)} segment file(s) no commit names (a writer killed mid-way "
                     f"left them, e.g. {stray[0]}): xsearch check --repair, or the next write, "
                     "removes them")
    older = sum(r["kind"] == HNSW for r in index.store.segments())
    if older:
        notes.append(f"{older} HNSW segment(s) of an earlier version search more slowly than "
                     "today's centred ones; xsearch check --repair rewrites them")
    return {"index": str(index.path), "ok": not problems, "problems": problems, "notes": notes,
            "segments": len(index.store.segments()), **index.store.counts(),
            "_bad": [r["id"] for r in bad], "_orphans": len(orphans)}


def _repair(writer: IndexWriter, report: dict, embedder) -> list[str]:
    done: list[str] = []
    store = writer.store
    bad_ids = set(report.pop("_bad"))
    report.pop("_orphans")
    if any(p["what"] == "database" for p in report["problems"]):
        raise CorruptIndexError(f"index {writer.path}: the SQLite database itself is damaged; "
                                "`xsearch index PATHS --full` rebuilds the index from your "
                                "files")
    rows = [r for r in store.segments() if r["id"] in bad_ids]
    need = [r[0] for r in store.db.execute(
        "SELECT id FROM passages WHERE segment IS NULL OR segment NOT IN "
        "(SELECT id FROM segments)").fetchall()]
    for row in rows:
        need += store.live_ids_of_segment(row["id"]).tolist()
    if need:
        from .embedders import get_embedder

        emb = embedder or get_embedder(writer.config.model)
        texts = {}
        for start in range(0, len(need), 500):
            part = need[start:start + 500]
            marks = ",".join("?" * len(part))
            texts.update(store.db.execute(
                f"SELECT id, text FROM passages WHERE id IN ({marks})", part).fetchall())
        ids = sorted(texts)
        langs = dict(store.db.execute("SELECT id, language FROM passages").fetchall())
        vecs = emb.embed_documents([texts[i] for i in ids])
    restat = need or any(p["what"] == "language statistics" for p in report["problems"])
    # One transaction: new segments and the statistics recomputed over them (a full disk
    # between the two once left the new vectors counted twice until the next repair).
    with store.transaction() if need or restat else contextlib.nullcontext():
        if need:
            if rows:
                store.replace_segments([r["id"] for r in rows], -1)
            by_lang: dict[str, list[int]] = {}
            for n, pid in enumerate(ids):
                by_lang.setdefault(langs[pid] or "und", []).append(n)
            for lang, rows_n in by_lang.items():
                writer._add_segment(lang, np.array([ids[n] for n in rows_n], dtype=np.int64),
                                    vecs[rows_n])
            done.append(f"re-embedded {len(ids)} passages of {len(rows)} damaged segment(s)")
        if restat:
            store.clear_lang_stats()
            writer.index.vectors.reload()
            for lang, part_vecs in _live_by_language(writer.index):
                store.update_lang_stats(lang, part_vecs, +1)
            done.append("recomputed the per-language statistics")
    if any(p["what"] == "lexical lengths" for p in report["problems"]):
        with store.transaction():
            bm25.rebuild(store.db.conn, lexical.TABLE)
        done.append("rewrote the passage lengths from the full-text index")
    if any(r["kind"] == HNSW for r in store.segments()):
        n = writer.merge(upgrade=True)
        done.append(f"rewrote {n} HNSW segment(s) of an earlier version as centred graphs")
    writer.config.write(writer.path / CONFIG)
    writer.sweep()
    return done
