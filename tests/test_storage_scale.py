"""Filters and tombstones on approximate (HNSW / IVF-SQ8) segments, through the real write path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xsearch.index_dir import IndexConfig, IndexDir
from xsearch.search import Filters, Searcher
from xsearch.store import DocumentRow, PassageRow
from xsearch.writer import IndexWriter, prepare_folder, private_files, write_lock

DIM = 32
FILES = 300  # x 5 passages = 1500 vectors in one language: an ANN segment after the merge


def _files(lang_of, start: int, n: int, path_of=lambda f: f"/data/f{f}.txt") -> list[tuple]:
    """Files ``start``..``start + n`` of five passages each, as ``IndexWriter.write_many``
    takes them; file f is in language ``lang_of(f)``."""
    out = []
    for f in range(start, start + n):
        lang = lang_of(f)
        passages = [PassageRow(ordinal=j, char_start=0, char_end=5, text=f"text {f} {j}",
                               language=lang, language_score=1.0, n_tokens=3)
                    for j in range(5)]
        doc = DocumentRow(record_id="", title=str(f), content_hash=str(f), n_chars=5,
                          language=lang, passages=passages)
        out.append((path_of(f), (str(f), 5, 1.0), "text", [], [doc]))
    return out


def _build(path, layout, files_n=FILES, langs=("eng_Latn",)):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(files_n * 5, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    files = _files(lambda f: langs[f % len(langs)], 0, files_n,
                   lambda f: f"/data/d{f % 10}/f{f}.txt")
    _merged_then_more(path, layout, files, vectors, chunk=50)
    return vectors


def _merged_then_more(path, layout, first, v1, later=(), v2=None, chunk=100):
    """``first`` written ``chunk`` files at a time and merged into ANN segments, then
    ``later`` in flat segments."""
    config = IndexConfig(model="e5-small", dim=DIM, chunk_tokens=256, chunk_overlap=32,
                         layout=layout)
    with private_files():
        prepare_folder(path)
        with write_lock(path):
            w = IndexWriter.open(path, config)
            for at in range(0, len(first), chunk):
                w.write_many(first[at:at + chunk], v1[at * 5:(at + chunk) * 5])
            w.merge()
            if later:
                w.write_many(later, v2)
            w.finish()


@pytest.mark.parametrize("layout", ["hnsw", "ivf-sq8"])
def test_path_filter_and_tombstones_on_ann_segments(tmp_path, layout):
    path = tmp_path / "idx"
    vectors = _build(path, layout)
    s = Searcher(path)
    try:
        kinds = {r["kind"] for r in s.index.store.segments()}
        assert kinds == {{"hnsw": "hnsw-c", "ivf-sq8": "ivf-sq8-n"}[layout]}  # today's kinds
        q = vectors[7 * 5 + 2]  # a passage of /data/d7/f7.txt
        hits = s.search_vectors(q, k=10, filters=Filters(path_glob="/data/d7/*"),
                                per_document=0)[0]
        assert len(hits) == 10
        assert all(h.path.startswith("/data/d7/") for h in hits)
        assert hits[0].path == "/data/d7/f7.txt"
        assert not s.search_vectors(q, k=10, filters=Filters(path_glob="/nowhere/*"))[0]
    finally:
        s.close()

    # Delete f7 (tombstones in the ANN segment, under the rewrite threshold): its passages go,
    # every other passage can still be found, and k hits still come back.
    with write_lock(path):
        w = IndexWriter.open(path, None)
        w.delete_files(["/data/d7/f7.txt"])
        w.merge()
        w.finish()
    s = Searcher(path)
    try:
        assert len(s.index.store.tombstones()) == 1
        hits = s.search_vectors(q, k=10, per_document=0)[0]
        assert len(hits) == 10 and all(h.path != "/data/d7/f7.txt" for h in hits)
        for pid in range(1, 40, 3):  # live passages are their own best hit
            if 36 <= pid <= 40:
                continue
            top = s.search_vectors(vectors[pid - 1], k=1, per_document=0)[0]
            assert top and top[0].passage_id == pid
    finally:
        s.close()


def test_writing_new_files_does_not_read_the_segment_list_per_file(tmp_path):
    """A first build writes thousands of small segments before its merge: a write of new
    files must not read every segment row once per file (that made 1M builds quadratic)."""
    path = tmp_path / "idx"
    _build(path, "flat")
    statements: list[str] = []
    rng = np.random.default_rng(4)
    with write_lock(path):
        w = IndexWriter.open(path, None)
        w.store.db.conn.set_trace_callback(statements.append)
        files = []
        for f in range(40):
            p = PassageRow(ordinal=0, char_start=0, char_end=4, text=f"new {f}",
                           language="eng_Latn", language_score=1.0, n_tokens=2)
            doc = DocumentRow(record_id="", title="", content_hash=f"n{f}", n_chars=4,
                              language="eng_Latn", passages=[p])
            files.append((f"/data/new/f{f}.txt", (f"n{f}", 4, 1.0), "text", [], [doc]))
        vecs = rng.normal(size=(40, DIM)).astype(np.float32)
        w.write_many(files, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
        w.store.db.conn.set_trace_callback(None)
        w.finish()
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")
             and "FROM SEGMENTS" in s.upper()]
    assert reads == []
    s = Searcher(path)
    try:
        assert s.index.store.counts()["passages"] == FILES * 5 + 40
    finally:
        s.close()


def test_indexing_one_folder_reads_only_its_own_file_rows(tmp_path, monkeypatch):
    """Adding a file under FOLDER reads the file rows below FOLDER, not the whole table (an
    O(files) cost per `xsearch index` run on a big index); other folders' files stay."""
    from xsearch.indexer import build_index
    from xsearch.store import Store

    a, b, a2 = tmp_path / "a", tmp_path / "b", tmp_path / "a2"
    for d in (a, b, a2):
        d.mkdir()
    (a / "one.txt").write_text("The river flooded the village after heavy rain.\n")
    (b / "two.txt").write_text("Le train pour Lyon part à huit heures du matin.\n")
    (a2 / "three.txt").write_text("Die Schule bleibt morgen geschlossen.\n")  # "a2" sorts near "a"
    index = tmp_path / "idx"
    build_index([a, b, a2], index)

    def every_row(self):
        raise AssertionError("read every file row")

    monkeypatch.setattr(Store, "files", every_row)
    (a / "new.txt").write_text("Wakulima walivuna mahindi mengi mwaka huu.\n")
    (a / "one.txt").unlink()
    summary = build_index([a], index)
    assert summary.removed == 1
    idx = IndexDir.open(index)
    try:
        paths = sorted(Path(p).relative_to(tmp_path).as_posix() for p in idx.store.db.execute(
            "SELECT path FROM files").fetchall() for p in p)
    finally:
        idx.close()
    assert paths == ["a/new.txt", "a2/three.txt", "b/two.txt"]


