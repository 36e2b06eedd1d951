"""BM25 computed in numpy (xsearch.bm25) is FTS5's bm25() to the bit, on a real index
database written through Store's transactions, with deletions, filters and ``also``."""

from __future__ import annotations

import random
import sqlite3
from unittest import mock

import pytest
from conftest import CORPUS, manifest

from xsearch import bm25, lexical
from xsearch import store as store_mod
from xsearch.store import DocumentRow, NeedsUpgradeError, PassageRow, Store


def _doc(n: int, texts: list[str]) -> DocumentRow:
    return DocumentRow(record_id=str(n), title="", content_hash=str(n), n_chars=1,
                       language="und", passages=[
                           PassageRow(ordinal=i, char_start=0, char_end=len(t), text=t,
                                      language="und", language_score=1.0, n_tokens=1)
                           for i, t in enumerate(texts)])


def _sentences() -> list[str]:
    out = []
    for row in manifest():
        if row["format"] in ("txt", "md"):
            text = (CORPUS / row["path"]).read_text(encoding="utf-8", errors="replace")
            out += [s.strip() for s in text.replace("।", ".").replace("。", ".").split(".")
                    if s.strip()]
    return out


def _written_store(tmp_path) -> tuple[Store, list[str]]:
    """Passages of every script of the sample corpus, some words repeated (frequencies above
    one), written in several transactions, then a few documents deleted."""
    rng = random.Random(7)
    sentences = _sentences()
    store = Store(tmp_path / "xsearch.db")
    doc_ids = []
    for batch in range(4):
        with store.transaction():
            for n in range(batch * 40, batch * 40 + 40):
                path = f"/c/{n}.txt"
                store.upsert_file(path, str(n), 1, 0.0, "txt")
                texts = []
                for _ in range(rng.randint(1, 4)):
                    words = rng.choice(sentences).split()
                    words += rng.sample(words, min(len(words), rng.randint(0, 3)))
                    texts.append(" ".join(rng.sample(words, len(words))))
                doc_ids.append(store.insert_document(path, _doc(n, texts))[0])
    with store.transaction():
        store.delete_documents(rng.sample(doc_ids, 20))
    return store, sentences


def test_numpy_bm25_equals_fts5s_bm25_to_the_bit(tmp_path):
    store, sentences = _written_store(tmp_path)
    conn = store.db.conn
    corpus = bm25.Corpus.load(conn, lexical.TABLE)
    live = [r[0] for r in conn.execute("SELECT id FROM passages")]
    assert corpus.rows == len(live)
    rng = random.Random(11)
    checked = 0
    for _ in range(150):
        words = rng.choice(sentences).split()
        query = " ".join(rng.sample(words, min(len(words), rng.randint(1, 8))))
        if rng.random() < 0.3:
            query += " nowhereword"
        allowed = set(rng.sample(live, 60)) if rng.random() < 0.3 else None
        also = rng.sample(live, 8)
        for kwargs in ({"max_share": None}, {"normalize": True, "max_share": 0.3}):
            want = lexical.search(conn, query, 5, allowed_ids=allowed, also=also, **kwargs)
            got = lexical.search(conn, query, 5, allowed_ids=allowed, also=also,
                                 corpus=corpus, **kwargs)
            assert got == want, query
            checked += bool(want)
    assert checked > 200
    # and the numpy path is what answered (no word fell back to FTS5)
    toks = lexical.query_tokens(sentences[0])
    assert bm25.search(conn, lexical.TABLE, toks, lexical.document_frequency(conn, toks), 5,
                       corpus, None, []) is not None


def test_lengths_are_written_in_the_transaction_that_writes_the_passages(tmp_path):
    store, _ = _written_store(tmp_path)
    conn = store.db.conn
    sizes = dict(conn.execute(f"SELECT id, sz FROM {lexical.TABLE}_docsize"))
    lengths = bm25.lengths_of(conn)
    assert {i: int(lengths[i]) for i in sizes} == \
        {i: bm25._varint(sz, 0)[0] for i, sz in sizes.items()}
    assert max(lengths) >= 128  # two-byte sizes among them
    before = bm25.lengths_of(conn).copy()
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_file("/c/new.txt", "x", 1, 0.0, "txt")
        store.insert_document("/c/new.txt", _doc(999, ["a passage that is rolled back"]))
        raise RuntimeError("crash before commit")
    assert (bm25.lengths_of(conn) == before).all()


