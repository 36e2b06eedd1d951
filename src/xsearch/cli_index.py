"""What the options of an ``xsearch index`` command ask of ``build_index``: shared by the
command and by ``serve --allow-index`` (its API index runs take them from the configuration
file and the environment, as the command would)."""

from __future__ import annotations

import click
from click.core import ParameterSource


def index_run_options(ctx: click.Context) -> dict:
    """``build_index``'s keyword arguments (all but paths, index and progress) for the options
    of an ``xsearch index`` context: flags, the environment and the configuration file alike.
    ``serve --allow-index`` runs its API index runs with these too."""
    from .ingest import ReadOptions, WalkOptions

    p = ctx.params
    options = ReadOptions(text_field=p["text_field"], id_field=p["id_field"])
    if p["max_mb"] is not None:
        options.max_bytes = max(1, int(p["max_mb"] * 1024 * 1024))
    if p["max_text_mb"] is not None:
        options.max_text_bytes = max(1, int(p["max_text_mb"] * 1024 * 1024))
    if p["read_timeout"] is not None:
        options.timeout = p["read_timeout"]
    labels = None
    if p["labels_file"]:
        from .topics import read_labels

        labels = read_labels(p["labels_file"])

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE

    # Settings from xsearch.toml or the environment are defaults for new indexes; only a flag
    # on the command line asks an existing index to differ (and is refused without --full).
    soft = frozenset(lib for lib, opt in (("model", "model"), ("chunk_tokens", "chunk_tokens"),
                                          ("chunk_overlap", "overlap"), ("layout", "layout"),
                                          ("centering", "centering")) if not given(opt))
    return dict(model=p["model"], full=p["full"], prune=p["prune"], re_embed=p["re_embed"],
                chunk_tokens=p["chunk_tokens"], chunk_overlap=p["overlap"],
                read_options=options, batch_size=p["batch_size"],
                commit_every=p["commit_every"], max_chars=p["max_chars"], labels=labels,
                layout=p["layout"], centering=p["centering"], retry_failed=p["retry_failed"],
                walk_options=WalkOptions(exclude=p["excludes"], include=p["includes"],
                                         use_ignore_files=p["use_ignore"], hidden=p["hidden"],
                                         follow_symlinks=p["follow_symlinks"]),
                engine=p["engine"], new_index_only=soft,
                record_fields_given=frozenset(n for n in ("text_field", "id_field")
                                              if given(n)))