@pytest.mark.parametrize("layout", ["flat", "hnsw", "ivf-sq8"])
def test_each_hit_reports_the_plain_cosine_of_its_stored_vector(tmp_path, layout):
    """The cosine a hit reports is carried from the search (not read back by id): it must be
    the query's dot product with the passage's stored vector (decoded, for IVF-SQ8), with and
    without tombstones and filters."""
    path = tmp_path / "idx"
    vectors = _build(path, layout)
    rng = np.random.default_rng(9)
    q = vectors[123] + 0.03 * rng.normal(size=DIM).astype(np.float32)
    q /= np.linalg.norm(q)

    def check(s, **kw):
        hits = s.search_vectors(q, k=10, per_document=0, **kw)[0]
        assert len(hits) == 10
        stored = s.index.vectors.vectors_of([h.passage_id for h in hits])
        assert np.allclose([h.cosine for h in hits], stored @ q, atol=1e-4)
        return hits

    s = Searcher(path)
    try:
        assert check(s)[0].passage_id == 124
        check(s, filters=Filters(path_glob="/data/d3/*"))
    finally:
        s.close()
    with write_lock(path):
        w = IndexWriter.open(path, None)
        w.delete_files(["/data/d4/f24.txt"])  # passages 121-125, the best hit among them
        w.merge()
        w.finish()
    s = Searcher(path)
    try:
        assert all(not 121 <= h.passage_id <= 125 for h in check(s))
    finally:
        s.close()


