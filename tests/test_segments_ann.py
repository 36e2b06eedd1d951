"""Approximate segments (real FAISS files): tombstones are passage ids, never row numbers."""

from __future__ import annotations

import os

import numpy as np
import pytest

from xsearch import segment_kinds as K
from xsearch import segments as S


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _today_and_older(tmp_path, monkeypatch, kind: str, older_factory: str, ids, vectors):
    """The same vectors as a segment of today's factory string and of an earlier version's."""
    today = S.write_segment(tmp_path, "s00000001-spa_Latn", ids, vectors, kind)
    monkeypatch.setitem(K.FACTORY, kind, older_factory)
    older = S.write_segment(tmp_path, "s00000002-spa_Latn", ids, vectors, kind)
    return S.Segment(tmp_path, today, "spa_Latn", 1), S.Segment(tmp_path, older, "spa_Latn", 2)


@pytest.mark.parametrize("kind", [K.HNSW, K.HNSW_C, K.IVF_SQ8])
def test_ann_segment_excludes_tombstoned_passage_ids(tmp_path, kind):
    vectors = _unit(2000)
    ids = np.arange(5000, 7000, dtype=np.int64)  # passage ids far from row numbers 0..1999
    info = S.write_segment(tmp_path, "s00000001-eng_Latn", ids, vectors, kind)
    seg = S.Segment(tmp_path, info, "eng_Latn", 1)
    q = vectors[:1]
    _, top = seg.search(q, 3)
    assert top[0, 0] == 5000

    _, top = seg.search(q, 3, exclude=np.array([5000], dtype=np.int64))
    assert 5000 not in top[0]
    assert (top[0] >= 5000).all() and len(set(top[0].tolist())) == 3

    # Excluding a number that is only a row number, not a passage id, hides nothing.
    _, top = seg.search(q, 3, exclude=np.array([0], dtype=np.int64))
    assert top[0, 0] == 5000


@pytest.mark.parametrize("kind", [K.HNSW, K.HNSW_C, K.IVF_SQ8])
def test_ann_segment_reconstructs_by_passage_id(tmp_path, kind):
    """Deletes read vectors back by passage id (per-language sums); ids start at 1, not 0."""
    vectors = _unit(1500, seed=1)
    ids = np.arange(1, 1501, dtype=np.int64) * 3
    info = S.write_segment(tmp_path, "s00000002-fra_Latn", ids, vectors, kind)
    seg = S.Segment(tmp_path, info, "fra_Latn", 2)
    assert np.array_equal(seg.all_ids(), ids)
    got = seg.reconstruct(np.array([3, 4500], dtype=np.int64))
    assert np.allclose(got, vectors[[0, 1499]], atol=0.02)


def test_ivf_segment_of_an_older_version_with_a_direct_map_reads_back(tmp_path, monkeypatch):
    """IVF segments written by earlier versions carry FAISS's hash-table direct map; they
    decode to the same vectors and candidates as today's, which carry none."""
    vectors = _unit(1500, seed=2)
    ids = np.arange(1, 1501, dtype=np.int64) * 7
    new = S.write_segment(tmp_path, "s00000003-deu_Latn", ids, vectors, K.IVF_SQ8)
    build = S._build_faiss

    def with_map(kind, v, i):
        index = build(kind, v, i)
        index.set_direct_map_type(S._faiss().DirectMap.Hashtable)
        return index

    monkeypatch.setattr(S, "_build_faiss", with_map)
    old = S.write_segment(tmp_path, "s00000004-deu_Latn", ids, vectors, K.IVF_SQ8)
    a = S.Segment(tmp_path, new, "deu_Latn", 3)
    b = S.Segment(tmp_path, old, "deu_Latn", 4)
    assert a.index.direct_map.type == 0 and b.index.direct_map.type != 0
    want = np.array([7, 70, 10500], dtype=np.int64)
    assert np.array_equal(a.reconstruct(want), b.reconstruct(want))
    assert np.allclose(a.reconstruct(want), vectors[[0, 9, 1499]], atol=0.02)
    with pytest.raises(KeyError):
        a.reconstruct(np.array([8], dtype=np.int64))
    q = vectors[:2]
    ids_a, vecs_a = a.candidates(q, 20)
    ids_b, vecs_b = b.candidates(q, 20)
    assert np.array_equal(ids_a, ids_b) and np.array_equal(vecs_a, vecs_b)
    assert 7 in ids_a and len(ids_a) >= 20


