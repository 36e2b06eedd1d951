"""Immutable vector segments: one language each, written once, named by SQLite's committed state.

A segment is either *flat* (``NAME.npy`` float32 rows + ``NAME.ids.npy`` sorted passage ids,
memory-mapped at query time) or a FAISS file (``NAME.faiss``: HNSW or IVF-SQ8 with the ids
inside). A *centred* HNSW segment (``hnsw-c``) holds each vector p as the unit vector
u = (p - mu0) / n, with mu0 the segment's mean: the graph is then searched by the metric the
ranking uses, q'·(p - mu_L) / ||p - mu_L||, not by raw q'·p (see HNSW_C_EF_SEARCH). Its graph
stores u in float16 (``hi``, half the bytes to read per distance); ``NAME.lo.npy`` holds what
float16 lost, (u - hi) * LO_SCALE in float16, and ``NAME.norms.npy`` mu0 then every n
(float32), so p = mu0 + n (hi + lo / LO_SCALE) reads back to float32 rounding.

Segments are never modified: new passages make new segments, deletions are tombstones in
SQLite, and merges write a new segment and drop the old ones."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CorruptIndexError
from .faults import point
from .fileio import advise_mapped_file, fsync_dir, full_checksum, quick_fingerprint
from .graph_order import id_rows, locality_order, locate, permute_graph
from .ivf_lists import (
    code_error,
    decode,
    denominators,
    list_starts,
    rows_of_pairs,
    search_pairs,
    search_params,
    where,
)
from .segment_kinds import (
    CENTRED_EXTRA,
    FACTORY,
    FLAT,
    GRAPHS,
    HNSW_C,
    HNSW_C_EF_SEARCH,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    IVF_FETCH,
    IVF_SQ8_N,
    IVFS,
    LO_SCALE,
    ivf_nprobe,
)
from .threads import search_threads

#: Every file a segment may leave behind; nothing else in ``segments/`` is ever deleted.
NAME_RE = re.compile(
    r"^s\d{8}-[A-Za-z0-9_]{1,40}(\.ids|\.norms|\.lo)?\.(npy|faiss)(\.tmp-\d+)?$")


def _faiss():
    import faiss  # noqa: PLC0415 - heavy, kept off the start-up path

    return faiss


def segment_name(seq: int, language: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_]", "_", language or "und")[:40] or "und"
    return f"s{seq:08d}-{safe}"


def files_of(name: str, kind: str) -> list[str]:
    if kind == FLAT:
        return [name + ".npy", name + ".ids.npy"]
    if kind == HNSW_C:
        return [name + ".faiss", name + ".norms.npy", name + ".lo.npy"]
    if kind == IVF_SQ8_N:
        return [name + ".faiss", name + ".norms.npy"]
    return [name + ".faiss"]


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    write(tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class SegmentInfo:
    """What SQLite records of a segment file."""

    name: str
    kind: str
    n: int
    nbytes: int
    fingerprint: str
    checksum: str


def write_segment(folder: Path, name: str, ids: np.ndarray, vectors: np.ndarray,
                  kind: str = FLAT) -> SegmentInfo:
    """Write a segment's files (fsync'd, renamed into place) and describe it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    order = np.argsort(ids, kind="stable")
    ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64)[order])
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)[order])
    if kind == FLAT:
        _write_atomic(folder / (name + ".npy"), lambda p: _save_npy(p, vectors))
        _write_atomic(folder / (name + ".ids.npy"), lambda p: _save_npy(p, ids))
    elif kind == HNSW_C:
        unit, norms = centre(vectors)
        index = _build_faiss(kind, unit, ids)
        layout = locality_order(unit)
        permute_graph(index, layout)
        unit, dim = unit[layout], unit.shape[1]
        norms = np.concatenate([norms[:dim], norms[dim:][layout]])
        # What float16 lost, taken from FAISS's own codes (its rounding is not numpy's).
        lo = ((unit - _graph_vectors(index)) * np.float32(LO_SCALE)).astype(np.float16)
        _write_atomic(folder / (name + ".norms.npy"), lambda p: _save_npy(p, norms))
        point("segment:norms-written")
        _write_atomic(folder / (name + ".lo.npy"), lambda p: _save_npy(p, lo))
        _write_faiss(folder / (name + ".faiss"), index)
    elif kind == IVF_SQ8_N:
        index = _build_faiss(kind, vectors, ids)
        mu0 = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
        both = np.concatenate([mu0, denominators(index, mu0)])
        _write_atomic(folder / (name + ".norms.npy"), lambda p: _save_npy(p, both))
        _write_faiss(folder / (name + ".faiss"), index)
    else:
        _write_faiss(folder / (name + ".faiss"), _build_faiss(kind, vectors, ids))
    fsync_dir(folder)
    paths = [folder / f for f in files_of(name, kind)]
    return SegmentInfo(name=name, kind=kind, n=len(ids), nbytes=sum(p.stat().st_size
                                                                    for p in paths),
                       fingerprint=quick_fingerprint(paths), checksum=full_checksum(paths))


