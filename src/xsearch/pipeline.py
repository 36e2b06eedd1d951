"""The indexing pipeline: a reader thread reads, decodes, chunks and identifies the language of
files; the calling thread embeds; a writer thread commits each group of files in one SQLite
transaction with its vector segments (bounded queues between them, so reading and writing
overlap the embedding)."""

from __future__ import annotations

import hashlib
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import langid
from .carry import LiveVectors, same_probe, uncarried, with_carried
from .chunking import chunk_text
from .embedders import Embedder
from .embedders.base import PartialEmbedding
from .errors import IngestError, SkippedFile, first_line
from .faults import point
from .group_writer import commit_loop, held_signals, join_whole, whole_files
from .index_dir import DATABASE
from .index_summary import IndexSummary, ProgressFn
from .ingest import BudgetExceeded, ReadOptions, ReadResult, read_file
from .ingest.budget import cut_by
from .ingest.formats.records import record_fields
from .kept import KeptFile, LiveFiles, Shape, failed_now
from .offset_samples import group_samples, settle
from .rows import DocumentRow, PassageRow, text_key
from .trained_labels import has_classifier
from .writer import IndexWriter

#: Files read ahead of the embedder; bounds memory while keeping it fed.
READ_AHEAD = 64

#: Passages in one write transaction (``commit_every``, the default): the engine sorts each
#: group's passages by tokens before batching them, and on SIB-200 groups of 256 pad 3.3%
#: more tokens than one sort over all 6,321 passages, groups of 1,024 0.9%. A Ctrl-C commits
#: the files of the group being embedded whose passages are all done; a kill loses the group.
COMMIT_EVERY = 1024
#: Passages of gone files offered to this run's new and changed files, at most (16-byte keys:
#: a few MB); a bigger deletion offers its first ones.
POOL_LIMIT = 100_000
#: The first group closes sooner, so that embedding starts soon after reading does.
FIRST_GROUP = 256


def _indexed(store, paths: list[str]) -> set[str]:
    """Which of these paths the index already holds (O(len(paths)), not O(files))."""
    out: set[str] = set()
    for start in range(0, len(paths), 500):
        part = paths[start:start + 500]
        marks = ",".join("?" * len(part))
        out.update(r[0] for r in store.db.execute(
            f"SELECT path FROM files WHERE path IN ({marks})", part))
    return out

@dataclass
class _Pending:
    """A new or changed file, read and chunked, waiting for its vectors."""

    path: str
    fingerprint: tuple[str, int, float]
    fmt: str
    drop: list[int]  # document ids to delete
    docs: list[DocumentRow]
    texts: list[str] = field(default_factory=list)
    tokens: int = 0
    carried: int = 0  # passages with a vector taken from the index a --full replaces
    fields: str | None = None  # files.record_fields: how a .jsonl/.csv file was read
    cut_by: str | None = None  # files.cut_by: the limits that left some of it out (JSON)
    refail: tuple | None = None  # (hash, "failed:why"): listed as failed once written


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _fail(summary: IndexSummary, path: str, exc: BaseException, notify: ProgressFn,
          indexed: bool = False) -> None:
    summary.failed += 1
    message = first_line(exc) + (" (its last indexed version is kept)" if indexed else "")
    summary.errors.append({"path": path, "error": message})
    notify("error", {"path": path, "message": message})


def _read(f: Path, fp: tuple[str, int, float], options: ReadOptions, max_chars: int,
          summary: IndexSummary, notify: ProgressFn, indexed: bool = False
          ) -> ReadResult | _Pending:
    """Read and decode one file (reader thread): its ReadResult, or a _Pending that records
    why it was skipped (what the index held of it goes: ``group_writer``) or failed
    (``indexed``: the index keeps its last version)."""
    key = str(f)
    try:
        result = read_file(f, options)
        longest = max((len(d.text) for d in result.docs), default=0)
        if longest > max_chars:
            raise BudgetExceeded(f"text too long ({longest:,} characters, limit {max_chars:,}; "
                                 "raise it with --max-chars)", {"max_chars": max_chars})
    except SkippedFile as exc:
        summary.skipped += 1
        summary.warnings.append(str(exc))
        notify("warning", {"message": str(exc)})
        return _Pending(path=key, fingerprint=fp, fmt="skipped:" + str(exc), drop=[], docs=[])
    except IngestError as exc:
        _fail(summary, key, exc, notify, indexed)
        return _Pending(path=key, fingerprint=fp, fmt="failed:" + str(exc), drop=[], docs=[],
                        cut_by=cut_by(getattr(exc, "limits", None)))
    return result


