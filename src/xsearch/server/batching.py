"""Micro-batching: queries that arrive together are embedded in one model call.

By default a query never waits for company: an idle model embeds what is queued at once, and
the queries that arrive while it works are embedded together in its next call. A fixed wait
(``window_ms``) added its length to every answer at low load and, with an engine that gains
little from batching, kept clients in lockstep so that embedding and searching stopped
overlapping (benchmarks/serve_load.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import numpy as np

EmbedFn = Callable[[Sequence[str]], np.ndarray]


class MicroBatcher:
    """Embeds the texts queued when the model is free (up to ``max_batch``), after waiting up
    to ``window_ms`` for more (0: no wait).

    ``embed`` runs in ``executor`` (one worker thread: the model is used by one thread at a
    time). With ``max_batch=1`` every text gets its own call (batching off).
    """

    def __init__(self, embed: EmbedFn, executor: Executor, max_batch: int = 32,
                 window_ms: float = 0.0) -> None:
        self._embed = embed
        self._executor = executor
        self.max_batch = max(1, int(max_batch))
        self.window = max(0.0, window_ms) / 1000
        self._queue: asyncio.Queue[tuple[str, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        #: Sizes of the batches embedded so far (for tests and the load benchmark).
        self.batch_sizes: list[int] = []

    async def embed(self, text: str) -> np.ndarray:
        """The vector of one query text, embedded together with any that arrive meanwhile."""
        loop = asyncio.get_running_loop()
        if self.max_batch == 1:
            self.batch_sizes.append(1)
            return (await loop.run_in_executor(self._executor, self._embed, [text]))[0]
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run())
        fut: asyncio.Future = loop.create_future()
        assert self._queue is not None
        await self._queue.put((text, fut))
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.window
            while len(batch) < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except asyncio.TimeoutError:
                    break
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(t, f) for t, f in batch if not f.cancelled()]
            if not live:
                continue
            unique = list(dict.fromkeys(t for t, _ in live))
            self.batch_sizes.append(len(unique))
            try:
                vecs = await loop.run_in_executor(self._executor, self._embed, unique)
                got: dict[str, np.ndarray | BaseException] = dict(zip(unique, vecs,
                                                                      strict=True))
            except Exception as exc:
                # One text the model refuses must not fail the others it was batched with:
                # each is embedded alone, and only the ones that fail alone hear of it.
                got = await self._one_by_one(unique) if len(unique) > 1 else {unique[0]: exc}
            for t, f in live:
                if not f.done():
                    result = got[t]
                    if isinstance(result, BaseException):
                        f.set_exception(result)
                    else:
                        f.set_result(result)

    async def _one_by_one(self, texts: list[str]) -> dict[str, np.ndarray | BaseException]:
        loop = asyncio.get_running_loop()
        out: dict[str, np.ndarray | BaseException] = {}
        for t in texts:
            try:
                out[t] = (await loop.run_in_executor(self._executor, self._embed, [t]))[0]
            except Exception as exc:
                out[t] = exc
        return out

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
