"""The server's hold on one index: a searcher owned by one thread, refreshed before each use.

SQLite connections belong to the thread that opened them, and a refresh must never swap the
index under a running search, so every read of the index (refresh, FAISS search, browse
queries) runs on one dedicated "index" thread, one at a time. Embedding, the slow part, runs on
another thread, fed by the micro-batcher, so the two overlap under load.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import EmptyIndexError, IndexLockedError, IndexMismatchError, XsearchError
from .batching import MicroBatcher

log = logging.getLogger("xsearch.server")
T = TypeVar("T")


class IndexBusyError(IndexLockedError):
    """An index run started from the API is already going."""


class IndexService:
    """Owns the searcher, the embedder and the micro-batcher of one served index."""

    def __init__(self, index_path: Path, max_batch: int = 32, window_ms: float = 0.0,
                 allow_index: Path | None = None, token: str | None = None,
                 engine: str | None = None) -> None:
        self.index_path = Path(index_path)
        self.allow_index = Path(allow_index) if allow_index else None
        self.token = token
        self.engine = engine
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="xsearch-index")
        self._embed_thread = ThreadPoolExecutor(1, thread_name_prefix="xsearch-embed")
        self._searcher: Any = None  # xsearch.search.Searcher, touched only on the index thread
        self.embedder: Any = None
        self.batcher = MicroBatcher(self._embed_queries, self._embed_thread, max_batch,
                                    window_ms)
        self._writing = threading.Lock()
        #: How often the index was reopened because another process changed it.
        self.reloads = 0

    # -- the index thread ------------------------------------------------------------------

    def _current(self):
        """The searcher, opened or refreshed (index thread only)."""
        from ..search import Searcher

        s = self._searcher
        if s is None:
            # Raises EmptyIndexError while there is no index yet (the API answers 503).
            s = Searcher(self.index_path, embedder=self.embedder, engine=self.engine,
                         purpose="serve")
            if self.embedder is None:
                try:
                    # The index's own model, loaded once, checked against its dimension.
                    self.embedder = s.embedder
                except BaseException:
                    s.close()
                    raise
            s.refresh()  # records the state it opened
            self._searcher = s
            return s
        try:
            if s.refresh():
                self.reloads += 1
        except IndexMismatchError:
            raise  # rebuilt for another model: the old state would be stale for good
        except (XsearchError, sqlite3.Error, OSError) as exc:
            # Half-way through a rebuild: keep answering from the state we have.
            log.warning("index refresh failed, serving the previous state: %s", exc)
        return s

    async def run(self, fn: Callable[[Any], T]) -> T:
        """``fn(searcher)`` on the index thread, after a refresh."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._index_thread, lambda: fn(self._current()))

    def _embed_queries(self, texts) -> np.ndarray:
        return self.embedder.embed_queries(list(texts))

    # -- operations ------------------------------------------------------------------------

    async def search(self, queries: list[str], k: int, filters, per_doc: int,
                     offset: int = 0) -> list[list]:
        """Hits for each query; queries are embedded together with concurrent requests'."""
        await self.run(_require_passages)
        vecs = await asyncio.gather(*(self.batcher.embed(q) for q in queries))
        qv = np.vstack(vecs).astype(np.float32)
        # The texts too: the query's language picks the mean it is centred on.
        return await self.run(lambda s: s.search_vectors(qv, k, filters, per_doc,
                                                         texts=list(queries), offset=offset))

    async def translations(self, passage_id: int, k: int) -> dict:
        """Nearest passages to this one in each other language."""
        from ..browse import passage
        from ..search import Filters

        def work(s) -> dict:
            row = passage(s.index, passage_id, neighbours=0)
            vec = s.passage_vectors([passage_id])
            langs = [r[0] for r in s.index.store.db.execute(
                "SELECT DISTINCT language FROM passages WHERE language IS NOT NULL "
                "ORDER BY language")]
            groups = []
            for lang in langs:
                if lang == row["language"]:
                    continue
                hits = s.search_vectors(vec, k, Filters(languages=(lang,)))[0]
                groups.append({"language": lang, "hits": [h.as_dict() for h in hits]})
            groups.sort(key=lambda g: -(g["hits"][0]["score"] if g["hits"] else -9))
            return {"passage_id": passage_id, "language": row["language"], "groups": groups}

        return await self.run(work)

    def health(self) -> dict:
        """Cheap status without touching the index thread."""
        s = self._searcher
        return {"index": str(self.index_path), "writable": self.allow_index is not None,
                "model": self.embedder.name if self.embedder is not None else None,
                "engine": getattr(self.embedder, "engine", None) or None,
                "status": "ok" if s is not None else "starting"}

    async def index_now(self) -> dict:
        """One incremental ``xsearch index`` run of the allowed root; one at a time."""
        from ..indexer import build_index

        if self.allow_index is None:
            raise RuntimeError("indexing is not enabled")
        if not self._writing.acquire(blocking=False):
            raise IndexBusyError("an index run is already going; try again when it is done")
        try:
            summary = await asyncio.to_thread(build_index, [self.allow_index], self.index_path)
        finally:
            self._writing.release()
        return summary.as_dict()

    async def close(self) -> None:
        await self.batcher.close()
        loop = asyncio.get_running_loop()

        def shut() -> None:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

        await loop.run_in_executor(self._index_thread, shut)
        self._index_thread.shutdown(wait=False)
        self._embed_thread.shutdown(wait=False)


def _require_passages(s) -> None:
    row = s.index.store.db.execute("SELECT EXISTS (SELECT 1 FROM passages)").fetchone()
    if not row[0]:
        raise EmptyIndexError(f"index {s.index.path} holds no passages yet")
