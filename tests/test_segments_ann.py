"""Approximate segments (real FAISS files): tombstones are passage ids, never row numbers."""

from __future__ import annotations

import numpy as np
import pytest

from xsearch import segments as S


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", [S.HNSW, S.IVF_SQ8])
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


@pytest.mark.parametrize("kind", [S.HNSW, S.IVF_SQ8])
def test_ann_segment_reconstructs_by_passage_id(tmp_path, kind):
    """Deletes read vectors back by passage id (per-language sums); ids start at 1, not 0."""
    vectors = _unit(1500, seed=1)
    ids = np.arange(1, 1501, dtype=np.int64) * 3
    info = S.write_segment(tmp_path, "s00000002-fra_Latn", ids, vectors, kind)
    seg = S.Segment(tmp_path, info, "fra_Latn", 2)
    assert np.array_equal(seg.all_ids(), ids)
    got = seg.reconstruct(np.array([3, 4500], dtype=np.int64))
    assert np.allclose(got, vectors[[0, 1499]], atol=0.02)