def _prepare(writer: IndexWriter, embedder: Embedder, f: Path, fp: tuple[str, int, float],
             result: ReadResult | _Pending, summary: IndexSummary, notify: ProgressFn,
             known: bool, guessed: dict[str, langid.LangGuess],
             pool: dict[bytes, list[tuple]] | None = None,
             live: LiveVectors | None = None, keep_topics: bool = False) -> _Pending:
    """Chunk and identify one file that was read (reader thread); ``guessed`` holds
    languages already identified (:func:`_guess_ahead`); ``pool``, passages of files gone
    in this run that a chunk with the same text takes (:meth:`Store.reusable_of_files`);
    ``live``, the index a --full rebuild replaces, whose vectors it may take (``carry``);
    ``keep_topics``: those passages keep their topics (a trained classifier labels them)."""
    if isinstance(result, _Pending):
        return result
    key = str(f)
    for w in result.warnings:
        summary.warnings.append(w)
        notify("warning", {"message": w})
    config = writer.config
    old_docs = writer.store.documents_of(key) if known else {}
    item = _Pending(path=key, fingerprint=fp, fmt=f.suffix.lower().lstrip("."), drop=[],
                    docs=[], cut_by=cut_by(result.cut_by))
    new_ids = set()
    todo = []
    for src in result.docs:
        h = _hash_text(src.text)
        new_ids.add(src.record_id)
        prev = old_docs.get(src.record_id)
        if prev and prev["content_hash"] == h:
            continue
        if prev:
            item.drop.append(prev["id"])
        todo.append((src, h))
    item.drop.extend(d["id"] for rid, d in old_docs.items() if rid not in new_ids)
    # A passage whose text the previous version held keeps its row and vector: a line added
    # to a record file without ids, other --id-field, an edit late in a long text; then one
    # a gone file held (renamed and edited, or text moved out of it).
    reusable = writer.store.reusable_passages(item.drop) if item.drop else {}
    pool = pool or {}
    # (an update keeps a changed file's passages above: ``reusable``)
    earlier = live.passages_of(key, fp[0]) if live is not None and not known else {}
    looked_up = bool(reusable or pool or earlier)  # a first build hashes no text
    attach: list[tuple[PassageRow, int]] = []
    for src, h in todo:
        chunks = chunk_text(src.text, embedder.count_content_tokens, config.chunk_tokens,
                            config.chunk_overlap)
        if not chunks:
            continue
        passages, guesses = [], []
        for i, c in enumerate(chunks):
            n_tokens = c.n_tokens + embedder.token_overhead
            same = (reusable.get(k := text_key(c.text)) or pool.get(k)) if looked_up else None
            if same:
                keep, lang, score, topic = same.pop(0)
                guesses.append(langid.LangGuess(lang or "und", score or 0.0))
                passages.append(PassageRow(i, c.start, c.end, c.text, lang, score, n_tokens,
                                           keep=keep, topic=topic if keep_topics else None))
                continue
            was = earlier.get(k) if looked_up else None
            pid, lang, score, topic = was.pop(0) if was else (None, None, None, None)
            if pid is not None and live.same_langid:  # identified by this identifier
                g = langid.LangGuess(lang or "und", score or 0.0)
            else:  # identified (again: the identifier may have improved)
                g = guessed.get(c.text[:langid.MAX_CHARS]) or langid.detect(c.text)
            guesses.append(g)
            passages.append(PassageRow(i, c.start, c.end, c.text, g.code or "und",
                                       float(g.score), n_tokens))
            if pid is not None:
                passages[-1].topic = topic if keep_topics else None
                attach.append((passages[-1], pid))
        doc_lang = langid.majority_language(guesses, [len(c.text) for c in chunks])
        item.docs.append(DocumentRow(record_id=src.record_id, title=src.title, content_hash=h,
                                     n_chars=len(src.text), language=doc_lang,
                                     passages=passages))
    if attach:
        live.attach(attach)
    uncarried(item)
    if known:
        summary.changed += 1
    else:
        summary.new += 1
    return item