def centre(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit rows u, [mu0, n...]) with vectors = mu0 + n u, mu0 their mean (float32). Read
    back, a vector differs from the one given by float32 rounding (~1e-7): the per-language
    sums, kept from the vectors as added, stay within their own float32 rounding."""
    mu0 = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = vectors - mu0
    norms = np.linalg.norm(centred, axis=1).astype(np.float32)
    unit = centred / np.maximum(norms, np.float32(1e-12))[:, None]
    return np.ascontiguousarray(unit, dtype=np.float32), np.concatenate([mu0, norms])


def _graph_vectors(index) -> np.ndarray:
    """An HNSW segment's stored vectors by row, as FAISS keeps them: float32 rows of a raw
    graph, float16 rows of a centred one (views of FAISS's own, maybe mapped, arrays)."""
    faiss = _faiss()
    n, d = int(index.ntotal), int(index.d)
    storage = faiss.downcast_index(faiss.downcast_index(index.index).storage)
    if isinstance(storage, faiss.IndexScalarQuantizer):
        codes = faiss.rev_swig_ptr(storage.codes.data(), n * storage.code_size)
        return codes.view(np.float16).reshape(n, d)
    return faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)


def _write_faiss(path: Path, index) -> None:
    _write_atomic(path, lambda p: _faiss().write_index(index, str(p)))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def _build_faiss(kind: str, vectors: np.ndarray, ids: np.ndarray):
    faiss = _faiss()
    dim = vectors.shape[1]
    if kind in GRAPHS:
        index = faiss.index_factory(dim, FACTORY[kind], faiss.METRIC_INNER_PRODUCT)
        faiss.downcast_index(index.index).hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        if not index.is_trained:  # float16 needs no training; a future codec might
            index.train(vectors)
        index.add_with_ids(vectors, ids)
        return index
    if kind in IVFS:
        nlist = int(max(1, min(4096, round(4 * np.sqrt(len(ids))))))
        index = faiss.index_factory(dim, FACTORY[kind].format(nlist=nlist),
                                    faiss.METRIC_INNER_PRODUCT)
        sample = vectors if len(vectors) <= 64 * nlist else vectors[
            np.random.default_rng(0).choice(len(vectors), 64 * nlist, replace=False)]
        index.train(sample)
        # No direct map: its hash table held ~40 bytes a vector in RAM (40 MB at 1M), and
        # Segment finds a passage's list and offset from the inverted lists themselves.
        index.add_with_ids(vectors, ids)
        return index
    raise CorruptIndexError(f"unknown segment kind {kind!r}")


