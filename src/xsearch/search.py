"""Cross-lingual search over an index: embed queries, ask FAISS, join SQLite for display."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .embedders import Embedder, get_embedder, resolve_model_name
from .errors import EmptyIndexError, IndexMismatchError
from .index_dir import IndexDir

SNIPPET_CHARS = 240


@dataclass
class Hit:
    rank: int
    score: float
    passage_id: int
    language: str
    path: str
    record_id: str
    title: str
    char_start: int
    char_end: int
    snippet: str
    text: str
    topic: str | None
    topic_score: float | None
    document_language: str | None

    def as_dict(self, with_text: bool = False) -> dict:
        out = asdict(self)
        if not with_text:
            out.pop("text")
        return out


@dataclass
class Filters:
    languages: tuple[str, ...] = ()
    path_glob: str | None = None
    topics: tuple[str, ...] = ()
    min_score: float | None = None

    def active(self) -> bool:
        return bool(self.languages or self.path_glob or self.topics)


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def display_path(path: str) -> str:
    """Path relative to the working directory when it lies below it."""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


class Searcher:
    """An index opened for queries, with its embedder loaded once."""

    def __init__(self, index_path: Path, model: str | None = None,
                 embedder: Embedder | None = None, engine: str | None = None) -> None:
        wanted = resolve_model_name(model) if model else None
        self.index = IndexDir.open(Path(index_path), model=wanted)
        self._embedder: Embedder | None = embedder
        self._engine = engine

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            emb = get_embedder(self.index.config.model, engine=self._engine, purpose="query")
            if emb.dim != self.index.config.dim:
                raise IndexMismatchError(
                    f"model {emb.name} makes {emb.dim}-d vectors; index holds "
                    f"{self.index.config.dim}-d"
                )
            self._embedder = emb
        return self._embedder

    def close(self) -> None:
        self.index.close()

    def passage_vectors(self, passage_ids: list[int]) -> np.ndarray:
        """Stored vectors of these passages, in the order given (for "more like this")."""
        ids, mat = self.index.store.vectors(passage_ids, self.index.config.dim)
        pos = {int(i): n for n, i in enumerate(ids)}
        return np.vstack([mat[pos[int(i)]] for i in passage_ids]) if passage_ids else mat

    def refresh(self) -> bool:
        """Reopen the index if another process committed to it since; True when reopened."""
        db = self.index.path / "xsearch.db"
        stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size)
                      for f in (db, db.with_name(db.name + "-wal")) if f.exists())
        if getattr(self, "_stamp", None) in (None, stamp):
            self._stamp = stamp
            return False
        fresh = IndexDir.open(self.index.path)
        self.index.close()
        self.index, self._stamp = fresh, stamp
        return True

    def _allowed_ids(self, f: Filters) -> np.ndarray | None:
        if not f.active():
            return None
        where, args = [], []
        if f.languages:
            # A bare ISO code ("hin") matches every script ("hin_Deva").
            where.append("(" + " OR ".join("p.language = ? OR p.language GLOB ?"
                                           for _ in f.languages) + ")")
            for lang in f.languages:
                args += [lang, lang + "_*"]
        if f.topics:
            where.append("p.topic IN (" + ",".join("?" * len(f.topics)) + ")")
            args += list(f.topics)
        sql = "SELECT p.id, d.path FROM passages p JOIN documents d ON d.id = p.document_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.index.store.db.execute(sql, args).fetchall()
        if f.path_glob:
            pat = f.path_glob
            rows = [r for r in rows if fnmatch.fnmatch(r[1], pat)
                    or fnmatch.fnmatch(display_path(r[1]), pat)
                    or fnmatch.fnmatch(Path(r[1]).name, pat)]
        return np.array([r[0] for r in rows], dtype=np.int64)

    def search_many(self, queries: list[str], k: int = 5, filters: Filters | None = None,
                    per_document: int = 1) -> list[list[Hit]]:
        """Ranked hits for each query (best first).

        ``per_document`` caps the passages shown from one document (0 = no cap), so that one
        long document cannot fill the whole list.
        """
        if len(self.index.vectors) == 0:
            raise EmptyIndexError(
                f"index {self.index.path} holds no passages; add files with: xsearch index PATH"
            )
        return self.search_vectors(self.embedder.embed_queries(queries), k, filters,
                                   per_document)

    def search_vectors(self, qv: np.ndarray, k: int = 5, filters: Filters | None = None,
                       per_document: int = 1) -> list[list[Hit]]:
        """Like :meth:`search_many`, for query vectors already embedded by this model."""
        f = filters or Filters()
        total = len(self.index.vectors)
        allowed = self._allowed_ids(f)
        if total == 0 or (allowed is not None and not len(allowed)):
            return [[] for _ in range(len(qv))]
        pool = total if allowed is None else len(allowed)
        fetch = min(pool, k * 8 if per_document else k)
        while True:
            results = self._collect(qv, fetch, allowed, f, k, per_document)
            short = any(len(r) < k for r in results)
            if not short or fetch >= pool or not per_document:
                return results
            fetch = min(pool, fetch * 4)

    def _collect(self, qv: np.ndarray, fetch: int, allowed: np.ndarray | None, f: Filters,
                 k: int, per_document: int) -> list[list[Hit]]:
        scores, ids = self.index.vectors.search(qv, fetch, allowed)
        wanted = sorted({int(i) for row in ids for i in row if i >= 0})
        rows = self.index.store.hits(wanted)
        out = []
        for srow, irow in zip(scores, ids, strict=True):
            hits: list[Hit] = []
            per_doc: dict[tuple[str, str], int] = {}
            for score, pid in zip(srow, irow, strict=True):
                if len(hits) >= k:
                    break
                if pid < 0 or int(pid) not in rows:
                    continue
                if f.min_score is not None and score < f.min_score:
                    break
                r = rows[int(pid)]
                doc = (r["path"], r["record_id"])
                if per_document and per_doc.get(doc, 0) >= per_document:
                    continue
                per_doc[doc] = per_doc.get(doc, 0) + 1
                hits.append(Hit(
                    rank=len(hits) + 1, score=round(float(score), 4), passage_id=int(pid),
                    language=r["language"], path=r["path"], record_id=r["record_id"],
                    title=r["title"], char_start=r["char_start"], char_end=r["char_end"],
                    snippet=snippet(r["text"]), text=r["text"], topic=r["topic"],
                    topic_score=r["topic_score"], document_language=r["doc_language"],
                ))
            out.append(hits)
        return out

    def search(self, query: str, k: int = 5, filters: Filters | None = None,
               per_document: int = 1) -> list[Hit]:
        return self.search_many([query], k, filters, per_document)[0]
