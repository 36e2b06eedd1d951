"""One module per format family, all behind one reader interface.

A reader takes the file's raw bytes (already bounded by ``--max-mb``), its path (for
messages), the :class:`ReadOptions` and the file's :class:`Budget`, and returns a
:class:`ReadResult` or raises IngestError. Adding a format is one new module here that
decorates its reader with ``@register(".suffix", ...)`` and is listed in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from ..base import ReadOptions, ReadResult
from ..budget import Budget

Reader = Callable[[bytes, Path, ReadOptions, Budget], ReadResult]

_READERS: dict[str, Reader] = {}
_MODULES = ("text", "html", "pdf", "docx", "records")


def register(*suffixes: str) -> Callable[[Reader], Reader]:
    """Make the decorated function the reader of files ending in ``suffixes``."""

    def add(reader: Reader) -> Reader:
        for suffix in suffixes:
            _READERS[suffix.lower()] = reader
        return reader

    return add


def reader_for(suffix: str) -> Reader | None:
    return _READERS.get(suffix.lower())


def supported_suffixes() -> frozenset[str]:
    return frozenset(_READERS)


for _name in _MODULES:  # light modules: parsers are imported inside the readers
    importlib.import_module(f"{__name__}.{_name}")