_DONE = object()


def _reader(writer, embedder, todo, options, max_chars, summary, notify, out: queue.Queue,
            known: set[str], stop: threading.Event, per_file: dict[str, ReadOptions],
            gone: list[str], carry_from: Path | None, keep_from: Path | None,
            walked: set[str]) -> None:
    live = files = None
    try:
        if not embedder.ready():
            langid.warm()  # while the tokenizer loads; the first chunk needs both
        pool = writer.store.reusable_of_files(gone, POOL_LIMIT) if gone else {}
        rebuild = writer.fresh  # else an update: only a copied file takes vectors
        reads = {str(f) for f, _ in todo}
        live = LiveVectors.open(carry_from, writer.config, reads if rebuild else None)
        files = LiveFiles.open(keep_from) if rebuild else None
        keep_topics = has_classifier(writer.path)
        shape = _shape(writer, embedder, keep_from) if files else None

        def keep(path: str, refail: tuple | None) -> None:
            if (last := files.last_version(path, shape)) is not None:
                out.put(_kept_item(last, live, keep_topics, refail))
                summary.kept += 1

        held: list[tuple] = []
        for n, (f, fp) in enumerate(todo, 1):
            if stop.is_set():
                return
            opts = per_file.get(str(f), options)
            live_holds = files is not None and files.holds(str(f))
            result = _read(f, fp, opts, max_chars, summary, notify,
                           str(f) in known or live_holds)
            held.append((f, fp, opts, result, live_holds))
            # Read ahead while the tokenizer loads: chunking needs it, reading does not.
            if n < len(todo) and len(held) < READ_AHEAD and not embedder.ready():
                continue
            guessed = _guess_ahead(held, embedder)
            for f, fp, opts, result, live_holds in held:
                if live_holds and failed_now(result):
                    keep(str(f), (fp[0], result.fmt))  # its last version, as a run keeps it
                    continue
                item = _prepare(writer, embedder, f, fp, result, summary, notify,
                                str(f) in known, guessed, pool, live, keep_topics)
                item.fields = record_fields(f, opts)
                out.put(item)
            held = []
        if files is not None:  # the live files this rebuild does not read again
            failed = writer.store.failed_files()  # walked, but could not be looked at now
            accounted = reads | set(writer.store.files()) | (walked - set(failed))
            for path in files.unread(accounted):
                if stop.is_set():
                    return
                was = failed.get(path)
                keep(path, (was["content_hash"], f"{was['kind']}:{was['reason']}")
                     if was else None)
            summary.removed += files.gone
            summary.passages_removed += files.gone_passages
            for row in files.failures(accounted | set(failed)):  # and what failed there
                out.put(_Pending(path=row["path"], fingerprint=(row["content_hash"], 0, 0),
                                 fmt=f"{row['kind']}:{row['reason']}", drop=[], docs=[],
                                 fields=row["record_fields"], cut_by=row["cut_by"]))
    except BaseException as exc:  # handed to the embedding thread, which raises it
        out.put(exc)
    finally:
        for live_part in filter(None, (live, files)):
            live_part.close()
        out.put(_DONE)


def _shape(writer, embedder: Embedder, keep_from: Path) -> Shape:
    from .fresh_builds import live_config

    was = live_config(keep_from)
    return Shape(same_model=was is not None and was.model == writer.config.model,
                 count=embedder.count_content_tokens, overhead=embedder.token_overhead,
                 max_tokens=embedder.max_tokens, chunk_tokens=writer.config.chunk_tokens,
                 overlap=writer.config.chunk_overlap)


def _kept_item(kept: KeptFile, live: LiveVectors | None, keep_topics: bool,
               refail: tuple | None) -> _Pending:
    """A file a rebuild keeps as the live index holds it (:mod:`kept`): its passages take
    the live vectors (else they are embedded from their text); ``refail`` (hash, kind:reason)
    lists it as failed once written, as a plain run lists a file whose last version it
    keeps."""
    item = _Pending(path=kept.path, fingerprint=kept.fingerprint, fmt=kept.fmt, drop=[],
                    docs=kept.docs, fields=kept.record_fields, cut_by=kept.cut_by,
                    refail=refail)
    if not keep_topics:  # labelled again (zero-shot labels its documents with it)
        for p, _pid in kept.live_ids:
            p.topic = None
    if live is not None:
        live.attach(kept.live_ids)
    uncarried(item)
    return item


