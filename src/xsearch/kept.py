"""What a --full rebuild keeps of the files it does not read again.

A plain run keeps the last indexed version of a file it cannot read now (a limit, a parse
error, a folder it may not list) and leaves alone the files indexed from other folders.
A rebuild keeps them too, instead of leaving them out of the index it puts in place: each
such file is written again from the live index's own rows, its passages exactly as they
are (text, offsets, languages; a passage longer than the new model reads is split), with
their vectors when the rebuild may take them (``carry``), else embedded from that text.
Files whose text is gone from the disk are dropped, as a plain run drops them, and so are
files the walk reached under another name (one file, one path). It also keeps the live
index's record of files that failed or were skipped, for the files it does not read.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import chunk_text
from .errors import IngestError
from .index_dir import DATABASE
from .ingest import file_fingerprint
from .rows import DocumentRow, PassageRow
from .store import Store

_UNREADABLE = (sqlite3.Error, OSError, ValueError)


def still_a_file(path: str) -> bool:
    """Whether ``path`` is still a file (or a link to one); unknown (no permission) is yes."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True


def now_other_text(path: str, content_hash: str) -> bool:
    """Whether a file the walk left out is now a symlink to other text than the index holds
    of it (a file replaced by a link to one elsewhere, which the walk does not follow): its
    indexed text is on disk no more, and was found by queries for ever."""
    if not os.path.islink(path):
        return False
    try:
        return file_fingerprint(Path(path))[0] != content_hash
    except (IngestError, OSError):
        return False  # unreadable: kept, as any file that cannot be told


@dataclass
class KeptFile:
    """One file as the live index holds it, to be written again as it is."""

    path: str
    fingerprint: tuple[str, int, float]
    fmt: str
    record_fields: str | None
    cut_by: str | None
    docs: list[DocumentRow]
    #: (passage, live passage id): the vectors the rebuild may take (``LiveVectors.attach``)
    live_ids: list[tuple[PassageRow, int]] = field(default_factory=list)


@dataclass
class Shape:
    """What a kept passage must fit: the rebuild's model (its tokens) and chunking."""

    same_model: bool
    count: Callable[[str], int]  # content tokens of a text
    overhead: int
    max_tokens: int
    chunk_tokens: int
    overlap: int


class LiveFiles:
    """The live index beside a rebuild, read for the files it keeps."""

    def __init__(self, index_path: Path) -> None:
        self.store = Store(index_path / DATABASE, readonly=True)
        self.gone = self.gone_passages = 0  # live files dropped: no longer on disk

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

    def unread(self, accounted: set[str]) -> list[str]:
        """Live files the rebuild has not accounted for (read, walked under this or another
        name, written by a run it takes up) whose text is still on disk; the others are
        counted in ``gone`` and ``gone_passages``."""
        try:
            rows = {p: r["content_hash"] for p, r in self.store.files().items()
                    if p not in accounted}
        except _UNREADABLE:
            return []
        out = [p for p, h in sorted(rows.items())
               if still_a_file(p) and not now_other_text(p, h)]
        dropped = sorted(set(rows) - set(out))
        self.gone = len(dropped)
        try:
            self.gone_passages = self.store.passages_of_files(dropped) if dropped else 0
        except _UNREADABLE:
            self.gone_passages = 0
        return out

    def failures(self, accounted: set[str]) -> list[dict]:
        """The live index's records of files that failed or were skipped, for the files the
        rebuild has not accounted for that are still there (a plain run forgets the others)."""
        try:
            return [r for p, r in sorted(self.store.failed_files().items())
                    if p not in accounted and still_a_file(p)]
        except _UNREADABLE:
            return []

    def last_version(self, path: str, shape: Shape) -> KeptFile | None:
        """The file's documents and passages as the live index holds them, or None (not
        held, or the live index cannot be read)."""
        try:
            row = self.store.db.execute(
                "SELECT content_hash, size, mtime, format, record_fields, cut_by FROM files "
                "WHERE path = ?", [path]).fetchone()
            if row is None:
                return None
            kept = KeptFile(path, (row[0], row[1], row[2]), row[3], row[4], row[5], [])
            for doc_id, record_id, title, doc_hash, n_chars, language in self.store.db.execute(
                    "SELECT id, record_id, title, content_hash, n_chars, language FROM "
                    "documents WHERE path = ? ORDER BY id", [path]).fetchall():
                rows = self.store.db.execute(
                    "SELECT id, char_start, char_end, text, language, language_score, "
                    "n_tokens, topic, topic_score FROM passages WHERE document_id = ? "
                    "ORDER BY ordinal", [doc_id]).fetchall()
                passages = _fitted(rows, shape, kept.live_ids)
                if passages:
                    kept.docs.append(DocumentRow(record_id, title, doc_hash, n_chars,
                                                 language, passages))
        except _UNREADABLE:
            return None
        return kept


def _fitted(rows: list[tuple], shape: Shape, live_ids: list[tuple[PassageRow, int]]
            ) -> list[PassageRow]:
    """A document's passages as the rebuild writes them: as they are when they fit its
    model (the same model: always), else split with its chunking."""
    out: list[PassageRow] = []
    for pid, start, end, text, lang, score, n_tokens, topic, topic_score in rows:
        if not shape.same_model:
            n_tokens = shape.count(text) + shape.overhead
        if shape.same_model or n_tokens <= shape.max_tokens:
            p = PassageRow(len(out), start, end, text, lang, score, n_tokens,
                           topic=(topic, topic_score))
            out.append(p)
            live_ids.append((p, pid))
            continue
        for c in chunk_text(text, shape.count, shape.chunk_tokens, shape.overlap):
            out.append(PassageRow(len(out), start + c.start, start + c.end, c.text, lang,
                                  score, c.n_tokens + shape.overhead))
    return out


def failed_now(result: object) -> bool:
    """A file that failed to be read now (a limit, a parse error: ``pipeline._Pending``),
    not one skipped (now empty or binary: its text is gone from the disk, so from the
    index)."""
    return getattr(result, "fmt", "").startswith("failed:")
