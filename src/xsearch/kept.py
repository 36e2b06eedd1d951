"""What a --full rebuild keeps of the files it does not read again.

A plain run keeps the last indexed version of a file it cannot read now (a limit, a parse
error, a folder it may not list) and leaves alone the files indexed from other folders.
A rebuild keeps them too, instead of leaving them out of the index it puts in place: each
such file that still exists is written again from the live index's own text (its documents,
put together from their passages, which are exact slices of them), and takes its vectors
as any rebuilt passage does (``carry``). Only files that are gone from the disk are dropped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .fileio import surely_gone
from .index_dir import DATABASE
from .ingest import ReadResult, SourceDoc
from .store import Store

_UNREADABLE = (sqlite3.Error, OSError, ValueError)


@dataclass
class KeptFile:
    """One file as the live index holds it, ready to be prepared like a file read."""

    path: str
    fingerprint: tuple[str, int, float]
    record_fields: str | None
    cut_by: str | None
    result: ReadResult


class LiveFiles:
    """The live index beside a rebuild, read for the files' last indexed text."""

    def __init__(self, index_path: Path) -> None:
        self.store = Store(index_path / DATABASE, readonly=True)
        self.gone = 0  # live files not kept: no longer on disk

    @classmethod
    def open(cls, index_path: Path | None) -> LiveFiles | None:
        if index_path is None or not (index_path / DATABASE).is_file():
            return None
        try:
            return cls(index_path)
        except _UNREADABLE:
            return None

    def close(self) -> None:
        self.store.close()

    def holds(self, path: str) -> bool:
        try:
            return self.store.db.execute("SELECT 1 FROM files WHERE path = ?",
                                         [path]).fetchone() is not None
        except _UNREADABLE:
            return False

    def unread(self, reads: set[str]) -> list[str]:
        """Live files this rebuild neither reads nor has written yet (it may have been
        stopped and taken up) that still exist; those gone are counted in ``gone``."""
        try:
            paths = sorted(set(self.store.files()) - reads)
        except _UNREADABLE:
            return []
        out = [p for p in paths if not surely_gone(p)]
        self.gone = len(paths) - len(out)
        return out

    def last_version(self, path: str) -> KeptFile | None:
        """The file's documents as the live index holds them, or None (not held, or the
        live index cannot be read)."""
        try:
            row = self.store.db.execute(
                "SELECT content_hash, size, mtime, record_fields, cut_by FROM files "
                "WHERE path = ?", [path]).fetchone()
            if row is None:
                return None
            docs = []
            for doc_id, record_id, title, n_chars in self.store.db.execute(
                    "SELECT id, record_id, title, n_chars FROM documents WHERE path = ? "
                    "ORDER BY id", [path]).fetchall():
                parts = self.store.db.execute(
                    "SELECT char_start, text FROM passages WHERE document_id = ? "
                    "ORDER BY ordinal", [doc_id]).fetchall()
                docs.append(SourceDoc(record_id=record_id, title=title,
                                      text=_joined(parts, n_chars)))
        except _UNREADABLE:
            return None
        return KeptFile(path, (row[0], row[1], row[2]), row[3], row[4],
                        ReadResult(docs=[d for d in docs if d.text.strip()]))


def failed_now(result: object) -> bool:
    """A file that failed to be read now (a limit, a parse error: ``pipeline._Pending``),
    not one skipped (now empty or binary: its text is gone from the disk, so from the
    index)."""
    return getattr(result, "fmt", "").startswith("failed:")


def _joined(parts: list[tuple[int, str]], n_chars: int) -> str:
    """A document's text from its passages (``text == source[start:end]``, overlapping);
    what no passage covers (space between them) reads as spaces."""
    out = [" "] * max(n_chars, max((s + len(t) for s, t in parts), default=0))
    for start, text in parts:
        out[start:start + len(text)] = text
    return "".join(out).rstrip()
