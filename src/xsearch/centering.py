"""Language-neutral scores and calibrated relevance from the index's per-language statistics.

``lang_stats`` keeps, per language, the count, sum and sum of outer products of its passage
vectors, so the mean mu_L and covariance Sigma_L follow every write exactly. A query q becomes
q' = q - mu(query language) - delta (delta = the model's query-minus-passage offset); a passage
of language L scores q'·(p - mu_L), which :class:`VectorStore` applies as a per-segment bias.
Over all passages of L those scores have mean 0 and variance q'ᵀ Sigma_L q', which makes
``relevance`` (the score in standard deviations) comparable across queries and languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .store import Store

#: Languages with fewer passages borrow the global mean and covariance (too few to estimate).
MIN_PASSAGES = 20
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
    mode: str
    generation: int
    means: dict[str, np.ndarray] = field(default_factory=dict)
    covs: dict[str, np.ndarray] = field(default_factory=dict)
    global_mean: np.ndarray | None = None
    global_cov: np.ndarray | None = None
    offset: np.ndarray | None = None
    _sigma: dict = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store, mode: str, generation: int) -> Centering:
        stats = store.lang_stats(with_outer=True)
        out = cls(mode=mode, generation=generation)
        if not stats:
            return out
        n_all = sum(s[0] for s in stats.values())
        total = sum(s[1] for s in stats.values())
        outer = sum(s[2] for s in stats.values())
        out.global_mean = total / n_all
        out.global_cov = outer / n_all - np.outer(out.global_mean, out.global_mean)
        for lang, (n, s, o) in stats.items():
            if n >= MIN_PASSAGES:
                mu = s / n
                out.means[lang] = mu
                out.covs[lang] = o / n - np.outer(mu, mu)
        out.offset = decode_vector(store.meta(OFFSET_KEY))
        return out

    def mean_of(self, lang: str | None) -> np.ndarray | None:
        if lang is not None and lang in self.means:
            return self.means[lang]
        return self.global_mean

    def cov_of(self, lang: str) -> np.ndarray | None:
        return self.covs.get(lang, self.global_cov)

    def query_languages(self, texts: Sequence[str]) -> list[str | None]:
        if self.mode != "language":
            return [None] * len(texts)
        from . import langid

        return [g.code if g.code in self.means else None for g in langid.detect_many(texts)]

    def transform(self, qv: np.ndarray, q_langs: Sequence[str | None]
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(q', bias per language) such that a passage p of language L scores q'·p + bias[L]."""
        self._sigma: dict[tuple[int, str], tuple[float, float]] = {}
        qv = np.asarray(qv, dtype=np.float64)
        if self.mode == "none" or self.global_mean is None:
            self._qc, self._bias = qv, BiasMap()
            return qv.astype(np.float32), self._bias
        offset = self.offset if self.offset is not None else 0.0
        if self.mode == "global":
            qc = qv - self.global_mean - offset
            bias = BiasMap({"*": -(qc @ self.global_mean)})
        else:
            qc = np.vstack([q - self.mean_of(lang) - offset
                            for q, lang in zip(qv, q_langs, strict=True)])
            bias = BiasMap({lang: -(qc @ mu) for lang, mu in self.means.items()})
            bias["*"] = -(qc @ self.global_mean)
        self._qc, self._bias = qc, bias
        return qc.astype(np.float32), bias

    def relevance(self, qi: int, score: float, lang: str) -> float:
        """Hit ``score`` of query ``qi`` in standard deviations above its language's background
        (the mean and spread of that query's scores over every passage of the language)."""
        key = (qi, lang)
        if key not in self._sigma:
            cov = self.cov_of(lang)
            if cov is None:
                return float("nan")
            q = self._qc[qi]
            mu = self.mean_of(lang)
            bias = self._bias.get(lang)
            background = float(q @ mu) + (float(bias[qi]) if bias is not None else 0.0)
            self._sigma[key] = (max(float(q @ cov @ q), 1e-12) ** 0.5, background)
        sigma, background = self._sigma[key]
        return (score - background) / sigma


class BiasMap(dict):
    """Per-language bias; languages without their own mean take the global one ("*")."""

    def get(self, key, default=None):
        if key in self:
            return self[key]
        return dict.get(self, "*", default)


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
    """(query-minus-passage offset, fingerprint vector) of a model, from the probe sentences."""
    texts = list(PROBE_SENTENCES)
    q = np.asarray(embedder.embed_queries(texts), dtype=np.float64)
    p = np.asarray(embedder.embed_documents(texts), dtype=np.float64)
    return (q.mean(axis=0) - p.mean(axis=0)).astype(np.float32), p[0].astype(np.float32)


def fingerprint_matches(embedder, stored: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Does this model still make the vector stored when the index was created?"""
    v = np.asarray(embedder.embed_documents([PROBE_SENTENCES[0]])[0], dtype=np.float64)
    cos = float(v @ stored) / (np.linalg.norm(v) * np.linalg.norm(stored) or 1.0)
    return cos >= 1.0 - tolerance
