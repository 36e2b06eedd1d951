"""The server's hold on one index: a searcher owned by one thread, refreshed before each use.

SQLite connections belong to the thread that opened them, and a refresh must never swap the
index under a running search, so every read of the index (refresh, FAISS search, browse
queries) runs on one dedicated "index" thread, one at a time. Embedding, the slow part, runs on
another thread, fed by the micro-batcher, so the two overlap under load.

An index rebuilt for another model (``xsearch index --full --model ...`` beside the server) is
followed: the next request starts loading that model's query embedder on a thread of its own
and is answered, like every request until the model is loaded, from the state before the
rebuild with the old model; then searcher and embedder are swapped together. A query vector
made by the old model is never searched against the new model's vectors: the search checks,
on the index thread, that no swap happened since it was embedded, and embeds the query again
if one did.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..embedders import release
from ..errors import (
    EmptyIndexError,
    IndexLockedError,
    IndexMismatchError,
    XsearchError,
    first_line,
)
from ..fileio import quick_fingerprint
from ..index_dir import DATABASE
from ..segments import files_of
from ..vector_store import SegmentGoneError
from .batching import MicroBatcher

log = logging.getLogger("xsearch.server")
T = TypeVar("T")
#: How often a search embeds its queries again when the index changed model meanwhile.
MODEL_RETRIES = 3


class IndexBusyError(IndexLockedError):
    """An index run started from the API is already going."""


class ModelChangedError(XsearchError):
    """The index is now built for a model this server cannot (yet) query with; retryable."""


class IndexService:
    """Owns the searcher, the embedder and the micro-batcher of one served index."""

    def __init__(self, index_path: Path, max_batch: int = 32, window_ms: float = 0.0,
                 allow_index: Path | None = None, token: str | None = None,
                 engine: str | None = None, index_options: dict | None = None) -> None:
        self.index_path = Path(index_path)
        self.allow_index = Path(allow_index) if allow_index else None
        self.index_options = dict(index_options or {})
        self.token = token
        self.engine = engine
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="xsearch-index")
        self._embed_thread = ThreadPoolExecutor(1, thread_name_prefix="xsearch-embed")
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="xsearch-model")
        #: A searcher of the index rebuilt for another model, the load of that model, and
        #: whether requests wait for it (else the state before the rebuild answers them).
        self._next: tuple[Any, Future, bool] | None = None
        #: Why the last load of the rebuilt index's model failed, and when it may be tried
        #: again (None: it did not fail). Requests wait for the next attempt: the state before
        #: the rebuild is not served any more.
        self._failed: tuple[str, float] | None = None
        self._load_seconds = 0.0  # how long the last load ran
        self._searcher: Any = None  # xsearch.search.Searcher, touched only on the index thread
        self.embedder: Any = None
        self.batcher = MicroBatcher(self._embed_queries, self._embed_thread, max_batch,
                                    window_ms)
        self._writing = threading.Lock()
        #: How often the index was reopened because another process changed it.
        self.reloads = 0
        #: How often the index was found rebuilt for another model and that model loaded.
        self.model_changes = 0
        self._logged: set[str] = set()  # warnings logged once (each request would repeat them)

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
        if self._next is not None:
            return self._follow_model(s)
        if self._failed is not None and time.monotonic() < self._failed[1]:
            raise ModelChangedError(self._failed[0])  # not tried again yet: see _follow_model
        try:
            if s.refresh():
                self.reloads += 1
                self._logged.clear()  # another state: its warnings are news
            self._failed = None  # rebuilt again, for the model this server has
        except IndexMismatchError:
            # Rebuilt for another model: load it, answering from the state we have meanwhile
            # (if the rebuild has not already taken away a segment of it that was not open).
            self._load_next_model(wait=self._failed is not None or not _held_whole(s))
            return self._follow_model(s)
        except (XsearchError, sqlite3.Error, OSError) as exc:
            if not (self.index_path / DATABASE).exists():
                # The index was deleted or moved away: its old state is not served on (what
                # was never opened of it would be missing from answers); 503 until it is back.
                self._searcher = None
                s.close()
                raise EmptyIndexError(f"no index at {self.index_path} any more (deleted or "
                                      "moved while served)") from exc
            # Half-way through a rebuild: keep answering from the state we have.
            self.log_once(f"index refresh failed, serving the previous state: {exc}")
        return s

    def log_once(self, message: str) -> None:
        if message not in self._logged:
            self._logged.add(message)
            log.warning("%s", message)

    def _load_next_model(self, wait: bool) -> None:
        """Open the rebuilt index and start loading its model's query embedder (index thread
        only). It is picked as a new Searcher picks it (``purpose="serve"``: nothing is built
        or downloaded) and checked against the index's dimension and fingerprint. ``wait``:
        requests wait for it instead of being answered from the state before the rebuild."""
        from ..centering import checked_embedder
        from ..search import Searcher

        new = Searcher(self.index_path, engine=self.engine, purpose="serve")
        try:
            check = new.model_check()  # SQLite is read here; the load reads none
        except BaseException:
            new.close()
            raise

        def load():
            started = time.monotonic()
            try:
                return checked_embedder(*check, engine=self.engine, purpose="serve")
            finally:
                self._load_seconds = time.monotonic() - started

        self._next = (new, self._model_thread.submit(load), wait)

    def _follow_model(self, old):
        """The searcher to answer from while another model loads (index thread only): the old
        one until the load is done, then the new one with its embedder. A model that cannot be
        loaded is a 503; a later request tries again, no sooner than twice the failed load's
        length after it, and waits for that attempt (the state before the rebuild is not
        served once a load has failed)."""
        assert self._next is not None
        new, loading, wait = self._next
        if not loading.done() and not wait:
            return old
        try:
            embedder = loading.result()
        except Exception as exc:  # any loader's failure: a 503 and a later retry
            self._next, model = None, new.index.config.model
            new.close()
            # A load that fails slowly (a large model's imports) is tried again no sooner than
            # twice its length later, so retries take at most a third of the index thread;
            # one that fails at once is tried again on the next request.
            self._failed = (
                f"index {self.index_path} was rebuilt with model {model}, which this server "
                f"cannot load: {first_line(exc)} (it tries again on a later request)",
                time.monotonic() + 2 * self._load_seconds)
            self.log_once(self._failed[0])  # (clients hear it; so does whoever runs it)
            raise ModelChangedError(self._failed[0]) from exc
        self._next, self._failed = None, None
        new.use_embedder(embedder)
        old.close()
        previous = self.embedder
        # Embedder first: a search that sees the new count embeds with the new model.
        self._searcher, self.embedder = new, embedder
        if previous is not None and previous is not embedder:
            # The old model's memory goes once a batch it may still be embedding is done.
            release(previous)
        self.model_changes += 1
        self.reloads += 1
        log.warning("index %s was rebuilt with model %s: now serving it with that model",
                    self.index_path, new.index.config.model)
        return self._current()  # it may have changed again while the model loaded

    async def run(self, fn: Callable[[Any], T]) -> T:
        """``fn(searcher)`` on the index thread, after a refresh."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._index_thread, lambda: fn(self._current()))

    def _embed_queries(self, texts) -> np.ndarray:
        embedder = self.embedder  # read once: a swap meanwhile does not split a batch
        return embedder.embed_queries(list(texts))

    # -- operations ------------------------------------------------------------------------

    async def search(self, queries: list[str], k: int, filters, per_doc: int,
                     offset: int = 0, mode: str = "hybrid") -> list[list]:
        """Hits for each query; queries are embedded together with concurrent requests'.

        All queries are searched in one ``search_vectors`` call: one read transaction.
        """
        await self.run(require_passages)
        for _ in range(MODEL_RETRIES):
            # Swaps happen on the index thread, embedder first: if the count is the same
            # there, the vectors were made by the model of the index being searched.
            seen = self.model_changes
            vecs = await asyncio.gather(*(self.batcher.embed(q) for q in queries))
            qv = np.vstack(vecs).astype(np.float32)

            def work(s, qv=qv, seen=seen) -> list[list] | None:
                if self.model_changes != seen:
                    return None  # embedded by the model the index no longer uses
                # The texts too: the query's language picks the mean it is centred on.
                found = s.search_vectors(qv, k, filters, per_doc, texts=list(queries),
                                         offset=offset, mode=mode)
                for w in s.warnings():  # a damaged segment: said once, as the CLI says it
                    self.log_once(w)
                return found

            hits = await self.run(work)
            if hits is not None:
                return hits
        raise ModelChangedError(f"index {self.index_path} changed its model while this search "
                                "was answered; try again")

    async def translations(self, passage_id: int, k: int) -> dict:
        """Nearest passages to this one in each other language, all read from one committed
        state (:func:`_in_one_state`)."""
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

        return await self.run(lambda s: _in_one_state(s, work))

    def health(self) -> dict:
        """Cheap status without touching the index thread."""
        s, following = self._searcher, self._next
        return {"index": str(self.index_path), "writable": self.allow_index is not None,
                "model": self.embedder.name if self.embedder is not None else None,
                "engine": getattr(self.embedder, "engine", None) or None,
                "loading": following[0].index.config.model if following else None,
                "status": "ok" if s is not None else "starting"}

    async def index_now(self) -> dict:
        """One incremental ``xsearch index`` run of the allowed root; one at a time."""
        from ..indexer import build_index

        if self.allow_index is None:
            raise RuntimeError("indexing is not enabled")
        if not self._writing.acquire(blocking=False):
            raise IndexBusyError("an index run is already going; try again when it is done")
        try:
            summary = await asyncio.to_thread(build_index, [self.allow_index], self.index_path,
                                              **self.index_options)
        finally:
            self._writing.release()
        return summary.as_dict()

    async def close(self) -> None:
        await self.batcher.close()
        loop = asyncio.get_running_loop()

        def shut() -> None:
            if self._next is not None:
                self._next[0].close()
                self._next = None
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

        await loop.run_in_executor(self._index_thread, shut)
        self._index_thread.shutdown(wait=False)
        self._embed_thread.shutdown(wait=False)
        self._model_thread.shutdown(wait=False)


