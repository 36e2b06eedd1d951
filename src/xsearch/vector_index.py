"""The FAISS half of an index: inner product over normalised vectors, ids = passage ids."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import CorruptIndexError

LAYOUT = "IDMap2,Flat"
#: Vectors (and queries) are centred on the index's mean vector, then L2-normalised, before the
#: inner product: it damps "hub" passages that are near everything (see hubness_probe.py).
CENTERED_LAYOUT = "Center,L2norm,IDMap2,Flat"
LAYOUTS = (LAYOUT, CENTERED_LAYOUT)


def _faiss():
    import faiss  # noqa: PLC0415 - a heavy import kept off `xsearch --help`

    return faiss


class VectorIndex:
    """A FAISS index keyed by passage id, saved by atomic replacement.

    With :data:`CENTERED_LAYOUT` the centring mean lives inside the FAISS file, so the vectors
    and the mean they were centred with are always replaced together.
    """

    def __init__(self, dim: int, layout: str = LAYOUT, index=None,
                 mean: np.ndarray | None = None) -> None:
        self.dim = dim
        self.layout = layout
        self.index = index if index is not None else self._build(dim, layout, mean)

    @staticmethod
    def _build(dim: int, layout: str, mean: np.ndarray | None):
        faiss = _faiss()
        if layout == LAYOUT:
            return faiss.index_factory(dim, layout, faiss.METRIC_INNER_PRODUCT)
        if layout != CENTERED_LAYOUT:
            raise CorruptIndexError(f"unknown FAISS layout {layout!r}")
        centre = faiss.CenteringTransform(dim)
        faiss.copy_array_to_vector(
            np.ascontiguousarray(np.zeros(dim) if mean is None else mean, dtype=np.float32),
            centre.mean)
        centre.is_trained = True
        index = faiss.IndexPreTransform(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))
        index.prepend_transform(faiss.NormalizationTransform(dim, 2.0))
        index.prepend_transform(centre)
        index.is_trained = True
        return index

    def _id_map(self):
        faiss = _faiss()
        if isinstance(self.index, faiss.IndexPreTransform):
            return faiss.downcast_index(self.index.index)
        return self.index

    def mean(self) -> np.ndarray | None:
        """The centring mean, or None for an uncentred layout."""
        faiss = _faiss()
        if not isinstance(self.index, faiss.IndexPreTransform):
            return None
        centre = faiss.downcast_VectorTransform(self.index.chain.at(0))
        return faiss.vector_to_array(centre.mean)

    @classmethod
    def load(cls, path: Path, dim: int, layout: str = LAYOUT) -> VectorIndex:
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ trace
            raise CorruptIndexError(f"FAISS file {path} is unreadable") from exc
        if index.d != dim:
            raise CorruptIndexError(f"FAISS file {path} has dimension {index.d}, expected {dim}")
        if isinstance(index, faiss.IndexPreTransform) != (layout == CENTERED_LAYOUT):
            raise CorruptIndexError(f"FAISS file {path} does not have layout {layout}")
        return cls(dim, layout, index)

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, then rename over ``path`` (atomic on POSIX)."""
        faiss = _faiss()
        path = Path(path)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        return faiss.vector_to_array(self._id_map().id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32),
                np.ascontiguousarray(ids, dtype=np.int64),
            )

    def remove(self, ids) -> int:
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids):
            return 0
        return int(self.index.remove_ids(ids))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest passages per query; ``allowed`` restricts the ids."""
        faiss = _faiss()
        k = max(1, min(k, len(self))) if len(self) else 1
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed is None:
            return self.index.search(q, k)
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        params = faiss.SearchParameters(sel=sel)
        if isinstance(self.index, faiss.IndexPreTransform):
            params = faiss.SearchParametersPreTransform(index_params=params)
        return self.index.search(q, k, params=params)
