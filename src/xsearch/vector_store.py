"""The vectors of an index as its committed segments: load the list, search them together.

Each segment holds one language, so a per-language score offset (the centring bias) is a
constant inside a segment: each segment is searched on its own, and its candidates are scored
exactly with their language's terms before the lists are merged, which keeps approximate
search exact about it. Flat segments are scored one by one; the candidates of every
approximate segment are scored together, in one pass over one matrix (18 segments' small
numpy steps cost 0.6 ms a query at 1M passages). One query reads the rows of only those
candidates of centred graphs that can rank (bounds from the graphs' own scores,
``Centering.may_rank``), the same hits and scores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import CorruptIndexError
from .fileio import full_checksum, quick_fingerprint
from .segment_kinds import HNSW_C, IVF_SQ8_N, MAX_EFFORT
from .segments import Segment, SegmentInfo, files_of
from .store import Store
from .threads import blas_batch


class SegmentGoneError(Exception):
    """A segment named by the snapshot was removed by a merge that committed since."""


def _info(row: dict) -> SegmentInfo:
    return SegmentInfo(name=row["name"], kind=row["kind"], n=row["n"], nbytes=row["bytes"],
                       fingerprint=row["fingerprint"], checksum=row["checksum"])


class VectorStore:
    """The committed segments of one index, opened lazily and kept between refreshes."""

    def __init__(self, folder: Path, store: Store, dim: int) -> None:
        self.folder = folder
        self.store = store
        self.dim = dim
        self._open: dict[str, Segment] = {}
        self.rows: list[dict] = []
        self.tombs: dict[int, np.ndarray] = {}
        self.damaged: dict[str, str] = {}
        self._pmu_cache: dict[str, tuple] = {}
        self._loaded_generation: int | None = None

    def load(self) -> None:
        """Read the segment list and tombstones (call inside the store's snapshot)."""
        gen = self.store.generation()
        if gen == self._loaded_generation:
            return
        self.rows = self.store.segments()
        self.tombs = self.store.tombstones()
        names = {r["name"] for r in self.rows}
        self._open = {n: s for n, s in self._open.items() if n in names}
        # A segment a repair or merge replaced is no longer damaged: it is gone.
        self.damaged = {n: why for n, why in self.damaged.items() if n in names}
        self._loaded_generation = gen

    def close(self) -> None:
        self._open.clear()

    def reload(self) -> None:
        """Read the segment list and tombstones again, whatever the generation says."""
        self._loaded_generation = None
        self.load()

    def release(self, name: str) -> None:
        """Let an open segment go (its mappings close once nothing else holds it)."""
        self._open.pop(name, None)

    def is_open(self, name: str) -> bool:
        """Whether the segment is open (memory-mapped: deleting its files takes nothing)."""
        return name in self._open

    def __len__(self) -> int:
        self.load()
        return sum(r["n"] for r in self.rows) - sum(len(t) for t in self.tombs.values())

    def whole(self, row: dict) -> bool:
        """Whether a segment's files are all there and match its checksum: the whole files,
        not the ends a load compares (:meth:`segment`)."""
        try:
            return full_checksum([self.folder / f for f in files_of(row["name"], row["kind"])]
                                 ) == row["checksum"]
        except OSError:
            return False

    def segment(self, row: dict, missing_ok: bool = True) -> Segment | None:
        """The open segment of a row, or None (and a note in ``damaged``) if it is unusable.

        With ``missing_ok`` False a missing file raises :class:`SegmentGoneError`, so that a
        reader whose snapshot predates a merge can take a fresh snapshot and try again.
        """
        name = row["name"]
        if name in self._open:
            return self._open[name]
        paths = [self.folder / f for f in files_of(name, row["kind"])]
        try:
            if quick_fingerprint(paths) != row["fingerprint"]:
                raise CorruptIndexError(f"segment {name} does not match the database")
            seg = Segment(self.folder, _info(row), row["language"], row["id"])
        except FileNotFoundError as exc:
            if not missing_ok:
                raise SegmentGoneError(name) from exc
            self.damaged[name] = "missing"
            return None
        except CorruptIndexError as exc:
            self.damaged[name] = str(exc)
            return None
        self._open[name] = seg
        self.damaged.pop(name, None)  # its files came back (an index folder moved back)
        return seg

    def iter_live(self, only: set[int] | None = None):
        """(ids, vectors) of live passages, one segment at a time (``only``: these ids)."""
        self.load()
        for row in self.rows:
            seg = self.segment(row)
            if seg is None:
                raise CorruptIndexError(f"segment {row['name']} is damaged; run xsearch check "
                                        "--repair")
            live = self.store.live_ids_of_segment(row["id"])
            if only is not None:
                live = live[np.isin(live, np.fromiter(only, dtype=np.int64))]
            if len(live):
                yield live, seg.reconstruct(live)

    def languages(self) -> list[str]:
        self.load()
        return sorted({r["language"] for r in self.rows})

    def vectors_of(self, passage_ids: list[int], skip_damaged: bool = False,
                   trust: Callable[[dict], bool] | None = None) -> np.ndarray:
        """Vectors of live passages, in the order given; with ``skip_damaged`` a passage whose
        segment is unusable, or whose segment row ``trust`` refuses, gets a row of NaN
        instead of an error."""
        if not passage_ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        where: dict[int, int] = {}
        for start in range(0, len(passage_ids), 5000):
            part = passage_ids[start:start + 5000]
            marks = ",".join("?" * len(part))
            where.update(self.store.db.execute(
                f"SELECT id, segment FROM passages WHERE id IN ({marks})", part).fetchall())
        by_id = {r["id"]: r for r in self.rows}
        out = np.zeros((len(passage_ids), self.dim), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for n, pid in enumerate(passage_ids):
            groups.setdefault(where.get(pid, -1), []).append(n)
        for seg_id, rows in groups.items():  # one batch read per segment
            row = by_id.get(seg_id)
            seg = self.segment(row) if row and (trust is None or trust(row)) else None
            if seg is None:
                if skip_damaged:
                    out[rows] = np.nan
                    continue
                raise CorruptIndexError(f"passage {passage_ids[rows[0]]} has no readable "
                                        "vector")
            out[rows] = seg.reconstruct(np.array([passage_ids[n] for n in rows],
                                                 dtype=np.int64))
        return out

    def _pmu(self, seg: Segment, mu: np.ndarray) -> np.ndarray:
        """p·mu for every row of a flat segment (``mu`` float32), kept while the mean stays
        the same."""
        key = (seg.info.name, mu.tobytes())
        if self._pmu_cache.get(seg.info.name, (None,))[0] != key:
            self._pmu_cache[seg.info.name] = (key, np.asarray(seg.vectors @ mu,
                                                              dtype=np.float64))
        return self._pmu_cache[seg.info.name][1]

    def search(self, queries: np.ndarray, k: int, languages: set[str] | None = None,
               allowed: np.ndarray | None = None, centering=None, missing_ok: bool = True,
               *, plain: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ranking scores, relevance, ids, cosines) of the k best live passages per query,
        best first; the cosines are to ``plain``, the queries before centring.

        ``queries`` are already transformed (q'); ``centering.segment_scores`` turns each
        segment's q'·p (and p·mu_L) into scores. Flat segments are scored exactly; an
        approximate segment proposes candidates by q'·p, which are then scored exactly from
        their stored vectors. ``languages`` keeps only those segments; ``allowed`` (sorted ids)
        restricts the search to those passages, exactly.
        """
        with blas_batch(len(queries)):
            return self._search(queries, k, languages, allowed, centering, missing_ok, plain)

    def _search(self, queries: np.ndarray, k: int, languages: set[str] | None,
                allowed: np.ndarray | None, centering, missing_ok: bool, plain: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self.load()
        nq = len(queries)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        plain = np.asarray(plain, dtype=np.float32)
        rows = [r for r in self.rows if languages is None or r["language"] in languages]
        # Fewer segments to search (a --lang filter): spend part of what that saves on a
        # wider approximate search of each, so one language alone keeps its recall.
        effort = min(MAX_EFFORT, max(1, len(self.rows) // max(1, len(rows))))
        parts: list[tuple[np.ndarray, ...]] = []
        ann: list[tuple[str, np.ndarray, np.ndarray]] = []
        # One query's centred graphs are searched first; only those whose candidates can
        # rank have their rows read (centering.may_rank), the rest cost the search alone.
        bound = nq == 1 and allowed is None and centering is not None and \
            centering.mode == "language" and centering.pooled is not None
        graphs: list[tuple[str, Segment, tuple[np.ndarray, ...]]] = []
        lists: list[tuple[str, Segment, tuple[np.ndarray, ...]]] = []
        for row in rows:
            lang = row["language"]
            seg = self.segment(row, missing_ok)
            if seg is None:
                continue
            exclude = self.tombs.get(row["id"])
            if bound and seg.info.kind == HNSW_C:
                found = seg.centred_candidates(q, seg.fetch(k), exclude=exclude, effort=effort)
                if len(found[0]):
                    graphs.append((lang, seg, found))
                continue
            # (FAISS cannot give list/offset pairs while a selector drops tombstones)
            if bound and seg.info.kind == IVF_SQ8_N and (exclude is None or not len(exclude)):
                found = seg.ivf_candidates(q, seg.fetch(k), effort=effort)
                if len(found[0]):
                    lists.append((lang, seg, found))
                continue
            if seg.ids is None:
                # Approximate: candidates by the graph (or lists), scored below all at once
                # (per segment, the small numpy steps cost more than the arithmetic).
                cand, vecs = seg.candidates(q, seg.fetch(k), exclude=exclude, allowed=allowed,
                                            effort=effort)
                if len(cand):
                    ann.append((lang, cand, vecs))
                continue
            ids = np.asarray(seg.ids)
            keep = np.ones(len(ids), dtype=bool)
            if exclude is not None and len(exclude):
                keep &= ~np.isin(ids, exclude)
            if allowed is not None:
                keep &= np.isin(ids, allowed)
            sel = None if keep.all() else np.flatnonzero(keep)
            mat = seg.vectors if sel is None else np.asarray(seg.vectors[sel])
            cand = ids if sel is None else ids[sel]
            mu = centering.mean_for(lang, np.float32) if centering is not None else None
            pmu = None
            if mu is not None:
                pmu = self._pmu(seg, mu)
                pmu = pmu if sel is None else pmu[sel]
            if len(cand):
                parts.append(self._best(q, plain, cand, mat, pmu, [(lang, len(cand))],
                                        centering, k))
        if graphs:
            keep = centering.may_rank(k, [(lang, seg.mu0, qhi, norms)
                                          for lang, seg, (_, _, qhi, norms) in graphs])
            ann += [(lang, ids[kept], seg.row_vectors(at[kept]))
                    for (lang, seg, (ids, at, _, _)), kept in zip(graphs, keep, strict=True)
                    if kept.any()]
        if lists:
            ann += self._decode_rankable(k, lists, centering)
        if ann:
            cand = np.concatenate([c for _, c, _ in ann])
            vecs = np.vstack([v for _, _, v in ann])
            pmu = None
            if centering is not None and centering.mean_for(ann[0][0]) is not None:
                # float32 like a flat segment's p·mu (_pmu), so both rank a passage alike
                pmu = np.concatenate([v @ centering.mean_for(lang, np.float32)
                                      for lang, _, v in ann]).astype(np.float64)
            parts.append(self._best(q, plain, cand, vecs, pmu,
                                    [(lang, len(c)) for lang, c, _ in ann], centering, k))
        if not parts:
            empty = np.zeros((nq, 0))
            return empty, empty, np.zeros((nq, 0), dtype=np.int64), empty
        s, z, i, c = (np.hstack(p) for p in zip(*parts, strict=True))
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return (np.take_along_axis(s, order, axis=1), np.take_along_axis(z, order, axis=1),
                np.take_along_axis(i, order, axis=1), np.take_along_axis(c, order, axis=1))

    @staticmethod
    def _decode_rankable(k: int, lists: list[tuple[str, Segment, tuple]], centering
                         ) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(language, ids, vectors) of the IVF candidates of one query that can still be among
        its k best (Centering.rankable, from the search's own scores): only those are
        decoded."""
        keep = centering.rankable(k, [(lang, seg.mu0, dist, dens, err)
                                      for lang, seg, (dist, _, dens, err) in lists])
        return [(lang, *seg.ivf_rows(pairs[kept]))
                for (lang, seg, (_, pairs, _, _)), kept in zip(lists, keep, strict=True)
                if kept.any()]

    @staticmethod
    def _best(q: np.ndarray, plain: np.ndarray, cand: np.ndarray, vecs, pmu: np.ndarray | None,
              spans: list[tuple[str, int]], centering, k: int) -> tuple[np.ndarray, ...]:
        """(scores, z, ids, plain cosines) of each query's k best of ``cand``, whose columns
        hold the languages ``spans`` in order."""
        raw = q @ np.asarray(vecs).T
        if centering is not None:
            score, z = centering.span_scores(raw, pmu, spans)
        else:
            score, z = raw, np.full_like(raw, np.nan)
        take = min(k, len(cand))
        top = np.argpartition(-score, take - 1, axis=1)[:, :take]
        at = np.arange(len(q))[:, None]  # not take_along_axis: 7 us each
        # The plain cosine each hit reports, from the vectors already at hand (reading
        # them again by id cost 0.3 ms a query at 1M, and IVF an id-to-list table).
        cos = np.einsum("qd,qkd->qk", plain, np.asarray(
            vecs[top.reshape(-1)], dtype=np.float32).reshape(*top.shape, -1))
        return score[at, top], z[at, top], cand[top], cos