def test_path_globs_match_the_same_files_with_and_without_the_prefix_range(tmp_path,
                                                                           monkeypatch):
    """A --path glob with a literal folder prefix reads only the paths in that key range;
    every kind of glob must still allow exactly the files a full pass matches."""
    import os

    from xsearch import path_filter

    path = tmp_path / "idx"
    _build(path, "flat")
    monkeypatch.setattr(os, "getcwd", lambda: "/data")  # "d7/*" is then relative to /data
    full = path_filter.paths_that_may_match("*", "/data/")
    s = Searcher(path)
    try:
        for glob in ("/data/d7/*", "/data/d7/f7?.txt", "d7/*", "d7/f17.txt", "f7.txt",
                     "*/d3/f1*", "/data/d[13]/*", "/data/d3*", "/nowhere/*", "*.txt"):
            pruned = s._allowed_ids(Filters(path_glob=glob))
            with monkeypatch.context() as m:
                m.setattr(path_filter, "paths_that_may_match", lambda g, h: full)
                reference = s._allowed_ids(Filters(path_glob=glob))
            assert np.array_equal(pruned, reference), glob
        assert len(s._allowed_ids(Filters(path_glob="d7/*"))) == 30 * 5
        assert path_filter.paths_that_may_match("/data/d7/*", "/x/")[0] != full[0]
    finally:
        s.close()


def test_raw_hnsw_segments_of_an_earlier_version_search_and_check_repair_centres_them(
        tmp_path, monkeypatch):
    """Indexes whose HNSW graphs hold the raw vectors (before centred graphs) keep working;
    `xsearch check` says they are older, and `check --repair` rewrites them as centred graphs
    with the same passages, vectors and hits."""
    from click.testing import CliRunner

    from xsearch import segment_kinds as K
    from xsearch.cli import cli

    path = tmp_path / "idx"
    monkeypatch.setattr(IndexWriter, "_target_kind",
                        lambda self, n: K.HNSW if n >= 1000 else K.FLAT)
    vectors = _build(path, "hnsw")
    monkeypatch.undo()

    def top_hits(want_kind):
        s = Searcher(path)
        try:
            assert {r["kind"] for r in s.index.store.segments()} == {want_kind}
            ids = [s.search_vectors(vectors[pid - 1], k=3, per_document=0)[0]
                   for pid in (1, 700, 1500)]
            stored = s.index.vectors.vectors_of(list(range(1, 1501)))
            return [[h.passage_id for h in hits] for hits in ids], stored
        finally:
            s.close()

    before, stored_before = top_hits(K.HNSW)
    assert [hits[0] for hits in before] == [1, 700, 1500]
    runner = CliRunner()
    out = runner.invoke(cli, ["check", "--no-model", "--index", str(path)])
    assert out.exit_code == 0, out.output
    assert "note: 1 HNSW segment(s) of an earlier version" in out.output
    out = runner.invoke(cli, ["check", "--repair", "--no-model", "--index", str(path)])
    assert out.exit_code == 0, out.output
    assert "repaired: rewrote 1 HNSW segment(s) of an earlier version" in out.output
    after, stored_after = top_hits(K.HNSW_C)
    assert after == before
    assert np.abs(stored_after - stored_before).max() < 1e-6
    files = sorted(p.name for p in (path / "segments").iterdir())
    assert [f.split(".", 1)[1] for f in files] == ["faiss", "lo.npy", "norms.npy"]
    assert len({f.split(".")[0] for f in files}) == 1  # the raw graph was swept
    out = runner.invoke(cli, ["check", "--no-model", "--index", str(path)])
    assert out.exit_code == 0 and "note:" not in out.output, out.output


def test_approximate_segments_of_several_languages_score_as_the_exact_search(tmp_path):
    """The candidates of every language's HNSW segment are scored together (one matrix, each
    column with its own language's mean and spread): the hits and their scores are those of
    the same passages searched exactly (flat segments, scored one language at a time)."""
    langs = ("eng_Latn", "fra_Latn", "swh_Latn")
    vectors = _build(tmp_path / "flat", "flat", files_n=900, langs=langs)
    _build(tmp_path / "hnsw", "hnsw", files_n=900, langs=langs)
    flat, ann = Searcher(tmp_path / "flat"), Searcher(tmp_path / "hnsw")
    try:
        assert {r["kind"] for r in ann.index.store.segments()} == {"hnsw-c"}
        assert len(ann.index.store.segments()) == 3
        same = 0
        for pid in range(1, 4500, 150):
            q = vectors[pid - 1] + 0.5 * vectors[(pid * 7) % 4500]
            a = flat.search_vectors(q[None], k=10, per_document=0)[0]
            b = ann.search_vectors(q[None], k=10, per_document=0)[0]
            assert len({h.language for h in a}) > 1
            exact = {h.passage_id: (h.score, h.relevance) for h in a}
            for h in b:
                if h.passage_id in exact:
                    same += 1
                    assert abs(h.score - exact[h.passage_id][0]) < 2e-4
                    assert abs(h.relevance - exact[h.passage_id][1]) < 2e-3
        assert same >= 0.97 * 300
    finally:
        flat.close()
        ann.close()


