"""Centred graph segments lay their rows out for locality (graph_order): real FAISS files.

The layout renames rows only: a search must return what the same graph in id order returns,
and every lookup by passage id (tombstones, reconstruct, all_ids) must still find its row.
"""

from __future__ import annotations

import numpy as np
import pytest

from xsearch import graph_order as G
from xsearch import segment_kinds as K
from xsearch import segments as S
from xsearch.errors import CorruptIndexError


def _clustered(n: int, dim: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    v = centres[rng.integers(0, 20, n)] + 0.4 * rng.normal(size=(n, dim))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def pair(tmp_path, monkeypatch):
    """The same vectors written twice: laid out (today) and in id order (earlier versions)."""
    vectors = _clustered(3000)
    ids = np.arange(3000, dtype=np.int64) * 5 + 11
    laid = S.write_segment(tmp_path, "s00000001-eng_Latn", ids, vectors, K.HNSW_C)
    monkeypatch.setattr(S, "locality_order", lambda unit: np.arange(len(unit)))
    plain = S.write_segment(tmp_path, "s00000002-eng_Latn", ids, vectors, K.HNSW_C)
    return (S.Segment(tmp_path, laid, "eng_Latn", 1), S.Segment(tmp_path, plain, "eng_Latn", 2),
            ids, vectors)


def test_rows_are_grouped_by_neighbourhood_not_by_id(pair):
    laid, plain, ids, vectors = pair
    row_ids = laid._hnsw_view()[0]
    assert not np.all(np.diff(row_ids) > 0)
    assert np.array_equal(plain._hnsw_view()[0], ids)
    # Adjacent rows are nearer each other than rows in id order are.
    stored = laid.row_vectors(np.arange(len(ids)))
    near = float(np.mean(np.sum(stored[1:] * stored[:-1], axis=1)))
    as_ids = float(np.mean(np.sum(vectors[1:] * vectors[:-1], axis=1)))
    assert near > as_ids + 0.2


def test_a_laid_out_graph_finds_what_the_id_ordered_one_finds(pair):
    laid, plain, _, vectors = pair
    rng = np.random.default_rng(3)
    queries = vectors[:40] + 0.2 * rng.normal(size=(40, vectors.shape[1])).astype(np.float32)
    for q in queries:
        d_a, i_a = laid.search(q[None], 10)
        d_b, i_b = plain.search(q[None], 10)
        assert np.array_equal(i_a, i_b)
        assert np.allclose(d_a, d_b, atol=1e-6)
        got = laid.centred_candidates(q[None], 12)
        want = plain.centred_candidates(q[None], 12)
        assert np.array_equal(got[0], want[0]) and np.allclose(got[3], want[3])


def test_lookups_by_passage_id_find_their_rows(pair):
    laid, _, ids, vectors = pair
    assert np.array_equal(laid.all_ids(), ids)
    want = ids[[0, 1, 1234, 2999]]
    assert np.allclose(laid.reconstruct(want), vectors[[0, 1, 1234, 2999]], atol=1e-5)
    all_ids, all_vectors = laid.all_vectors()
    assert np.array_equal(all_ids, ids) and np.allclose(all_vectors, vectors, atol=1e-5)
    with pytest.raises(KeyError):
        laid.reconstruct(np.array([12], dtype=np.int64))
    # Tombstones are passage ids: the best passage, excluded, is gone; nothing else is.
    _, top = laid.search(vectors[7:8], 5)
    assert top[0, 0] == ids[7]
    _, top = laid.search(vectors[7:8], 5, exclude=ids[7:8])
    assert ids[7] not in top[0] and len(set(top[0].tolist())) == 5


def test_a_repeated_id_in_a_laid_out_segment_is_reported_as_damage():
    assert G.id_rows(np.array([5, 9, 7], dtype=np.int64))[1].tolist() == [0, 2, 1]
    assert G.id_rows(np.array([5, 7, 9], dtype=np.int64))[1] is None
    with pytest.raises(ValueError):
        G.id_rows(np.array([5, 9, 5], dtype=np.int64))


def test_a_segment_whose_ids_repeat_fails_as_corrupt(tmp_path):
    vectors = _clustered(600, seed=4)
    ids = np.arange(600, dtype=np.int64) + 1
    info = S.write_segment(tmp_path, "s00000003-fra_Latn", ids, vectors, K.HNSW_C)
    seg = S.Segment(tmp_path, info, "fra_Latn", 3)
    row_ids = seg._hnsw_view()[0]
    row_ids[1] = row_ids[0]  # the view is FAISS's own id map, as a damaged file would load
    with pytest.raises(CorruptIndexError):
        seg.all_ids()


def test_small_segments_keep_id_order():
    unit = _clustered(G.MIN_ROWS - 1)
    assert np.array_equal(G.locality_order(unit), np.arange(len(unit)))
    order = G.locality_order(_clustered(G.MIN_ROWS * 2))
    assert sorted(order.tolist()) == list(range(G.MIN_ROWS * 2))
