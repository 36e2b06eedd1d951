"""Command line: parse, call the library, format. Library errors become one-line messages."""

from __future__ import annotations

import atexit
import math
import os
import sys
import threading
from pathlib import Path
from typing import NoReturn

import click

from . import __version__
from .cli_format import (
    CONFIG_META,
    CONTEXT,
    ENGINE_OPTION,
    EXIT_CODES,
    RELEVANT_Z,
    Command,
    NoResults,
    _edge,
    _emit,
    _index_option,
    _one_line,
    _Progress,
    _safe,
    non_empty_path_objects,
    non_empty_paths,
    read_queries,
    safe_highlighted,
    sigterm_interrupts,
    tell_note,
    wrap,
)
from .errors import XsearchError, first_line


@click.group(context_settings=CONTEXT, epilog=EXIT_CODES)
@click.version_option(__version__, "-V", "--version", prog_name="xsearch")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Cross-lingual semantic search on your own machine.

    Index documents in many languages, then ask in any language:

    \b
        xsearch index data/corpus
        xsearch query "how do I bake sourdough bread?"
        xsearch query "बच्चों का टीकाकरण" --lang fra --json
        xsearch files
        xsearch rm old-notes/
        xsearch check --repair

    Defaults for any option can come from xsearch.toml (here, or in ~/.config/xsearch/, or
    $XSEARCH_CONFIG); a flag or environment variable overrides them.

    Exit codes: 0 done; 1 could not do it (one line says why), or nothing found; 2 a wrong
    command line; 130 Ctrl-C; 143 SIGTERM.
    """
    from .settings import load_defaults

    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe in Latin-1 (a legacy locale) cannot print σ or most passages:
        # escaped, not a traceback.
        if (getattr(stream, "encoding", "") or "utf-8").lower().replace("_", "-") not in (
                "utf-8", "utf8") and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if ctx.default_map is None:
        try:
            ctx.default_map, ctx.meta[CONFIG_META] = load_defaults(cli)
        except XsearchError as exc:
            raise click.ClickException(_safe(first_line(exc))) from exc


@cli.command(cls=Command, context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path(), callback=non_empty_path_objects)
@_index_option
@click.option("--prune", is_flag=True, help="Also drop indexed files that no longer exist, "
              "wherever they were indexed from (alone, without PATHS: only that).")
@click.option("--model", "-m", envvar="XSEARCH_MODEL", show_envvar=True,
              help="Embedding model for a new index: e5-small (default, bundled), minilm, "
                   "use-m3, all-minilm-l6-v2, a Hugging Face id or a local folder.")
@click.option("--full", is_flag=True, help="Rebuild the index from scratch (a passage whose "
              "text the index holds for the same file keeps its vector: same model, engine).")
@click.option("--re-embed", is_flag=True, help="With --full: embed every passage again.")
@click.option("--chunk-tokens", type=click.IntRange(16, 8192),
              help="Passage size in model tokens (new index: 256, capped at the model limit).")
@click.option("--overlap", type=click.IntRange(0, 4096),
              help="Tokens repeated between consecutive passages (new index: 32).")
@click.option("--text-field", default="text", show_default=True,
              help="Field holding the text in .jsonl/.csv records.")
@click.option("--id-field", default="id", show_default=True,
              help="Field holding the record id in .jsonl/.csv records.")
@click.option("--max-mb", type=click.FloatRange(0, min_open=True), default=None,
              help="Refuse files larger than this many MB (default: 50).")
@click.option("--max-text-mb", type=click.FloatRange(0, min_open=True), default=None,
              help="Refuse a file once what is inflated or extracted from it (XML in a .docx, "
                   "PDF streams, decoded text) passes this many MB (default: 256).")
@click.option("--read-timeout", type=click.FloatRange(0, min_open=True), default=None,
              help="Give up on a file after this many seconds of reading (default: 120).")
@click.option("--exclude", "excludes", multiple=True, metavar="GLOB",
              help="Skip paths matching this gitignore-style pattern (relative to each PATH). "
                   "Repeatable.")
@click.option("--include", "includes", multiple=True, metavar="GLOB",
              help="Only index files matching this pattern; also enters hidden/build folders "
                   "it names. Repeatable.")
@click.option("--ignore/--no-ignore", "use_ignore", default=True,
              help="Honour .gitignore and .xsearchignore files (--no-ignore: index what they "
                   "leave out too).")
@click.option("--hidden", is_flag=True,
              help="Also index hidden files and folders, virtualenvs and build folders.")
@click.option("--follow-symlinks", is_flag=True,
              help="Follow symlinks that lead out of the given folders.")
@click.option("--layout", type=click.Choice(["auto", "flat", "hnsw", "ivf-sq8"]),
              help="New index: vector layout. auto (default) is exact until a language holds "
                   "5,000 passages, then HNSW; ivf-sq8 is compressed (4x smaller, approximate).")
@click.option("--centering", type=click.Choice(["language", "global", "none"]),
              help="New index: language (default) scores every passage against its own "
                   "language's mean, so no language or hub passage is favoured; global uses one "
                   "mean; none is plain cosine.")
@click.option("--retry-failed", is_flag=True,
              help="Read again files that failed before although they have not changed (one "
                   "refused by --max-mb, --max-text-mb, --read-timeout or --max-chars is read "
                   "again whenever that limit is raised).")
@click.option("--max-chars", type=click.IntRange(1), default=2_000_000, show_default=True,
              help="Refuse a file whose extracted text is longer than this (a longer "
                   ".jsonl/.csv record is skipped alone).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None, show_default=True,
              help="Passages embedded per model call (default: the engine's best, 16).")
@ENGINE_OPTION
@click.option("--commit-every", type=click.IntRange(1), default=None, hidden=True,
              help="Passages per SQLite transaction.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path),
              help="Topic labels file (one label per line, optional 'label: description'); "
                   "passages and documents get a zero-shot topic.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no per-file messages.")
@_edge
def index(paths, index_path, model, full, chunk_tokens, overlap, text_field, id_field, max_mb,
          max_text_mb, read_timeout, excludes, includes, use_ignore, hidden, follow_symlinks,
          layout, centering, retry_failed, max_chars, batch_size, engine, commit_every, labels_file,
          as_json, quiet, prune, re_embed):
    """Index files and folders (re-runs only touch what changed).

    Reads .txt .md .html .pdf .docx .jsonl .csv (one document per record), splits them into
    passages, detects each passage's language and embeds it.

    \b
    Examples:
        xsearch index data/corpus
        xsearch index notes/ papers/ --index ~/xsearch-index
        xsearch index records.jsonl --text-field body --id-field uid
        xsearch index data/corpus --full --model minilm
        xsearch index data/corpus --full --layout hnsw
        xsearch index data/corpus --full --re-embed
        xsearch index --prune
        xsearch index data/corpus --labels labels.txt
        xsearch index ~/notes --exclude 'drafts/' --include '*.md'
    """
    if re_embed and not full:
        raise click.UsageError("--re-embed goes with --full")
    if not paths:
        if not prune:
            raise click.UsageError("give files or folders to index (or --prune alone)")
        from .cli_manage import report_removal
        from .manage import prune_missing

        return report_removal(prune_missing(index_path), as_json)
    from .embedders import model_of_run, prepare_engine, warm_for_index

    warm_for_index(index_path, model, engine, full)  # overlaps the imports and set-up below
    from .cli_index import index_run_options
    from .indexer import build_index

    ctx = click.get_current_context()
    run_options = index_run_options(ctx)
    show_bar = not quiet and not as_json and sys.stderr.isatty()
    meter = _Progress() if show_bar else None

    def progress(event: str, info: dict) -> None:
        if meter is not None and event in ("start", "embedded", "advance"):
            meter.update(event, info)
        elif event == "error" and not quiet:
            meter and meter.clear()
            message = info["message"]  # library messages usually start with the path
            if not message.startswith(str(info["path"])):
                message = f"{info['path']}: {message}"
            click.echo(f"error: {_safe(message)}", err=True)
        elif event == "warning" and not quiet:
            meter and meter.clear()
            click.echo(f"warning: {_safe(info['message'])}", err=True)
        elif event in ("note", "upgrading") and not quiet:
            meter and meter.clear()
            tell_note(event, info)

    prepare_engine(model_of_run(index_path, model, full), engine,
                   notify=None if quiet else lambda m: click.echo(m, err=True))
    try:
        with sigterm_interrupts():
            summary = build_index(list(paths), index_path, progress=progress, **run_options)
    finally:
        if meter is not None:
            meter.clear()
    labelled = summary.labels
    if as_json:
        _emit(summary.as_dict())
    else:
        s = summary
        if s.resumed:
            click.echo(f"resumed: the interrupted run's {s.resumed} file(s) were kept; "
                       "the rest were indexed now")
        click.echo(
            f"files: {s.files_seen} seen, {s.new} new, {s.changed} changed, "
            f"{s.unchanged} unchanged, {s.renamed} renamed, {s.removed} removed, "
            f"{s.skipped} skipped, {s.failed} failed"
            + (f", {s.failed_before} failed before (unchanged; --retry-failed)"
               if s.failed_before else "")
            + (f"; {s.limits_raised} read again for a raised limit" if s.limits_raised else "")
        )
        left_out = [(s.excluded, "excluded"), (s.ignored, "ignored (.gitignore/.xsearchignore)"),
                    (s.hidden, "hidden or build folders/files"), (s.special, "special files"),
                    (s.links_skipped, "symlinks out of the folders or broken"),
                    (s.bad_names, "non-UTF-8 names")]
        if any(n for n, _ in left_out):
            click.echo("left out: " + ", ".join(f"{n} {what}" for n, what in left_out if n))
        if s.kept:
            click.echo(f"kept: {s.kept} indexed file(s) this run left out are still on disk "
                       "and stay indexed (xsearch rm removes them)")
        click.echo(
            f"passages: {s.passages_embedded} embedded, "
            + (f"{s.passages_kept} kept (text indexed before), " if s.passages_kept else "")
            + f"{s.passages_removed} removed in "
            f"{s.seconds:.1f}s ({s.passages_per_second:.1f} passages/s)"
            + (f"; {s.segments_merged} segments merged" if s.segments_merged else "")
        )
        if labelled:
            click.echo(f"topics: {labelled['passages']} passages labelled with "
                       f"{len(labelled['labels'])} labels")
    if summary.failed:
        first = summary.errors[0] if summary.errors else None
        where = (" (listed above)" if not quiet and not as_json else
                 f", such as {_one_line(first['path'])}" if first else "")
        raise click.ClickException(
            f"{summary.failed} file(s) could not be indexed{where}; everything else is "
            "indexed (xsearch files lists them)"
        )


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A float option's value, refusing nan and inf (nan would silently drop every hit)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", param=param)
    return value


def _ranks(ranks: list[int]) -> str:
    """[3, 5, 6, 7] -> '#3, #5-7'."""
    runs: list[list[int]] = []
    for r in ranks:
        if runs and r == runs[-1][1] + 1:
            runs[-1][1] = r
        else:
            runs.append([r, r])
    return ", ".join(f"#{a}" if a == b else f"#{a}-{b}" for a, b in runs)


@cli.command(cls=Command, context_settings=CONTEXT)
@click.argument("query", required=False)
@_index_option
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Hits per query (a page: read further with --offset).")
@click.option("--offset", type=click.IntRange(0, 1_000_000), default=0,
              help="Skip this many hits: --offset 10 -k 10 is the second page of 10. JSON hits "
                   "carry their rank; -f lines carry next_offset (null: no more).")
@click.option("--lang", "languages", multiple=True,
              help="Only passages in this language: hin_Deva, or hin / hi / Hindi for any "
                   "script, zh-Hant... Repeatable; unknown languages are refused.")
@click.option("--path", "path_glob", multiple=True, callback=non_empty_paths,
              help="Only files matching this glob (e.g. '*.pdf'); repeatable: any of them.")
@click.option("--topic", "topics", multiple=True, help="Only passages with this topic label.")
@click.option("--min-score", type=float, callback=_finite,
              help="Drop hits whose relevance (standard deviations above the language's "
                   "background) is below this.")
@click.option("--file", "-f", "queries_file",
              type=click.File("rb"),
              help="Read one query per line from FILE ('-' for stdin); prints one JSON line "
                   "per query, each as soon as it is answered (a pipe: line by line).")
@click.option("--per-doc", type=click.IntRange(0), default=1, show_default=True,
              help="Most passages shown from one document (0 = no limit).")
@click.option("--model", "-m", help="Model to query with; must be the index's model.")
@ENGINE_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
@click.option("--full-text", is_flag=True, help="Show the whole passage instead of a snippet.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid",
              show_default=True,
              help="dense: meaning only; lexical: exact words (names, numbers, codes); "
                   "hybrid: both fused.")
@_edge
def query(query, index_path, k, languages, path_glob, topics, min_score, queries_file, per_doc,
          model, engine, as_json, full_text, offset, mode):
    """Search the index in every language at once.

    \b
    Examples:
        xsearch query "solar panels for a village"
        xsearch query "éruption volcanique" -k 10 --lang eng --lang zho
        xsearch query "vaccination" --path '*.pdf' --json
        xsearch query "football" --topic sports --min-score 0.8
        xsearch query "bread" -k 20 --offset 20 --json
        xsearch query -f questions.txt > answers.jsonl
        printf 'bread\\ncoffee\\n' | xsearch query -f -
    """
    from .path_filter import display_path
    from .search import Filters, Searcher

    batches, batch = read_queries(query, queries_file)
    filters = Filters(languages=tuple(languages), path_glob=tuple(path_glob) or None,
                      topics=tuple(topics),
                      min_score=min_score)
    searcher = Searcher(index_path, model=model, engine=engine)
    if batch:
        try:
            _answer_batches(searcher, batches, k, filters, per_doc, offset, mode, full_text)
        finally:
            searcher.close()
        return
    queries = next(batches)
    try:
        results = searcher.search_many(queries, k=k, filters=filters, per_document=per_doc,
                                       offset=offset, mode=mode)
        _warn(searcher, set())
        top = results[0][0] if results[0] else None
        calibrated = top is not None and searcher.calibrated(top.language)
    finally:
        searcher.close()
    hits = results[0]
    if not hits:
        why = (" (filters matched no passage or every hit scored below --min-score)"
               if filters.active() or min_score is not None else "")
        raise NoResults("no hits" + (f" past the first {offset}" if offset else "") + why)
    from .snippets import render

    color = (sys.stdout.isatty() and not as_json and not os.environ.get("NO_COLOR")
             and os.environ.get("TERM") != "dumb")
    for h in hits:
        if as_json:
            _emit({"query": queries[0], **h.as_dict(full_text)})
            continue
        where = display_path(h.path) + (f"#{h.record_id}" if h.record_id else "")
        topic = f"  [{h.topic}]" if h.topic else ""
        if h.file_state:  # the text shown is the indexed one; the file is not that any more
            topic += (" (file missing)" if h.file_state == "missing"
                      else " (file changed since indexed)")
        click.echo(f"{h.rank:>2}. {h.relevance:5.1f}σ cos {h.cosine:.3f}  {h.language:<9} "
                   f"{_one_line(where)}:{h.char_start}-{h.char_end}{topic}")
        body = _safe(h.text) if full_text else render(
            *safe_highlighted(h.snippet, h.highlights), color)
        click.echo(wrap(body))
    weak = [h.rank for h in hits if h.relevance <= 0]
    if weak and not as_json:
        click.echo(f"note: {'hit' if len(weak) == 1 else 'hits'} {_ranks(weak)} "
                   f"{'is' if len(weak) == 1 else 'are'} no closer to the query than an "
                   f"average passage of {'its' if len(weak) == 1 else 'their'} language.",
                   err=True)
    if (not as_json and offset == 0 and hits[0].relevance < RELEVANT_Z
            and calibrated):
        click.echo(f"note: nothing stands out: the best hit is {hits[0].relevance:.1f}σ above "
                   f"its language's background (clearly relevant hits reach {RELEVANT_Z}σ); "
                   "these may be unrelated.", err=True)


def _warn(searcher, shown: set[str]) -> None:
    for w in searcher.warnings():
        if w not in shown:
            shown.add(w)
            click.echo(f"warning: {_safe(w)}", err=True)


def _answer_batches(searcher, batches, k, filters, per_doc, offset, mode, full_text) -> None:
    """-f: one JSON line per query, each batch printed (and flushed) as soon as it is
    answered; exit 1 when no query found anything, as for one query."""
    shown: set[str] = set()
    asked = found = 0
    for queries in batches:
        # One hit more than asked tells whether there is a next page.
        results = searcher.search_many(queries, k=k + 1, filters=filters,
                                       per_document=per_doc, offset=offset, mode=mode)
        _warn(searcher, shown)
        for q, hits in zip(queries, results, strict=True):
            _emit({"query": q, "hits": [h.as_dict(full_text) for h in hits[:k]],
                   "next_offset": offset + k if len(hits) > k else None})
        asked += len(queries)
        found += sum(1 for hits in results if hits)
    if not found:
        raise NoResults(f"no hits for any of the {asked} queries")


def main() -> None:  # pragma: no cover - the console script; tests run cli() or a subprocess
    """The ``xsearch`` command as a process (``python -m xsearch`` too)."""
    try:
        cli(prog_name="xsearch")
        code: object = 0
    except SystemExit as exc:  # how click's standalone mode always ends
        code = exc.code
    _end_process(code)


def _end_process(code: object) -> NoReturn:  # pragma: no cover - ends the process
    """End the process as the interpreter would, without freeing its objects one by one.

    Its work is closed and synced by now (indexes committed and their connections closed;
    files fsync'd and renamed). The interpreter's own shutdown would then free every object:
    0.09 s after `xsearch index` even with the garbage collector frozen (OpenVINO's buffers,
    the tokenizer's trie), 0.2 s without, on a run of 4 s. What that shutdown does that
    matters is done here: threads that are not daemons finish, atexit handlers run, the
    standard streams are flushed, and the status is sys.exit's.
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    # The interpreter's own first steps: wake what registered with threading (idle
    # concurrent.futures workers wait for it), then join the threads that are not daemons.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`xsearch query | head`)
            status = status or 120  # as the interpreter's own exit reports it
    os._exit(status)


# Commands that manage what is indexed live in their own module (registered on import).
from .cli_manage import files, label, rm, stats  # noqa: E402
from .cli_tools import bench, check, serve  # noqa: E402

for _command in (label, stats, files, rm, check, bench, serve):
    cli.add_command(_command)


def _offs(group: click.Group) -> None:
    """Give each on/off flag its --no- form, so that one turned on in xsearch.toml can be
    turned off on the command line (a flag beats the file)."""
    for command in group.commands.values():
        for p in command.params:
            if isinstance(p, click.Option) and p.is_flag and p.is_bool_flag and \
                    not p.secondary_opts and not p.count:
                long = next((o for o in p.opts if o.startswith("--")), None)
                if long and not long.startswith("--no-") and p.name not in ("help", "version"):
                    p.secondary_opts = ["--no-" + long[2:]]


_offs(cli)