def test_one_query_reads_only_the_centred_graph_rows_that_can_rank(tmp_path, monkeypatch):
    """A single query reads the rows of only those candidates of centred graphs that can reach
    its top k, judged from the graph's float16 scores (Centering.may_rank). The hits and their
    scores are exactly those of reading every graph, also once new passages have moved the
    languages' means away from the means the graphs were centred on."""
    from xsearch.centering import Centering

    langs = ("eng_Latn", "fra_Latn", "swh_Latn", "hin_Deva", "zho_Hans", "arb_Arab")
    rng = np.random.default_rng(5)
    offsets = {lang: rng.normal(size=DIM) * 0.15 for lang in langs}
    topics = {lang: rng.normal(size=(30, DIM)) * 0.1 for lang in langs}  # 50 passages each

    def vectors_of(files, shift=0.0):
        v = np.vstack([rng.normal(size=(5, DIM)) * 0.03 + offsets[f[4][0].language] + shift
                       + topics[f[4][0].language][int(f[4][0].title) % 30]
                       for f in files]).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    path = tmp_path / "idx"
    first = _files(lambda f: langs[f % 6], 0, 1800)  # 1,500 passages a language
    later = _files(lambda f: langs[f % 2], 1800, 300)  # eng and fra only, elsewhere
    v1, v2 = vectors_of(first), vectors_of(later, shift=rng.normal(size=DIM) * 0.05)
    _merged_then_more(path, "hnsw", first, v1, later, v2)  # eng's and fra's means move
    s = Searcher(path)
    seen: list[tuple[int, ...]] = []
    real = Centering.may_rank

    def spy(self, k, groups):
        keep = real(self, k, groups)
        seen.append((sum(len(g[2]) for g in groups), int(sum(m.sum() for m in keep)),
                     sum(bool(m.any()) for m in keep),
                     sum(len(m) for m in keep if m.any())))
        return keep

    def hits(qs):
        return [[(h.passage_id, h.score, h.relevance) for h in s.search_vectors(
            q[None], k=10, per_document=0)[0]] for q in qs]

    try:
        kinds = sorted(r["kind"] for r in s.index.store.segments())
        assert kinds.count("hnsw-c") == 6 and kinds.count("flat") == 2
        s.index.vectors.load()
        c = s.centering()
        moved = [np.linalg.norm(c.mean_for(seg.language) - seg.mu0)
                 for seg in (s.index.vectors.segment(r, False) for r in s.index.vectors.rows)
                 if seg.info.kind == "hnsw-c"]
        # Every language's mean (shrunk towards the pooled one) differs from its graph's own;
        # eng's and fra's moved further with the passages written after the merge.
        assert min(moved) > 1e-3 and max(moved) > 5 * min(moved)
        qs = np.vstack([v1[::300], v2[::100]])
        qs = qs + rng.normal(size=qs.shape).astype(np.float32) * 0.02
        graphs = [seg for seg in (s.index.vectors.segment(r, False)
                                  for r in s.index.vectors.rows) if seg.info.kind == "hnsw-c"]
        for q in qs[::4]:  # the bounds hold every candidate's exact score
            qc = c.transform(q[None], [None]).astype(np.float32)
            groups, exact = [], []
            for seg in graphs:
                ids, rows, qhi, norms = seg.centred_candidates(qc, 40)
                groups.append((seg.language, seg.mu0, qhi, norms))
                p = seg.row_vectors(rows)
                z, _ = c.span_scores(qc @ p.T, (p @ c.mean_for(seg.language, np.float32)
                                                ).astype(np.float64), [(seg.language, len(p))])
                exact.append(z[0])
            lo, hi = c.z_bounds(groups)
            z = np.concatenate(exact)
            assert (lo <= z).all() and (z <= hi).all()  # fails if either mean term is dropped
        monkeypatch.setattr(Centering, "may_rank", spy)
        pruned = hits(qs)
        monkeypatch.setattr(Centering, "may_rank", lambda self, k, groups: [
            np.ones(len(g[2]), dtype=bool) for g in groups])
        assert pruned == hits(qs)  # the same passages, scores and relevance, bit for bit
        # whole graphs are skipped...
        assert sum(6 - graphs for _, _, graphs, _ in seen) >= 2 * len(qs)
        # ... and of the graphs read, only the candidates that can rank (1,138 of their 1,824
        # here, of 3,240 in all)
        assert sum(kept for _, kept, _, _ in seen) < 0.7 * sum(read for *_, read in seen)
    finally:
        s.close()


