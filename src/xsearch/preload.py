"""Start loading an index run's model before the rest of the indexer is imported.

The fast engine loads its tokenizer and compiled graph on background threads (0.5-0.6 s
here). Started first, that load overlaps the indexer's own imports (SQLite, FAISS, the
file readers: ~0.1 s) instead of following them; on a small corpus that is 2-5% of a run.
This is only a head start: ``build_index`` decides the model again and takes the same
embedder from ``get_embedder``'s cache when the guess was right.
"""

from __future__ import annotations

import json
from pathlib import Path


def start_index_model(paths: list[Path], index_path: Path, model: str | None, full: bool,
                      batch_size: int | None, engine: str | None) -> None:
    """Begin loading the model an index run at ``index_path`` will embed with (best effort:
    nothing is raised, and nothing starts when a path to index is missing)."""
    from .embedders import get_embedder
    from .errors import XsearchError

    if not paths or not all(Path(p).expanduser().exists() for p in paths):
        return  # the run fails at once; a load would only delay its exit
    chosen = model
    index_path = Path(index_path)
    if not full and (index_path / "xsearch.db").is_file():
        try:  # an existing index keeps its model (the committed config is checked later)
            chosen = json.loads((index_path / "config.json").read_text(encoding="utf-8"))["model"]
        except (OSError, ValueError, KeyError, TypeError):
            return
    try:
        get_embedder(chosen, batch_size=batch_size, engine=engine)
    except XsearchError:
        pass  # build_index raises it where it belongs