def _guess_ahead(held: list[tuple], embedder: Embedder) -> dict[str, langid.LangGuess]:
    """Languages of the documents read so far, identified while the tokenizer still loads.

    A document short enough to be read whole by language identification usually becomes
    one passage, its text stripped: its language is the same (``langid.detect`` reads only
    a text's first ``MAX_CHARS`` characters, so the key is exact, not a guess). On
    data/corpus this takes most of the identifying out of the time between the tokenizer
    being ready and the first group being embedded. Stops as soon as the tokenizer is ready.
    """
    out: dict[str, langid.LangGuess] = {}
    for _f, _fp, _opts, result, *_ in held:
        if isinstance(result, _Pending):  # a file that failed or was skipped
            continue
        for doc in result.docs:
            if embedder.ready():
                return out
            text = doc.text.strip()
            if text and len(text) <= langid.MAX_CHARS and text not in out:
                out[text] = langid.detect(text)
    return out


def _groups(inbox: queue.Queue, commit_every: int) -> Iterator[list[_Pending]]:
    """Files from the reader, grouped until a group holds ``commit_every`` passages; the first
    at ``min(commit_every, FIRST_GROUP)`` (not sooner: small groups are token-sorted apart and
    pad more, which cost more than the reading it would overlap, on data/corpus and SIB-200)."""
    group: list[_Pending] = []
    n = 0
    target = min(commit_every, FIRST_GROUP)
    while True:
        item = inbox.get()
        if item is _DONE:
            break
        if isinstance(item, BaseException):
            raise item
        group.append(item)
        n += len(item.texts) + item.carried  # taken vectors fill a group too
        if n >= target:
            yield group
            group, n, target = [], 0, commit_every
    if group:
        yield group


