"""Where the benchmarks keep what they build outside the repository (indexes, embedding caches).

``XSEARCH_BENCH_HOME`` moves it; the default is ``~/.cache/xsearch-bench``. The SIB-200
embedding cache is what ``xsearch bench --split all --cache HOME/cache`` writes.
"""

from __future__ import annotations

import os
from pathlib import Path

BENCH_HOME = Path(os.environ.get("XSEARCH_BENCH_HOME", Path.home() / ".cache" / "xsearch-bench"))
EMBED_CACHE = BENCH_HOME / "cache" / "embeddings.sqlite"
