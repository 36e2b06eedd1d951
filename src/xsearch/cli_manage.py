"""CLI commands that manage what an index holds: ``stats``, ``files``, ``rm`` (``index
--prune`` uses :func:`report_removal`) and ``label``. Registered on the group by ``cli.py``;
the logic is in ``manage.py``, ``stats.py`` and ``topics.py``."""

from __future__ import annotations

import time
from pathlib import Path

import click
from click.core import ParameterSource

from .cli_format import (
    _edge,
    _emit,
    _index_option,
    _one_line,
    command,
    non_empty_paths,
    shell_words,
    sigterm_interrupts,
)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1 << 20 else \
        f"{n / (1 << 20):.1f} MiB"


@command()
@_index_option
@click.option("--lang", "languages", multiple=True,
              help="Only files with passages in this language (any spelling). Repeatable.")
@click.option("--missing", is_flag=True, help="Only indexed files that no longer exist.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_edge
def files(index_path, languages, missing, as_json):
    """List the indexed files, and the files that failed or were skipped (with why).

    \b
    Examples:
        xsearch files
        xsearch files --lang hi --json
        xsearch files --missing          # what xsearch index --prune would drop
    """
    from .manage import list_files
    from .path_filter import display_path

    info = list_files(index_path, tuple(languages), missing_only=missing)
    if as_json:
        _emit(info)
        return
    click.echo("format  docs  passages  size       indexed           languages  path")
    for f in info["files"]:
        langs = ",".join(f["languages"]) or "-"
        click.echo(f"{f['format']:<6} {f['documents']:>5} {f['passages']:>9}  "
                   f"{_size(f['size']):<10} {_when(f['indexed_at'])}  {langs}  "
                   f"{_one_line(display_path(f['path']))}"
                   + ("  (missing)" if not f["exists"] else "")
                   + (f"  (records over --max-chars {f['cut_by']['max_chars']:,} left out)"
                      if (f.get("cut_by") or {}).get("max_chars") else ""))
    for f in info["failed"]:
        reason = f["reason"].removeprefix(f"{f['path']}: ")  # readers often start with the path
        click.echo(f"{f['kind']:<7} {_when(f['at'])}  {_one_line(display_path(f['path']))}: "
                   f"{_one_line(reason)}")
    click.echo(f"{len(info['files'])} files, {sum(f['passages'] for f in info['files'])} "
               f"passages; {len(info['failed'])} failed or skipped"
               + (f"; {info['missing']} missing (xsearch index --prune drops them)"
                  if info["missing"] else ""))


def report_removal(out: dict, as_json: bool) -> None:
    from .path_filter import display_path

    if as_json:
        _emit(out)
        return
    verb = "would remove" if out["dry_run"] else "removed"
    done = "would be removed" if out["dry_run"] else "removed"
    for p in out["removed"]:
        click.echo(f"{verb}: {_one_line(display_path(p))}")
    for p in out["failed_records"]:
        click.echo(f"{verb} failure record: {_one_line(display_path(p))}")
    for p in out["unmatched"]:
        click.echo(f"not indexed: {_one_line(p)}", err=True)
    click.echo(f"{len(out['removed'])} file(s), {out['passages']} passages {done}"
               + (f"; {out['segments_merged']} segments merged" if out["segments_merged"]
                  else ""))


@command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(), callback=non_empty_paths)
@_index_option
@click.option("--missing-ok", is_flag=True, help="A PATH that names no indexed file is no error.")
@click.option("--dry-run", "-n", is_flag=True, help="List what would be removed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_edge
def rm(paths, index_path, missing_ok, dry_run, as_json):
    """Remove files from the index (the files themselves are not touched).

    PATH is an indexed file, a folder (everything indexed below it) or a quoted glob over
    the whole path ('*' also crosses folders); a relative one is read from the working
    directory (query --path also matches it anywhere). Files that no longer exist can be
    named too;
    a file or folder indexed through a symlink or a hard link can be named by its other path.

    \b
    Examples:
        xsearch rm notes/old.md
        xsearch rm data/corpus/bread --dry-run
        xsearch rm 'data/corpus/*.pdf'
    """
    from .manage import remove_files

    with sigterm_interrupts():
        removal = remove_files(index_path, list(paths), missing_ok=missing_ok,
                               dry_run=dry_run)
    report_removal(removal, as_json)


@command()
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
    click.echo(f"index:    {_one_line(info['index'])}")
    click.echo(f"model:    {info['model']} ({info['dim']}-d, layout {info['layout']}, "
               f"centering {info['centering']})")
    click.echo(f"chunking: {info['chunk_tokens']} tokens, overlap {info['chunk_overlap']}")
    click.echo(f"files: {info['files']}  documents: {info['documents']}  "
               f"passages: {info['passages']}  segments: {info['segments']}  "
               f"vectors: {info['vectors']}")
    click.echo("language    documents  passages")
    for row in info["languages"]:
        click.echo(f"{row['language']:<11} {row['documents']:>9}  {row['passages']:>8}")
    if info.get("topics"):
        how = info.get("topic_method")
        click.echo("topic            passages" + (f"   ({how}" + (
            " classifier)" if how != "zero-shot" else " labels)") if how else ""))
        for row in info["topics"]:
            click.echo(f"{_one_line(row['topic']):<16} {row['passages']:>8}")
    if info.get("missing_files"):
        click.echo(f"missing:  {info['missing_files']} indexed file(s) no longer exist; "
                   "xsearch index --prune drops them")
    sizes = ", ".join(f"{k} {_size(v)}" for k, v in info["disk"].items())
    click.echo(f"on disk:  {sizes}")
    left = info.get("unfinished_build")
    if left and left.get("running"):
        click.echo(f"building: a --full rebuild is under way ({left['files']} file(s) so far); "
                   "this index answers until it is done")
    elif left:
        words = ["--full", *(left["paths"] or ["PATHS"])]
        if click.get_current_context().get_parameter_source("index_path") is \
                ParameterSource.COMMANDLINE:
            words += ["--index", info["index"]]
        words = shell_words(words + left.get("resume_flags", []))
        click.echo(f"stopped:  a --full rebuild holds {left['files']} file(s) in "
                   f"{left['bytes'] / 1048576:.1f} MiB; `xsearch index {words}` "
                   "goes on with it, a plain `xsearch index` drops it")


@command()
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
    ctx = click.get_current_context()
    given = [f"--{n}" for n in ("method", "source", "template")
             if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE]
    if not examples_file and (odd := [g for g in given if g != "--template"]):
        raise click.UsageError(f"{' and '.join(odd)} go with --train")
    if examples_file and "--template" in given:
        raise click.UsageError("--template goes with LABELS_FILE (zero-shot labels)")
    if examples_file:
        from .topics import label_with_classifier, no_stopped_rebuild
        from .trained_labels import read_examples, train_classifier

        def say(msg: str) -> None:
            if not as_json:
                click.echo(msg, err=True)

        examples = read_examples(examples_file)
        no_stopped_rebuild(index_path)  # before minutes of training (asked again under lock)
        clf, info = train_classifier(index_path, examples, method, source, notify=say)
        with sigterm_interrupts():
            out = label_with_classifier(index_path, clf, notify=say, save=True)
        out.update({"sources": info["sources"], "examples": info["examples"],
                    "auto": info["auto"]})
    else:
        from .topics import label_index, read_labels

        with sigterm_interrupts():
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