def health_counts(s) -> tuple[int, list[str]]:
    """(passages, unusable segments) of the state ``s`` serves; EmptyIndexError for none,
    as a search answers."""
    passages = s.index.store.db.execute("SELECT count(*) FROM passages").fetchone()[0]
    if not passages:
        require_passages(s)
    return passages, unusable_segments(s)


def require_passages(s) -> None:
    row = s.index.store.db.execute("SELECT EXISTS (SELECT 1 FROM passages)").fetchone()
    if not row[0]:
        raise EmptyIndexError(f"index {s.index.path} holds no passages; add files with: "
                              "xsearch index PATH")


def _open_all_segments(s) -> None:
    """Open every segment of the state read now (they are memory-mapped: deleting their files
    later takes nothing away); SegmentGoneError if one is already gone."""
    vectors = s.index.vectors
    vectors.load()
    for row in vectors.rows:
        vectors.segment(row, missing_ok=False)


def _held_whole(s) -> bool:
    """Whether ``s`` still holds every segment of its state (an index rebuilt meanwhile has
    deleted the files of the segments it had not opened)."""
    with s.index.store.snapshot():
        try:
            _open_all_segments(s)
        except SegmentGoneError:
            return False
    return True


def _in_one_state(s, fn: Callable[[Any], T]) -> T:
    """``fn(s)`` inside one read transaction, so that its several searches (each of which
    would otherwise take its own snapshot) all see one committed state.

    Every segment of that state is opened first, so a merge that commits and deletes their
    files meanwhile takes nothing away. A segment already gone means a newer state exists:
    take a fresh snapshot.
    """
    store = s.index.store
    for _ in range(3):
        with store.snapshot():
            try:
                _open_all_segments(s)
            except SegmentGoneError:
                continue
            return fn(s)
    with store.snapshot():  # merges keep outrunning us: searches skip what is gone
        return fn(s)


