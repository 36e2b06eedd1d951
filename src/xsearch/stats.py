"""What an index holds: counts per language and topic, model, layout, sizes on disk."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .fresh_builds import SHAPING, unfinished_builds
from .index_dir import IndexDir
from .manage import missing_files


def index_stats(index_path: Path) -> dict:
    """A flat description of the index at ``index_path``."""
    index = IndexDir.open(Path(index_path))
    try:
        db = index.store.db
        config = asdict(index.config)
        languages = list(db.query(
            "SELECT p.language AS language, count(DISTINCT p.document_id) AS documents, "
            "count(*) AS passages FROM passages p GROUP BY p.language "
            "ORDER BY passages DESC, language"
        ))
        doc_languages = {r["language"]: r["n"] for r in db.query(
            "SELECT language, count(*) AS n FROM documents GROUP BY language")}
        for row in languages:
            row["documents_majority"] = doc_languages.get(row["language"], 0)
        topics = list(db.query(
            "SELECT topic, count(*) AS passages FROM passages WHERE topic IS NOT NULL "
            "GROUP BY topic ORDER BY passages DESC"
        ))
        return {
            "index": str(index.path),
            **{k: config[k] for k in ("model", "engine", "dim", "normalized", "metric", "layout",
                                      "centering", "schema_version", "chunk_tokens",
                                      "chunk_overlap")},
            **index.store.counts(),
            "missing_files": len(missing_files(index.store)),
            "segments": len(index.store.segments()),
            "vectors": len(index.vectors),
            "tombstones": sum(len(t) for t in index.store.tombstones().values()),
            "languages": languages,
            "topics": topics,
            "topic_method": _topic_method(index) if topics else None,
            "disk": index.disk_usage(),
            # A stopped --full rebuild: `xsearch index --full` with its paths goes on with it.
            "unfinished_build": _resumable(index, next(iter(unfinished_builds(index.path)),
                                                       None)),
        }
    finally:
        index.close()


def _topic_method(index: IndexDir) -> str:
    """Where the topics come from: "zero-shot" (label names) or a trained classifier's
    method ("logreg", "prototype", "finetune")."""
    from .trained_labels import classifier_method

    return classifier_method(index.path) or "zero-shot"


def _resumable(index: IndexDir, left: dict | None) -> dict | None:
    """A stopped rebuild, with ``resume_flags``: the ``xsearch index`` flags (besides --full
    and its paths) that go on with it, its settings where they differ from the live index's
    (which a --full keeps unless given)."""
    if left is not None:
        live = asdict(index.config)
        left["resume_flags"] = [
            str(x) for k, flag in SHAPING.items()
            if (v := left["settings"].get(k)) is not None and v != live.get(k)
            for x in (flag, v)]
    return left
