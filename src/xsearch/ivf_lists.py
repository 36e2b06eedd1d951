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
    ids, lists, offsets = [], [], []
    for i in range(index.nlist):
        list_ids = _list_view(index, i)[0]
        if len(list_ids):
            ids.append(list_ids.copy())
            lists.append(np.full(len(list_ids), i, dtype=np.int32))
            offsets.append(np.arange(len(list_ids), dtype=np.int32))
    if not ids:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.astype(np.int32), empty.astype(np.int32)
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], np.concatenate(lists)[order], np.concatenate(offsets)[order]


def _list_view(index, i: int, views: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, codes) of inverted list ``i``: numpy views of FAISS's own arrays, no copies;
    kept in ``views`` when given (a segment's lists never change)."""
    view = None if views is None else views.get(i)
    if view is None:
        faiss = _faiss()
        invlists, n = index.invlists, index.invlists.list_size(i)
        view = (faiss.rev_swig_ptr(invlists.get_ids(i), n),
                faiss.rev_swig_ptr(invlists.get_codes(i), n * index.code_size)
                .reshape(n, index.code_size))
        if views is not None:
            views[i] = view
    return view


def _code_rows(index, lists: np.ndarray) -> np.ndarray:
    """Room for the codes of vectors of these lists, as sa_decode takes them: each row
    starts with its list number (the coarse code)."""
    coarse = index.coarse_code_size()
    codes = np.empty((len(lists), coarse + index.code_size), dtype=np.uint8)
    codes[:, :coarse] = np.asarray(lists).astype("<i8").view(np.uint8).reshape(-1, 8)[:, :coarse]
    return codes


def decode(index, lists: np.ndarray, offsets: np.ndarray, views: dict | None = None
           ) -> np.ndarray:
    """Vectors at (list, offset): their codes, gathered list by list (one sort groups them;
    ``views`` keeps each list's views, see _list_view), through sa_decode."""
    lists, offsets = np.asarray(lists), np.asarray(offsets)
    codes = _code_rows(index, lists)
    coarse = index.coarse_code_size()
    order = np.argsort(lists, kind="stable")
    grouped = lists[order]
    heads = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if len(lists) else []
    for a, b in zip(list(heads), [*list(heads)[1:], len(lists)], strict=True):
        at = order[a:b]
        codes[at, coarse:] = _list_view(index, int(grouped[a]), views)[1][offsets[at]]
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
    """(passage ids, decoded vectors) at these (list << 32) | offset pairs. ``views`` keeps
    each list's views (_list_view). One pair at a time: a query's few candidates cost 2 us
    each; grouping them by list first, as :func:`decode` does for many, measured 0.28-0.32
    against 0.16-0.18 ms a query at 1M."""
    lists, offsets = pairs >> 32, pairs & 0xFFFFFFFF
    ids = np.empty(len(pairs), dtype=np.int64)
    codes = _code_rows(index, lists)
    coarse = index.coarse_code_size()
    for j, (i, o) in enumerate(zip(lists.tolist(), offsets.tolist(), strict=True)):
        list_ids, list_codes = _list_view(index, i, views)
        ids[j] = list_ids[o]
        codes[j, coarse:] = list_codes[o]
    return ids, index.sa_decode(codes) if len(pairs) else np.zeros((0, index.d), np.float32)


def code_error(index) -> float:
    """An upper bound of |p - p_stored| for a unit vector p (half a quantisation step in
    every dimension): the stored vectors' norms are within it of 1."""
    trained = _faiss().vector_to_array(index.sq.trained)
    return float(np.linalg.norm(trained[index.d:] / 255.0) / 2.0) + 1e-6
