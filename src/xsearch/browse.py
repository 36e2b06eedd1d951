"""Reads for browsing an open index: a passage with its neighbours, a document's passages,
languages with counts, labels, a short summary. Plain dicts out, ids in (never file paths)."""

from __future__ import annotations

from dataclasses import asdict

from .errors import NotFoundError
from .index_dir import IndexDir

# Scripts written right to left (ISO 15924), for the ``direction`` of a FLORES-style code.
RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Syrc", "Thaa", "Nkoo", "Adlm", "Samr", "Mand"})

_PASSAGE_COLUMNS = (
    "p.id AS passage_id, p.document_id, p.ordinal, p.char_start, p.char_end, p.text, "
    "p.language, p.language_score, p.n_tokens, p.topic, p.topic_score, d.path, d.record_id, "
    "d.title, d.language AS document_language"
)


def script_of(language: str | None) -> str | None:
    """``arb_Arab`` -> ``Arab``; None when the code names no script."""
    if not language or "_" not in language:
        return None
    return language.rsplit("_", 1)[1] or None


def direction(language: str | None) -> str:
    """``rtl`` for right-to-left scripts, else ``ltr``."""
    return "rtl" if script_of(language) in RTL_SCRIPTS else "ltr"


def _decorate(row: dict) -> dict:
    row["script"] = script_of(row.get("language"))
    row["direction"] = direction(row.get("language"))
    return row


def passage(index: IndexDir, passage_id: int, neighbours: int = 2) -> dict:
    """A passage, its document, and up to ``neighbours`` passages either side of it."""
    db = index.store.db
    rows = list(db.query(
        f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.document_id "
        "WHERE p.id = ?", [int(passage_id)]))
    if not rows:
        raise NotFoundError(f"no passage {passage_id} in the index")
    row = _decorate(rows[0])
    near = [_decorate(r) for r in db.query(
        f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.document_id "
        "WHERE p.document_id = ? AND p.ordinal BETWEEN ? AND ? ORDER BY p.ordinal",
        [row["document_id"], row["ordinal"] - neighbours, row["ordinal"] + neighbours])]
    return {
        **row,
        "before": [r for r in near if r["ordinal"] < row["ordinal"]],
        "after": [r for r in near if r["ordinal"] > row["ordinal"]],
    }


def document(index: IndexDir, document_id: int, limit: int = 1000) -> dict:
    """A document with its passages in order (at most ``limit`` of them)."""
    db = index.store.db
    docs = list(db.query(
        "SELECT id AS document_id, path, record_id, title, language, n_chars, n_passages, "
        "topic, topic_score FROM documents WHERE id = ?", [int(document_id)]))
    if not docs:
        raise NotFoundError(f"no document {document_id} in the index")
    doc = _decorate(docs[0])
    doc["passages"] = [_decorate(r) for r in db.query(
        f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.document_id "
        "WHERE p.document_id = ? ORDER BY p.ordinal LIMIT ?", [int(document_id), int(limit)])]
    return doc


def languages(index: IndexDir) -> list[dict]:
    """Passage languages with passage and document counts, most passages first."""
    return [_decorate(r) for r in index.store.db.query(
        "SELECT language, count(*) AS passages, count(DISTINCT document_id) AS documents "
        "FROM passages GROUP BY language ORDER BY passages DESC, language")]


def labels(index: IndexDir) -> list[dict]:
    """Topic labels given by ``xsearch label``, with how many passages carry each."""
    db = index.store.db
    counts = {r["topic"]: r["n"] for r in db.query(
        "SELECT topic, count(*) AS n FROM passages WHERE topic IS NOT NULL GROUP BY topic")}
    out = [{"name": r["name"], "description": r["description"],
            "passages": counts.pop(r["name"], 0)}
           for r in db.query("SELECT name, description FROM labels ORDER BY position")]
    # Topics left on passages whose label row is gone still deserve a facet.
    out += [{"name": k, "description": "", "passages": v} for k, v in sorted(counts.items())]
    return out


def summary(index: IndexDir) -> dict:
    """Counts, model and chunking of an open index (cheap: no FAISS or disk scan)."""
    config = asdict(index.config)
    db = index.store.db
    return {
        "index": str(index.path),
        **{k: config.get(k) for k in ("model", "engine", "dim", "normalized", "metric",
                                      "layout", "centering", "schema_version", "chunk_tokens",
                                      "chunk_overlap")},
        **{name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
           for name in ("files", "documents", "passages")},
        "languages": languages(index),
        "labels": labels(index),
    }
