"""Re-indexing touches only what changed: unchanged, changed, deleted, renamed files, records."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import numpy as np

from xsearch import lexical
from xsearch.check import check_index
from xsearch.index_dir import IndexDir
from xsearch.indexer import build_index
from xsearch.search import Searcher


def _ids_agree(index_path) -> tuple[int, int]:
    """Every SQLite passage has exactly one live vector in a segment and its tokens in the
    lexical index, which holds nothing else; the index checks clean."""
    report = check_index(index_path, model_check=False)
    assert report["ok"], report["problems"]
    _lexical_agrees(index_path)
    idx = IndexDir.open(index_path)
    try:
        sql_ids = idx.store.passage_ids()
        live = np.sort(np.concatenate([ids for ids, _ in idx.vectors.iter_live()]))
        assert np.array_equal(live, sql_ids)
        assert len(idx.vectors) == len(sql_ids)
        return len(sql_ids), idx.store.counts()["documents"]
    finally:
        idx.close()


def _lexical_agrees(index_path) -> None:
    """The FTS5 table's document frequencies are those of the live passages' tokens: what the
    reader thread put in matches what a later delete takes out (both ``fts_text``)."""
    con = sqlite3.connect(index_path / "xsearch.db")
    try:
        want: Counter = Counter()
        for (text,) in con.execute("SELECT text FROM passages"):
            want.update(set(lexical.fts_text(text).split()))
        have = dict(con.execute(f"SELECT term, doc FROM {lexical.TABLE}_vocab"))
    finally:
        con.close()
    assert want and have == dict(want)


def _passages_of(index_path, name: str) -> list[int]:
    con = sqlite3.connect(index_path / "xsearch.db")
    rows = con.execute(
        "SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id "
        "WHERE d.path LIKE ?", ["%/" + name]).fetchall()
    con.close()
    return [r[0] for r in rows]


def test_unchanged_changed_deleted_renamed(small_corpus, tmp_path):
    index = tmp_path / "index"
    files = sorted(small_corpus.iterdir())
    first = build_index([small_corpus], index)
    assert (first.new, first.failed) == (len(files), 0)
    n_passages, n_docs = _ids_agree(index)
    assert n_docs == len(files) and n_passages >= len(files)

    again = build_index([small_corpus], index)
    assert (again.unchanged, again.new, again.changed, again.passages_embedded) == \
        (len(files), 0, 0, 0)

    # Changed: old passages of that file leave SQLite and FAISS, new ones are embedded.
    target = files[0]
    old_ids = _passages_of(index, target.name)
    target.write_text(target.read_text(encoding="utf-8") + "\n\nA new closing paragraph about "
                      "the importance of patience.\n", encoding="utf-8")
    changed = build_index([small_corpus], index)
    assert (changed.changed, changed.unchanged) == (1, len(files) - 1)
    assert changed.passages_embedded == len(_passages_of(index, target.name))
    assert not set(old_ids) & set(_passages_of(index, target.name))
    _ids_agree(index)

    # Deleted: its passages are gone from both stores.
    gone = files[1]
    gone_ids = _passages_of(index, gone.name)
    gone.unlink()
    deleted = build_index([small_corpus], index)
    assert (deleted.removed, deleted.passages_embedded) == (1, 0)
    assert deleted.passages_removed == len(gone_ids)
    n_after, docs_after = _ids_agree(index)
    assert docs_after == len(files) - 1

    # Renamed: same content under a new name is moved, not re-embedded.
    moved = files[2]
    new_path = moved.with_name("renamed_" + moved.name)
    moved.rename(new_path)
    renamed = build_index([small_corpus], index)
    assert (renamed.renamed, renamed.passages_embedded, renamed.removed) == (1, 0, 0)
    assert _ids_agree(index) == (n_after, docs_after)
    searcher = Searcher(index)
    try:
        paths = {h.path for h in searcher.search(new_path.read_text(encoding="utf-8")[:200], k=3)}
    finally:
        searcher.close()
    assert str(new_path.resolve()) in paths


def test_jsonl_only_changed_records_are_reembedded(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    records = [
        {"id": "a", "text": "Coffee cherries are picked by hand on the slopes."},
        {"id": "b", "text": "Le volcan a projeté des cendres sur les villages voisins."},
        {"id": "c", "text": "Die Mannschaft gewann das Finale mit zwei Toren."},
    ]
    path = docs / "news.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    first = build_index([docs], index)
    assert first.documents_written == 3
    records[1]["text"] = "Le volcan est entré en éruption hier soir; la lave avance lentement."
    del records[2]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    second = build_index([docs], index)
    assert (second.changed, second.documents_written) == (1, 1)
    assert second.passages_embedded == 1 and second.passages_removed == 2
    _, n_docs = _ids_agree(index)
    assert n_docs == 2


def test_full_rebuild_and_model_change_needs_full(small_corpus, tmp_path):
    index = tmp_path / "index"
    build_index([small_corpus], index)
    n_passages, _ = _ids_agree(index)
    rebuilt = build_index([small_corpus], index, full=True)
    assert rebuilt.new == len(list(small_corpus.iterdir()))
    assert _ids_agree(index)[0] == n_passages


def test_full_rebuild_keeps_the_topic_labels(small_corpus, tmp_path):
    # --full once dropped labels given with `xsearch label` (a trained classifier survived:
    # it lives beside the database); the rebuilt passages had no topic and --topic failed.
    from xsearch.topics import Label, label_index

    index = tmp_path / "index"
    build_index([small_corpus], index)
    labels = [Label("bread", "baking bread, flour and dough"),
              Label("volcano", "a volcanic eruption, lava and ash")]
    label_index(index, labels)

    def topics() -> tuple[list, dict]:
        con = sqlite3.connect(index / "xsearch.db")
        try:
            return (con.execute("SELECT name, description FROM labels ORDER BY position")
                    .fetchall(),
                    dict(con.execute("SELECT d.path || '#' || p.ordinal, p.topic FROM passages p "
                                     "JOIN documents d ON d.id = p.document_id")))
        finally:
            con.close()

    before = topics()
    assert before[0] == [(lb.name, lb.description) for lb in labels]
    assert set(before[1].values()) == {"bread", "volcano"}
    rebuilt = build_index([small_corpus], index, full=True)
    assert rebuilt.labels["passages"] == len(before[1])
    assert topics() == before
