"""Language-neutral scores and calibrated relevance from the index's per-language statistics.

``lang_stats`` keeps, per language, the count, sum and sum of outer products of its passage
vectors, so the mean mu_L and covariance Sigma_L follow every write exactly; ``lang_offsets``
keeps query- and passage-mode sums of a few passages per language, whose difference is that
language's query offset. A query q becomes q' = q - mu(query language) - offset; a passage of
language L scores q'·(p - mu_L) / ||p - mu_L|| (no centred vector is stored: the norm comes
from p·mu_L), divided by its spread over L: the ``relevance`` z, which ranks the passages and
is comparable across queries, languages and models (math in ranking.py, measured in
benchmarks/results/ranking_probe.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import IndexMismatchError
from .priors import ModelPriors
from .ranking import LangStats, pooled, score_scale, shrunk
from .store import Store

if TYPE_CHECKING:
    from .embedders import Embedder

#: Pseudo-passages of the index-wide statistics added to every language's (ranking.shrunk).
SHRINK = 20
#: Sample texts a language needs before its own query offset replaces the model's global one.
MIN_OFFSET_SAMPLES = 8
OFFSET_KEY = "query_offset"
PROBE_KEY = "model_probe"


def encode_vector(v: np.ndarray) -> str:
    return np.asarray(v, dtype=np.float32).tobytes().hex()


def decode_vector(s: str | None) -> np.ndarray | None:
    if not s:
        return None
    try:
        return np.frombuffer(bytes.fromhex(s), dtype=np.float32)
    except ValueError:
        return None


@dataclass
class Centering:
    """Scores for one index generation, from its per-language sums (see ranking.py).

    ``language`` (default): a passage of language L scores q'·(p - mu_L) / ||p - mu_L|| with
    q' = q - mu(query language) - offset(query language), ranked by its z-score
    (re-normalised, per-language offsets; the best of benchmarks/results/ranking_probe.md).
    ``global``: one mean for all passages; ``none``: plain cosine. Every mode reports the
    same calibrated ``relevance`` (z).
    """

    mode: str
    generation: int
    stats: dict[str, LangStats] = field(default_factory=dict)
    pooled: LangStats | None = None
    offset: np.ndarray | None = None
    lang_offsets: dict[str, np.ndarray] = field(default_factory=dict)
    priors: ModelPriors | None = None
    #: index mean minus the priors' mean over the languages both know (weighted like the
    #: index): moves a prior language mean from the priors' domain into this index's
    domain: np.ndarray | float = 0.0
    #: (languages, their covariances side by side as one float32 dim x (L*dim) matrix, the
    #: square roots of their traces), made as the statistics load
    stacked: tuple[list[str], np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    #: covariances of what ``stacked`` lacks (the pooled statistics), computed on first use
    _covs: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict, repr=False)
    #: each language's mean, float64 and float32, kept (a query asks for each 2-3 times)
    _means: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    #: the means of ``stacked``'s languages as rows, and their squared norms
    _stacked_means: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, store: Store, mode: str, generation: int,
             priors: ModelPriors | None = None) -> Centering:
        out = cls(mode=mode, generation=generation, priors=priors)
        raw = store.lang_stats(with_outer=True)
        if not raw:
            return out
        stats = {lang: LangStats(n, s, o) for lang, (n, s, o) in raw.items()}
        if priors is not None:
            both = [lang for lang, st in stats.items() if lang in priors and st.n]
            if both:
                n = sum(stats[lang].n for lang in both)
                idx = sum(stats[lang].total for lang in both) / n
                pri = sum(stats[lang].n * priors.mean_of(lang) for lang in both) / n
                out.domain = idx - pri
        out.pooled = pooled(stats)
        del raw
        # Every language is pulled toward the index-wide statistics by a few pseudo-passages:
        # a language with a handful of passages gets a sensible mean and spread, one with
        # thousands hardly moves, and none is treated by a different rule. Its covariance
        # goes straight into the float32 matrix the spreads are computed from, one language
        # at a time: float64 sums and covariances of every language at once were 60 MB at
        # 18 languages, the peak memory of a query on a compressed 1M-passage index.
        if out.pooled.outer is None:  # sums without outer products: means only
            out.stats = {lang: shrunk(st, out.pooled, SHRINK) for lang, st in stats.items()}
            return out._with_offsets(store)
        langs = list(stats)
        dim = len(out.pooled.mean)
        joined = np.empty((dim, len(langs) * dim), dtype=np.float32)
        root_traces = np.empty(len(langs))
        for i, lang in enumerate(langs):
            st = shrunk(stats.pop(lang), out.pooled, SHRINK)
            block = joined[:, i * dim:(i + 1) * dim]
            block[...] = st.cov
            root_traces[i] = np.sqrt(max(float(np.trace(block)), 1e-12))
            st.outer = None
            out.stats[lang] = st
        out.stacked = (langs, joined, root_traces)
        return out._with_offsets(store)

    def _with_offsets(self, store: Store) -> Centering:
        """Read the model's and each sampled language's query offset."""
        self.offset = decode_vector(store.meta(OFFSET_KEY))
        try:
            samples = store.lang_offsets()
        except Exception:  # an index made before lang_offsets existed
            samples = {}
        self.lang_offsets = {lang: (q - p) / n for lang, (n, q, p) in samples.items()
                             if n >= MIN_OFFSET_SAMPLES}
        return self

    def of(self, lang: str | None) -> LangStats | None:
        """A language's (shrunk) statistics, or the pooled ones for a language it lacks."""
        s = self.stats.get(lang) if lang is not None else None
        return s if s is not None else self.pooled

    def query_languages(self, texts: Sequence[str]) -> list[str | None]:
        if self.mode != "language":
            return [None] * len(texts)
        from . import langid

        known = self.stats.keys() | set(self.priors.langs if self.priors else ())
        return [g.code if g.code in known else None for g in langid.detect_many(texts)]

    def query_shift(self, lang: str | None) -> np.ndarray:
        """What a query in ``lang`` loses in language mode: that language's passage mean
        plus its query-minus-passage offset. From the index when it holds the language (the
        offset from the model's priors, else the global one, until the index has sampled
        enough of its own); from the model's priors, moved into this index's domain, for a
        language the index lacks; else the index-wide mean and the global offset."""
        pri = self.priors
        st = self.stats.get(lang) if lang is not None else None
        if st is not None and st.n:
            off = self.lang_offsets.get(lang)  # type: ignore[arg-type]
            if off is None and pri is not None and lang in pri:
                off = pri.offset_of(lang)  # type: ignore[arg-type]
            return st.mean + (off if off is not None else self._global_offset())
        if pri is not None and lang in pri:
            return pri.mean_of(lang) + pri.offset_of(lang) + self.domain  # type: ignore[arg-type]
        return self.pooled.mean + self._global_offset()  # type: ignore[union-attr]

    def _global_offset(self) -> np.ndarray | float:
        if self.offset is not None:
            return self.offset
        return self.priors.global_offset if self.priors is not None else 0.0

    def transform(self, qv: np.ndarray, q_langs: Sequence[str | None]) -> np.ndarray:
        """q' for each query (rows), float32."""
        self._scale: dict[str, np.ndarray] = {}
        self._q_mu: dict[str, tuple[np.ndarray, float]] = {}
        qv = np.asarray(qv, dtype=np.float32)
        if self.mode == "none" or self.pooled is None:
            self._qc = qv
        elif self.mode == "global":
            shift = self.pooled.mean + (self.offset if self.offset is not None else 0.0)
            self._qc = (qv - shift).astype(np.float32)
        else:
            shifts: dict[str | None, np.ndarray] = {}
            out = np.empty_like(qv)
            for i, lang in enumerate(q_langs):
                if lang not in shifts:
                    shifts[lang] = self.query_shift(lang)
                out[i] = qv[i] - shifts[lang]
            self._qc = out
        return self._qc

    def mean_for(self, lang: str, dtype=np.float64) -> np.ndarray | None:
        """The mean a segment of ``lang`` is centred on (None: scores need no p·mu)."""
        if self.mode != "language" or self.pooled is None:
            return None
        mean64, mean32 = self._mean(lang)
        return mean32 if dtype is np.float32 else mean64

    def _mean(self, lang: str) -> tuple[np.ndarray, np.ndarray]:
        known = self._means.get(lang)
        if known is None:
            mu = self.of(lang).mean
            known = self._means[lang] = (mu, mu.astype(np.float32))
        return known

    def _cov_of(self, lang: str) -> tuple[np.ndarray, float]:
        """(covariance, sqrt of its trace) of a language: fixed for a generation, so computed
        once, not per query (18 languages cost 2 ms a query at 1M passages)."""
        if self.stacked is not None and lang in self.stacked[0]:
            langs, joined, root_traces = self.stacked
            i, dim = langs.index(lang), joined.shape[0]
            return joined[:, i * dim:(i + 1) * dim], float(root_traces[i])
        if lang not in self._covs:
            cov = self.of(lang).cov
            self._covs[lang] = (cov, float(np.sqrt(max(float(np.trace(cov)), 1e-12))))
        return self._covs[lang]

    def _scale_of(self, lang: str) -> np.ndarray:
        if not self._scale and len(self.stats) > 1 and self.stacked is not None:
            self._all_scales()
        if lang not in self._scale:
            cov, root_trace = self._cov_of(lang)
            scale = score_scale(self._qc, cov)
            if self.mode == "language":
                scale = scale / root_trace
            self._scale[lang] = np.atleast_1d(scale)
        return self._scale[lang]

    def _all_scales(self) -> None:
        """Every language's spread for the current queries in one product (a query searches
        every language's segment; one 384 x 384 product each cost 50 us apiece)."""
        # float32 (made in load): the product reads the whole matrix for every query (21 MB
        # in float64 at 18 languages, 0.6 ms a query; a spread needs no more digits).
        langs, joined, root_traces = self.stacked
        q = np.asarray(self._qc, dtype=np.float32)
        dim = q.shape[1]
        var = ((q @ joined).reshape(len(q), len(langs), dim) * q[:, None, :]).sum(
            axis=-1, dtype=np.float64)
        scale = np.sqrt(np.maximum(var, 1e-12))
        if self.mode == "language":
            scale = scale / root_traces[None, :]
        # q'·mu_L of every language too (_lang_terms), in one product
        if self._stacked_means is None:
            means = np.vstack([self._mean(lang)[0] for lang in langs])
            self._stacked_means = (means, np.einsum("ld,ld->l", means, means))
        means, mu2 = self._stacked_means
        q_mu = np.asarray(self._qc, dtype=np.float64) @ means.T
        for i, lang in enumerate(langs):
            self._scale[lang] = scale[:, i]
            self._q_mu[lang] = (q_mu[:, i:i + 1], float(mu2[i]))

    def row_scores(self, qi: int, raw: np.ndarray, pmu: np.ndarray | None, lang: str
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`segment_scores` for one query ``qi`` only (``raw`` = q'_qi·p)."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.pooled is None:
            return raw, np.full_like(raw, np.nan)
        q = np.asarray(self._qc[qi], dtype=np.float64)
        mu = self.of(lang).mean
        scale = float(self._scale_of(lang)[qi])
        q_mu = float(q @ mu)
        if self.mode == "language":
            norm2 = 1.0 - 2.0 * np.asarray(pmu, dtype=np.float64) + float(mu @ mu)
            z = (raw - q_mu) / np.sqrt(np.maximum(norm2, 1e-12)) / scale
            return z, z
        if self.mode == "global":
            return raw - float(q @ self.pooled.mean), (raw - q_mu) / scale
        return raw, (raw - q_mu) / scale

    def segment_scores(self, raw: np.ndarray, pmu: np.ndarray | None, lang: str
                       ) -> tuple[np.ndarray, np.ndarray]:
        """(ranking score, relevance z) for passages of ``lang``: ``raw`` = q'·p (queries x
        passages), ``pmu`` = p·mu_L for each passage (language mode)."""
        return self.span_scores(raw, pmu, [(lang, np.shape(raw)[1])])

    def span_scores(self, raw: np.ndarray, pmu: np.ndarray | None,
                    spans: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`segment_scores` of passages of several languages at once: ``spans`` gives
        (language, number of columns) in column order."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.pooled is None:
            return raw, np.full_like(raw, np.nan)
        terms = [(self._scale_of(lang), *self._lang_terms(lang)) for lang, _ in spans]
        if len(spans) == 1:  # broadcast, no copies
            scale, q_mu, mu2 = terms[0][0][:, None], terms[0][1], terms[0][2]
        else:
            counts = [n for _, n in spans]
            scale = np.repeat(np.column_stack([t[0] for t in terms]), counts, axis=1)
            q_mu = np.repeat(np.hstack([t[1] for t in terms]), counts, axis=1)
            mu2 = np.repeat([t[2] for t in terms], counts)
        if self.mode == "language":
            norm2 = 1.0 - 2.0 * np.asarray(pmu, dtype=np.float64) + mu2
            score = (raw - q_mu) / np.sqrt(np.maximum(norm2, 1e-12))[None, :]
            z = score / scale
            return z, z
        # global / none: rank by the centred (or raw) score, report z against L's background
        if self.mode == "global":
            g = (np.asarray(self._qc, dtype=np.float64) @ self.pooled.mean)[:, None]
            return raw - g, (raw - q_mu) / scale
        return raw, (raw - q_mu) / scale

    def may_rank(self, k: int, groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]
                 ) -> list[np.ndarray]:
        """Which of one query's candidates from centred graphs, group by group, can be among
        its k best, judged from the graph's scores alone (:meth:`z_bounds`), so the others'
        rows are never read."""
        return _can_rank(*self.z_bounds(groups), k, [len(g[2]) for g in groups])

    def rankable(self, k: int, groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]]
                 ) -> list[np.ndarray]:
        """Which of one query's IVF candidates, group by group, can be among its k best,
        judged from the search's own scores (:meth:`list_bounds`), so the others are never
        decoded."""
        return _can_rank(*self.list_bounds(groups), k, [len(g[2]) for g in groups])

    def list_bounds(self, groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]]
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of the first query's exact score (language mode) of every
        IVF candidate, in group order; a group is (language, the segment's mean mu0, q'·p of
        each candidate as the search gave it, its denominator n = sqrt(1 - 2 p·mu0 +
        |mu0|^2), the codes' error on |p|; see ivf_lists).

        With d = mu_L - mu0 the exact squared denominator is n^2 - 2 (p - mu0)·d + |d|^2, and
        |(p - mu0)·d| <= m |d| with m^2 = n^2 + |p|^2 - 1, |p| within the codes' error of 1.
        FAISS's float32 q'·p is within 1e-5 |q'| of numpy's.
        """
        q = np.asarray(self._qc[0], dtype=np.float64)
        err = 1e-5 * float(np.linalg.norm(q)) + 1e-7
        dn, q_mu, _, scale = self._group_terms(groups)
        code_err = np.repeat([g[4] for g in groups], [len(g[2]) for g in groups])
        qp = np.concatenate([g[2] for g in groups]).astype(np.float64)
        n = np.concatenate([g[3] for g in groups]).astype(np.float64)
        m = np.sqrt(n * n + 2.0 * code_err + code_err * code_err)
        near = np.sqrt(np.maximum(n * n - 2.0 * m * dn + dn * dn, 1e-12))
        far = np.sqrt(n * n + 2.0 * m * dn + dn * dn)
        lo, hi = _ratio_bounds(qp + err - q_mu, qp - err - q_mu, near, far, scale)
        # the scores' own float32 p·mu_L moves them by ~1e-6 of themselves
        return lo - 1e-5 * np.abs(lo) - 1e-7, hi + 1e-5 * np.abs(hi) + 1e-7

    def z_bounds(self, groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of the first query's exact score (language mode) of every
        candidate of centred graphs, in group order, from the graph's scores alone.

        A group is (language, the segment's mean mu0, q'·hi of each candidate, its norm n =
        ||p - mu0||), with p = mu0 + n u and hi = u in float16. The exact score is z =
        (n q'·u - q'·d) / ||n u - d|| / scale, d = mu_L - mu0; the bounds follow from
        |q'·u - q'·hi| <= ||q'|| 2^-11 (float16 rounds each component to 2^-11 of itself)
        and |u·d| <= ||d||.
        """
        q = np.asarray(self._qc[0], dtype=np.float64)
        err = float(np.linalg.norm(q)) * (2.0 ** -11 + 3e-5) + 1e-6
        dn, q_mu, q_mu0, scale = self._group_terms(groups)
        qd = q_mu - q_mu0
        n = np.concatenate([g[3] for g in groups]).astype(np.float64)
        qhi = np.concatenate([g[2] for g in groups]).astype(np.float64)
        lo, hi = _ratio_bounds(n * (qhi + err) - qd, n * (qhi - err) - qd,
                               np.maximum(n - dn, 1e-12), n + dn, scale)
        # float32 products and a norm taken as 1 in the exact path: room for their rounding
        slack = 1e-5 + 1e-4 * np.maximum(np.abs(hi), np.abs(lo))
        return lo - slack, hi + slack

    def _group_terms(self, groups: list[tuple]) -> tuple[np.ndarray, ...]:
        """(||mu_L - mu0||, q'·mu_L, q'·mu0, spread of L) of each group (language, mu0,
        candidates, ...), repeated for each of its candidates: the bounds take one pass over
        every candidate (per group, the small numpy steps cost 0.5 ms a query at 1M)."""
        q = np.asarray(self._qc[0], dtype=np.float64)
        counts = [len(g[2]) for g in groups]
        means = np.vstack([self._mean(g[0])[0] for g in groups])
        mu0 = np.vstack([g[1] for g in groups]).astype(np.float64)
        scale = [float(self._scale_of(g[0])[0]) for g in groups]
        return tuple(np.repeat(x, counts) for x in (
            np.linalg.norm(means - mu0, axis=1), means @ q, mu0 @ q, scale))

    def _lang_terms(self, lang: str) -> tuple[np.ndarray, float]:
        """(q'·mu_L as a column, mu_L·mu_L) for the current queries, kept per language (a
        language's segment may come more than once)."""
        known = self._q_mu.get(lang)
        if known is None:
            mu = self._mean(lang)[0]
            known = self._q_mu[lang] = (
                (np.asarray(self._qc, dtype=np.float64) @ mu)[:, None], float(mu @ mu))
        return known


#: Short sentences in many languages and scripts (written for xsearch) from which the model's
#: query-minus-passage offset and its fingerprint are measured when an index is created.
PROBE_SENTENCES = (
    "The river flooded the village after three days of heavy rain.",
    "How do I bake bread at home without yeast?",
    "Le train pour Lyon part à huit heures du matin.",
    "Die Schule bleibt wegen des Sturms morgen geschlossen.",
    "El médico recomendó descansar y beber mucha agua.",
    "O mercado abre cedo aos sábados com frutas frescas.",
    "Вчера в городе открылась новая библиотека.",
    "Uczniowie przygotowali wystawę o historii miasta.",
    "Yarın hava güneşli ve sıcak olacak.",
    "ذهب الأطفال إلى الحديقة بعد المدرسة.",
    "המוזיאון פתוח לקהל בכל יום שלישי.",
    "کشاورزان امسال محصول خوبی برداشت کردند.",
    "किसानों ने इस साल अच्छी फसल काटी।",
    "আমরা আগামীকাল সমুদ্র সৈকতে যাব।",
    "நாளை காலை மழை பெய்யும் என்று சொன்னார்கள்.",
    "我们明天早上去爬山。",
    "この本はとても面白かったです。",
    "우리는 주말에 박물관에 갔습니다.",
    "Chúng tôi sẽ đi du lịch vào mùa hè.",
    "เด็ก ๆ เล่นฟุตบอลในสนามหลังโรงเรียน",
    "Wakulima walivuna mahindi mengi mwaka huu.",
    "Àwọn ọmọdé ń ṣeré nínú ọgbà.",
    "Manoma sun girbe amfanin gona mai yawa.",
    "ልጆቹ ከትምህርት ቤት በኋላ ወደ መናፈሻ ሄዱ።",
)


def measure_model(embedder) -> tuple[np.ndarray, np.ndarray]:
    """(query-minus-passage offset, fingerprint vector) of a model: the offset from the
    model's shipped priors when its fingerprint matches them (one embedding), else measured
    on the probe sentences (48 embeddings)."""
    from .priors import for_model

    fingerprint = np.asarray(embedder.embed_documents([PROBE_SENTENCES[0]])[0], np.float32)
    table = for_model(getattr(embedder, "name", ""), fingerprint)
    if table is not None:
        return table.global_offset.astype(np.float32), fingerprint
    texts = list(PROBE_SENTENCES)
    q = np.asarray(embedder.embed_queries(texts), dtype=np.float64)
    p = np.asarray(embedder.embed_documents(texts), dtype=np.float64)
    return (q.mean(axis=0) - p.mean(axis=0)).astype(np.float32), p[0].astype(np.float32)


def fingerprint_matches(embedder, stored: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Does this model still make the vector stored when the index was created?"""
    v = np.asarray(embedder.embed_documents([PROBE_SENTENCES[0]])[0], dtype=np.float64)
    cos = float(v @ stored) / (np.linalg.norm(v) * np.linalg.norm(stored) or 1.0)
    return cos >= 1.0 - tolerance


def checked_embedder(index_path: Path | str, model: str, dim: int, stored: np.ndarray | None,
                     engine: str | None = None, purpose: str = "query") -> Embedder:
    """The embedder of ``model``, refused (IndexMismatchError) unless it makes the index's
    ``dim`` and its fingerprint matches the one ``stored`` when the index was built."""
    from .embedders import get_embedder

    emb = get_embedder(model, engine=engine, purpose=purpose)
    if emb.dim != dim:
        raise IndexMismatchError(f"model {emb.name} makes {emb.dim}-d vectors; index holds "
                                 f"{dim}-d")
    if stored is not None and (len(stored) != emb.dim or not fingerprint_matches(emb, stored)):
        raise IndexMismatchError(
            f"index {index_path} was not built by the model its config names ({model}); "
            "rebuild it with xsearch index --full")
    return emb


def _ratio_bounds(top, low, near, far, scale) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) bounds of x / y / scale for x in [low, top] and y in [near, far] > 0."""
    hi = np.where(top >= 0, top / near, top / far) / scale
    lo = np.where(low >= 0, low / far, low / near) / scale
    return lo, hi


def _can_rank(lo: np.ndarray, hi: np.ndarray, k: int, counts: list[int]) -> list[np.ndarray]:
    """Per group of ``counts`` candidates: which can be among the k best. One whose upper bound
    is below the k-th best lower bound cannot, since k candidates score at least that."""
    return np.split(hi >= _kth_largest(lo, k), np.cumsum(counts)[:-1])


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of ``values`` (-inf when there are no more than k)."""
    if len(values) <= k:
        return -np.inf
    return float(np.partition(values, len(values) - k)[len(values) - k])
