"""Ingestion: find supported files and turn them into plain-text documents.

The pipeline, one module per stage: :mod:`.walk` finds files (excludes, ignore files, links,
special files), :mod:`.files` opens them safely, :mod:`.decode` turns bytes into normalised
text, :mod:`.budget` bounds size and time, and :mod:`.formats` holds one reader per format
family behind one interface (:func:`.formats.register`). :func:`read_file` ties them together.
"""

from __future__ import annotations

from .base import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_TEXT_BYTES,
    DEFAULT_READ_TIMEOUT,
    ReadOptions,
    ReadResult,
    SourceDoc,
)
from .budget import Budget, BudgetExceeded
from .decode import normalize_text, read_bytes_as_text
from .files import file_fingerprint
from .formats import supported_suffixes
from .reader import read_file
from .walk import WalkOptions, WalkResult, iter_files, walk

SUPPORTED_SUFFIXES: frozenset[str] = supported_suffixes()

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_TEXT_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "SUPPORTED_SUFFIXES",
    "Budget",
    "BudgetExceeded",
    "ReadOptions",
    "ReadResult",
    "SourceDoc",
    "WalkOptions",
    "WalkResult",
    "file_fingerprint",
    "iter_files",
    "normalize_text",
    "read_bytes_as_text",
    "read_file",
    "walk",
]
