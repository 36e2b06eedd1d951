"""IVF-SQ8 segments decode only the candidates that can rank (ivf_lists, Centering.list_bounds):
real FAISS files written through IndexWriter, searched through Searcher."""

from __future__ import annotations

import numpy as np
from test_storage_scale import DIM, _files, _merged_then_more

from xsearch import vector_store
from xsearch.centering import Centering
from xsearch.search import Searcher
from xsearch.segments import Segment

LANGS = ("eng_Latn", "fra_Latn", "swh_Latn", "hin_Deva", "zho_Hans", "arb_Arab")


def _index(path):
    """Six languages of 1,500 passages in IVF segments, then more eng and fra passages in flat
    segments, which move those languages' means away from the segments' own."""
    rng = np.random.default_rng(7)
    offsets = {lang: rng.normal(size=DIM) * 0.15 for lang in LANGS}
    topics = {lang: rng.normal(size=(30, DIM)) * 0.1 for lang in LANGS}

    def vectors_of(files, shift=0.0):
        v = np.vstack([rng.normal(size=(5, DIM)) * 0.03 + offsets[f[4][0].language] + shift
                       + topics[f[4][0].language][int(f[4][0].title) % 30]
                       for f in files]).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    first = _files(lambda f: LANGS[f % 6], 0, 1800)
    later = _files(lambda f: LANGS[f % 2], 1800, 300)
    v1, v2 = vectors_of(first), vectors_of(later, shift=rng.normal(size=DIM) * 0.05)
    _merged_then_more(path, "ivf-sq8", first, v1, later, v2)
    qs = np.vstack([v1[::300], v2[::100]])
    return qs + rng.normal(size=qs.shape).astype(np.float32) * 0.02


def test_the_bounds_hold_every_candidates_exact_score(tmp_path):
    qs = _index(tmp_path / "idx")
    s = Searcher(tmp_path / "idx")
    try:
        kinds = sorted(r["kind"] for r in s.index.store.segments())
        assert kinds.count("ivf-sq8-n") == 6 and kinds.count("flat") == 2
        s.search_vectors(qs[:1], k=10, per_document=0)
        c = s.centering()
        segs = [seg for seg in (s.index.vectors.segment(r, False) for r in s.index.vectors.rows)
                if seg.info.kind == "ivf-sq8-n"]
        assert max(np.linalg.norm(c.mean_for(seg.language) - seg.mu0) for seg in segs) > 1e-2
        for q in qs[::3]:
            qc = c.transform(q[None], [None]).astype(np.float32)
            groups, exact = [], []
            for seg in segs:
                dist, pairs, dens, slack = seg.ivf_candidates(qc, 40)
                groups.append((seg.language, seg.mu0, dist, dens, slack))
                _, p = seg.ivf_rows(pairs)
                assert np.allclose(p @ qc[0], dist, atol=1e-5)  # the search's q'·p
                z, _ = c.span_scores(qc @ p.T, (p @ c.mean_for(seg.language, np.float32)
                                                ).astype(np.float64), [(seg.language, len(p))])
                exact.append(z[0])
            lo, hi = c.list_bounds(groups)
            z = np.concatenate(exact)
            assert (lo <= z).all() and (z <= hi).all()
            assert np.median(hi - lo) < 0.2 * np.median(np.abs(z))  # tight enough to prune
    finally:
        s.close()


def test_one_query_decodes_only_what_can_rank_and_finds_the_same_hits(tmp_path, monkeypatch):
    qs = _index(tmp_path / "idx")
    s = Searcher(tmp_path / "idx")
    decoded: list[int] = []
    real = Segment.ivf_rows

    def spy(self, pairs):
        decoded.append(len(pairs))
        return real(self, pairs)

    def hits():
        return [[(h.passage_id, h.score, h.relevance, h.cosine) for h in s.search_vectors(
            q[None], k=10, per_document=0)[0]] for q in qs]

    try:
        monkeypatch.setattr(Segment, "ivf_rows", spy)
        pruned = hits()
        per_query = sum(decoded) / len(qs)
        monkeypatch.setattr(Centering, "list_bounds", lambda self, groups: (
            np.full(sum(len(g[2]) for g in groups), -np.inf),
            np.full(sum(len(g[2]) for g in groups), np.inf)))
        decoded.clear()
        assert hits() == pruned  # every candidate decoded: the same hits, bit for bit
        assert per_query < 0.5 * sum(decoded) / len(qs)
        # and the same as the path that decodes as FAISS searches (batches, earlier versions)
        monkeypatch.setattr(vector_store, "IVF_SQ8_N", "none")
        for a, b in zip(hits(), pruned, strict=True):
            assert [h[0] for h in a] == [h[0] for h in b]
            assert np.allclose([h[1] for h in a], [h[1] for h in b], atol=1e-5)
    finally:
        s.close()