@pytest.mark.parametrize("point", ["segment:norms-written", "merge:written", "merge:committed"])
def test_killed_while_merging_into_a_centred_hnsw_segment(tmp_path, point):
    """SIGKILL while the merge writes a centred segment (after its norms file, after both
    files, after the commit): the next writer sweeps what no committed state names, and the
    index holds every passage, searches right and checks clean."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    from xsearch.check import check_index

    path = tmp_path / "idx"
    merge = IndexWriter.merge
    IndexWriter.merge = lambda self, *a, **k: 0  # six flat segments, merged below
    try:
        vectors = _build(path, "hnsw")
    finally:
        IndexWriter.merge = merge
    script = textwrap.dedent(f"""
        from pathlib import Path
        from xsearch.writer import IndexWriter, write_lock
        with write_lock(Path({str(path)!r})):
            w = IndexWriter.open(Path({str(path)!r}), None)
            w.merge()
            w.finish()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "XSEARCH_FAULT": point}, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    new = {p.name for p in (path / "segments").iterdir() if ".norms." in p.name or
           ".lo." in p.name or p.suffix == ".faiss"}
    assert len(new) == (1 if point == "segment:norms-written" else 3)  # the new segment's
    with write_lock(path):
        w = IndexWriter.open(path, None)  # sweeps what no committed state names
        now = {p.name for p in (path / "segments").iterdir()}
        if point == "merge:committed":
            assert now == new  # the merged flat segments are gone, the new one stays
        else:
            assert not now & new and len(now) == 12  # six flat segments, two files each
        w.merge()
        w.finish()
    s = Searcher(path)
    try:
        rows = s.index.store.segments()
        assert [r["kind"] for r in rows] == ["hnsw-c"] and len(s.index.vectors) == 1500
        named = {r["name"] + ext for r in rows for ext in (".faiss", ".norms.npy", ".lo.npy")}
        assert {p.name for p in (path / "segments").iterdir()} == named
        for pid in (1, 750, 1500):
            assert s.search_vectors(vectors[pid - 1], k=1, per_document=0)[0][0].passage_id \
                == pid
    finally:
        s.close()
    assert check_index(path, model_check=False)["ok"]