def _pipeline(writer: IndexWriter, embedder: Embedder, todo, options: ReadOptions,
              max_chars: int, batch_size: int, commit_every: int, summary: IndexSummary,
              notify: ProgressFn, prepare: Callable[[], None] | None = None,
              per_file: dict[str, ReadOptions] | None = None,
              gone: list[str] | None = None, carry_from: Path | None = None,
              keep_from: Path | None = None, walked: set[str] | None = None) -> None:
    """Index ``todo``; ``prepare`` runs on this thread once the reader has started (work
    that needs the model but not the files, overlapped with the first reads); ``per_file``
    maps a file to the options it is read with instead of ``options``; ``gone``, indexed
    files no longer on disk, deleted by the caller after this, whose passages ``todo``'s
    files may keep; ``carry_from``, the live index whose vectors a --full rebuild, or a
    copied file, may take; ``keep_from``, the live index whose files a rebuild does not read
    again it keeps (:mod:`kept`)."""
    if not todo and keep_from is None:
        if prepare is not None:
            prepare()
        settle(writer, embedder)
        return
    known = _indexed(writer.store, [str(f) for f, _ in todo])
    # The reader thread uses its own read-only connection: SQLite objects stay in one thread.
    inbox: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
    outbox: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader_view = _ReaderView(writer)
    reader = threading.Thread(target=_reader, args=(reader_view, embedder, todo, options,
                                                    max_chars, summary, notify, inbox,
                                                    known, stop, per_file or {}, gone or [],
                                                    carry_from, keep_from, walked or set()),
                              daemon=True)
    errors: list[BaseException] = []
    committed = threading.Event()
    committer = threading.Thread(target=commit_loop, daemon=True, args=(
        writer, outbox, summary, notify, errors, committed))
    total_bytes = sum(fp[1] for _, fp in todo) or 1
    notify("start", {"files": len(todo), "bytes": total_bytes})
    reader.start()
    committer.start()
    salvage = None
    try:
        if prepare is not None:
            prepare()
        sampled = settle(writer, embedder)  # the writer thread has nothing to write yet
        # after prepare: the probe vector is in the new database
        # (an update takes its own vectors: its probe is the live one)
        trusted = carry_from is not None and (not reader_view.fresh
                                              or same_probe(writer.store, carry_from))
        for group in _groups(inbox, commit_every):
            if errors:
                break
            if not trusted:
                for item in group:
                    uncarried(item, drop=True)
            texts = [t for p in group for t in p.texts]
            t0 = time.perf_counter()
            # The group's rows are written while it embeds, committed after: from its first
            # batch on, not before (the writer would hold the GIL while the group is
            # tokenised, the last thing the first batch waits for).
            told = _BatchReport(group, notify, then=lambda g=group: outbox.put(("rows", g)))
            vectors = None
            try:
                vectors = embedder.embed_documents_with_progress(texts, told) if texts else \
                    np.zeros((0, embedder.dim), dtype=np.float32)
                offsets = group_samples(embedder, group, sampled)
            except KeyboardInterrupt as exc:
                salvage = whole_files(group, vectors, exc, told.bytes, notify)
                if salvage is not None:
                    salvage = (*salvage[:2], with_carried(salvage[1], salvage[2]),
                               *salvage[3:])
                if isinstance(exc, PartialEmbedding):
                    raise exc.interrupt from None
                raise
            summary.embed_seconds += time.perf_counter() - t0
            told.finished()
            salvage = ("vectors", group, with_carried(group, vectors), offsets, told.bytes)
            outbox.put(salvage)  # a Ctrl-C while it waits for the writer leaves it to finally
            salvage = None
    finally:
        stop.set()
        stopping = isinstance(sys.exc_info()[1], KeyboardInterrupt)
        # A second Ctrl-C (or SIGTERM) while a stop commits lost that commit; one at a normal
        # end crashed the writer (its connection closed): raised once the writer is done.
        with held_signals(defer=not stopping):
            if salvage is not None:  # Ctrl-C: what is embedded whole is still committed
                outbox.put(salvage)
            outbox.put(None)
            join_whole(committer, committed)
        while reader.is_alive():  # drain so the reader is never stuck on a full queue
            try:
                inbox.get(timeout=0.1)
            except queue.Empty:
                pass
        reader_view.close()
    if errors:
        raise errors[0]


class _BatchReport:
    """Tells ``notify`` of each embedded batch of a group ("embedded": passages, tokens, and
    the group's bytes in proportion to its tokens, for a rate and an ETA from the first batch
    on); the group's "advance" later carries the exact bytes and ``bytes`` told here."""

    def __init__(self, group: list[_Pending], notify: ProgressFn,
                 then: Callable[[], None] | None = None) -> None:
        self.tokens = [p.n_tokens for item in group for d in item.docs for p in d.to_embed
                       if p.carried is None]
        self.then = then  # called once, after the first batch
        total = sum(self.tokens) or 1
        self.per_token = sum(item.fingerprint[1] for item in group) / total
        self.notify = notify
        self.done: set[int] = set()
        self.bytes = 0.0

    def __call__(self, indices) -> None:
        new = set(indices) - self.done  # a text embedded in windows is told once
        self.done |= new
        tokens = sum(self.tokens[i] for i in new)
        share = tokens * self.per_token
        self.bytes += share
        self.notify("embedded", {"n": len(new), "tokens": tokens, "bytes": share})
        point("embed:batch")
        self.finished()

    def finished(self) -> None:
        """Call ``then`` unless done (the group is embedded but no batch was told of)."""
        if self.then is not None:
            then, self.then = self.then, None
            then()


class _ReaderView:
    """What the reader thread needs of the index, on its own read-only connection."""

    def __init__(self, writer: IndexWriter) -> None:
        from .store import Store

        self.config = writer.config
        self.path = writer.path
        self._db_path = writer.store.path
        #: A new index or a --full rebuild, written beside the live database.
        self.fresh = self._db_path.name != DATABASE
        self._local = threading.local()
        self._stores: list[Store] = []
        self._store_cls = Store

    @property
    def store(self):
        s = getattr(self._local, "store", None)
        if s is None:
            s = self._store_cls(self._db_path, readonly=True)
            self._local.store = s
            self._stores.append(s)
        return s

    def close(self) -> None:
        for s in self._stores:
            s.close()
