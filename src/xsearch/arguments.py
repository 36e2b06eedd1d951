"""What a library caller passes, checked as the CLI's option types check a command line:
a wrong value is a typed :class:`~xsearch.errors.InvalidArgument` before anything is read or
written, not a deep error (or a silently wrong answer) later."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from .errors import InvalidArgument


def names(value: str | os.PathLike | Iterable | None, what: str) -> tuple[str, ...]:
    """One name or several, as a tuple: a lone string is one name, not its characters
    (``languages="eng"`` once meant the languages e, n, g)."""
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    try:
        out = tuple(os.fspath(v) if isinstance(v, os.PathLike) else v for v in value)
    except TypeError:
        raise InvalidArgument(f"{what} must be a string or a list of strings, "
                              f"not {type(value).__name__}") from None
    if not all(isinstance(v, str) for v in out):
        raise InvalidArgument(f"{what} must hold strings only")
    return out


def whole(value: object, what: str, low: int, high: int | None = None) -> int:
    """An int within [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (
            high is not None and value > high):
        span = f"from {low}" + (f" to {high}" if high is not None else " on")
        raise InvalidArgument(f"{what} must be a whole number {span}, not {value!r}")
    return value


def search(queries: list[str], k: int, offset: int, per_document: int,
           min_score: float | None) -> None:
    """``Searcher.search_many``'s arguments (``xsearch query``'s -k, --offset, --per-doc,
    --min-score and an empty query are refused the same way)."""
    if isinstance(queries, str) or not isinstance(queries, (list, tuple)):
        raise InvalidArgument("queries must be a list of strings (search() takes one)")
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise InvalidArgument(f"a query must be words to search for, not {q!r}")
    whole(k, "k", 1)
    whole(offset, "offset", 0)
    whole(per_document, "per_document", 0)
    if min_score is not None and (isinstance(min_score, bool) or not isinstance(
            min_score, (int, float)) or not math.isfinite(min_score)):
        raise InvalidArgument(f"min_score must be a finite number, not {min_score!r}")


def engine(value: object) -> None:
    """An e5-small engine as the CLI takes it: one of the names, spelled so."""
    from .embedders import ENGINES

    if value is not None and value not in ENGINES:
        raise InvalidArgument(f"engine {value!r} is not one of {', '.join(ENGINES)}")


def build(layout: str | None, centering: str | None, chunk_tokens: int | None,
          chunk_overlap: int | None, batch_size: int | None, commit_every: int | None,
          engine_name: str | None = None) -> None:
    """``build_index``'s settings, before the index folder is touched (a bad layout once
    embedded everything, then left a config.json every command refused)."""
    from .index_dir import CENTERINGS, LAYOUTS

    engine(engine_name)
    if layout is not None and layout not in LAYOUTS:
        raise InvalidArgument(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if centering is not None and centering not in CENTERINGS:
        raise InvalidArgument(f"centering {centering!r} is not one of {', '.join(CENTERINGS)}")
    if chunk_tokens is not None:
        whole(chunk_tokens, "chunk_tokens", 16, 8192)
    if chunk_overlap is not None:
        whole(chunk_overlap, "chunk_overlap", 0, 8191)
    for value, what in ((batch_size, "batch_size"), (commit_every, "commit_every")):
        if value is not None:
            whole(value, what, 1)
