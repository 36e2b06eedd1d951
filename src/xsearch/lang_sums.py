"""Each language's exact vector sums in the index database: count, sum and sum of outer
products of its passages' vectors (means and covariances follow every write in O(changed)),
and the query-offset sums of a few texts embedded in both modes (``centering``)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import sqlite_utils


class LangSums:
    """The ``lang_stats`` and ``lang_offsets`` tables; :class:`xsearch.store.Store` has them."""

    db: sqlite_utils.Database

    def lang_stats(self, with_outer: bool = False) -> dict[str, tuple]:
        """language -> (n, sum) or (n, sum, outer) as float64 arrays."""
        cols = "language, n, sum" + (", outer" if with_outer else "")
        out = {}
        for row in self.db.execute(f"SELECT {cols} FROM lang_stats"):
            vec = np.frombuffer(row[2], dtype=np.float64)
            out[row[0]] = ((row[1], vec, unpack_outer(row[3], len(vec))) if with_outer
                           else (row[1], vec))
        return out

    def update_lang_stats(self, language: str, vectors: np.ndarray, sign: int = 1) -> None:
        """Add (sign=1) or remove (sign=-1) these vectors from the language's sums."""
        if not len(vectors):
            return
        v = np.asarray(vectors, dtype=np.float64)
        dim = v.shape[1]
        row = self.db.execute("SELECT n, sum, outer FROM lang_stats WHERE language = ?",
                              [language]).fetchone()
        if row:
            n, total = row[0], np.frombuffer(row[1], dtype=np.float64).copy()
            outer = unpack_outer(row[2], dim)
        else:
            n, total, outer = 0, np.zeros(dim), np.zeros((dim, dim))
        n += sign * len(v)
        total += sign * v.sum(axis=0)
        outer = outer + sign * (v.T @ v)
        if n <= 0:
            self.db.execute("DELETE FROM lang_stats WHERE language = ?", [language])
            return
        self.db.execute(
            "INSERT INTO lang_stats (language, n, sum, outer) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(language) DO UPDATE SET n=excluded.n, sum=excluded.sum, "
            "outer=excluded.outer",
            [language, n, total.tobytes(), pack_outer(outer)],
        )

    def lang_offsets(self) -> dict[str, tuple[int, np.ndarray, np.ndarray]]:
        """language -> (n, sum of query-mode vectors, sum of passage-mode vectors)."""
        return {r[0]: (r[1], np.frombuffer(r[2], dtype=np.float64),
                       np.frombuffer(r[3], dtype=np.float64))
                for r in self.db.execute("SELECT language, n, q_sum, p_sum FROM lang_offsets")}

    def add_lang_offset(self, language: str, q: np.ndarray, p: np.ndarray) -> None:
        """Add query- and passage-mode vectors of the same texts to a language's sums."""
        if not len(q):
            return
        old = self.lang_offsets().get(language)
        n = len(q) + (old[0] if old else 0)
        qs = np.asarray(q, dtype=np.float64).sum(axis=0) + (old[1] if old else 0.0)
        ps = np.asarray(p, dtype=np.float64).sum(axis=0) + (old[2] if old else 0.0)
        self.db.execute("INSERT OR REPLACE INTO lang_offsets (language, n, q_sum, p_sum) "
                        "VALUES (?, ?, ?, ?)", [language, n, qs.tobytes(), ps.tobytes()])

    def clear_lang_stats(self) -> None:
        self.db.execute("DELETE FROM lang_stats")


def pack_outer(outer: np.ndarray) -> bytes:
    """A symmetric sum of outer products as its upper triangle, row by row, in float32 (half
    the bytes of the whole matrix: 13 languages were 7.7 MB of data/corpus's 8.2 MB index)."""
    return np.ascontiguousarray(outer[_upper(len(outer))], dtype=np.float32).tobytes()


def unpack_outer(blob: bytes, dim: int) -> np.ndarray:
    """The (dim, dim) float64 matrix from :func:`pack_outer`'s bytes, or from the whole float32
    matrix that indexes written before it hold."""
    flat = np.frombuffer(blob, dtype=np.float32)
    if len(flat) == dim * dim:
        return flat.astype(np.float64).reshape(dim, dim)
    if len(flat) != dim * (dim + 1) // 2:
        raise ValueError(f"a sum of outer products of {len(flat)} values is not {dim}-d")
    out = np.empty((dim, dim))
    rows, cols = _upper(dim)
    out[rows, cols] = flat
    out[cols, rows] = flat
    return out


@functools.cache
def _upper(dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(dim)