def test_ivf_segments_keep_float16_centroids_and_read_float32_ones(tmp_path, monkeypatch):
    """New IVF segments hold their coarse centroids in float16 (half the memory a query
    reads); segments of earlier versions, with float32 centroids, search and decode alike."""
    faiss = S._faiss()
    vectors = _unit(3000, seed=5)
    ids = np.arange(1, 3001, dtype=np.int64) * 2
    a, b = _today_and_older(tmp_path, monkeypatch, K.IVF_SQ8, "IVF{nlist},SQ8", ids, vectors)
    assert isinstance(faiss.downcast_index(a.index.quantizer), faiss.IndexScalarQuantizer)
    assert isinstance(faiss.downcast_index(b.index.quantizer), faiss.IndexFlat)
    want = ids[[0, 500, 2999]]
    for seg in (a, b):
        assert np.allclose(seg.reconstruct(want), vectors[[0, 500, 2999]], atol=0.02)
        found, vecs = seg.candidates(vectors[:1], 10)
        assert found[0] == 2 and len(set(found.tolist())) == len(found) == 10
        assert np.allclose(vecs[0], vectors[0], atol=0.02)
    _, top_a = a.search(vectors[10:30], 5)
    _, top_b = b.search(vectors[10:30], 5)
    assert np.array_equal(top_a[:, 0], ids[10:30]) and np.array_equal(top_b[:, 0], ids[10:30])


def test_ivf_candidates_with_tombstones_match_the_decoded_ones(tmp_path):
    """FAISS cannot decode while a selector drops tombstones: that path looks vectors up by
    id instead, and must give the very vectors the selector-free path decodes."""
    vectors = _unit(1500, seed=3)
    ids = np.arange(100, 1600, dtype=np.int64)
    info = S.write_segment(tmp_path, "s00000005-ita_Latn", ids, vectors, K.IVF_SQ8)
    seg = S.Segment(tmp_path, info, "ita_Latn", 5)
    q = vectors[:3]
    ids_all, vecs_all = seg.candidates(q, 30)
    gone = ids_all[:2]
    ids_t, vecs_t = seg.candidates(q, 30, exclude=gone)
    assert not np.isin(gone, ids_t).any()
    both = np.intersect1d(ids_all, ids_t)
    assert len(both) >= 20
    assert np.array_equal(vecs_all[np.searchsorted(ids_all, both)],
                          vecs_t[np.searchsorted(ids_t, both)])


