"""Cross-lingual transfer of topic classifiers on SIB-200, on frozen (cached) e5-small vectors.

Experiments for issue #11 (the report is written by :mod:`xsearch.bench.transfer_report`):

- zero-shot (label descriptions) vs prototype vs logistic regression at N examples of one
  source language, per target language, with cross-lingual consistency per method;
- the full source x target matrix (logistic regression, N examples per source);
- the source ranker (:mod:`xsearch.sources`) evaluated leave-one-target-out on that matrix,
  beside "always English" and the hand-picked related source.

Vectors come from the benchmark's embedding cache, opened read-only: a language whose vectors
are not all cached is left out (and said so), never embedded here.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import sources as S
from ..classifiers import LogisticClassifier, PrototypeClassifier
from . import metrics as M
from .datasets import load_sib200_split

Log = Callable[[str], None]
SPLITS = ("train", "dev", "test")
#: The ranker's features that need no lang2vec (what ``xsearch.sources.WEIGHTS`` uses).
SHIPPED_FEATURES = ("script", "tokens", "embed", "central")


@dataclass
class Split:
    ids: list[str]
    labels: list[str]
    texts: list[str]
    vectors: np.ndarray


def _key(mode: str, text: str) -> str:
    return hashlib.sha256(f"{mode}\x00{text}".encode()).hexdigest()


def read_cached(cache: Path, texts: Sequence[str], mode: str = "passage",
                model: str = "e5-small") -> np.ndarray | None:
    """Vectors of ``texts`` from the cache (read-only), or None if any is missing."""
    conn = sqlite3.connect(f"{Path(cache).resolve().as_uri()}?mode=ro", uri=True)
    try:
        keys = [_key(mode, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        for a in range(0, len(uniq), 500):
            part = uniq[a : a + 500]
            marks = ",".join("?" * len(part))
            q = f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})"
            for k, blob in conn.execute(q, [model, *part]):
                found[k] = np.frombuffer(blob, dtype=np.float32)
    finally:
        conn.close()
    if len(found) < len(uniq):
        return None
    return np.vstack([found[k] for k in keys])


def load_language(root: Path, lang: str, cache: Path) -> dict[str, Split] | None:
    out = {}
    for split in SPLITS:
        rows = load_sib200_split(root, lang, split)
        vecs = read_cached(cache, [r[2] for r in rows])
        if vecs is None:
            return None
        out[split] = Split([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                           vecs)
    return out


def load_all(root: Path, langs: Sequence[str], cache: Path, log: Log = print
             ) -> dict[str, dict[str, Split]]:
    data = {}
    for lang in langs:
        d = load_language(root, lang, cache)
        if d is None:
            log(f"{lang}: not fully in the embedding cache yet, left out")
        else:
            data[lang] = d
    return data


def stratified(labels: Sequence[str], n: int, seed: int) -> list[int]:
    """``n`` positions drawn round-robin over the labels (every label once before any twice)."""
    rng = random.Random(seed)
    by: dict[str, list[int]] = defaultdict(list)
    for i, lb in enumerate(labels):
        by[lb].append(i)
    for pos in by.values():
        rng.shuffle(pos)
    order = sorted(by)
    rng.shuffle(order)
    out: list[int] = []
    depth = 0
    while len(out) < min(n, len(labels)):
        for lb in order:
            if depth < len(by[lb]) and len(out) < n:
                out.append(by[lb][depth])
        depth += 1
    return sorted(out)


def make_classifier(method: str):
    return {"prototype": PrototypeClassifier, "logreg": LogisticClassifier}[method]()


def fit_source(split: Split, method: str, n: int, seed: int):
    pos = stratified(split.labels, n, seed)
    return make_classifier(method).fit(split.vectors[pos], [split.labels[i] for i in pos])


def accuracy(pred: Sequence[str], gold: Sequence[str]) -> float:
    return float(np.mean([p == g for p, g in zip(pred, gold, strict=True)]))


def zero_shot(data: dict[str, dict[str, Split]], label_vectors: np.ndarray,
              names: Sequence[str]) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    acc, preds = {}, {}
    for lang, d in data.items():
        te = d["test"]
        best = (te.vectors @ label_vectors.T).argmax(1)
        p = [names[i] for i in best]
        acc[lang] = accuracy(p, te.labels)
        preds[lang] = dict(zip(te.ids, p, strict=True))
    return acc, preds


def few_shot_curves(data: dict[str, dict[str, Split]], source: str, ns: Sequence[int],
                    methods: Sequence[str] = ("prototype", "logreg"), seeds: int = 3,
                    subset: Sequence[str] = ()) -> dict:
    """{method: {n: {"accuracy": {target: mean over seeds}, "consistency", "pairwise"}}};
    ``consistency_subset``: the all-agree share over ``subset`` languages only."""
    out: dict = {}
    for method in methods:
        out[method] = {}
        for n in ns:
            accs: dict[str, list[float]] = defaultdict(list)
            cons, pair, sub = [], [], []
            for seed in range(seeds if n < len(data[source]["train"].ids) else 1):
                clf = fit_source(data[source]["train"], method, n, seed)
                preds = {}
                for lang, d in data.items():
                    p = clf.predict(d["test"].vectors)
                    accs[lang].append(accuracy(p, d["test"].labels))
                    preds[lang] = dict(zip(d["test"].ids, p, strict=True))
                cons.append(M.consistency(preds)["all_agree"])
                if subset:
                    sub.append(M.consistency({lg: preds[lg] for lg in subset
                                              if lg in preds})["all_agree"])
                pair.append(float(np.mean(list(M.pairwise_agreement(preds).values()))))
            out[method][n] = {"accuracy": {lg: float(np.mean(v)) for lg, v in accs.items()},
                              "consistency": float(np.mean(cons)),
                              "pairwise_agreement": float(np.mean(pair)),
                              "consistency_subset": float(np.mean(sub)) if sub else None}
    return out


def transfer_matrix(data: dict[str, dict[str, Split]], n: int = 500, method: str = "logreg",
                    seed: int = 0) -> dict[str, dict[str, float]]:
    """acc[source][target] with ``n`` examples of the source."""
    out: dict[str, dict[str, float]] = {}
    for src, d in data.items():
        clf = fit_source(d["train"], method, n, seed)
        out[src] = {tgt: accuracy(clf.predict(t["test"].vectors), t["test"].labels)
                    for tgt, t in data.items()}
    return out


# ------------------------------------------------------------------ source ranking


def language_profiles(data: dict[str, dict[str, Split]]) -> dict[str, S.LanguageProfile]:
    """Token and centroid profiles from each language's training split."""
    return S.profiles({lg: d["train"].texts for lg, d in data.items()},
                      {lg: d["train"].vectors for lg, d in data.items()})


