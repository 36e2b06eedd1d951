"""Incremental indexing: walk, read, chunk, identify language, embed, store.

Three stages overlap (bounded queues between them): a reader thread reads, decodes, chunks
and identifies the language of files; the calling thread embeds; a writer thread commits
each group of files in one SQLite transaction together with its vector segments. A kill at
any point leaves the last committed state; see ``writer.py`` for the order of writes.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from . import arguments, langid
from .centering import OFFSET_KEY, PROBE_KEY, encode_vector, measure_model
from .embedders import Embedder, get_embedder, resolve_model_name
from .errors import IndexMismatchError, IngestError, XsearchError
from .fresh_builds import (
    SHAPING,
    live_config,
    live_record_fields,
    needs_fresh_database,
    read_rows,
    recover,
)
from .index_dir import IndexConfig
from .ingest import ReadOptions, WalkOptions, walk
from .pipeline import (  # noqa: F401 - IndexSummary and ProgressFn are part of this API
    COMMIT_EVERY,
    IndexSummary,
    ProgressFn,
    _fail,
    _pipeline,
)
from .plan import absolute, kept_gone, known_under, plan_run, under
from .schema import upgrade_events, upgrade_note, upgrade_progress
from .topics import label_index
from .writer import IndexWriter, prepare_folder, private_files, write_lock

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP = 32
#: Longest extracted text indexed from one file (about 2,000 passages); raise with --max-chars.
DEFAULT_MAX_CHARS = 2_000_000


def _unreadable_folder(roots: list[Path], warnings: list[str]):
    """The walk's error handler: a root that cannot be read stops the run; a folder below
    one that cannot be read is a warning in ``warnings`` and is skipped (the files indexed
    from it are kept: ``_still_a_file`` cannot tell them gone)."""
    def on_error(path: Path, error: IngestError) -> None:
        if absolute(Path(path)) in roots:
            raise error
        warnings.append(f"{error}; skipped, the files indexed from it are kept")
    return on_error


def _holds_files_under(index_path: Path, roots: list[Path]) -> bool:
    """Whether an index already exists and holds files (or failures) at or below ``roots``."""
    from .index_dir import DATABASE
    from .store import Store

    if not (index_path / DATABASE).is_file():
        return False
    try:
        store = Store(index_path / DATABASE, readonly=True)
    except Exception:  # not an index (yet): the run itself says what is wrong
        return False
    try:
        return bool(known_under(store, roots)) or any(
            under(p, roots) for p in store.failed_files())
    finally:
        store.close()


def _new_config(model: str | None, embedder: Embedder, chunk_tokens: int | None,
                chunk_overlap: int | None, layout: str | None, centering: str | None
                ) -> IndexConfig:
    tokens = _capped(chunk_tokens or DEFAULT_CHUNK_TOKENS, embedder)
    overlap = DEFAULT_OVERLAP if chunk_overlap is None else chunk_overlap
    if overlap >= tokens:
        raise IndexMismatchError(f"--overlap {overlap} must be below --chunk-tokens {tokens}")
    return IndexConfig(model=embedder.name, dim=embedder.dim, chunk_tokens=tokens,
                       chunk_overlap=overlap, normalized=embedder.normalized,
                       layout=layout or "auto", centering=centering or "language",
                       engine=getattr(embedder, "engine", ""))


def _unlabelled(index_path: Path) -> bool:
    """Whether the index has topic labels and passages without a topic: a run stopped after
    its last commit, before labelling, left them so, and the next run embedded nothing."""
    from .index_dir import DATABASE

    got = read_rows(index_path / DATABASE, "SELECT EXISTS (SELECT 1 FROM labels)",
                    "SELECT EXISTS (SELECT 1 FROM passages WHERE topic IS NULL)")
    return got is not None and all(rows[0][0] for rows in got)


def _record_engine(writer: IndexWriter, embedder: Embedder, summary: IndexSummary,
                   notify) -> None:
    """Say when OpenVINO could not run here and ONNX Runtime embedded instead, and have a new
    or rebuilt index record the engine that made its vectors: the choice is only known once
    the engine has loaded, after the config was written (a rebuild that took the wrong name
    for it would embed everything again)."""
    if not hasattr(embedder, "fallback") or not summary.passages_embedded:
        # Only the openvino engine falls back; a run that embedded nothing neither waits for
        # it to load (0.45 s in a long-lived process) nor made a vector it would name.
        return
    try:
        embedder.session  # noqa: B018 - waits for the load (long done if it embedded)
    except XsearchError:
        return
    if embedder.fallback:
        msg = (f"OpenVINO could not run the model here ({embedder.fallback}); ONNX Runtime "
               "ran the same graph (--engine onnx skips the attempt)")
        summary.warnings.append(msg)
        notify("warning", {"message": msg})
    writer.record_engine(embedder.engine)


def _capped(tokens: int, embedder: Embedder) -> int:
    """``--chunk-tokens`` as the model can take it: with its own tokens (prefix, specials),
    a chunk fits its longest input."""
    # Those only matter near its limit; asking waits for a tokenizer still loading.
    if tokens > embedder.max_tokens // 2:
        tokens = min(tokens, embedder.max_tokens - embedder.token_overhead - 2)
    return tokens


def _check_model(existing: IndexConfig, path: Path, model: str | None) -> None:
    wanted = resolve_model_name(model) if model else existing.model
    if wanted != existing.model:
        raise IndexMismatchError(
            f"index {path} was built with model {existing.model!r}; use --full to rebuild it "
            f"with {wanted!r}, or another --index")


def _check_options(existing: IndexConfig, path: Path, embedder: Embedder,
                   chunk_tokens: int | None, chunk_overlap: int | None, layout: str | None,
                   centering: str | None) -> None:
    if chunk_tokens is not None:  # the value that made the index, asked again, is the same
        chunk_tokens = _capped(chunk_tokens, embedder)
    for name, given, have in (("--chunk-tokens", chunk_tokens, existing.chunk_tokens),
                              ("--overlap", chunk_overlap, existing.chunk_overlap),
                              ("--layout", layout, existing.layout),
                              ("--centering", centering, existing.centering)):
        if given is not None and given != have:
            raise IndexMismatchError(
                f"index {path} was built with {name} {have}; use --full to change it")


def _kept_settings(was: IndexConfig, model: str | None, chunk_tokens: int | None,
                   chunk_overlap: int | None, layout: str | None, centering: str | None
                   ) -> tuple:
    """The settings of a --full rebuild: those given, else the live index's."""
    if chunk_overlap is None and (chunk_tokens is None or was.chunk_overlap < chunk_tokens):
        chunk_overlap = was.chunk_overlap  # else the default rule for the tokens given
    return (model or was.model, chunk_tokens or was.chunk_tokens, chunk_overlap,
            layout or was.layout, centering or was.centering)


