"""Commands beside the everyday ones: check an index, run the benchmark, serve it over HTTP
(registered on the ``cli`` group by cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli_format import (
    ENGINE_OPTION,
    NoResults,
    _edge,
    _emit,
    _index_option,
    _safe,
    command,
    sigterm_interrupts,
    tell_note,
)

if TYPE_CHECKING:
    import socket


@command()
@_index_option
@click.option("--repair", is_flag=True,
              help="Fix what can be fixed: re-embed passages of damaged segments, recompute "
                   "statistics, rewrite config.json, upgrade an older index (and its HNSW "
                   "segments).")
@click.option("--load-model/--no-model", "model_check", default=True,
              help="Load the model to check it still makes the index's vectors (fingerprint "
                   "check; --no-model skips it).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@_edge
def check(index_path, repair, model_check, as_json):
    """Verify an index in full: SQLite, segment checksums and ids, statistics, model.

    Opening an index for a query reads only what the query needs; this command reads
    everything. Exit 0 when sound (or repaired), 1 when problems remain.

    \b
    Examples:
        xsearch check
        xsearch check --repair --index ~/xsearch-index
    """
    from .check import check_index

    with sigterm_interrupts():
        report = check_index(index_path, repair=repair, model_check=model_check,
                             notify=tell_note)
    report.pop("_bad", None)
    report.pop("_orphans", None)
    remaining = report.get("after", report["problems"]) if repair else report["problems"]
    report["ok"] = not remaining  # after a repair: what is left (it said false once mended)
    if as_json:
        _emit(report)
    else:
        for p in report["problems"]:
            click.echo(f"problem: {p['what']}: {_safe(p['detail'])}")
        for line in report.get("repaired", []):
            click.echo(f"repaired: {line}")
        if not repair:
            for line in report["notes"]:
                click.echo(f"note: {line}")
        if "passages" in report:
            click.echo(f"{report['index']}: {report['passages']} passages in "
                       f"{report['segments']} segments; "
                       + ("ok" if not remaining else f"{len(remaining)} problem(s) remain"))
    if remaining:
        sqlite = any(p["what"] == "database" for p in remaining)
        raise NoResults(f"{len(remaining)} problem(s) found" + (
            "; the SQLite database itself is damaged: `xsearch index PATHS --full` rebuilds "
            "the index from your files" if sqlite else "" if repair else
            "; run xsearch check --repair"))


def _int_list(ctx, param, value: str) -> tuple[int, ...]:
    """--k and --fewshot-k: whole numbers from 1 (--fewshot-k also 'all', kept as 0)."""
    words = [v.strip() for v in value.split(",") if v.strip()]
    takes_all = param.name == "fewshot_k"
    try:
        out = tuple(0 if takes_all and v == "all" else int(v) for v in words)
    except ValueError:
        out = ()
    if not out or any(v < 0 or (v == 0 and not (takes_all and "all" in words)) for v in out):
        raise click.BadParameter("a comma-separated list of whole numbers from 1"
                                 + (" or 'all'" if takes_all else ""))
    return tuple(sorted(set(out), key=lambda v: (v == 0, v)))


@command()
@click.option("--dataset", type=click.Choice(["sib200", "generic"]), default="sib200",
              show_default=True, help="Dataset layout.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder (SIB-200 default: $XSEARCH_SIB200, else "
                   "../shared/data/sib200).")
@click.option("--languages", "-l", help="Comma-separated languages, any spelling (hin_Deva, "
              "hi, hin, Hindi, zh-Hant; hin = every script). Default: all.")
@click.option("--split", type=click.Choice(["train", "dev", "test", "all"]), default="test",
              show_default=True, help="SIB-200 split used as queries and pool; for a BEIR "
              "layout, the qrels/SPLIT.tsv file.")
@click.option("--sample", type=click.IntRange(2), help="Keep N translation groups (SIB-200) "
              "or N queries and the documents judged for them (generic).")
@click.option("--data-lang", help="Generic/BEIR: language of records without a 'lang' field "
              "(default: the folder name, when it is a language code).")
@click.option("--model", "-m", default="e5-small", show_default=True, envvar="XSEARCH_MODEL",
              show_envvar=True, help="Embedding model.")
@click.option("--k", "ks", default="1,5,10", show_default=True, callback=_int_list,
              help="Recall cut-offs (1 and 5 are always measured: the report's heatmaps).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmarks/runs/latest"), show_default=True,
              help="Output folder (results.json, report.md, PNG heatmaps).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmarks/cache"), show_default=True,
              help="Embedding cache folder, per (model, text).")
@click.option("--no-cache/--reuse-cache", "no_cache", default=False,
              help="Embed everything again, not reusing the --cache folder's embeddings.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path),
              help="Label names for zero-shot topics (default: the dataset's labels.txt).")
@click.option("--template", default="This text is about {label}.", show_default=True,
              help="Label description template.")
@click.option("--source-lang", "source_langs", multiple=True, default=["eng_Latn"],
              show_default=True, help="Few-shot source language, any spelling as for -l "
                                      "(repeatable).")
@click.option("--related/--no-related", "related", default=True,
              help="Also train from a related language that -l includes (hin for mai, arb "
                   "for heb...).")
@click.option("--fewshot-k", default="8,32,all", show_default=True, callback=_int_list,
              help="Examples per label for few-shot ('all' = the whole train split).")
@click.option("--mixed/--no-mixed", "mixed", default=True,
              help="Also measure the mixed-language pool.")
@click.option("--centering", type=click.Choice(["language", "global", "none"]),
              help="Score with this centring (default: the index default, language).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@_edge
def bench(dataset, data_dir, languages, split, sample, data_lang, model, ks, out_dir, cache_dir,
          no_cache, labels_file, template, source_langs, related, fewshot_k, mixed,
          centering, as_json):
    """Measure retrieval per language pair and topic labels per language.

    Builds real xsearch indexes (one per document language, plus one mixed), queries them
    in every language and writes results.json, report.md and heatmaps to --out.

    \b
    Examples:
        xsearch bench --languages eng_Latn,hin_Deva,mai_Deva --sample 100
        xsearch bench --split all --out benchmarks/runs/sib200-e5
        xsearch bench --model use-m3 --split all --out benchmarks/runs/sib200-use
        xsearch bench --dataset generic --data my_eval/ --out runs/mine
        xsearch bench --dataset generic --data beir/ar --split dev -l ar,en --sample 200
    """
    from .bench.datasets import (
        default_sib200_root,
        load_sib200,
        resolve_languages,
        sib200_languages,
    )
    from .bench.generic import load_generic
    from .bench.report import write_report
    from .bench.runner import BenchOptions, run_benchmark

    langs = [x.strip() for x in languages.split(",") if x.strip()] if languages else None
    sib_root = None
    if dataset == "sib200":
        sib_root = data_dir or default_sib200_root()
        if not sib_root.is_dir():
            raise click.ClickException(f"SIB-200 not found at {sib_root}; pass --data or set "
                                       "XSEARCH_SIB200")
        if langs:
            langs = resolve_languages(langs, sib200_languages(sib_root))
        # Any spelling, as for -l (hin once trained nothing, in silence: hin_Deva was needed).
        source_langs = resolve_languages(source_langs, sib200_languages(sib_root))
        ds = load_sib200(sib_root, languages=langs, split=split, sample=sample)
    else:
        if data_dir is None:
            raise click.UsageError("--dataset generic needs --data FOLDER")
        ds = load_generic(data_dir, split=split, default_lang=data_lang, languages=langs,
                          sample=sample)
    if dataset == "sib200" and len(ds.languages) < 2:
        raise click.UsageError("SIB-200 pairs need two languages or more (-l eng,fra); a "
                               "sentence's only answers are its translations")
    labels = _bench_labels(labels_file, template, ds.labels) if labels_file else None
    ks = tuple(sorted(set(ks) | {1, 5}))
    opts = BenchOptions(
        model=model, out_dir=out_dir, cache_dir=None if no_cache else cache_dir, ks=ks,
        labels=labels, label_template=template,
        sib_root=sib_root if split != "train" else None,
        fewshot_k=fewshot_k, source_langs=tuple(source_langs), related_sources=related,
        mixed=mixed, centering=centering,
    )
    log = (lambda msg: None) if as_json else (lambda msg: click.echo(msg, err=True))
    results = run_benchmark(ds, opts, log=log)
    paths = write_report(results, out_dir)
    if as_json:
        _emit(results)
        return
    summ = results["retrieval"]["recall@5"]
    if summ.get("mean") is None or not summ.get("worst_pairs"):
        click.echo("recall@5: no language pair had queries with answers in it")
    else:
        worst = summ["worst_pairs"][0]
        click.echo(f"recall@5 mean {summ['mean']:.3f} over {len(summ['per_query_lang'])} "
                   f"query languages; worst pair {worst['query_lang']}->{worst['doc_lang']} "
                   f"{worst['value']:.3f}")
    for name, path in paths.items():
        click.echo(f"{name}: {path}")


def _bench_labels(path: Path, template: str, truth: list[str] | None) -> list[str]:
    """--labels read as `xsearch label` reads them (a byte order mark, UTF-16 refused, two
    labels or more, each once), checked against the dataset's categories before any work:
    accuracy is measured against those, so a name that is none of them is never right."""
    from .topics import read_labels

    labels = read_labels(path, template)
    if truth:
        unknown = [lb.name for lb in labels if lb.name not in truth]
        if unknown:
            raise click.ClickException(
                f"{path}: {unknown[0]!r} is not one of the dataset's categories, which "
                f"accuracy is measured against ({', '.join(truth)}); give each a "
                "description instead: 'name: description'")
    return [f"{lb.name}: {lb.description}" for lb in labels]


@command()
@_index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but a loopback address (127.x, ::1, localhost) "
                   "exposes the index text to the network.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A host name requests may name besides addresses and localhost (behind a "
                   "proxy, say); others get 403, against DNS rebinding. Repeatable.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--bench-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmarks/runs"), show_default=True,
              help="Folder of `xsearch bench` runs; the page shows the newest one.")
@click.option("--allow-index", "allow_index",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Enable POST /api/index, an incremental index run of this folder.")
@click.option("--token", envvar="XSEARCH_TOKEN", show_envvar=True,
              help="Token POST /api/index requires (Authorization: Bearer TOKEN).")
@click.option("--max-batch", type=click.IntRange(1, 256), default=32, show_default=True,
              help="Most queries embedded in one model call (1 = no micro-batching).")
@click.option("--batch-window-ms", type=click.FloatRange(0, 1000), default=0.0,
              show_default=True, help="How long a query waits for others to batch with (0: "
              "none; queries that arrive while the model works are batched anyway).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info",
                                                "debug"]), default="warning", show_default=True)
@ENGINE_OPTION
@_edge
def serve(index_path, host, port, bench_dir, allow_index, token, max_batch, batch_window_ms,
          log_level, engine, allow_hosts):
    """Serve the index over HTTP: a web page at / and a JSON API (/openapi.json).

    Loads the model and the index once; picks up changes another `xsearch index` makes,
    a --full rebuild for another model too (loaded in the background while the state
    before the rebuild answers).
    Read-only unless --allow-index ROOT and a token are given.

    \b
    Examples:
        xsearch serve
        xsearch serve --index ~/xsearch-index --port 8080
        xsearch serve --allow-host search.example.org   # behind a reverse proxy
        XSEARCH_TOKEN=s3cret xsearch serve --allow-index ./corpus
    """
    try:
        import uvicorn

        from .server.app import create_app
        from .server.hosts import is_loopback
    except ImportError as exc:
        raise click.ClickException(
            f"xsearch serve needs the serve extra ({exc.name} is missing): "
            "pip install 'xsearch[serve]'") from exc
    if allow_index is not None and not token:
        raise click.UsageError("--allow-index needs --token or XSEARCH_TOKEN")
    local = is_loopback(host)
    if not local:
        click.echo(f"warning: binding {host}: the text of the index becomes reachable from "
                   "the network", err=True)
    index_options = None if allow_index is None else _api_index_options(allow_index,
                                                                          index_path)
    shown = f"[{host}]" if ":" in host else host
    sock = _listen(host, shown, port)
    app = create_app(index_path, bench_dir=bench_dir, max_batch=max_batch,
                     window_ms=batch_window_ms, allow_index=allow_index, token=token,
                     engine=engine, index_options=index_options,
                     # Bound to the network, any name may reach it anyway (unless restricted).
                     allowed_hosts=allow_hosts if local or allow_hosts else None)
    click.echo(f"xsearch: serving {index_path} at http://{shown}:{sock.getsockname()[1]}/ "
               "(Ctrl-C stops)", err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    # uvicorn shuts down gracefully, then raises the signal again under the handler it found:
    # ours, so SIGTERM ends in exit 143 as for every command (not death by the signal).
    with sigterm_interrupts(sigint=True):
        uvicorn.Server(config).run(sockets=[sock])


def _api_index_options(root: Path, index_path: Path) -> dict:
    """What ``xsearch index ROOT --index INDEX`` here would run with (the configuration file's
    exclude, include, limits, labels...; the environment's), for POST /api/index: an
    incremental run, whatever the file says of --full or --prune."""
    from .cli_index import index_run_options

    group = click.get_current_context().find_root()
    index_cmd = group.command.get_command(group, "index")
    with index_cmd.make_context("index", [str(root), "--index", str(index_path)],
                                parent=group) as ctx:
        options = index_run_options(ctx)
    return {**options, "full": False, "prune": False, "re_embed": False}


def _listen(host: str, shown: str, port: int) -> socket.socket:
    """A socket bound to host:port, so that a port in use is one line before anything is
    announced (uvicorn would log it and exit 3, after loading the model)."""
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        # As uvicorn binds: a port left in TIME_WAIT by a server just stopped is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = str(exc.strerror or exc)
        raise click.ClickException(
            f"cannot listen on {shown}:{port}: {why[:1].lower()}{why[1:]}") from exc
    return sock
