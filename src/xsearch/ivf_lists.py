"""IVF-SQ8 segments read list by list: where each vector is, its decoding, and the distance to
the segment mean that lets one query decode only the candidates that can still rank.

A single query's IVF search proposes 3k + 8 candidates a segment (684 at 1M passages), and
decoding them all cost 1.2 ms of a 4.5-6.5 ms query: FAISS decodes one vector at a time. A
segment of kind ``ivf-sq8-n`` keeps, beside its lists, the mean mu0 of its vectors and for each
decoded vector p (in list order) n = sqrt(1 - 2 p·mu0 + |mu0|^2), the denominator the scores
use (centering.span_scores). With the search's own q'·p, that bounds every candidate's exact
score (Centering.list_bounds), and only those whose upper bound reaches the k-th best lower
bound are decoded.
"""

from __future__ import annotations

import numpy as np


def _faiss():
    import faiss  # noqa: PLC0415 - heavy, kept off the start-up path

    return faiss


def where(index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted ids, inverted list, offset in it) of every vector of an IVF index."""
    faiss = _faiss()
    invlists = index.invlists
    ids, lists, offsets = [], [], []
    for i in range(index.nlist):
        n = invlists.list_size(i)
        if n:
            ids.append(faiss.rev_swig_ptr(invlists.get_ids(i), n).copy())
            lists.append(np.full(n, i, dtype=np.int32))
            offsets.append(np.arange(n, dtype=np.int32))
    if not ids:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.astype(np.int32), empty.astype(np.int32)
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], np.concatenate(lists)[order], np.concatenate(offsets)[order]


def decode(index, lists: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Vectors at (list, offset): their codes, gathered list by list, through sa_decode."""
    faiss = _faiss()
    invlists = index.invlists
    size, coarse = index.code_size, index.coarse_code_size()
    codes = np.empty((len(lists), coarse + size), dtype=np.uint8)
    codes[:, :coarse] = np.asarray(lists).astype("<i8").view(np.uint8).reshape(-1, 8)[:, :coarse]
    for i in np.unique(lists):
        at = np.flatnonzero(lists == i)
        n = invlists.list_size(int(i))
        stored = faiss.rev_swig_ptr(invlists.get_codes(int(i)), n * size).reshape(n, size)
        codes[at, coarse:] = stored[np.asarray(offsets)[at]]
    return index.sa_decode(codes)


def search_params(nprobe: int, exclude: np.ndarray | None, cache: dict):
    """FAISS's IVF search parameters: made once per width (4 us each, 18 a query), except
    with tombstones to exclude."""
    faiss = _faiss()
    if exclude is not None and len(exclude):
        sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.ascontiguousarray(exclude,
                                                                              dtype=np.int64)))
        return faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
    if nprobe not in cache:
        cache[nprobe] = faiss.SearchParametersIVF(nprobe=nprobe)
    return cache[nprobe]


def list_starts(index) -> np.ndarray:
    """Where each list begins in list order (nlist + 1 entries)."""
    sizes = [index.invlists.list_size(i) for i in range(index.nlist)]
    return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


def denominators(index, mu0: np.ndarray) -> np.ndarray:
    """sqrt(1 - 2 p·mu0 + |mu0|^2) of every decoded vector p, in list order (float32)."""
    starts = list_starts(index)
    n = int(starts[-1])
    if not n:
        return np.zeros(0, dtype=np.float32)
    lists = np.repeat(np.arange(index.nlist, dtype=np.int64), np.diff(starts))
    offsets = np.arange(n, dtype=np.int64) - starts[lists]
    out = np.empty(n, dtype=np.float32)
    mu = np.asarray(mu0, dtype=np.float64)
    for a in range(0, n, 65536):  # decoded in slices: 55k vectors are 85 MB of float32
        p = decode(index, lists[a:a + 65536], offsets[a:a + 65536]).astype(np.float64)
        out[a:a + len(p)] = np.sqrt(np.maximum(1.0 - 2.0 * (p @ mu) + mu @ mu, 1e-12))
    return out


def search_pairs(index, q: np.ndarray, k: int, params) -> tuple[np.ndarray, np.ndarray]:
    """(q·p, (list << 32) | offset) of one query's k best, best first (-1 where none)."""
    faiss = _faiss()
    q = np.ascontiguousarray(q[:1], dtype=np.float32)
    coarse_d, coarse_i = index.quantizer.search(q, params.nprobe)
    dist = np.empty((1, k), dtype=np.float32)
    pairs = np.empty((1, k), dtype=np.int64)
    index.search_preassigned_c(1, faiss.swig_ptr(q), k, faiss.swig_ptr(coarse_i),
                               faiss.swig_ptr(coarse_d), faiss.swig_ptr(dist),
                               faiss.swig_ptr(pairs), True, params)
    return dist[0], pairs[0]


def rows_of_pairs(index, pairs: np.ndarray, views: dict) -> tuple[np.ndarray, np.ndarray]:
    """(passage ids, decoded vectors) at these (list << 32) | offset pairs. ``views`` keeps,
    per list, numpy views of its ids and codes (the segment's lists never change): gathering
    a query's few candidates through them costs 2 us each, where unique lists and per-list
    masks cost 0.2 ms a query at 1M passages."""
    faiss = _faiss()
    size, coarse = index.code_size, index.coarse_code_size()
    lists, offsets = pairs >> 32, pairs & 0xFFFFFFFF
    ids = np.empty(len(pairs), dtype=np.int64)
    codes = np.empty((len(pairs), coarse + size), dtype=np.uint8)
    codes[:, :coarse] = lists.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :coarse]
    invlists = index.invlists
    for j, (i, o) in enumerate(zip(lists.tolist(), offsets.tolist(), strict=True)):
        view = views.get(i)
        if view is None:
            n = invlists.list_size(i)
            view = views[i] = (faiss.rev_swig_ptr(invlists.get_ids(i), n),
                               faiss.rev_swig_ptr(invlists.get_codes(i), n * size).reshape(n, size))
        ids[j] = view[0][o]
        codes[j, coarse:] = view[1][o]
    return ids, index.sa_decode(codes) if len(pairs) else np.zeros((0, index.d), np.float32)


def code_error(index) -> float:
    """An upper bound of |p - p_stored| for a unit vector p (half a quantisation step in
    every dimension): the stored vectors' norms are within it of 1."""
    trained = _faiss().vector_to_array(index.sq.trained)
    return float(np.linalg.norm(trained[index.d:] / 255.0) / 2.0) + 1e-6
