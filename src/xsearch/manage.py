"""Managing what an index holds: list its files, remove some, prune the ones that are gone.

Plain dicts out; the CLI formats them. Removals are ordinary write transactions
(``IndexWriter`` under the write lock), so a kill leaves the index before or after, never
between.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from pathlib import Path

from . import arguments
from .errors import NotIndexedError
from .fileio import surely_gone
from .index_dir import IndexDir
from .langcodes import matches, resolve_filters
from .writer import IndexWriter, lock_existing

_GLOB_CHARS = set("*?[")


def _abs(path: str | Path) -> str:
    """How the indexer names files: absolute, ``~`` expanded, links not resolved."""
    return os.path.abspath(os.path.expanduser(str(path)))


def list_files(index_path: Path, languages: tuple[str, ...] | list[str] = (),
               missing_only: bool = False) -> dict:
    """The indexed files (format, documents, passages per language, size, when indexed,
    whether the file still exists) and the files that failed or were skipped, with why.

    ``languages`` (any spelling) keeps files holding at least one passage in one of them.
    """
    index = IndexDir.open(Path(index_path))
    try:
        db = index.store.db
        with index.store.snapshot():
            files = {r["path"]: r for r in db.query(
                "SELECT * FROM files ORDER BY path")}  # record_fields: from schema 7
            docs = dict(db.execute(
                "SELECT path, count(*) FROM documents GROUP BY path").fetchall())
            per_lang: dict[str, dict[str, int]] = {}
            for path, lang, n in db.execute(
                    "SELECT d.path, p.language, count(*) FROM passages p JOIN documents d "
                    "ON d.id = p.document_id GROUP BY d.path, p.language "
                    "ORDER BY d.path, count(*) DESC, p.language"):
                per_lang.setdefault(path, {})[lang or "und"] = n
            failed = list(db.query(
                "SELECT path, kind, reason, at, content_hash FROM failed_files ORDER BY path"))
        wanted = None
        if languages:
            held = {lang for langs in per_lang.values() for lang in langs}
            wanted = resolve_filters(languages, held)
        out = []
        for path, row in files.items():
            langs = per_lang.get(path, {})
            if wanted is not None and not any(matches(w, lang) for w in wanted for lang in langs):
                continue
            exists = not surely_gone(path)  # behind a folder it cannot read: still there
            if missing_only and exists:
                continue
            out.append({
                "path": path, "format": row["format"], "documents": docs.get(path, 0),
                "passages": sum(langs.values()), "languages": langs, "size": row["size"],
                "mtime": row["mtime"], "indexed_at": row["indexed_at"], "exists": exists,
                # .jsonl/.csv: the --text-field/--id-field it was read with
                "record_fields": json.loads(row["record_fields"])
                if row.get("record_fields") else None,
                # the limits that left records out ({"max_chars": 4000}): from schema 9
                "cut_by": json.loads(row["cut_by"]) if row.get("cut_by") else None,
            })
        if wanted is not None or missing_only:
            failed = []  # failures hold no passages and name no language
        return {"index": str(index.path.resolve()), "files": out, "failed": failed,
                "missing": sum(1 for f in out if not f["exists"])}
    finally:
        index.close()


def missing_files(store) -> list[str]:
    """Indexed files that no longer exist where they were indexed from."""
    return [p for (p,) in store.db.execute("SELECT path FROM files ORDER BY path")
            if surely_gone(p)]


def match_paths(patterns: list[str], indexed: list[str], sizes: dict[str, int] | None = None
                ) -> tuple[dict[str, list[str]], list[str]]:
    """Which indexed paths each pattern names: a file, a folder (everything below it) or a
    glob over the whole absolute path (``*`` also crosses folders). Given the indexed files'
    ``sizes``, a file or folder on disk that names none by its path names those the index
    reached another way (:func:`_same_on_disk`). Returns ({pattern: paths}, patterns that
    matched nothing)."""
    found: dict[str, list[str]] = {}
    unmatched: list[str] = []
    ordered = sorted(indexed)
    indexed_set = set(indexed)
    for pattern in patterns:
        target = _abs(pattern)
        # A name such as report[1].txt is itself, not a glob, when it is indexed.
        if _GLOB_CHARS & set(pattern) and target not in indexed_set:
            hits = [p for p in ordered if fnmatch.fnmatchcase(p, target)]
        else:
            below = target.rstrip(os.sep) + os.sep
            hits = [p for p in ordered if p == target or p.startswith(below)]
            if not hits and sizes is not None:
                hits = _same_on_disk(target, ordered, sizes)
        if hits:
            found[pattern] = hits
        else:
            unmatched.append(pattern)
    return found, unmatched


def _elsewhere_hint(unmatched: list[str], ordered: list[str]) -> str:
    """For a relative pattern that names nothing here but would from another folder (as
    ``query --path`` reads it, anywhere): how many, one of them, and how to name them."""
    for pattern in unmatched:
        g = os.path.normpath(os.path.expanduser(pattern))
        if os.path.isabs(g):
            continue
        anywhere = ["*" + os.sep + g] + ([] if _GLOB_CHARS & set(g) else
                                          ["*" + os.sep + g + os.sep + "*"])
        hits = [p for p in ordered if any(fnmatch.fnmatchcase(p, a) for a in anywhere)]
        if hits:
            many = f"{len(hits)} indexed files" if len(hits) > 1 else "an indexed file"
            return (f"; {pattern} is read below {os.getcwd()}, and {many} elsewhere would "
                    f"match it, such as {hits[0]}: name them by an absolute path or glob")
    return ""


def _same_on_disk(target: str, ordered: list[str], sizes: dict[str, int]) -> list[str]:
    """Indexed paths that reach the file or folder ``target`` through a link: a symlinked
    folder on either side (their folders' real paths agree) or, for a file, a symlink or hard
    link to it (the same inode, looked at for files of its size only)."""
    try:
        st = os.stat(target)
    except OSError:
        return []
    is_dir = stat.S_ISDIR(st.st_mode)
    real = os.path.realpath(target)
    below = real.rstrip(os.sep) + os.sep
    folders: dict[str, str] = {}  # one realpath per folder, not per file
    hits = []
    for p in ordered:
        head, name = os.path.split(p)
        if head not in folders:
            folders[head] = os.path.realpath(head)
        where = os.path.join(folders[head], name)
        if where == real or (is_dir and where.startswith(below)):
            hits.append(p)
        elif not is_dir and sizes.get(p) == st.st_size:
            try:
                if os.path.samefile(p, target):
                    hits.append(p)
            except OSError:
                continue
    return hits


def remove_files(index_path: Path, patterns: list[str], missing_ok: bool = False,
                 dry_run: bool = False) -> dict:
    """Remove the files ``patterns`` name (files, folders, globs) from the index.

    A pattern that names no indexed file (nor a failed/skipped one) raises NotIndexedError
    before anything is removed, unless ``missing_ok``. With ``dry_run`` nothing is written.
    """
    patterns = list(arguments.names(patterns, "patterns"))  # "a.txt" is one, not 5
    if any(not str(p).strip() for p in patterns):  # '' names the working directory
        raise NotIndexedError("an empty path names nothing (an unset variable?)")
    path = Path(index_path)
    index = IndexDir.open(path)  # a clear error for a missing or foreign folder, before locking
    try:
        indexed = {p: row["size"] for p, row in index.store.files().items()}
        failed = set(index.store.failed_files())
        found, unmatched = match_paths(patterns, sorted(set(indexed) | failed), indexed)
        if unmatched and not missing_ok:
            raise NotIndexedError(
                "not in the index: " + ", ".join(unmatched)
                + _elsewhere_hint(unmatched, sorted(set(indexed) | failed))
                + " (see xsearch files; --missing-ok ignores this)")
        chosen = sorted({p for hits in found.values() for p in hits})
        files = [p for p in chosen if p in indexed]
        records = [p for p in chosen if p in failed and p not in indexed]
        # Counted here for a dry run only: a removal counts what it removes.
        passages = index.store.passages_of_files(files) if dry_run else 0
    finally:
        index.close()
    result = {"index": str(path.resolve()), "removed": files, "failed_records": records,
              "passages": passages, "unmatched": unmatched,
              "dry_run": dry_run, "segments_merged": 0}
    if dry_run or not chosen:
        return result
    result["passages"], result["segments_merged"] = _delete(path, files, chosen)
    return result


def prune_missing(index_path: Path, dry_run: bool = False) -> dict:
    """Remove every indexed file that no longer exists, wherever it was indexed from."""
    path = Path(index_path)
    index = IndexDir.open(path)
    try:
        gone = missing_files(index.store)
    finally:
        index.close()
    if not gone:
        return {"index": str(path.resolve()), "removed": [], "failed_records": [],
                "passages": 0, "unmatched": [], "dry_run": dry_run, "segments_merged": 0}
    return remove_files(path, gone, missing_ok=True, dry_run=dry_run)


def _delete(path: Path, files: list[str], also_failed: list[str]) -> tuple[int, int]:
    """(passages removed, segments merged); one transaction, then the merge policy."""
    with lock_existing(path):
        writer = IndexWriter.open(path, None, keep_unfinished=True)
        try:
            # The write lock is held: the set may have changed since it was read.
            live = set(writer.store.files())
            removed = writer.delete_files([p for p in files if p in live])
            with writer.store.transaction():
                for p in also_failed:
                    writer.store.forget_failure(p)
            merged = writer.merge()
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        _delete_from_stopped_builds(path, files)
    return removed, merged


def _delete_from_stopped_builds(path: Path, files: list[str]) -> None:
    """Remove the files from a stopped --full rebuild too (the write lock is held): it holds
    the live index's files as they were when it began, and taken up it brought back the ones
    removed meanwhile."""
    from .fresh_builds import fresh_dbs

    for db in fresh_dbs(path):
        fresh = IndexWriter.stopped_build(path, db)
        try:
            held = set(fresh.store.files())
            fresh.delete_files([p for p in files if p in held])
        finally:
            fresh.abort()  # (not swapped in; dropped if nothing is left in it)
