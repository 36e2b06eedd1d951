"""Ranking math for a mixed-language index: per-language centring, calibrated scores, fusion.

Pure numpy. The index keeps, per language L, ``n_L``, the vector sum ``s_L`` and the sum of
outer products ``S_L`` (``lang_stats``), so everything here is built from those sums:

- mean ``mu_L = s_L / n_L``; covariance ``Sigma_L = S_L / n_L - mu_L mu_L^T``
  (:class:`LangStats`; :func:`shrunk` for languages with few passages);
- query transform ``q' = q - mu_{lang(q)} - offset_{lang(q)}``: the query-minus-passage
  offset (query and passage mode embed the same text differently) per language, measured by
  the index on a few of its own passages embedded once more in query mode (two more sums per
  language), the global one for other languages (:func:`query_transform`);
- centred score of passage p in language L: ``q'·(p - mu_L)`` = ``q'·p + bias_L`` with
  ``bias_L = -q'·mu_L`` (:func:`language_bias`), or re-normalised
  ``q'·(p - mu_L) / ||p - mu_L||`` where ``||p - mu_L||^2 = 1 - 2 p·mu_L + ||mu_L||^2``
  (:func:`renormalized_scores`): no centred vector is stored, means may move freely;
- calibrated score ``z = score / sqrt(q'^T Sigma_L q')`` (divided further by
  ``sqrt(tr Sigma_L)`` for re-normalised scores): within language L the scores have mean 0 and
  unit spread, so z is comparable across queries and languages (:func:`zscore`);
- hybrid: ``z + w * min(1, idf-normalised bm25)`` (:func:`hybrid_scores`); :func:`rrf` too.

What to ship, measured in benchmarks/results/ranking_probe.md: per-language centring,
re-normalised, per-language offsets, langid for the query language, z-score; hybrid with
``w = LEXICAL_WEIGHT``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RRF_K = 60
"""Reciprocal rank fusion constant (Cormack et al. 2009): rank r contributes 1/(RRF_K + r)."""


@dataclass
class LangStats:
    """Running sums of one language's passage vectors (what ``lang_stats`` stores)."""

    n: int
    total: np.ndarray  # (dim,) float64 sum of vectors
    outer: np.ndarray | None = None  # (dim, dim) float64 sum of outer products

    @classmethod
    def of(cls, vectors: np.ndarray, with_outer: bool = True) -> LangStats:
        """Sums over the rows of ``vectors``."""
        v = np.asarray(vectors, dtype=np.float64)
        return cls(len(v), v.sum(axis=0), v.T @ v if with_outer else None)

    def add(self, vectors: np.ndarray, sign: int = 1) -> None:
        """Add (``sign=1``) or remove (``sign=-1``) vectors: O(changed), as inserts/deletes."""
        v = np.asarray(vectors, dtype=np.float64)
        self.n += sign * len(v)
        self.total = self.total + sign * v.sum(axis=0)
        if self.outer is not None:
            self.outer = self.outer + sign * (v.T @ v)

    @property
    def mean(self) -> np.ndarray:
        """Mean vector (zeros for an empty language)."""
        return self.total / self.n if self.n else np.zeros_like(self.total)

    @property
    def cov(self) -> np.ndarray:
        """Population covariance ``S/n - mu mu^T``."""
        if self.outer is None:
            raise ValueError("these stats were built without outer products")
        if not self.n:
            return np.zeros_like(self.outer)
        mu = self.mean
        return self.outer / self.n - np.outer(mu, mu)


def shrunk(stats: LangStats, prior: LangStats, k: float) -> LangStats:
    """``stats`` plus ``k`` pseudo-passages distributed like ``prior`` (e.g. :func:`pooled`):
    a language with few passages gets a mean and covariance pulled toward the index-wide ones
    instead of noise; with many passages it hardly changes."""
    if k <= 0 or not prior.n:
        return stats
    mu = prior.mean
    outer = None
    if stats.outer is not None and prior.outer is not None:
        outer = stats.outer + k * (prior.cov + np.outer(mu, mu))
    return LangStats(stats.n + k, stats.total + k * mu, outer)  # type: ignore[arg-type]


