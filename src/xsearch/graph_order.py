"""Rows of a graph segment laid out for locality (neighbours near each other in memory), and
finding a segment's row by passage id.

An HNSW search at 1M passages is bound by memory latency: it reads a few hundred vectors at
random from files of ~40 MB a language, far beyond the cache. Rows grouped by k-means cluster
put a node's graph neighbours (mostly its near vectors) in nearby pages, so a search touches
fewer pages and DRAM rows. The graph itself is built first, in id order, and only renamed
(``permute_entries``): a search visits the same nodes and returns the same scores.
Measured on the 1M scale benchmark (18 centred graphs of 55k rows; the same index built both
ways, both in the page cache; `benchmarks/scale_ab.py --a-index <id order> --b-index <laid
out>`): warm search p50 0.78x (pairs 0.76-0.80; 4.06-4.37 against 5.26-5.44 ms), recall@10
identical (0.9543); the k-means added ~60 s to a 320 s build. Clusters of ~54 rows alone gave
0.83x (pairs 0.77-0.87); grouping near clusters too, 0.98x that (0.94-1.00). FAISS's search
alone, by cluster size: 0.83x with ~54 rows, 0.89x with ~215, 0.92x with ~13.
"""

from __future__ import annotations

import numpy as np

#: Rows per k-means cluster of the layout (1,024 clusters for a 55k segment).
ROWS_PER_CLUSTER = 54
KMEANS_ITERATIONS = 6
#: Fewer rows than this make too few clusters to order anything (and fit the cache anyway).
MIN_ROWS = 8 * ROWS_PER_CLUSTER


def locality_order(unit: np.ndarray, seed: int = 1) -> np.ndarray:
    """A permutation of the rows of ``unit`` (unit vectors) that groups near rows: row i of
    the laid-out segment is row ``order[i]`` of the given one. Identity for small segments."""
    n, dim = unit.shape
    if n < MIN_ROWS:
        return np.arange(n, dtype=np.int64)
    import faiss  # noqa: PLC0415 - heavy, kept off the start-up path

    unit = np.ascontiguousarray(unit, dtype=np.float32)
    clusters = max(2, n // ROWS_PER_CLUSTER)
    km = faiss.Kmeans(dim, clusters, niter=KMEANS_ITERATIONS, seed=seed, verbose=False,
                      spherical=True, max_points_per_centroid=ROWS_PER_CLUSTER + 10)
    km.train(unit)
    _, assign = km.index.search(unit, 1)
    # Near clusters next to each other too: the clusters grouped by a k-means of their
    # centroids (sqrt(clusters) groups), clusters of one group side by side.
    centroids = km.centroids
    groups = max(1, round(np.sqrt(clusters)))
    top = faiss.Kmeans(dim, groups, niter=20, seed=seed, verbose=False, spherical=True,
                       min_points_per_centroid=1)
    top.train(centroids)
    _, group = top.index.search(centroids, 1)
    rank = np.empty(clusters, dtype=np.int64)
    rank[np.lexsort((np.arange(clusters), group[:, 0]))] = np.arange(clusters)
    return np.argsort(rank[assign[:, 0]], kind="stable").astype(np.int64)


def permute_graph(index, order: np.ndarray) -> None:
    """Lay out an ``IDMap,HNSW...`` index's rows in ``order`` (in place): the graph, its
    stored vectors and its id map alike."""
    import faiss  # noqa: PLC0415

    if np.array_equal(order, np.arange(len(order))):
        return
    ids = faiss.rev_swig_ptr(index.id_map.data(), int(index.ntotal)).copy()
    faiss.downcast_index(index.index).permute_entries(order)
    faiss.copy_array_to_vector(np.ascontiguousarray(ids[order], dtype=np.int64), index.id_map)


def id_rows(row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(the ids sorted, the row holding each; None where rows already hold ascending ids, as
    segments written before the layout did). Raises ValueError on a repeated id."""
    if len(row_ids) < 2 or bool(np.all(row_ids[1:] > row_ids[:-1])):
        return row_ids, None
    rows = np.argsort(row_ids, kind="stable")
    ids = row_ids[rows]
    if not np.all(ids[1:] > ids[:-1]):
        raise ValueError("a passage id appears twice")
    return ids, rows.astype(np.int32 if len(rows) < 2**31 else np.int64)


def locate(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position of each id in ``sorted_ids``, whether it is there), by bisection."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(sorted_ids):
        return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    at = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
    return at, sorted_ids[at] == ids