def test_one_hit_per_document_reads_rows_only_as_far_as_it_walks(tmp_path, monkeypatch):
    """One hit per document (the CLI default) walks down the ranking past passages of
    documents already shown; it reads passage rows as it goes, so a ranking whose first k
    passages are all from different documents reads only those k, and one whose passages
    cluster by document still gives k documents, the best passage of each, in order."""
    from xsearch.store import Store

    rng = np.random.default_rng(11)
    centres = rng.normal(size=(200, DIM))
    # documents 0-99: five near copies of one vector; 100-199: five unrelated vectors
    vectors = np.vstack([centres[f] + rng.normal(size=(5, DIM)) * 0.02 if f < 100 else
                         rng.normal(size=(5, DIM)) for f in range(200)]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path / "idx"
    _merged_then_more(path, "flat", _files(lambda f: "eng_Latn", 0, 200), vectors)
    read: list[int] = []
    real = Store.hits
    monkeypatch.setattr(Store, "hits", lambda self, ids: read.extend(ids) or real(self, ids))
    s = Searcher(path)
    try:
        for f in (3, 150):
            q = vectors[f * 5]
            every = s.search_vectors(q, k=1000, per_document=0)[0]
            read.clear()
            hits = s.search_vectors(q, k=6, per_document=1)[0]
            best_of_each = list({h.document_id: h.passage_id for h in reversed(every)}.items())
            expected = [pid for _, pid in sorted(best_of_each, key=lambda dp: -next(
                h.score for h in every if h.passage_id == dp[1]))][:6]
            assert [h.passage_id for h in hits] == expected
            assert len({h.document_id for h in hits}) == 6
            if f == 150:  # unclustered: the first six passages are six documents
                assert len(read) == 6
            else:  # document 3's other four passages come next: read, skipped
                assert 10 <= len(read) <= 6 + 2 * 6
    finally:
        s.close()


def test_snippets_read_word_frequencies_only_for_query_words_their_passage_holds(
        tmp_path, monkeypatch):
    """A hit's snippet marks the query's informative words it holds. Their document
    frequencies are read for those words only (each read walks a posting list), plus the
    query's Thai-like pairs, which decide whether a lone matched pair counts: the marks are
    the same as with every query word's frequency read first."""
    from xsearch import lexical
    from xsearch.search import _max_share, flatten
    from xsearch.snippets import best_snippet

    texts = ["ต้นกาแฟออกดอก ปลูกอาราบิกาใต้ร่มไม้", "ปลูกอาราบิกาใต้ร่มไม้",
             "volcanic ash closed the airport", "the volcano near the airport erupted"]
    rows = [(f"/data/t{i}.txt", (str(i), 5, 1.0), "text", [], [DocumentRow(
        record_id="", title=str(i), content_hash=str(i), n_chars=len(t), language="und",
        passages=[PassageRow(ordinal=0, char_start=0, char_end=len(t), text=t,
                             language="und", language_score=1.0, n_tokens=8)])])
            for i, t in enumerate(texts)]
    filler = _files(lambda f: "und", 10, 60)  # 300 more passages: "text f j"
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(len(texts) + 300, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path / "idx"
    _merged_then_more(path, "flat", rows + filler, vectors, chunk=1000)
    asked: list[str] = []
    real = lexical.document_frequency
    monkeypatch.setattr(lexical, "document_frequency",
                        lambda conn, toks, *a, **k: asked.extend(toks) or real(conn, toks, *a, **k))
    s = Searcher(path)
    try:
        conn = s.index.store.db.conn
        n = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
        for query, pid in (("กาแฟ", 2), ("กาแฟ", 1), ("the volcano airport text", 4),
                           ("ash airport", 3)):
            asked.clear()
            hits = s.search_vectors(vectors[pid - 1], k=3, per_document=0, texts=[query],
                                    mode="dense")[0]
            assert hits[0].passage_id == pid
            qtoks = lexical.query_tokens(query)
            held = set().union(*(lexical.token_set(h.text) for h in hits))
            assert set(asked) <= held | {t for t in qtoks if "\u0e00" <= t[0] <= "\u0e7f"}
            terms = lexical.informative_tokens(conn, query, n_docs=n, max_share=_max_share(n))
            for h in hits:
                assert (h.snippet, h.highlights) == flatten(*best_snippet(h.text, query,
                                                                          terms=terms))
        # the stray pair กา of อาราบิกา is not marked for the query กาแฟ (passage 1, which
        # holds กาแฟ, ranks first: a query of one rare word puts the passages holding it first)
        hits = s.search_vectors(vectors[1], k=2, per_document=0, texts=["กาแฟ"])[0]
        assert [h.passage_id for h in hits] == [1, 2] and hits[1].highlights == []
        assert hits[0].highlights
    finally:
        s.close()


def test_a_long_run_over_many_languages_keeps_few_segments(tmp_path):
    """Each write adds a flat segment per language. Between writes, ten flat segments of a
    language of one size tier fold into one: a million passages in 30 languages once left
    ~30,000 segments, past the memory mappings a process may hold, and the merge at the end
    of the run failed ("segment ... is damaged")."""
    from xsearch import merging

    path = tmp_path / "idx"
    langs = ("eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn")
    n_files = 400
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(n_files * 5, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    files = _files(lambda f: langs[f % len(langs)], 0, n_files)
    config = IndexConfig(model="e5-small", dim=DIM, chunk_tokens=256, chunk_overlap=32,
                         layout="flat")
    most = 0
    with private_files():
        prepare_folder(path)
        with write_lock(path):
            w = IndexWriter.open(path, config)
            for at in range(0, n_files, 4):  # 100 writes, each a segment per language
                w.write_many(files[at:at + 4], vectors[at * 5:(at + 4) * 5])
                w.compact()
                per_lang = {}
                for r in w.store.segments():
                    per_lang[r["language"]] = per_lang.get(r["language"], 0) + 1
                most = max(most, *per_lang.values())
            assert w.compacted > 0
            assert most < 2 * merging.TIER
            ids = [int(i) for i in w.store.passage_ids()]
            assert ids == list(range(1, n_files * 5 + 1))  # written in order
            # every vector as written, whatever segment it is in now
            np.testing.assert_array_equal(w.index.vectors.vectors_of(ids), vectors)
            w.merge()
            w.finish()
    s = Searcher(path)
    try:
        assert len(s.index.store.segments()) == len(langs)
        hit = s.search_vectors(vectors[123], k=1, per_document=0)[0][0]
        assert hit.text == "text 24 3"
    finally:
        s.close()