def pooled(stats: Mapping[str, LangStats]) -> LangStats:
    """All languages' sums added together (the index-wide statistics)."""
    items = list(stats.values())
    if not items:
        raise ValueError("no statistics to pool")
    outer = None if any(s.outer is None for s in items) else sum(s.outer for s in items)
    return LangStats(sum(s.n for s in items), sum(s.total for s in items), outer)


def query_offset(query_vectors: np.ndarray, passage_vectors: np.ndarray) -> np.ndarray:
    """The model's query-minus-passage offset: mean of query-mode vectors minus mean of
    passage-mode vectors of the same texts (a per-model constant; computed once on a bench)."""
    q = np.asarray(query_vectors, dtype=np.float64)
    p = np.asarray(passage_vectors, dtype=np.float64)
    return q.mean(axis=0) - p.mean(axis=0)


def query_mean(
    lang: str | None,
    stats: Mapping[str, LangStats],
    offset: np.ndarray | None = None,
    lang_offsets: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """What to subtract from a query in language ``lang``: that language's passage mean (the
    pooled mean when the index has none of it, or ``lang`` is None) plus the query-minus-passage
    offset: ``lang_offsets[lang]`` when given for that language, else ``offset``."""
    s = stats.get(lang) if lang is not None else None
    known = s is not None and s.n
    mu = s.mean if known else pooled(stats).mean
    if known and lang_offsets is not None and lang in lang_offsets:
        return mu + lang_offsets[lang]
    return mu + offset if offset is not None else mu


def query_transform(
    q: np.ndarray,
    langs: Sequence[str | None] | str | None,
    stats: Mapping[str, LangStats],
    offset: np.ndarray | None = None,
    lang_offsets: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """``q' = q - mu_{lang(q)} - offset`` for one query (1-D) or a batch (rows, one language
    each). Returns float32. The norm of q' is left alone: it does not change one query's
    ranking, and :func:`zscore` divides it out."""
    q = np.asarray(q, dtype=np.float32)
    if q.ndim == 1:
        lang = langs if langs is None or isinstance(langs, str) else langs[0]
        return (q - query_mean(lang, stats, offset, lang_offsets)).astype(np.float32)
    if langs is None or isinstance(langs, str):
        langs = [langs] * len(q)
    if len(langs) != len(q):
        raise ValueError(f"{len(q)} queries but {len(langs)} languages")
    cache: dict[str | None, np.ndarray] = {}
    out = np.empty_like(q)
    for i, lang in enumerate(langs):
        if lang not in cache:
            cache[lang] = query_mean(lang, stats, offset, lang_offsets)
        out[i] = q[i] - cache[lang]
    return out


def language_bias(q_prime: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``-q'·mu_L`` for each language mean (rows of ``means``): added to ``q'·p`` it gives the
    centred score ``q'·(p - mu_L)``. Shape: (n_langs,) for one query, (n_queries, n_langs)."""
    return -(np.asarray(q_prime, dtype=np.float64) @ np.asarray(means, dtype=np.float64).T)


def centred_scores(
    q_prime: np.ndarray, passages: np.ndarray, passage_lang: np.ndarray, means: np.ndarray
) -> np.ndarray:
    """``q'·(p - mu_{L(p)})`` for every passage (``passage_lang`` = row index into ``means``)."""
    raw = np.asarray(q_prime, dtype=np.float32) @ np.asarray(passages, dtype=np.float32).T
    return raw + language_bias(q_prime, means)[..., passage_lang].astype(np.float32)


def renormalized_scores(
    q_prime: np.ndarray, passages: np.ndarray, mean: np.ndarray
) -> np.ndarray:
    """``q'·(p - mu) / ||p - mu||`` for unit-norm passages of one language, without storing
    centred vectors: ``||p - mu||^2 = 1 - 2 p·mu + ||mu||^2``, so one extra product with the
    current mean per segment (or per ANN candidate) is all it costs."""
    p = np.asarray(passages, dtype=np.float32)
    mu = np.asarray(mean, dtype=np.float32)
    q = np.asarray(q_prime, dtype=np.float32)
    norm2 = (p * p).sum(axis=1) - 2 * (p @ mu) + float(mu @ mu)
    return (q @ p.T - (q @ mu)[..., None]) / np.sqrt(np.maximum(norm2, 1e-12))


def score_scale(q_prime: np.ndarray, cov: np.ndarray) -> np.ndarray | float:
    """``sqrt(q'^T Sigma q')``: the standard deviation of centred scores within a language."""
    q = np.asarray(q_prime, dtype=np.float64)
    var = ((q @ np.asarray(cov, dtype=np.float64)) * q).sum(axis=-1)  # BLAS, not einsum
    return np.sqrt(np.maximum(var, 1e-12))


def zscore(
    scores: np.ndarray, q_prime: np.ndarray, cov: np.ndarray, renormalized: bool = False
) -> np.ndarray:
    """Calibrated scores ``centred score / sqrt(q'^T Sigma_L q')`` for hits of language L.

    With ``renormalized`` scores (:func:`renormalized_scores`) the spread is that of unit
    centred vectors: ``Sigma_L / tr(Sigma_L)`` (tr = mean squared norm of ``p - mu_L``)."""
    scale = score_scale(q_prime, cov)
    if renormalized:
        scale = scale / np.sqrt(max(float(np.trace(cov)), 1e-12))
    return np.asarray(scores, dtype=np.float64) / (
        scale[..., None] if np.ndim(scale) else scale
    )


def probability(z: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Logistic map of a calibrated score to P(relevant) (parameters fitted on a bench)."""
    return 1.0 / (1.0 + np.exp(-(slope * np.asarray(z, dtype=np.float64) + intercept)))


def rrf(
    rankings: Sequence[Sequence[int]],
    weights: Sequence[float] | None = None,
    k: int = RRF_K,
    limit: int | None = None,
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists (best first): ``sum_i w_i / (k + rank_i)``.

    Returns ``(id, fused score)`` best first; ties keep the order of first appearance.
    An id listed twice in one ranking counts at its best rank only.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        seen: set[int] = set()
        for rank, pid in enumerate(ranking, start=1):
            if pid in seen:
                continue
            seen.add(pid)
            fused[pid] = fused.get(pid, 0.0) + w / (k + rank)
    out = sorted(fused.items(), key=lambda kv: -kv[1])  # stable: first appearance wins ties
    return out[:limit] if limit is not None else out


LEXICAL_WEIGHT = 2.0
"""z-score units added for a passage holding all of the query's tokens (measured)."""


def hybrid_scores(
    dense_z: Mapping[int, float],
    lexical: Mapping[int, float],
    weight: float = LEXICAL_WEIGHT,
    missing_z: float = 0.0,
) -> list[tuple[int, float]]:
    """Fuse calibrated dense scores with normalised lexical scores (both by passage id):
    ``z + weight * min(lexical, 1)``, best first. A passage found only lexically gets
    ``missing_z`` (0 = the mean of its language) unless the caller scores it exactly."""
    ids = list(dict.fromkeys([*dense_z, *lexical]))
    fused = {
        i: dense_z.get(i, missing_z) + weight * min(lexical.get(i, 0.0), 1.0) for i in ids
    }
    return sorted(fused.items(), key=lambda kv: -kv[1])


def remove_directions(vectors: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Project out orthonormal ``directions`` (rows), e.g. the top principal components."""
    v = np.asarray(vectors, dtype=np.float32)
    d = np.asarray(directions, dtype=np.float32)
    return v - (v @ d.T) @ d


def top_directions(cov: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` leading eigenvectors of a covariance matrix, as rows."""
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    return vecs[:, np.argsort(vals)[::-1][:n]].T.astype(np.float32)