def test_a_word_fts5_folds_otherwise_is_scored_by_fts5(tmp_path):
    """A word the vocabulary does not hold as written but FTS5 matches (its own case
    folding): the numpy path declines and FTS5's bm25() answers."""
    store = Store(tmp_path / "xsearch.db")
    conn = store.db.conn
    with store.transaction():
        store.upsert_file("/c/a.txt", "a", 1, 0.0, "txt")
        store.insert_document("/c/a.txt", _doc(1, ["volcano ash", "bread"]))
    corpus = bm25.Corpus.load(conn, lexical.TABLE)
    assert bm25.search(conn, lexical.TABLE, ["VOLCANO"], {"VOLCANO": 0}, 5, corpus, None,
                       []) is None
    assert bm25.search(conn, lexical.TABLE, ["volcano"], {"volcano": 1}, 5, corpus, None,
                       [])[0][0] == 1
    # a word in no passage (as FTS5 would store it too) costs no statement
    asked: list[str] = []
    conn.set_trace_callback(asked.append)
    got = bm25.search(conn, lexical.TABLE, ["volcano", "nowhere"], {"volcano": 1, "nowhere": 0},
                      5, corpus, None, [])
    conn.set_trace_callback(None)
    assert [p for p, _, _ in got] == [1]
    assert len([q for q in asked if not q.startswith("--")]) == 1  # (FTS5's own: "-- ...")
    assert bm25.stored_as_written("nowhere") and not bm25.stored_as_written("Nowhere")


def test_an_index_before_the_lengths_table_is_read_as_it_is_and_upgraded_by_a_writer(tmp_path):
    """A reader opens an index that lacks only the lengths (FTS5 scores, the same hits); a
    writer adds every length."""
    store, sentences = _written_store(tmp_path)
    path = store.path
    conn = store.db.conn
    live = [r[0] for r in conn.execute("SELECT id FROM passages")]
    want = bm25.lengths_of(conn)[live]
    query = sentences[3]
    hits = lexical.search(conn, query, 5, corpus=bm25.Corpus.load(conn, lexical.TABLE))
    conn.execute(f"DROP TABLE {bm25.LENGTHS}")
    conn.execute(f"DROP TABLE {lexical.TABLE}_instance")
    conn.execute("DELETE FROM _migrations WHERE name = 'm005_lexical_lengths'")
    store.close()
    reader = Store(path, readonly=True)
    assert bm25.Corpus.load(reader.db.conn, lexical.TABLE) is None
    assert lexical.search(reader.db.conn, query, 5) == hits
    reader.close()
    with pytest.raises(NeedsUpgradeError), mock.patch.object(
            store_mod, "READERS_MAY_SKIP", frozenset()):
        Store(path, readonly=True)  # a migration readers cannot skip is still asked for
    upgraded = Store(path)
    assert (bm25.lengths_of(upgraded.db.conn)[live] == want).all() and want.sum() > 1000
    assert sqlite3.connect(path).execute(
        f"SELECT count(*) FROM {lexical.TABLE}_instance").fetchone()[0] > 0


def test_ties_at_the_cut_are_broken_by_passage_id_as_fts5_breaks_them(tmp_path):
    """Passages with equal scores on both sides of k: numpy keeps FTS5's order (score, then
    id), and ``also`` gets the scores of those cut off; a filter that leaves none gives none."""
    store = Store(tmp_path / "xsearch.db")
    conn = store.db.conn
    with store.transaction():
        for n in range(70):
            store.upsert_file(f"/c/{n}.txt", str(n), 1, 0.0, "txt")
            store.insert_document(f"/c/{n}.txt", _doc(n, [
                "a loaf of bread" if n >= 30 else "volcano ash cloud" if n % 3
                else "volcano volcano ash cloud over the sea"]))
    corpus = bm25.Corpus.load(conn, lexical.TABLE)
    ids = [r[0] for r in conn.execute("SELECT id FROM passages ORDER BY id")]
    for k in (1, 4, 19, 20, 21, 22, 40):
        for kwargs in ({}, {"allowed_ids": set(ids[5:25])}, {"also": ids[::4]},
                       {"allowed_ids": {10_000}}):
            want = lexical.search(conn, "volcano ash", k, max_share=None, **kwargs)
            assert lexical.search(conn, "volcano ash", k, max_share=None, corpus=corpus,
                                  **kwargs) == want
    top = lexical.search(conn, "volcano ash", 22, max_share=None, corpus=corpus)
    assert len({s for _, s in top}) == 2 and [p for p, _ in top] == sorted(
        (p for p, _ in top), key=lambda p: (-dict(top)[p], p))
