"""Which files an index run reads: new and changed ones, renamed and moved ones, the other
names of one file (a symlink, a hard link), and which indexed files are gone."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import IngestError, first_line
from .fileio import surely_gone
from .index_summary import IndexSummary, ProgressFn
from .ingest import ReadOptions, file_fingerprint
from .ingest.budget import limits_raised
from .ingest.formats.records import record_fields, with_record_fields
from .kept import now_other_text, still_a_file
from .pipeline import _fail
from .writer import IndexWriter


def known_under(store, roots: list[Path]) -> dict[str, dict]:
    """Indexed files at or below these roots, by a range on the path key: adding one file
    to a big index does not read every file row."""
    out: dict[str, dict] = {}
    for root in roots:
        base = str(root).rstrip(os.sep)
        # every path below base sorts between base + "/" and base + "0" ("0" follows "/")
        rows = store.db.query("SELECT * FROM files WHERE path = ? OR (path >= ? AND path < ?)",
                              [str(root), base + os.sep, base + chr(ord(os.sep) + 1)])
        out.update((r["path"], r) for r in rows)
    return out


def under(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in roots)


def absolute(path: Path) -> Path:
    """Absolute without resolving links: a file indexed through a link keeps the link's path."""
    return Path(os.path.abspath(path))


def plan_run(writer: IndexWriter, files: list[Path], roots: list[Path],
             summary: IndexSummary, notify: ProgressFn, retry_failed: bool,
             prune: bool = False, options: ReadOptions | None = None,
             given: frozenset[str] = frozenset(), earlier: dict[str, str] | None = None,
             aliases: dict[str, str] | None = None,
             ) -> tuple[list[tuple[Path, tuple[str, int, float]]], dict[str, ReadOptions],
                        list[str]]:
    """Decide what changed; apply renames; return the files to read, the options of those
    read before as .jsonl/.csv files (with the record fields they were read with, except the
    ones ``given``), and the indexed files that are gone: deleted once the files to read
    have kept the passages of theirs they still hold.

    ``given`` names the record fields of ``options`` asked for in this run; a record file
    read with other ones is read again even if unchanged (its documents whose text is the
    same keep their vectors). ``earlier``: the record fields of files this index does not
    hold yet (a --full rebuild: the live index's). ``aliases``: paths the walk left out as
    symlinks to a file it took (that file's path).

    One file is indexed under one path. An indexed path that has become another name of a
    file indexed under another path (a symlink, a hard link) leaves the index: its text is
    the other path's now."""
    store = writer.store
    # --prune looks at every indexed file (it is O(files) by nature); a plain run only at
    # those below the roots, so adding one file to a big index stays cheap.
    known = store.files() if prune else known_under(store, roots)
    failed = store.failed_files()
    seen: set[str] = set()
    fresh: list[tuple[Path, tuple[str, int, float]]] = []
    now: dict[str, str] = {}  # path -> content hash, of the files walked
    recovered: list[str] = []
    touched: list[tuple[int, float, str]] = []  # unchanged text, new size/time of change
    for f in files:
        key = str(f)
        seen.add(key)
        summary.files_seen += 1
        try:
            fp = file_fingerprint(f, options.max_bytes if options is not None else None)
            now[key] = fp[0]
        except (IngestError, OSError) as exc:
            _fail(summary, key, exc, notify)
            # Listed by `xsearch files` like any failure; no hash, so the next run tries again.
            with store.transaction():
                store.record_failure(key, "", "failed", first_line(exc), None)
            continue
        old = known.get(key)
        if old and old["content_hash"] == fp[0] and not _read_otherwise(key, old, options,
                                                                        given, summary):
            summary.unchanged += 1
            if key in failed:  # back to the version indexed: its failure is over
                recovered.append(key)
            if (old["size"], old["mtime"]) != (fp[1], fp[2]):
                touched.append((fp[1], fp[2], key))
            continue
        bad = failed.get(key)
        if (bad and _same_as(f, fp, bad["content_hash"]) and not retry_failed
                and not _read_otherwise(key, bad, options, given, summary)):
            summary.failed_before += 1
            continue
        fresh.append((f, fp))

    if touched:  # a hit's file_state compares them: touched, it is still as indexed
        with store.transaction():
            store.db.conn.executemany("UPDATE files SET size = ?, mtime = ? WHERE path = ?",
                                      touched)
    # A file this walk left out but still on disk (another --include, a new ignore rule) is
    # kept: only files that are gone are dropped, as rsync --delete spares excluded ones.
    unseen = {p: row for p, row in known.items() if p not in seen
              and (under(p, roots) or (prune and surely_gone(p)))}
    # A symlink the walk took as another name of a file: it goes when the index's text of it
    # is not that file's (it was a file of its own before).
    alias_of = {p: (aliases or {}).get(p) for p in unseen}
    stale = {p for p, a in alias_of.items() if a and now.get(a, unseen[p]["content_hash"])
             != unseen[p]["content_hash"]}
    gone = {p: row for p, row in unseen.items() if p in stale or not still_a_file(p)
            or now_other_text(p, row["content_hash"])}
    summary.kept += sum(1 for p in unseen if p not in gone and not alias_of[p])
    by_hash: dict[str, str] = {}
    for p, row in gone.items():
        if surely_gone(p):
            by_hash.setdefault(row["content_hash"], p)
    todo = []
    moved: dict[str, dict] = {}
    twins: list[tuple[str, str]] = []
    owners = _link_owners(fresh, known)
    elsewhere = _by_name_elsewhere(store, fresh, known, seen)
    for f, fp in fresh:
        key = str(f)
        if (owner := owners.get(key)) is not None:  # a hard link of a file read this run
            twins.append((key, owner))
            if key in known:
                gone[key] = known[key]
            continue
        old_path = by_hash.pop(fp[0], None) if key not in known else None
        if old_path:
            with store.transaction():
                store.rename_file(old_path, key, fp[1], fp[2])
            moved[key] = gone.pop(old_path)
            summary.renamed += 1
            if _read_otherwise(key, moved[key], options, given, summary):
                todo.append((f, fp))  # moved, then read with the fields asked for
            continue
        if key not in failed and (twin := _indexed_as(store, key, fp[0])):
            twins.append((key, twin))
            if key in known:  # a file of its own before: now another name of ``twin``
                gone[key] = known[key]
            continue
        if key not in known and (old := _moved_here(store, key, elsewhere, known)):
            # The index holds this very file under a name this walk does not reach (through
            # a symlinked folder), with other text (edited since): it moves here and is read.
            with store.transaction():
                store.rename_file(old[0], key, fp[1], fp[2])
            moved[key] = old[1]
            summary.renamed += 1
            todo.append((f, fp))
            continue
        todo.append((f, fp))
    if twins:
        summary.same_file = len(twins)
        notify("note", {"message": f"{len(twins)} file(s) already indexed under another path "
                                   f"(a symlink or a second name), left as they are: "
                                   f"{twins[0][0]} is {twins[0][1]}"})
    summary.removed += len(gone)
    # A file that failed or was skipped and is gone now is no longer listed as such.
    stale = [p for p in failed if p not in seen and (under(p, roots) or prune)
             and not still_a_file(p)] + recovered
    if stale:
        with store.transaction():
            for p in stale:
                store.forget_failure(p)
    per_file = {}
    for f, _fp in todo:
        row = known.get(str(f)) or moved.get(str(f)) or failed.get(str(f))
        stored = row.get("record_fields") if row else (earlier or {}).get(str(f))
        if stored and options is not None:
            per_file[str(f)] = with_record_fields(options, stored, given)
    return todo, per_file, sorted(gone)