def test_hnsw_segment_of_an_older_version_with_idmap2_reads_back(tmp_path, monkeypatch):
    """HNSW segments written by earlier versions are IDMap2,HNSW32 files; today's are
    IDMap,HNSW24 read by bisection. Both give the stored vectors and the same neighbours."""
    vectors = _unit(1200, seed=4)
    ids = np.arange(1, 1201, dtype=np.int64) * 5
    a, b = _today_and_older(tmp_path, monkeypatch, K.HNSW, "IDMap2,HNSW32,Flat", ids, vectors)
    faiss = S._faiss()
    assert not isinstance(a.index, faiss.IndexIDMap2) and isinstance(b.index, faiss.IndexIDMap2)
    want = np.array([5000, 5, 3005], dtype=np.int64)  # any order
    assert np.array_equal(a.reconstruct(want), vectors[[999, 0, 600]])
    assert np.array_equal(b.reconstruct(want), vectors[[999, 0, 600]])
    with pytest.raises(KeyError):
        a.reconstruct(np.array([6], dtype=np.int64))
    ids_a, vecs_a = a.candidates(vectors[:2], 10, exclude=np.array([5], dtype=np.int64))
    assert 5 not in ids_a and 10 in ids_a
    assert np.array_equal(vecs_a, vectors[(ids_a // 5) - 1])
    ids_b, _ = b.candidates(vectors[:2], 10, exclude=np.array([5], dtype=np.int64))
    assert len(np.intersect1d(ids_a, ids_b)) >= 15


def _mapping_of(path) -> tuple[int, set[str]]:
    """(resident KiB, VmFlags) of this process's mappings of ``path`` (/proc/self/smaps)."""
    target, inside, total, flags = str(path.resolve()), False, 0, set()
    with open("/proc/self/smaps", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split(maxsplit=5)
            if "-" in fields[0] and not fields[0].endswith(":"):
                inside = len(fields) == 6 and fields[5].rstrip("\n") == target
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
            elif inside and fields[0] == "VmFlags:":
                flags.update(line.split()[1:])
    return total, flags


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux /proc only")
def test_an_opened_hnsw_segment_asks_for_huge_pages_and_leaves_nothing_resident(tmp_path):
    """FAISS's mmap read copies the graph's levels, offsets and ids out of the mapping; the
    pages it read stay resident beside the copies unless released. The mapping asks for huge
    pages (``hg``): HNSW reads vectors at random, and 2 MB folios save TLB misses. After the
    release a search faults back in what it touches and finds the same neighbours."""
    from xsearch.fileio import advise_mapped_file

    thp = os.path.isdir("/sys/kernel/mm/transparent_hugepage")  # else no huge pages to ask for
    vectors = _unit(6000, dim=384, seed=7)  # 9.2 MB of vectors, a 1.2 MB graph
    ids = np.arange(10, 6010, dtype=np.int64)
    info = S.write_segment(tmp_path, "s00000009-hin_Deva", ids, vectors, K.HNSW)
    path = tmp_path / (info.name + ".faiss")
    faiss = S._faiss()
    kept = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    held, flags = _mapping_of(path)
    assert held > 1000 and "hg" not in flags, held  # what a plain FAISS open leaves
    assert advise_mapped_file(path, huge=True) > 9_000_000
    held_after, flags = _mapping_of(path)
    assert held_after < 100 and ("hg" in flags) == thp
    del kept

    seg = S.Segment(tmp_path, info, "hin_Deva", 9)
    resident, flags = _mapping_of(seg.paths[0])
    assert resident < 100 and ("hg" in flags) == thp
    _, top = seg.search(vectors[[5, 4000]], 3)
    assert top[:, 0].tolist() == [15, 4010]
    assert np.array_equal(seg.reconstruct(np.array([15, 4010])), vectors[[5, 4000]])

    # IVF reads a few lists per query: whole 2 MB pages would hold more memory for nothing.
    ivf = S.write_segment(tmp_path, "s00000010-hin_Deva", ids, vectors, K.IVF_SQ8)
    seg = S.Segment(tmp_path, ivf, "hin_Deva", 10)
    assert "hg" not in _mapping_of(seg.paths[0])[1]


def _embedding_like(n: int, dim: int = 32, seed: int = 11) -> np.ndarray:
    """Unit vectors around a shared mean, with norms about it that vary (as e5's do)."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=dim)
    spread = rng.uniform(0.8, 1.2, size=(n, 1))  # ||p - mu|| varies passage to passage
    v = 3 * mean / np.linalg.norm(mean) + spread * rng.normal(size=(n, dim)) / np.sqrt(dim)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_centred_hnsw_segment_proposes_the_best_by_the_centred_cosine(tmp_path):
    """A centred segment stores u = (p - mu0) / n (float16 in the graph, the rest beside it)
    and [mu0, n...]: it reads p back to float32 rounding, and its 12 candidates hold the best
    passages by the score's own metric, q·(p - mu) / ||p - mu||, which a raw graph's 56 miss
    (it ranks by q·p)."""
    vectors = _embedding_like(4000)
    ids = np.arange(1, 4001, dtype=np.int64) * 2
    raw = S.Segment(tmp_path, S.write_segment(tmp_path, "s00000011-swh_Latn", ids, vectors,
                                              K.HNSW), "swh_Latn", 11)
    info = S.write_segment(tmp_path, "s00000012-swh_Latn", ids, vectors, K.HNSW_C)
    assert [p.name for p in sorted(tmp_path.glob("s00000012-*"))] == [
        "s00000012-swh_Latn.faiss", "s00000012-swh_Latn.lo.npy", "s00000012-swh_Latn.norms.npy"]
    assert info.nbytes == sum(p.stat().st_size for p in tmp_path.glob("s00000012-*"))
    seg = S.Segment(tmp_path, info, "swh_Latn", 12)
    assert np.allclose(seg.reconstruct(ids[[0, 1234, 3999]]), vectors[[0, 1234, 3999]],
                       atol=1e-6)
    ids_all, vecs_all = seg.all_vectors()
    assert np.array_equal(ids_all, ids) and np.abs(vecs_all - vectors).max() < 1e-6

    mu = vectors.mean(axis=0)
    centred = vectors - mu
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    queries = np.random.default_rng(12).normal(size=(40, 32)).astype(np.float32)
    got = {"raw": 0.0, "centred": 0.0}
    for q in queries:
        best = ids[np.argsort(-(centred @ q))[:10]]
        for name, s in (("raw", raw), ("centred", seg)):
            cand, vecs = s.candidates(q[None], s.fetch(10))
            assert np.allclose(vecs, vectors[cand // 2 - 1], atol=1e-6)
            got[name] += len(np.intersect1d(cand, best)) / 10 / len(queries)
    assert seg.fetch(10) < raw.fetch(10) and got["centred"] >= 0.95 > got["raw"], got
    # A plain search gives q·p, best first, like every other kind.
    scores, top = seg.search(queries[:2], 5)
    assert np.allclose(scores, np.take_along_axis(queries[:2] @ vectors.T, top // 2 - 1, 1),
                       atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()

    for part in ("norms", "lo"):
        path = tmp_path / f"s00000012-swh_Latn.{part}.npy"
        kept = path.read_bytes()
        path.write_bytes(b"damaged")
        with pytest.raises(S.CorruptIndexError):
            S.Segment(tmp_path, info, "swh_Latn", 12)
        path.write_bytes(kept)
