"""The indexing pipeline's writer thread: each group of files in one SQLite transaction, its
rows written while the group embeds, committed with its vectors."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from .embedders.base import PartialEmbedding

if TYPE_CHECKING:
    from .index_summary import IndexSummary, ProgressFn
    from .pipeline import _Pending
    from .writer import IndexWriter


def commit_loop(writer: IndexWriter, outbox: queue.Queue, summary: IndexSummary,
                 notify: ProgressFn, errors: list[BaseException],
                 finished: threading.Event) -> None:
    """Writer thread: one transaction per group, its rows written while the group embeds
    ("rows"), committed with its vectors ("vectors"), or rolled back for the files embedded
    whole when a run stops ("whole"); failures are remembered by content hash. ``finished``
    is set when it is done (:func:`join_whole`)."""
    open_write = None
    try:
        while True:
            job = outbox.get()
            if job is None:
                return
            if errors:
                continue
            kind, group = job[:2]
            try:
                if kind == "rows":
                    _record_failures(writer, group, summary)
                    open_write = writer.begin_write(_files(group))
                    continue
                vectors, offsets, bytes_told = job[2:]
                if kind == "vectors":
                    done, open_write = open_write.commit(vectors, offsets), None
                    # Between transactions: a long run keeps few segments (merging.compact).
                    summary.segments_merged += writer.compact()
                else:  # "whole": a subset of the rows written (if they were), with vectors
                    if open_write is not None:
                        open_write.discard()
                        open_write = None
                    _record_failures(writer, group, summary)
                    done = writer.write_many(_files(group), vectors, offsets)
                _refail(writer, group)
                _advance(done, group, bytes_told, summary, notify)
            except BaseException as exc:
                open_write = None  # left rolled back
                errors.append(exc)
    finally:
        try:
            if open_write is not None:  # the run stopped before this group was embedded
                open_write.discard()
        finally:
            finished.set()


def _failed(p: _Pending) -> bool:
    return p.fmt.startswith(("failed:", "skipped:"))


def _files(group: list[_Pending]) -> list[tuple]:
    return [(p.path, p.fingerprint, p.fmt, p.drop, p.docs, p.fields, p.cut_by) for p in group
            if not _failed(p)]


def _record_failures(writer: IndexWriter, group: list[_Pending],
                     summary: IndexSummary) -> None:
    """Remember the files of a group that failed or were skipped. A skipped file (now empty,
    or binary) holds no text: what the index held of it goes. One that failed (a parse
    error, a limit, a read error) keeps its last indexed version."""
    failed = [p for p in group if _failed(p)]
    if failed:
        with writer.store.transaction():
            for p in failed:
                kind, _, reason = p.fmt.partition(":")
                if kind == "skipped":
                    summary.passages_removed += writer.remove_file(p.path)
                writer.store.record_failure(p.path, p.fingerprint[0], kind, reason, p.fields,
                                            p.cut_by)


def _refail(writer: IndexWriter, group: list[_Pending]) -> None:
    """Files a rebuild kept as the live index holds them (``kept``) that failed now: listed
    as failed once written (writing a file clears its failure)."""
    again = [p for p in group if p.refail is not None]
    if again:
        with writer.store.transaction():
            for p in again:
                kind, _, reason = p.refail[1].partition(":")
                writer.store.record_failure(p.path, p.refail[0], kind, reason, p.fields,
                                            p.cut_by)


def _advance(done, group: list[_Pending], bytes_told: float, summary: IndexSummary,
             notify: ProgressFn) -> None:
    n = len(done.added)
    carried = sum(p.carried for p in group)  # new rows, vectors from the index replaced
    summary.passages_embedded += n - carried
    summary.passages_kept += carried + sum(len(d.passages) - len(d.to_embed) for p in group
                                           for d in p.docs)
    summary.passages_removed += done.removed
    summary.documents_written += sum(len(p.docs) for p in group)
    tokens = sum(p.tokens for p in group)
    summary.tokens_embedded += tokens
    notify("advance", {"n": n - carried, "tokens": tokens,
                       "bytes": sum(p.fingerprint[1] for p in group),
                       "bytes_told": bytes_told, "files": len(group)})


def whole_files(group: list[_Pending], vectors: np.ndarray | None, exc: KeyboardInterrupt,
                 bytes_told: float, notify: ProgressFn) -> tuple | None:
    """The files of an interrupted group whose passages were all embedded, as a job for the
    writer (without offset samples: the next run takes them, ``offset_samples.settle``)."""
    if vectors is not None:  # embedded whole, interrupted after
        done = np.ones(len(vectors), dtype=bool)
    elif isinstance(exc, PartialEmbedding):
        vectors, done = exc.vectors, exc.done
    else:
        return None
    keep: list[_Pending] = []
    rows: list[int] = []
    start = 0
    for item in group:
        end = start + len(item.texts)
        if done[start:end].all():
            keep.append(item)
            rows.extend(range(start, end))
        start = end
    passages = len(rows)
    if not passages:
        return None
    notify("note", {"message": f"stopping: committing the {passages} passage(s) of "
                               f"{len(keep)} file(s) embedded since the last commit"})
    return "whole", keep, vectors[rows], {}, bytes_told


@contextlib.contextmanager
def held_signals(defer: bool = False) -> Iterator[None]:
    """Within: SIGINT and SIGTERM are ignored (main thread only), so that what a stop is
    committing is committed; after, they are as they were. ``defer``: one that came is
    raised again after (a run ending normally is still stopped by it, once its writer is
    done)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    handler = (lambda sig, _frame: came.append(sig)) if defer else signal.SIG_IGN
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, was in old.items():
            signal.signal(sig, was)
        if came:
            signal.raise_signal(came[0])


def join_whole(writer_thread: threading.Thread, done: threading.Event) -> None:
    """Wait for the writer thread to end, through a Ctrl-C or SIGTERM too: the caller then
    closes the connection it writes with (a signal at a run's end, while it merged, crashed
    the process with a segmentation fault). Waited for on an event: a ``Thread.join`` a
    signal interrupts marks the thread stopped in Python 3.11 (it releases the lock the
    running thread holds, bpo-45274), and joining it again returned at once."""
    try:
        while not done.wait(0.5):
            pass
    except BaseException:
        with held_signals():
            done.wait()
        raise
    writer_thread.join()