def _link_owners(fresh: list[tuple[Path, tuple]], known: dict) -> dict[str, str]:
    """Of the files to read that are hard links of one another, each but one -> the one read
    (an indexed name first): one file, one path, hits not doubled."""
    by_inode: dict[tuple[int, int], list[str]] = {}
    for f, _fp in fresh:
        try:
            st = os.stat(f)
        except OSError:
            continue
        if st.st_nlink > 1:
            by_inode.setdefault((st.st_dev, st.st_ino), []).append(str(f))
    out = {}
    for names in by_inode.values():
        if len(names) > 1:
            owner = next((n for n in names if n in known), names[0])
            out.update({n: owner for n in names if n != owner})
    return out


def _by_name_elsewhere(store, fresh: list[tuple[Path, tuple]], known: dict,
                       seen: set[str]) -> dict[object, list[str]]:
    """Indexed paths this walk did not reach, for the new files: by file name (a symlinked
    folder keeps it), and by inode when a new file has hard links (they may have another
    name). One pass over the files table when there are new files; a stat of each such
    path only when a new file has hard links."""
    new = [f for f, _ in fresh if str(f) not in known]
    if not new:
        return {}
    names = {f.name for f in new}
    linked = any(_links(f) > 1 for f in new)
    out: dict[object, list[str]] = {}
    for (p,) in store.db.execute("SELECT path FROM files"):
        if p in seen:
            continue
        if (name := os.path.basename(p)) in names:
            out.setdefault(name, []).append(p)
        if linked and (inode := _inode(p)) is not None:
            out.setdefault(inode, []).append(p)
    return out


