"""Incremental indexing: walk, read, chunk, identify language, embed, store.

Order of writes, for crash safety: each group of files is committed to SQLite in one
transaction (passages *and* vectors), then FAISS is updated in memory and saved by atomic
rename from time to time and at the end. A kill at any point leaves SQLite consistent and
FAISS either old or new; opening the index brings FAISS back in step from SQLite.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import langid
from .chunking import chunk_text
from .embedders import Embedder, get_embedder, resolve_model_name
from .errors import (
    CorruptIndexError,
    IndexLockedError,
    IndexMismatchError,
    IngestError,
    SkippedFile,
)
from .index_dir import CONFIG, DATABASE, VECTORS, IndexConfig, IndexDir
from .ingest import ReadOptions, file_fingerprint, iter_files, read_file
from .store import DocumentRow, PassageRow
from .topics import label_index
from .vector_index import CENTERED_LAYOUT, LAYOUT

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP = 32
SAVE_EVERY_SECONDS = 30.0
#: Longest extracted text indexed from one file (about 2,000 passages); raise with --max-chars.
DEFAULT_MAX_CHARS = 2_000_000

ProgressFn = Callable[[str, dict], None]


@dataclass
class IndexSummary:
    """What one `xsearch index` run did."""

    files_seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    renamed: int = 0
    removed: int = 0
    failed: int = 0
    skipped: int = 0
    documents_written: int = 0
    passages_embedded: int = 0
    passages_removed: int = 0
    repaired: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    labels: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passages_per_second(self) -> float:
        return self.passages_embedded / self.embed_seconds if self.embed_seconds else 0.0

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items()}
        out["passages_per_second"] = round(self.passages_per_second, 2)
        out["seconds"] = round(self.seconds, 3)
        out["embed_seconds"] = round(self.embed_seconds, 3)
        return out


@dataclass
class _Pending:
    """A new or changed file, read and chunked, waiting for its vectors."""

    path: str
    fingerprint: tuple[str, int, float]
    fmt: str
    keep: set[str]  # record ids whose documents stay as they are
    drop: list[int]  # document ids to delete
    docs: list[DocumentRow]
    texts: list[str] = field(default_factory=list)


@contextmanager
def _write_lock(index_path: Path):
    """One writer per index: a second `xsearch index` fails at once instead of interleaving."""
    index_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLockedError(f"index {index_path} is being written by another process"
                                   ) from exc
        yield
    finally:
        os.close(fd)


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _under(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in roots)


def open_or_create(
    index_path: Path,
    model: str | None,
    full: bool,
    chunk_tokens: int | None,
    chunk_overlap: int | None,
    batch_size: int | None = None,
    embedder: Embedder | None = None,
    center: bool | None = None,
    engine: str | None = None,
) -> tuple[IndexDir, Embedder]:
    """Open the index for writing (creating it if needed), with a matching embedder."""
    index_path = Path(index_path)
    existing = None
    if IndexDir.exists(index_path) and not full:
        existing = IndexConfig.read(index_path / CONFIG)
        wanted = resolve_model_name(model) if model else existing.model
        if wanted != existing.model:
            raise IndexMismatchError(
                f"index {index_path} was built with model {existing.model!r}; use --full to "
                f"rebuild it with {wanted!r}, or another --index"
            )
        centred = existing.faiss_layout == CENTERED_LAYOUT
        for name, given, have in (("--chunk-tokens", chunk_tokens, existing.chunk_tokens),
                                  ("--overlap", chunk_overlap, existing.chunk_overlap),
                                  ("--center/--no-center", center, centred)):
            if given is not None and given != have:
                raise IndexMismatchError(
                    f"index {index_path} was built with {name} {have}; use --full to change it"
                )
    if embedder is None:
        embedder = get_embedder(existing.model if existing else model, batch_size=batch_size,
                                engine=engine)
    if existing:
        return IndexDir.open(index_path, embedder.name, embedder.dim), embedder
    if full and index_path.is_dir():
        if (index_path / CONFIG).exists() or (index_path / DATABASE).exists():
            for name in (CONFIG, DATABASE, DATABASE + "-wal", DATABASE + "-shm", VECTORS):
                (index_path / name).unlink(missing_ok=True)
            for tmp in index_path.glob(VECTORS + ".tmp-*"):
                tmp.unlink()
    tokens = chunk_tokens or DEFAULT_CHUNK_TOKENS
    limit = embedder.max_tokens - embedder.token_overhead - 2
    config = IndexConfig(
        model=embedder.name,
        dim=embedder.dim,
        chunk_tokens=min(tokens, limit),
        chunk_overlap=DEFAULT_OVERLAP if chunk_overlap is None else chunk_overlap,
        normalized=embedder.normalized,
        faiss_layout=CENTERED_LAYOUT if center else LAYOUT,
        engine=embedder.engine,
    )
    return IndexDir.create(index_path, config), embedder


def build_index(
    paths: list[Path],
    index_path: Path,
    model: str | None = None,
    full: bool = False,
    chunk_tokens: int | None = None,
    chunk_overlap: int | None = None,
    read_options: ReadOptions | None = None,
    batch_size: int | None = None,
    commit_every: int = 64,
    max_chars: int = DEFAULT_MAX_CHARS,
    progress: ProgressFn | None = None,
    labels: list | None = None,
    embedder: Embedder | None = None,
    center: bool | None = None,
    engine: str | None = None,
) -> IndexSummary:
    """Bring the index at ``index_path`` up to date with the files under ``paths``."""
    started = time.perf_counter()
    notify = progress or (lambda event, info: None)
    summary = IndexSummary()
    roots = [Path(p).expanduser().resolve() for p in paths]
    for root in roots:
        if not root.exists():
            raise IngestError(f"path not found: {root}")
    files = [f.resolve() for f in iter_files(roots)]
    if not files:
        raise IngestError(
            "no supported files under " + ", ".join(str(r) for r in roots)
            + " (.txt .md .html .pdf .docx .jsonl .csv)"
        )

    index_path = Path(index_path)
    if index_path.exists() and not index_path.is_dir():
        raise IngestError(f"index path {index_path} is a file, not a directory")
    if index_path.is_dir() and not (index_path / CONFIG).exists() and any(
        not p.name.startswith(".") for p in index_path.iterdir()
    ):
        # Checked before taking the lock, so a foreign folder is left exactly as it was.
        raise CorruptIndexError(
            f"{index_path} is not empty and is not an xsearch index; choose another --index"
        )
    with _write_lock(index_path):
        index, embedder = open_or_create(index_path, model, full, chunk_tokens, chunk_overlap,
                                         batch_size, embedder, center, engine)
        try:
            summary.repaired = index.repaired
            pending = _plan(index, embedder, files, roots, read_options or ReadOptions(),
                            max_chars, summary, notify)
            _embed_and_write(index, embedder, pending, summary, commit_every, notify)
            if summary.passages_embedded or summary.passages_removed or summary.repaired:
                index.recentre()
            index.save_vectors()
        finally:
            index.close()
    if labels or summary.passages_embedded:
        # New passages take the stored labels; new labels relabel everything (no re-embedding).
        summary.labels = label_index(Path(index_path), labels, embedder)
    summary.seconds = time.perf_counter() - started
    return summary


def _plan(index: IndexDir, embedder: Embedder, files: list[Path], roots: list[Path],
          options: ReadOptions, max_chars: int, summary: IndexSummary, notify: ProgressFn
          ) -> list[_Pending]:
    """Decide what changed; read and chunk new and changed files; apply removals and renames."""
    store = index.store
    known = store.files()
    seen: set[str] = set()
    fresh: list[tuple[Path, tuple[str, int, float]]] = []
    for f in files:
        key = str(f)
        seen.add(key)
        summary.files_seen += 1
        try:
            fp = file_fingerprint(f)
        except (IngestError, OSError) as exc:
            _fail(summary, key, exc, notify)
            continue
        old = known.get(key)
        if old and old["content_hash"] == fp[0]:
            summary.unchanged += 1
            continue
        fresh.append((f, fp))

    gone = {p: row for p, row in known.items() if p not in seen and _under(p, roots)}
    by_hash: dict[str, str] = {}
    for p, row in gone.items():
        if not Path(p).exists():
            by_hash.setdefault(row["content_hash"], p)

    pending: list[_Pending] = []
    budget = index.config.chunk_tokens
    for f, fp in fresh:
        key = str(f)
        old_path = by_hash.pop(fp[0], None) if key not in known else None
        if old_path:
            with store.transaction():
                store.rename_file(old_path, key, fp[1], fp[2])
            gone.pop(old_path, None)
            summary.renamed += 1
            continue
        try:
            result = read_file(f, options)
            longest = max((len(d.text) for d in result.docs), default=0)
            if longest > max_chars:
                raise IngestError(f"{f}: text too long ({longest:,} characters, limit "
                                  f"{max_chars:,}; raise it with --max-chars)")
        except SkippedFile as exc:
            summary.skipped += 1
            summary.warnings.append(str(exc))
            notify("warning", {"message": str(exc)})
            continue
        except IngestError as exc:
            _fail(summary, key, exc, notify)
            continue
        for w in result.warnings:
            summary.warnings.append(w)
            notify("warning", {"message": w})
        old_docs = store.documents_of(key)
        item = _Pending(path=key, fingerprint=fp, fmt=f.suffix.lower().lstrip("."), keep=set(),
                        drop=[], docs=[])
        new_ids = set()
        for src in result.docs:
            h = _hash_text(src.text)
            new_ids.add(src.record_id)
            prev = old_docs.get(src.record_id)
            if prev and prev["content_hash"] == h:
                item.keep.add(src.record_id)
                continue
            if prev:
                item.drop.append(prev["id"])
            chunks = chunk_text(src.text, embedder.count_content_tokens, budget,
                                index.config.chunk_overlap)
            if not chunks:
                continue
            guesses = langid.detect_many([c.text for c in chunks])
            passages = [
                PassageRow(ordinal=i, char_start=c.start, char_end=c.end, text=c.text,
                           language=g.code, language_score=float(g.score),
                           n_tokens=c.n_tokens + embedder.token_overhead,
                           vector=np.zeros(0, dtype=np.float32))
                for i, (c, g) in enumerate(zip(chunks, guesses, strict=True))
            ]
            doc_lang = langid.majority_language(guesses, [len(c.text) for c in chunks])
            item.docs.append(DocumentRow(record_id=src.record_id, title=src.title,
                                         content_hash=h, n_chars=len(src.text),
                                         language=doc_lang, passages=passages))
            item.texts.extend(c.text for c in chunks)
        item.drop.extend(d["id"] for rid, d in old_docs.items() if rid not in new_ids)
        if key in known:
            summary.changed += 1
        else:
            summary.new += 1
        pending.append(item)

    for p in gone:
        with store.transaction():
            pids = store.delete_file(p)
        index.vectors.remove(pids)
        summary.removed += 1
        summary.passages_removed += len(pids)
    return pending


def _fail(summary: IndexSummary, path: str, exc: Exception, notify: ProgressFn) -> None:
    summary.failed += 1
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    summary.errors.append({"path": path, "error": message})
    notify("error", {"path": path, "message": message})


def _embed_and_write(index: IndexDir, embedder: Embedder, pending: list[_Pending],
                     summary: IndexSummary, commit_every: int, notify: ProgressFn) -> None:
    total = sum(len(p.texts) for p in pending)
    notify("start", {"total": total, "files": len(pending)})
    last_save = time.monotonic()
    i = 0
    while i < len(pending):
        group, n = [], 0
        while i < len(pending) and (not group or n < commit_every):
            group.append(pending[i])
            n += len(pending[i].texts)
            i += 1
        texts = [t for p in group for t in p.texts]
        t0 = time.perf_counter()
        vectors = embedder.embed_documents(texts) if texts else np.zeros((0, embedder.dim))
        summary.embed_seconds += time.perf_counter() - t0
        row = 0
        for p in group:
            for d in p.docs:
                for passage in d.passages:
                    passage.vector = vectors[row]
                    row += 1
        removed, added_ids = [], []
        with index.store.transaction():
            for p in group:
                index.store.upsert_file(p.path, *p.fingerprint, p.fmt)
                removed += index.store.delete_documents(p.drop)
                for d in p.docs:
                    _, pids = index.store.insert_document(p.path, d)
                    added_ids += pids
                    summary.documents_written += 1
        index.vectors.remove(removed)
        index.vectors.add(np.array(added_ids, dtype=np.int64), vectors)
        summary.passages_embedded += len(texts)
        summary.passages_removed += len(removed)
        notify("advance", {"n": len(texts)})
        if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
            index.save_vectors()
            last_save = time.monotonic()