def feature_table(profs: dict[str, S.LanguageProfile]) -> dict[tuple[str, str], dict]:
    pool = list(profs.values())
    return {(s, t): S.pair_features(profs[s], profs[t], pool)
            for s in profs for t in profs if s != t}


def _standardise(rows: list[dict], names: Sequence[str]) -> tuple[np.ndarray, dict]:
    mat = np.array([[np.nan if r[f] is None else r[f] for f in names] for r in rows], float)
    std = {}
    for j, f in enumerate(names):
        col = mat[:, j]
        known = col[~np.isnan(col)]
        m, s = (float(known.mean()), float(known.std()) or 1.0) if len(known) else (0.0, 1.0)
        std[f] = (m, s)
        mat[:, j] = np.where(np.isnan(col), 0.0, (col - m) / s)
    return mat, std


def fit_ranker(feats: dict[tuple[str, str], dict], matrix: dict[str, dict[str, float]],
               targets: Sequence[str], names: Sequence[str] = S.FEATURES, alpha: float = 1.0
               ) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Ridge weights predicting a source's accuracy minus the target's mean over sources."""
    pairs = [(s, t) for (s, t) in feats if t in targets and s in targets]
    mat, std = _standardise([feats[p] for p in pairs], names)
    mean_t = {t: np.mean([matrix[s][t] for s in targets if s != t]) for t in targets}
    y = np.array([matrix[s][t] - mean_t[t] for s, t in pairs])
    w = np.linalg.solve(mat.T @ mat + alpha * np.eye(len(names)), mat.T @ y)
    return dict(zip(names, map(float, w), strict=True)), std


def ndcg_at(ranked: Sequence[str], gains: dict[str, float], k: int = 3) -> float:
    """NDCG@k with the measured accuracies (min-shifted per target) as gains."""
    lo = min(gains.values())
    g = {s: v - lo for s, v in gains.items()}
    dcg = sum(g[s] / np.log2(i + 2) for i, s in enumerate(ranked[:k]))
    ideal = sorted(g.values(), reverse=True)[:k]
    idcg = sum(v / np.log2(i + 2) for i, v in enumerate(ideal))
    return float(dcg / idcg) if idcg else 1.0


def evaluate_rankers(matrix: dict[str, dict[str, float]],
                     feats: dict[tuple[str, str], dict], related: dict[str, str]) -> dict:
    """Leave-one-target-out: fit on the other targets, rank the sources of the held-out one."""
    langs = sorted(matrix)
    methods: dict[str, Callable[[str], list[str]]] = {}

    def by_feature(name: str):
        return lambda t: sorted((s for s in langs if s != t),
                                key=lambda s: -(feats[(s, t)][name] or 0.0))

    def loo(names: Sequence[str]):
        def rank(t: str) -> list[str]:
            w, std = fit_ranker(feats, matrix, [x for x in langs if x != t], names)
            return sorted((s for s in langs if s != t),
                          key=lambda s: -S.score(feats[(s, t)], w, std))
        return rank

    def english_first(t: str) -> list[str]:
        rest = sorted((s for s in langs if s not in (t, "eng_Latn")),
                      key=lambda s: -(feats[(s, t)]["embed"] or 0.0))
        return (["eng_Latn"] if t != "eng_Latn" and "eng_Latn" in langs else []) + rest

    def related_first(t: str) -> list[str]:
        first = related.get(t)
        rest = english_first(t)
        return ([first] + [s for s in rest if s != first]) if first in langs else rest

    if "eng_Latn" in langs:
        methods["always English"] = english_first
    methods["hand-picked related (RELATED)"] = related_first
    for f in S.FEATURES:
        methods[f"feature: {f}"] = by_feature(f)
    methods["ranker (all features, LOO)"] = loo(S.FEATURES)
    methods["ranker (no lang2vec, LOO; shipped)"] = loo(SHIPPED_FEATURES)
    out: dict = {}
    for name, rank in methods.items():
        top1, lost, ndcg, picks = [], [], [], {}
        for t in langs:
            gains = {s: matrix[s][t] for s in langs if s != t}
            order = rank(t)
            best = max(gains.values())
            picks[t] = order[0]
            top1.append(gains[order[0]] == best)
            lost.append(best - gains[order[0]])
            ndcg.append(ndcg_at(order, gains))
        out[name] = {"top1_is_best": float(np.mean(top1)), "mean_accuracy_lost": float(
            np.mean(lost)), "max_accuracy_lost": float(np.max(lost)),
            "ndcg@3": float(np.mean(ndcg)), "picks": picks}
    return out
