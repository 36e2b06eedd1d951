"""xsearch: cross-lingual semantic search on your own machine.

The library behind the ``xsearch`` command (each name is imported on first use, so that
``import xsearch`` stays light)::

    from xsearch import Filters, Searcher, build_index

    build_index(["docs"], "index")                  # index (again: only what changed)
    with Searcher("index") as searcher:
        for hit in searcher.search("volcanic eruption", k=5, filters=Filters(languages="fra")):
            print(hit.rank, hit.language, hit.path, hit.snippet)

Errors are :class:`XsearchError` (a wrong argument: :class:`InvalidArgument`, also a
``ValueError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import threads as _threads  # noqa: F401  (before anything loads an OpenMP runtime)

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "build_index": "indexer", "IndexSummary": "index_summary",
    "Searcher": "search", "Filters": "hits", "Hit": "hits",
    "remove_files": "manage", "prune_missing": "manage", "list_files": "manage",
    "index_stats": "stats", "check_index": "check",
    "read_labels": "topics", "label_index": "topics",
    "XsearchError": "errors", "InvalidArgument": "errors",
}
__all__ = [
    "Filters", "Hit", "IndexSummary", "InvalidArgument", "Searcher", "XsearchError",
    "build_index", "check_index", "index_stats", "label_index", "list_files", "prune_missing",
    "read_labels", "remove_files",
]

if TYPE_CHECKING:
    from .check import check_index
    from .errors import InvalidArgument, XsearchError
    from .hits import Filters, Hit
    from .index_summary import IndexSummary
    from .indexer import build_index
    from .manage import list_files, prune_missing, remove_files
    from .search import Searcher
    from .stats import index_stats
    from .topics import label_index, read_labels


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xsearch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