class Segment:
    """A segment opened for reading. Flat segments are memory-mapped, never read whole."""

    def __init__(self, folder: Path, info: SegmentInfo, language: str, seg_id: int) -> None:
        self.info = info
        self.language = language
        self.id = seg_id
        self.paths = [folder / f for f in files_of(info.name, info.kind)]
        self._params: dict[int, object] = {}
        self._list_views: dict = {}  # an IVF segment's list views (ivf_lists._list_view)
        try:
            if info.kind == FLAT:
                self.vectors = np.load(self.paths[0], mmap_mode="r", allow_pickle=False)
                self.ids = np.load(self.paths[1], mmap_mode="r", allow_pickle=False)
                self.index = None
            else:
                faiss = _faiss()
                # Memory-map the vector codes: opening costs the graph, not the vectors.
                self.index = faiss.read_index(str(self.paths[0]), faiss.IO_FLAG_MMAP_IFC)
                if info.kind in (HNSW_C, IVF_SQ8_N):
                    # Plain views of the mappings: indexing a np.memmap costs 5 us more.
                    both = np.asarray(np.load(self.paths[1], mmap_mode="r", allow_pickle=False))
                    d, lo_ok = self.index.d, True
                    if info.kind == HNSW_C:
                        self._lo = np.asarray(np.load(self.paths[2], mmap_mode="r",
                                                      allow_pickle=False))
                        lo_ok = self._lo.shape == (info.n, d) and self._lo.dtype == np.float16
                    if not lo_ok or both.shape != (d + info.n,):
                        raise CorruptIndexError(f"segment {info.name}: side files do not match")
                    self.mu0 = np.array(both[:d], dtype=np.float32)
                    self._norms = both[d:]
                # Reading left the pages it copied resident (1.1 MB a 55k HNSW segment).
                # HNSW then reads vectors at random all over the file: 2 MB pages spare TLB
                # misses (warm search at 1M, page cache cold at open: 0.89-0.95x the time).
                # Not IVF: it reads a few lists, and whole 2 MB pages held 8% more memory.
                advise_mapped_file(self.paths[0], huge=info.kind in GRAPHS)
                self.vectors = self.ids = None
        except FileNotFoundError:
            raise
        except Exception as exc:  # numpy/faiss raise many types for a damaged file
            raise CorruptIndexError(f"segment {info.name} is unreadable") from exc
        n = len(self.ids) if self.ids is not None else int(self.index.ntotal)
        if n != info.n:
            raise CorruptIndexError(f"segment {info.name} holds {n} vectors, expected {info.n}")

    def __len__(self) -> int:
        return self.info.n

    def all_ids(self) -> np.ndarray:
        """Sorted passage ids (read once: a segment never changes)."""
        if self.ids is not None:
            return np.asarray(self.ids)
        return self._id_rows()[0] if self.info.kind in GRAPHS else self._ivf_where()[0]

    def _ivf_where(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sorted ids, inverted list, offset in it) of every vector of an IVF segment."""
        if getattr(self, "_where", None) is None:
            self._where = where(self.index)
        return self._where

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of these passage ids (exact for flat and HNSW, within float32 rounding for
        centred HNSW, decoded for IVF)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.ids is not None:
            rows, found = locate(np.asarray(self.ids), ids)
            if not found.all():
                raise KeyError("passage id not in segment")
            return np.asarray(self.vectors[rows], dtype=np.float32)
        if not len(ids):
            return np.zeros((0, self.index.d), dtype=np.float32)
        if self.info.kind in IVFS and self.index.direct_map.type == 0:  # NoMap
            return self._ivf_decode(ids)
        if self.info.kind in GRAPHS:
            return self._hnsw_rows(ids)
        try:
            return self.index.reconstruct_batch(np.ascontiguousarray(ids))
        except RuntimeError as exc:
            raise KeyError("passage id not in segment") from exc

    def _hnsw_rows(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of an HNSW segment by id: its id map, bisected, gives the rows of the
        graph's (memory-mapped) vector storage."""
        rows, found = self._hnsw_rows_of(ids)
        if not found.all():
            raise KeyError("passage id not in segment")
        return self.row_vectors(rows)

    def row_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of these graph rows (a centred segment's as mu0 + n u)."""
        rows = np.asarray(rows)
        if self.info.kind != HNSW_C:
            return self._hnsw_view()[1][rows]  # a copy: fancy indexing
        xb = self._hnsw_view()[1][rows].astype(np.float32)
        xb += self._lo[rows].astype(np.float32) * np.float32(1.0 / LO_SCALE)
        xb *= self._norms[rows][:, None]
        xb += self.mu0
        return xb

    def centred_candidates(self, q: np.ndarray, k: int, exclude: np.ndarray | None = None,
                           effort: int = 1) -> tuple[np.ndarray, ...]:
        """(ids, rows, q·hi, ||p - mu0||) of one query's k best rows of a centred graph: the
        search alone, for a caller that then reads only the rows worth it (row_vectors)."""
        dist, rows = (a[0] for a in self._hnsw_search(q, k, exclude, effort))
        dist, rows = dist[rows >= 0], rows[rows >= 0]
        return self._hnsw_view()[0][rows], rows, dist, self._norms[rows]

    def _hnsw_rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id, whether the segment holds it): the sorted ids, bisected."""
        sorted_ids, rows_of = self._id_rows()
        at, found = locate(sorted_ids, ids)
        return at if rows_of is None else rows_of[at].astype(np.int64), found

    def _id_rows(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(sorted ids, the row of each; None where row r holds the r-th id, as in segments
        written before graph_order): computed on the first lookup by id (3 ms a 55k
        segment: tombstones, deletes, filters, merges), which a plain search never makes."""
        if getattr(self, "_by_id", None) is None:
            try:
                self._by_id = id_rows(self._hnsw_view()[0])
            except ValueError as exc:
                raise CorruptIndexError(f"segment {self.info.name}: {exc}") from exc
        return self._by_id

    def _hnsw_view(self) -> tuple[np.ndarray, np.ndarray]:
        """(passage id of each row, stored vectors by row; see _graph_vectors): views of
        FAISS's own arrays, no copies. Rows are laid out for locality (graph_order), so the
        ids are in no order; _id_rows finds a row by id."""
        if getattr(self, "_hnsw_views", None) is None:
            faiss = _faiss()
            n, d = int(self.index.ntotal), int(self.index.d)
            if not n:
                self._hnsw_views = (np.zeros(0, dtype=np.int64), np.zeros((0, d), np.float32))
                return self._hnsw_views
            row_ids = faiss.rev_swig_ptr(self.index.id_map.data(), n)
            self._hnsw_views = (row_ids, _graph_vectors(self.index))
        return self._hnsw_views

    def _ivf_decode(self, ids: np.ndarray) -> np.ndarray:
        """Decode IVF vectors by id (their list and offset from _ivf_where)."""
        sorted_ids, lists, offsets = self._ivf_where()
        at, found = locate(sorted_ids, ids)
        if not found.all():
            raise KeyError("passage id not in segment")
        return decode(self.index, lists[at], offsets[at], self._list_views)

    def ivf_candidates(self, q: np.ndarray, k: int, effort: int = 1
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(q·p, list/offset pairs, denominators against mu0, code error) of one query's k
        best of an ivf-sq8-n segment without tombstones: the search alone, for a caller that
        then decodes only the candidates worth it (ivf_rows; see ivf_lists)."""
        k = max(1, min(k, self.info.n))
        _faiss().omp_set_num_threads(search_threads(1))
        dist, pairs = search_pairs(self.index, q, k, self._ivf_params(None, effort))
        dist, pairs = dist[pairs >= 0], pairs[pairs >= 0]
        if getattr(self, "_starts", None) is None:
            self._starts, self._slack = list_starts(self.index), code_error(self.index)
        dens = self._norms[self._starts[pairs >> 32] + (pairs & 0xFFFFFFFF)]
        return dist, pairs, dens, self._slack

    def ivf_rows(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids, decoded vectors) of ivf_candidates' pairs."""
        return rows_of_pairs(self.index, pairs, self._list_views)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self.all_ids()
        if self.ids is not None:
            return ids, np.asarray(self.vectors)
        return ids, self.reconstruct(ids)

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None,
               allowed: np.ndarray | None = None, effort: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k best rows per query; ``exclude`` are tombstoned ids,
        ``allowed`` (sorted) restricts to those ids with an exact search; ``effort``
        multiplies the approximate search's breadth (efSearch / nprobe)."""
        k = max(1, min(k, self.info.n))
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if self.ids is not None or allowed is not None:
            ids, mat = self._candidates(allowed)
            if exclude is not None and len(exclude) and len(ids):
                keep = ~np.isin(ids, exclude)
                ids, mat = ids[keep], mat[keep]
            return _exact_top_k(q, mat, ids, k)
        return self._ann_search(q, k, exclude, effort)

    def fetch(self, k: int) -> int:
        """How many candidates an approximate search proposes for a caller's k best: the
        raw graph and IVF rank by q'·p, which the scores reorder (see HNSW_C_EF_SEARCH)."""
        a, b = (1, CENTRED_EXTRA) if self.info.kind == HNSW_C else \
            IVF_FETCH if self.info.kind in IVFS else (4, 16)
        return min(self.info.n, a * k + b)

    def candidates(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None,
                   allowed: np.ndarray | None = None, effort: int = 1
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the union of each query's k best rows, ids unique (one query's
        best first, else sorted): what a caller rescores exactly. HNSW reads them from
        its storage by row, IVF decodes them as it finds them (FAISS cannot while a selector
        drops tombstones: then they are looked up by id)."""
        if self.index is not None and allowed is None:
            q = np.ascontiguousarray(queries, dtype=np.float32)
            k = max(1, min(k, self.info.n))
            if self.info.kind in GRAPHS:
                _, rows = self._hnsw_search(q, k, exclude, effort)
                # One query's rows are already distinct; np.unique costs 8 us a segment.
                rows = rows[rows >= 0] if len(q) == 1 else np.unique(rows[rows >= 0])
                return self._hnsw_view()[0][rows], self.row_vectors(rows)
            if exclude is None or not len(exclude):
                _, found, vecs = self._ann_search(q, k, None, effort, with_vectors=True)
                flat, vecs = found.reshape(-1), vecs.reshape(found.size, -1)
                if len(q) == 1:  # distinct already (np.unique cost 5 us a segment)
                    keep = flat >= 0
                    return flat[keep], vecs[keep]
                ids, first = np.unique(flat, return_index=True)
                keep = ids >= 0
                return ids[keep], vecs[first[keep]]
        _, found = self.search(queries, k, exclude=exclude, allowed=allowed, effort=effort)
        ids = np.unique(found[found >= 0])
        return ids, self.reconstruct(ids)

    def _candidates(self, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            return np.asarray(self.ids), self.vectors
        present = allowed[locate(self.all_ids(), allowed)[1]]
        return present, self.reconstruct(present)

    def _ann_search(self, q: np.ndarray, k: int, exclude: np.ndarray | None,
                    effort: int = 1, with_vectors: bool = False):
        """(scores, ids) of an approximate search; IVF ``with_vectors`` also gives the
        vectors it decoded (n, k, dim; rows of id -1 are meaningless)."""
        if self.info.kind in GRAPHS:
            dist, rows = self._hnsw_search(q, k, exclude, effort)
            if self.info.kind == HNSW_C:  # the graph's scores are q·u: give q·p, reordered
                dist, rows = _rescored(q, rows, self.row_vectors)
            return dist, np.where(rows >= 0, self._hnsw_view()[0][np.maximum(rows, 0)], -1)
        # One query gains nothing from OpenMP fan-out and loses much on a busy machine.
        _faiss().omp_set_num_threads(search_threads(len(q)))
        params = self._ivf_params(exclude, effort)
        if with_vectors:
            return self.index.search_and_reconstruct(q, k, params=params)
        return self.index.search(q, k, params=params)

    def _ivf_params(self, exclude: np.ndarray | None, effort: int):
        nprobe = ivf_nprobe(self.index.nlist, self.info.n, effort)
        return search_params(nprobe, exclude, self._params)

    def _hnsw_search(self, q: np.ndarray, k: int, exclude: np.ndarray | None,
                     effort: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of an HNSW search: the graph is searched by row (row r holds the
        r-th id), so tombstones become rows and found rows index the storage directly."""
        faiss = _faiss()
        faiss.omp_set_num_threads(search_threads(len(q)))
        sel = None
        if exclude is not None and len(exclude):
            at, found = self._hnsw_rows_of(exclude)
            rows = np.ascontiguousarray(at[found], dtype=np.int64)
            sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(rows)) if len(rows) else None
        ef = max((HNSW_C_EF_SEARCH if self.info.kind == HNSW_C else HNSW_EF_SEARCH) * effort,
                 k)
        if sel is not None:
            params = faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
        else:  # made once: building one through SWIG costs 10 us, a query makes 18
            params = self._params.get(ef)
            if params is None:
                params = self._params[ef] = faiss.SearchParametersHNSW(efSearch=ef)
        return self.index.index.search(q, k, params=params)


