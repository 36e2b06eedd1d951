"""xsearch: cross-lingual semantic search on your own machine."""

from __future__ import annotations

from . import threads as _threads  # noqa: F401  (before anything loads an OpenMP runtime)

__version__ = "0.1.0"