def _changes(was: IndexConfig, config: IndexConfig) -> str:
    """What a --full rebuild changes, for a note ("" when nothing)."""
    changed = [f"{flag} {getattr(config, k)} (was {getattr(was, k)})" for k, flag in SHAPING.items()
               if getattr(config, k) != getattr(was, k)]
    return "rebuilding with " + ", ".join(changed) if changed else ""


def build_index(
    paths: list[Path],
    index_path: Path,
    model: str | None = None,
    full: bool = False,
    chunk_tokens: int | None = None,
    chunk_overlap: int | None = None,
    read_options: ReadOptions | None = None,
    batch_size: int | None = None,
    commit_every: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    progress: ProgressFn | None = None,
    labels: list | None = None,
    embedder: Embedder | None = None,
    prune: bool = False,
    layout: str | None = None,
    centering: str | None = None,
    retry_failed: bool = False,
    walk_options: WalkOptions | None = None,
    engine: str | None = None,
    new_index_only: frozenset[str] = frozenset(),
    record_fields_given: frozenset[str] = frozenset(),
    re_embed: bool = False,
) -> IndexSummary:
    """Bring the index at ``index_path`` up to date with the files under ``paths``.

    ``prune`` also removes indexed files that no longer exist outside ``paths``;
    ``commit_every`` passages go in one transaction (default ``COMMIT_EVERY``).
    ``new_index_only`` names settings (model, chunk_tokens, chunk_overlap, layout, centering)
    given as defaults for new indexes (a config file, the environment): they shape a new
    index or a --full rebuild and are not asked of an existing one.
    ``record_fields_given`` names the record fields of ``read_options`` asked for ("text_field",
    "id_field"); a .jsonl/.csv file indexed before is read with the fields it was read with
    then for the others, and read again if that differs.
    A ``full`` rebuild takes the vectors of passages whose text the live index holds for the
    same file, made by the same model and engine (``carry``), unless ``re_embed``.
    """
    started = time.perf_counter()
    arguments.build(layout, centering, chunk_tokens, chunk_overlap, batch_size, commit_every,
                    engine)
    notify = progress or (lambda event, info: None)
    summary = IndexSummary()
    roots = [absolute(Path(p).expanduser()) for p in arguments.names(paths, "paths")]
    for root in roots:
        if not root.exists():
            raise IngestError(f"path not found: {root}")
    unreadable: list[str] = []
    walked = walk(roots, walk_options, on_error=_unreadable_folder(roots, unreadable))
    for key, count in walked.counts().items():
        setattr(summary, key, count)
    for w in walked.warnings + unreadable:
        summary.warnings.append(w)
        notify("warning", {"message": w})
    files = [absolute(f) for f in walked.files]
    # A folder whose last files were deleted is still indexed: its run drops them.
    if not files and not _holds_files_under(Path(index_path), roots):
        raise IngestError(
            "no supported files under " + ", ".join(str(r) for r in roots)
            + " (.txt .md .html .pdf .docx .jsonl .csv)")

    index_path = Path(index_path)
    with private_files():
        made = prepare_folder(index_path)  # refuses a foreign folder before writing
        with write_lock(index_path, made):
            recover(index_path, keep_unfinished=True)  # IndexWriter.open may take it up
            fresh = needs_fresh_database(index_path, full)
            existing = None
            if not fresh:
                from .index_dir import DATABASE, IndexDir
                if note := upgrade_note(index_path / DATABASE):
                    notify("note", {"message": note})
                probe = IndexDir.open(index_path)  # applies the migrations a reader needs
                existing = probe.config
                probe.close()
                _check_model(existing, index_path,
                             None if "model" in new_index_only else model)
            was = live_config(index_path) if full else None
            if was is not None:  # a --full rebuild keeps the settings it is not given
                model, chunk_tokens, chunk_overlap, layout, centering = _kept_settings(
                    was, model, chunk_tokens, chunk_overlap, layout, centering)
            if embedder is None:
                embedder = get_embedder(existing.model if existing else model,
                                        batch_size=batch_size, engine=engine)
            if existing is not None:
                asked = dict(chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                             layout=layout, centering=centering)
                _check_options(existing, index_path, embedder, **{
                    k: None if k in new_index_only else v for k, v in asked.items()})
            config = None if existing else _new_config(model, embedder, chunk_tokens,
                                                       chunk_overlap, layout, centering)
            if was is not None and config is not None and (note := _changes(was, config)):
                notify("note", {"message": note})
            with upgrade_progress(upgrade_events(notify)):  # the writer applies the rest
                writer = IndexWriter.open(index_path, config,
                                          build=json.dumps(sorted(str(r) for r in roots)))
            summary.resumed = writer.resumed_files
            _note_langid(writer.store)
            for b in writer.dropped_builds:
                msg = (f"dropped a stopped fresh build of {b['files']} file(s) "
                       f"({b['bytes'] / 1048576:.1f} MiB): this run was given other "
                       "paths or settings" if config is not None else
                       f"dropped a stopped --full rebuild of {b['files']} file(s) "
                       f"({b['bytes'] / 1048576:.1f} MiB): a run without --full updates "
                       "the live index instead")
                summary.warnings.append(msg)
                notify("warning", {"message": msg})
            try:
                if existing is not None and existing.dim != embedder.dim:
                    raise IndexMismatchError(
                        f"index {index_path} holds {existing.dim}-d vectors but the model "
                        f"makes {embedder.dim}-d ones")
                options = read_options or ReadOptions()
                if options.max_chars is None:  # records longer than this are skipped alone
                    options = replace(options, max_chars=max_chars)
                # a --full rebuild reads each record file as the live index read it
                earlier = live_record_fields(index_path) if fresh else {}
                if was is not None:  # a rebuild taken up: what it kept may be gone since
                    gone_kept = kept_gone(writer.store, {str(f) for f in files}, roots)
                todo, per_file, gone = plan_run(writer, files, roots, summary, notify,
                                             retry_failed, prune, options,
                                             record_fields_given, earlier,
                                             {str(absolute(Path(a))): str(absolute(Path(b)))
                                              for a, b in walked.aliases.items()})
                _pipeline(writer, embedder, todo, options, max_chars, batch_size,
                          commit_every or COMMIT_EVERY,
                          summary, notify, prepare=lambda: _measure(writer, embedder),
                          per_file=per_file, gone=gone,
                          carry_from=None if re_embed else index_path,
                          keep_from=index_path if was is not None else None,
                          walked={str(f) for f in files} | {str(absolute(Path(a)))
                                                            for a in walked.aliases})
                if was is not None:
                    summary.removed += len(gone_kept)
                    gone = sorted(set(gone) | set(gone_kept))
                if gone:  # after the files that may have kept some of their passages
                    summary.passages_removed += writer.delete_files(gone)
                summary.segments_merged += writer.merge()
                _record_engine(writer, embedder, summary, notify)
                writer.finish()
            except BaseException:
                writer.abort()
                raise
            # Under the same lock: a writer that came in between made the run fail after its
            # files were committed ("being written by another process").
            if labels or summary.passages_embedded or summary.passages_kept or \
                    _unlabelled(index_path):
                # New passages take the stored labels; new labels relabel everything (no
                # re-embedding).
                summary.labels = label_index(index_path, labels, embedder,
                                             only_unlabelled=labels is None, locked=True)
                if dropped := summary.labels.pop("dropped", None):  # (a model change)
                    summary.warnings.append(dropped)
                    notify("warning", {"message": dropped})
    summary.seconds = time.perf_counter() - started
    return summary


def _note_langid(store) -> None:
    """Name the language identifier that identified every passage (``langid.identity``):
    this run's in an index without passages yet; none ("") once another one adds some."""
    mine = langid.identity()
    empty = not store.db.execute("SELECT EXISTS (SELECT 1 FROM passages)").fetchone()[0]
    was = store.meta(langid.META_KEY)
    if (empty and was != mine) or (not empty and was not in (None, "", mine)):
        with store.transaction():
            store.set_meta(langid.META_KEY, mine if empty else "")


def _measure(writer: IndexWriter, embedder: Embedder) -> None:
    """Record the model's fingerprint and offset in a new index (one embedding)."""
    if writer.store.meta(PROBE_KEY) is None:
        offset, probe = measure_model(embedder)
        with writer.store.transaction():
            writer.store.set_meta(OFFSET_KEY, encode_vector(offset))
            writer.store.set_meta(PROBE_KEY, encode_vector(probe))