def _rescored(q: np.ndarray, rows: np.ndarray, vectors_of) -> tuple[np.ndarray, np.ndarray]:
    """(q·p, rows) of each query's found rows, best first (-inf / -1 where none was found)."""
    dist = np.full(rows.shape, -np.inf, dtype=np.float32)
    for i in range(len(q)):
        ok = rows[i] >= 0
        dist[i, ok] = vectors_of(rows[i, ok]) @ q[i]
    order = np.argsort(-dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(rows, order, axis=1)


def _exact_top_k(q: np.ndarray, mat, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    nq = len(q)
    if not len(ids):
        return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
    scores = np.asarray(mat @ q.T, dtype=np.float32).T  # (nq, n)
    k = min(k, len(ids))
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(scores, part, axis=1), np.asarray(ids)[part]


def sweep(folder: Path, referenced: set[str], dry_run: bool = False) -> list[str]:
    """Delete segment files no committed state names (our own names only); dry_run: name."""
    removed = []
    # A segments folder that is a link leads out of the index: files there are not ours
    # to delete, whatever their names (they were swept in the link's target).
    if not folder.is_dir() or folder.is_symlink():
        return removed
    for entry in os.scandir(folder):
        if not NAME_RE.match(entry.name) or entry.name in referenced or \
                not entry.is_file(follow_symlinks=False):
            continue
        if not dry_run:
            os.unlink(entry.path)
        removed.append(entry.name)
    return removed