def _links(path: Path | str) -> int:
    try:
        return os.stat(path).st_nlink
    except OSError:
        return 0


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _moved_here(store, key: str, elsewhere: dict[object, list[str]], known: dict
                ) -> tuple[str, dict] | None:
    """(indexed path, its row) of the very file ``key`` under another name, if any."""
    for p in [*elsewhere.get(os.path.basename(key), ()), *elsewhere.get(_inode(key), ())]:
        if _same_file(p, key):
            row = known.get(p) or store.files().get(p)
            if row is not None:
                return p, row
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _indexed_as(store, path: str, content_hash: str) -> str | None:
    """The path under which the index holds this very file (the same inode, reached through
    a symlink or another hard link), if it does. Of many indexed copies of one text only the
    first 64 are looked at, so a folder of identical files costs no more than a stat each."""
    for other in store.paths_with_hash(content_hash, besides=path, limit=64):
        try:
            if os.path.samefile(path, other):
                return other
        except OSError:
            continue
    return None


def _read_otherwise(path: str, row: dict, options: ReadOptions | None,
                    given: frozenset[str], summary: IndexSummary) -> bool:
    """Whether an unchanged file is read again: with other record fields, or because a limit
    that refused it or left records out (``cut_by``) is raised in this run."""
    if _other_fields(path, row, options, given):
        return True
    if options is not None and limits_raised(row.get("cut_by"), options):
        summary.limits_raised += 1
        return True
    return False


def _other_fields(path: str, row: dict, options: ReadOptions | None,
                  given: frozenset[str]) -> bool:
    """Whether this run asks for record fields other than the ones ``row``'s file was read
    with (unknown, for a file indexed before they were recorded, counts as other)."""
    if not given or options is None:
        return False
    wanted = record_fields(path, with_record_fields(options, row.get("record_fields"), given))
    return wanted is not None and wanted != row.get("record_fields")


def kept_gone(store, walked: set[str], roots: list[Path]) -> list[str]:
    """Files a stopped rebuild kept from other folders (``kept``) whose text is gone from
    the disk since (the rebuild taken up drops them, as it does those it has not kept)."""
    return [p for p, row in store.files().items()
            if p not in walked and not under(p, roots)
            and (not still_a_file(p) or now_other_text(p, row["content_hash"]))]


def _same_as(f: Path, fp: tuple[str, int, float], recorded: str) -> bool:
    """Whether a file is the one a failure recorded: the same hash, or, for one refused as
    too large (its "over:" fingerprint, ``file_fingerprint``), the same size, mtime and
    ends, whatever this run's --max-mb."""
    if recorded == fp[0]:
        return True
    if not recorded.startswith("over:"):
        return False
    try:
        return file_fingerprint(f, max_bytes=0)[0] == recorded
    except (IngestError, OSError):
        return False