#: a segment's first file -> (its files' (mtime, size), whether their fingerprint matched):
#: health reads a segment's ends again only when its files changed.
_SEEN: dict[str, tuple[tuple, bool]] = {}


def unusable_segments(s) -> list[str]:
    """Segments of the state ``s`` serves found damaged; or not open, and whose files are
    missing (one open is memory-mapped: a rebuild deleting its files takes nothing away) or
    do not match their fingerprint (health said "ok" until a search opened a zeroed one)."""
    vectors = s.index.vectors
    vectors.load()
    bad = set()
    for row in vectors.rows:
        if vectors.is_open(row["name"]):
            continue
        paths = [vectors.folder / f for f in files_of(row["name"], row["kind"])]
        try:
            stamp = tuple((st.st_mtime_ns, st.st_size) for st in map(os.stat, paths))
        except OSError:
            bad.add(row["name"])
            continue
        seen = _SEEN.get(str(paths[0]))
        if seen is None or seen[0] != stamp:
            try:
                seen = (stamp, quick_fingerprint(paths) == row["fingerprint"])
            except OSError:
                seen = (stamp, False)
            _SEEN[str(paths[0])] = seen
        if not seen[1]:
            bad.add(row["name"])
        elif row["name"] in vectors.damaged and vectors.segment(row) is None:
            # Its files look whole again (moved back, restored), yet it does not open.
            bad.add(row["name"])
    return sorted(bad)
