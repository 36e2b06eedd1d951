"""Ranking probe (issue #13): centring remedies, hybrid lexical+dense, calibrated scores.

Measures the pieces in ``xsearch.ranking``, ``xsearch.lexical`` and
``xsearch.bench.entity_queries`` on SIB-200 with cached e5-small vectors; nothing here is
wired into the product (the lead integrates). Sections:

- ``centring``: mixed pool of every sentence in every language (30 x 1004 = 30,120 passages),
  every sentence a query, relevant = the same index_id in the other languages (the query's own
  sentence is left out of its ranking). mAP@100, own-language bias@10 (share of the top 10 in
  the query's language), per-pair recall@1 (pool = one document language), per query language.
- ``hybrid``: entity/number/rare-word window queries (same- and cross-language), recall@5 for
  dense / lexical (SQLite FTS5 in memory, ``xsearch.lexical``) / fused; plain SIB queries too.
- ``calibration``: off-topic queries (pool without topic T, queries from topic T) vs on-topic;
  thresholds on raw cosine, centred score and z-score.
- ``corpus``: the same scores on the bundled sample corpus (paragraphs), on-/off-topic queries.

    python benchmarks/ranking_probe.py all [--langs a,b,c] [--cache PATH]

Vectors come from the shared SIB-200 cache (read only); texts it lacks (entity queries) are
embedded with the bundled model and kept in benchmarks/cache/ranking_probe.sqlite.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from bench_paths import EMBED_CACHE

from xsearch import ranking
from xsearch.bench.cache import _key
from xsearch.bench.datasets import SIB_SPLITS, default_sib200_root, load_sib200_split

ROOT = Path(__file__).resolve().parents[1]
SHARED_CACHE = Path(os.environ.get("XSEARCH_BENCH_CACHE",
                                   str(EMBED_CACHE)))
OWN_CACHE = ROOT / "benchmarks/cache/ranking_probe.sqlite"
OUT = ROOT / "benchmarks/results/ranking_probe"
MODEL = "e5-small"


# ------------------------------------------------------------------------------ vectors


class Vectors:
    """Cached vectors: the shared cache read-only first, then our own cache, then the model."""

    def __init__(self, shared: Path, own: Path = OWN_CACHE) -> None:
        self.shared = (
            sqlite3.connect(f"file:{shared}?mode=ro", uri=True) if shared.is_file() else None
        )
        own.parent.mkdir(parents=True, exist_ok=True)
        self.own = sqlite3.connect(str(own))
        self.own.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key TEXT, vector BLOB, "
            "PRIMARY KEY (model, key))"
        )
        self._model = None
        self.computed = 0

    def _lookup(self, conn: sqlite3.Connection | None, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        if conn is None:
            return found
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            for key, blob in conn.execute(
                f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                [MODEL, *part],
            ):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def have(self, texts: list[str], mode: str) -> bool:
        keys = list(dict.fromkeys(_key(mode, t) for t in texts))
        found = self._lookup(self.shared, keys)
        rest = [k for k in keys if k not in found]
        return len(found) + len(self._lookup(self.own, rest)) == len(keys)

    def fill(self, texts: list[str]) -> None:
        """Embed what neither cache has, in both modes (into our own cache)."""
        for mode in ("passage", "query"):
            self.get(texts, mode)

    def get(self, texts: list[str], mode: str, compute: bool = True) -> np.ndarray:
        keys = [_key(mode, t) for t in texts]
        unique = list(dict.fromkeys(keys))
        found = self._lookup(self.shared, unique)
        rest = [k for k in unique if k not in found]
        found.update(self._lookup(self.own, rest))
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        if todo:
            if not compute:
                raise LookupError(f"{len(todo)} {mode} vectors not cached")
            if self._model is None:
                from xsearch.embedders import get_embedder

                self._model = get_embedder(MODEL)
            fn = self._model.embed_queries if mode == "query" else self._model.embed_documents
            vecs = fn(list(todo.values()))
            self.computed += len(todo)
            with self.own:
                self.own.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(MODEL, k, np.asarray(v, np.float32).tobytes())
                     for k, v in zip(todo, vecs, strict=True)],
                )
            found.update(zip(todo, vecs, strict=True))
        return np.vstack([found[k] for k in keys]).astype(np.float32)


class Sib:
    """SIB-200, every split, the index_ids every chosen language has, lang-major layout."""

    def __init__(self, root: Path, langs: list[str]) -> None:
        self.langs = langs
        rows = {lang: {} for lang in langs}
        self.split: dict[str, str] = {}
        self.topic: dict[str, str] = {}
        for lang in langs:
            for split in SIB_SPLITS:
                for index_id, category, text in load_sib200_split(root, lang, split):
                    rows[lang][index_id] = text
                    self.split[index_id] = split
                    self.topic[index_id] = category
        common = set.intersection(*(set(r) for r in rows.values()))
        self.ids = sorted(common, key=int)
        self.n = len(self.ids)
        self.texts = {lang: [rows[lang][i] for i in self.ids] for lang in langs}
        self.all_texts = [t for lang in langs for t in self.texts[lang]]
        self.lang_of = np.repeat(np.arange(len(langs)), self.n)
        self.sent_of = np.tile(np.arange(self.n), len(langs))
        self.topics = np.array([self.topic[i] for i in self.ids])


def available_langs(vec: Vectors, root: Path, langs: list[str]) -> list[str]:
    """Languages whose every sentence is cached (shared or own cache) in both modes."""
    out = []
    for lang in langs:
        texts = [r[2] for s in SIB_SPLITS for r in load_sib200_split(root, lang, s)]
        if vec.have(texts, "passage") and vec.have(texts, "query"):
            out.append(lang)
    return out


def _norm(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------------------ centring


def _detected_langs(sib: Sib, cache: Path) -> list[str]:
    """xsearch.langid on every sentence (cached in benchmarks/cache, it takes a while)."""
    from xsearch.langid import detect_many

    known = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = [t for t in sib.all_texts if t not in known]
    if todo:
        for text, guess in zip(todo, detect_many(todo), strict=True):
            known[text] = guess.code
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, ensure_ascii=False))
    return [known[t] for t in sib.all_texts]


def evaluate(
    sib: Sib,
    qv: np.ndarray,
    pv: np.ndarray,
    pass_bias: np.ndarray | None = None,
    block: int = 1004,
    lang_scale: np.ndarray | None = None,
) -> dict:
    """Mixed-pool mAP@100 and bias@10, per-pair recall@1, per query language.

    score(q, p) = qv[q]·pv[p] + pass_bias[p]. Queries and passages share the lang-major layout.
    """
    nl, n = len(sib.langs), sib.n
    total = nl * n
    ap = np.zeros(total)
    own10 = np.zeros(total)
    r1 = np.zeros((nl, nl))
    for start in range(0, total, block):
        stop = min(start + block, total)
        s = qv[start:stop] @ pv.T
        if pass_bias is not None:
            s += pass_bias[None, :]
        if lang_scale is not None:  # calibrated: divide by sqrt(q'^T Sigma_L q')
            s /= lang_scale[start:stop][:, sib.lang_of]
        rows = np.arange(stop - start)
        qidx = np.arange(start, stop)
        s[rows, qidx] = -np.inf  # the query's own sentence is not part of its ranking
        # per-pair recall@1: argmax within each document language's slice
        qlang = sib.lang_of[qidx]
        qsent = sib.sent_of[qidx]
        for b in range(nl):
            best = s[:, b * n : (b + 1) * n].argmax(axis=1)
            hit = best == qsent
            for a in np.unique(qlang):
                if a == b:
                    continue
                m = qlang == a
                r1[a, b] += hit[m].sum()
        top = np.argpartition(-s, 100, axis=1)[:, :100]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        rel = sib.sent_of[top] == qsent[:, None]
        cum = np.cumsum(rel, axis=1)
        ap[qidx] = (rel * cum / np.arange(1, 101)).sum(axis=1) / (nl - 1)
        own10[qidx] = (sib.lang_of[top[:, :10]] == qlang[:, None]).mean(axis=1)
    r1 /= n
    off = ~np.eye(nl, dtype=bool)
    per_lang = {
        lang: {
            "mAP@100": float(ap[sib.lang_of == a].mean()),
            "bias@10": float(own10[sib.lang_of == a].mean()),
            "R@1 as query": float(r1[a][off[a]].mean()),
        }
        for a, lang in enumerate(sib.langs)
    }
    return {
        "mAP@100": float(ap.mean()),
        "bias@10": float(own10.mean()),
        "R@1 mean": float(r1[off].mean()),
        "R@1 worst": float(r1[off].min()),
        "r1": r1,
        "per_lang": per_lang,
    }


def centring(sib: Sib, vec: Vectors, cache_dir: Path) -> dict:
    P = vec.get(sib.all_texts, "passage", compute=False)
    Q = vec.get(sib.all_texts, "query", compute=False)
    nl = len(sib.langs)
    stats = {lang: ranking.LangStats.of(P[sib.lang_of == a]) for a, lang in enumerate(sib.langs)}
    means = np.vstack([stats[lang].mean for lang in sib.langs]).astype(np.float32)
    # offset from the train split only: a model constant, not fitted on what is measured
    train = np.array([sib.split[i] == "train" for i in sib.ids])
    tmask = np.tile(train, nl)
    offset = ranking.query_offset(Q[tmask], P[tmask])
    oracle = [sib.langs[a] for a in sib.lang_of]
    t0 = time.time()
    detected = _detected_langs(sib, cache_dir / "langid_sib200.json")
    print(f"langid on {len(detected)} sentences: {time.time() - t0:.0f}s", file=sys.stderr)
    langid_acc = float(np.mean([d == o for d, o in zip(detected, oracle, strict=True)]))
    glob = ranking.pooled(stats)
    mu_p = glob.mean.astype(np.float32)
    mu_q = Q.mean(axis=0)
    Pc = (P - means[sib.lang_of]).astype(np.float32)  # per-language centred passages

    def q_lang(langs: list[str]) -> np.ndarray:
        return ranking.query_transform(Q, langs, stats, offset)

    variants: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
    variants["raw cosine (landed)"] = (Q, P, None)
    variants["one global mean, both modes (landed --center)"] = (
        _norm(Q - mu_p), _norm(P - mu_p), None)
    variants["global mean per mode"] = (Q - mu_q, P - mu_p, None)
    variants["global mean per mode, renorm"] = (_norm(Q - mu_q), _norm(P - mu_p), None)
    qo = q_lang(oracle)
    qd = q_lang(detected)
    variants["per-language, oracle lang, no renorm"] = (qo, Pc, None)
    variants["per-language, oracle lang, renorm passages"] = (qo, _norm(Pc), None)
    variants["per-language, langid, no renorm"] = (qd, Pc, None)
    variants["per-language, langid, renorm passages"] = (qd, _norm(Pc), None)
    variants["per-language passages, query minus global query mean"] = (Q - mu_q, Pc, None)
    variants["per-language passages, query minus pooled passage mean + offset"] = (
        ranking.query_transform(Q, None, stats, offset), Pc, None)
    # a per-(model, language) query offset table, fitted on the train split (could ship with
    # the model for the languages SIB-200 covers; global offset for the others)
    lang_off = {lang: ranking.query_offset(Q[tmask & (sib.lang_of == a)],
                                           P[tmask & (sib.lang_of == a)])
                for a, lang in enumerate(sib.langs)}
    q_tab = np.vstack([Q[i] - stats[detected[i]].mean - lang_off[detected[i]]
                       if detected[i] in stats else Q[i] - glob.mean - offset
                       for i in range(len(Q))]).astype(np.float32)
    variants["per-language, langid, per-language query offset table"] = (q_tab, Pc, None)
    variants["per-language, langid, query offset table, renorm passages"] = (
        q_tab, _norm(Pc), None)
    # the offset an index could measure itself: 256 of its own passages embedded once more
    # in query mode
    sample = np.random.default_rng(0).choice(len(P), size=256, replace=False)
    own_off = ranking.query_offset(Q[sample], P[sample])
    q_own = ranking.query_transform(Q, detected, stats, own_off)
    variants["per-language, langid, offset from 256 own passages, no renorm"] = (q_own, Pc, None)
    variants["per-language, langid, offset from 256 own passages, renorm"] = (
        q_own, _norm(Pc), None)
    own_lang_off = own_language_offsets(sib, P, Q)
    q_lown = ranking.query_transform(Q, detected, stats, own_off, own_lang_off)
    variants["per-language, langid, per-language offset from 64 own passages, no renorm"] = (
        q_lown, Pc, None)
    variants["per-language, langid, per-language offset from 64 own passages, renorm"] = (
        q_lown, _norm(Pc), None)
    # all-but-the-top (Mu & Viswanath 2018) on top of per-language centring: the leading
    # directions of the pooled within-language covariance (sum of Sigma_L, from the sums)
    within = sum(stats[lang].n * stats[lang].cov for lang in sib.langs) / glob.n
    for k in (3,):
        d = ranking.top_directions(within, k)
        variants[f"per-language, langid, minus top {k} PCs"] = (
            ranking.remove_directions(qd, d), ranking.remove_directions(Pc, d), None)
    # CSLS (Conneau et al. 2018): penalise passages by their mean similarity to their 10
    # nearest queries; the query-side term is constant per query. Needs a query sample: here
    # the pool's own texts in query mode (an optimistic stand-in: not incremental).
    for name, qv, pv in (("raw", Q, P), ("per-language langid", qd, Pc)):
        r = _csls_radius(qv, pv)
        variants[f"CSLS k=10 on {name}"] = (2 * qv, pv, -r)
    covs = np.stack([stats[lang].cov for lang in sib.langs])
    traces = np.trace(covs, axis1=1, axis2=2)

    def zscale(qv: np.ndarray, renorm: bool) -> np.ndarray:
        sc = _quad(qv, covs)
        return (sc / np.sqrt(traces)[None, :] if renorm else sc).astype(np.float32)

    zs = {"per-language, langid, no renorm, z-score": (qd, Pc, False),
          "per-language, langid, renorm, z-score": (qd, _norm(Pc), True),
          "per-language, langid, query offset table, renorm, z-score": (q_tab, _norm(Pc), True),
          "per-language, langid, per-language offset from 64 own passages, renorm, z-score": (
              q_lown, _norm(Pc), True)}
    results = {}
    todo = [*variants.items(), *((k, (v[0], v[1], None)) for k, v in zs.items())]
    if CORE_ONLY:
        todo = [(k, v) for k, v in todo if k in CORE]
    for name, (qv, pv, pb) in todo:
        t0 = time.time()
        results[name] = evaluate(sib, qv.astype(np.float32), pv.astype(np.float32), pb,
                                 lang_scale=zscale(qv, zs[name][2]) if name in zs else None)
        res = results[name]
        print(f"{name}: mAP {res['mAP@100']:.3f} bias {res['bias@10']:.3f} "
              f"R@1 {res['R@1 mean']:.3f} worst {res['R@1 worst']:.3f} "
              f"drop {(res['r1'] - results[next(iter(results))]['r1']).min():+.3f} "
              f"({time.time() - t0:.0f}s)", file=sys.stderr)
    base = results["raw cosine (landed)"]["r1"]
    off = ~np.eye(nl, dtype=bool)
    out = {"langs": sib.langs, "n_per_lang": sib.n, "langid_accuracy": langid_acc,
           "variants": {}}
    for name, res in results.items():
        diff = res["r1"] - base
        worst_drop = float(diff[off].min())
        a, b = np.unravel_index(np.where(off, diff, np.inf).argmin(), diff.shape)
        out["variants"][name] = {
            "mAP@100": res["mAP@100"], "bias@10": res["bias@10"],
            "R@1 mean": res["R@1 mean"], "R@1 worst": res["R@1 worst"],
            "largest pair drop": worst_drop,
            "largest drop pair": f"{sib.langs[a]}->{sib.langs[b]}",
            "pairs dropping >0.02": int((diff[off] < -0.02).sum()),
            "per_lang": res["per_lang"],
        }
        if name == "raw cosine (landed)":
            wa, wb = np.unravel_index(np.where(off, res["r1"], np.inf).argmin(), diff.shape)
            out["variants"][name]["worst pair"] = f"{sib.langs[wa]}->{sib.langs[wb]}"
    return out


CORE_ONLY = False
RECOMMENDED = "per-language, langid, per-language offset from 64 own passages, renorm, z-score"
# The variants a 30-language run keeps when time is short (--core): the others were measured
# on fewer languages (results/ranking_probe_17langs.md) and never came out ahead.
CORE = {
    "raw cosine (landed)", "one global mean, both modes (landed --center)",
    "global mean per mode", "global mean per mode, renorm",
    "per-language, oracle lang, no renorm", "per-language, oracle lang, renorm passages",
    "per-language, langid, no renorm", "per-language, langid, renorm passages",
    "per-language, langid, per-language offset from 64 own passages, no renorm",
    "per-language, langid, per-language offset from 64 own passages, renorm",
    "per-language, langid, minus top 3 PCs", "CSLS k=10 on per-language langid",
    "per-language, langid, no renorm, z-score",
    "per-language, langid, per-language offset from 64 own passages, renorm, z-score",
}


def _quad(qv: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """sqrt(q^T C_l q) for every query row and covariance (BLAS, not einsum: 30k x 30)."""
    q = np.asarray(qv, dtype=np.float64)
    return np.sqrt(np.maximum(np.stack([((q @ c) * q).sum(axis=1) for c in covs], axis=1),
                              1e-12))


def own_language_offsets(sib: Sib, P: np.ndarray, Q: np.ndarray, n: int = 64,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Per-language query-minus-passage offsets an index can measure itself: ``n`` of each
    language's own passages embedded once more in query mode."""
    rng = np.random.default_rng(seed)
    out = {}
    for a, lang in enumerate(sib.langs):
        rows = rng.choice(np.flatnonzero(sib.lang_of == a), size=min(n, sib.n), replace=False)
        out[lang] = ranking.query_offset(Q[rows], P[rows])
    return out


def _csls_radius(qv: np.ndarray, pv: np.ndarray, k: int = 10, block: int = 2048) -> np.ndarray:
    r = np.empty(len(pv), dtype=np.float32)
    for start in range(0, len(pv), block):
        s = pv[start : start + block] @ qv.T
        idx = np.arange(s.shape[0])
        s[idx, start + idx] = -np.inf  # not its own query
        r[start : start + block] = -np.partition(-s, k, axis=1)[:, :k].mean(axis=1)
    return r


# ------------------------------------------------------------------------------ sample corpus

CORPUS_ON = {
    "bread": ["how do I bake bread at home?", "pain maison levure farine"],
    "coffee": ["Kaffee anbauen in den Bergen", "coffee harvest and roasting"],
    "football": ["who won the football match?", "partido de fútbol goles"],
    "solar": ["solar panels on the roof", "énergie solaire panneaux"],
    "vaccines": ["vaccine side effects", "疫苗接种"],
    "volcano": ["volcanic eruption", "erupción del volcán"],
}
CORPUS_OFF = ["tax return deadline for freelancers", "mortgage interest rates in 2024",
              "how to train a puppy", "best smartphone battery life",
              "Steuererklärung Frist für Selbstständige", "comment réparer un vélo",
              "如何学习钢琴", "guitar chords for beginners"]


def corpus(sib: Sib, vec: Vectors, cache_dir: Path) -> dict:
    """The SIB-fitted scores on the bundled sample corpus (paragraphs of its txt/md files):
    top-5 scores of on-topic and off-topic queries, raw cosine vs z-score."""
    import csv

    from xsearch.langid import detect

    texts, langs, topics = [], [], []
    with open(ROOT / "data/corpus/MANIFEST.tsv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["format"] not in ("txt", "md"):
                continue
            body = (ROOT / "data/corpus" / row["path"]).read_text(errors="replace")
            for para in (p.strip() for p in body.split("\n\n")):
                if len(para) > 40:
                    texts.append(para)
                    langs.append(row["lang"])
                    topics.append(row["topic"])
    P = vec.get(texts, "passage")
    Qp = vec.get(texts, "query")  # its own passages in query mode: the offsets (<= 64 each)
    ul = sorted(set(langs))
    li = np.array([ul.index(x) for x in langs])
    stats = {x: ranking.LangStats.of(P[li == j]) for j, x in enumerate(ul)}
    glob = ranking.pooled(stats)
    offset = ranking.query_offset(Qp, P)
    lang_off = {x: ranking.query_offset(Qp[li == j][:64], P[li == j][:64])
                for j, x in enumerate(ul)}
    out: dict = {"passages": len(texts), "languages": len(ul), "rows": []}
    queries = [(q, t) for t, qs in CORPUS_ON.items() for q in qs] + [(q, None)
                                                                   for q in CORPUS_OFF]
    Qv = vec.get([q for q, _ in queries], "query")
    for shrink in (0, 20):
        st = {x: ranking.shrunk(stats[x], glob, shrink) for x in ul}
        lo = {x: (min(64, stats[x].n) * lang_off[x] + shrink * offset)
              / (min(64, stats[x].n) + shrink) for x in ul}
        for (q, topic), qv in zip(queries, Qv, strict=True):
            qp = ranking.query_transform(qv, detect(q).code, st, offset, lo)
            z = np.empty(len(P))
            for j, x in enumerate(ul):
                m = li == j
                z[m] = ranking.zscore(ranking.renormalized_scores(qp, P[m], st[x].mean),
                                      qp, st[x].cov, renormalized=True)
            top = np.argsort(-z)[:5]
            raw = P @ qv
            out["rows"].append({
                "shrink": shrink, "query": q, "topic": topic or "(off-topic)",
                "raw max": float(raw.max()), "z max": float(z[top[0]]),
                "top-5 on topic": int(sum(topics[i] == topic for i in top)),
            })
    return out


# ------------------------------------------------------------------------------ report


def _f(x: float) -> str:
    return f"{x:.3f}"


def report(results: dict) -> str:
    """The markdown page for benchmarks/results/ranking_probe.md."""
    lines = ["# Ranking probe (issue #13): centring, hybrid, calibration", "",
             "Made by `python benchmarks/ranking_probe.py all` (e5-small, cached vectors).", ""]
    meta = results.get("meta")
    if meta:
        lines += [f"Run {meta['started']}; {len(meta['languages'])} SIB-200 languages: "
                  f"{', '.join(meta['languages'])}."]
        if meta["not cached at run time"]:
            lines += [f"Not in the embedding cache yet at run time (left out): "
                      f"{', '.join(meta['not cached at run time'])}."]
        lines += [""]
    lines += _summary_md(results)
    if "centring" in results:
        lines += _centring_md(results["centring"])
    if "hybrid" in results:
        lines += _hybrid_md(results["hybrid"])
    if "calibration" in results:
        lines += _calibration_md(results["calibration"])
    if "corpus" in results:
        lines += _corpus_md(results["corpus"])
    return "\n".join(lines) + "\n"


def _summary_md(results: dict) -> list[str]:
    """The recommendation, with its numbers pulled from this run."""
    out = ["## Recommendation", ""]
    c = results.get("centring", {}).get("variants", {})
    if RECOMMENDED in c and "raw cosine (landed)" in c:
        r, b = c[RECOMMENDED], c["raw cosine (landed)"]
        out.append(
            f"- Dense: per-language centring of passages, **re-normalised**, query minus its "
            f"language's passage mean and that language's query-minus-passage offset (64 own "
            f"passages embedded also in query mode), query language from xsearch.langid, "
            f"**z-score**: mixed mAP@100 {b['mAP@100']:.3f} -> {r['mAP@100']:.3f}, bias@10 "
            f"{b['bias@10']:.3f} -> {r['bias@10']:.3f}, per-pair R@1 {b['R@1 mean']:.3f} -> "
            f"{r['R@1 mean']:.3f} (worst pair {b['R@1 worst']:.3f} -> {r['R@1 worst']:.3f}, "
            f"largest pair drop {r['largest pair drop']:+.3f}).")
    h = results.get("hybrid", {})
    ent = next((v for k, v in h.items() if k.startswith("entity") and "kept, max_share 0.01"
                in k), None)
    plain = next((v for k, v in h.items() if k.startswith("plain") and "0.01" in k), None)
    if ent and plain and "z+lex l=2" in ent:
        e, d, p, pd = ent["z+lex l=2"], ent["dense"], plain["z+lex l=2"], plain["dense"]
        out.append(
            f"- Hybrid: z + 2 * min(1, idf-normalised BM25), common tokens (> 1% of passages) "
            f"dropped, diacritics kept: entity same-language R@5 "
            f"{d['same-language R@5 (mixed pool)']:.3f} -> "
            f"{e['same-language R@5 (mixed pool)']:.3f}; plain cross-language pair R@1 "
            f"{pd['cross-language pair R@1']:.3f} -> {p['cross-language pair R@1']:.3f}. Plain "
            f"RRF (w=0.5) costs plain pair R@1 "
            f"{plain['rrf w=0.5']['cross-language pair R@1']:.3f} and bias "
            f"{plain['rrf w=0.5']['bias@10 (mixed pool)']:.3f}.")
    cal = results.get("calibration", {}).get("kinds", {}).get("z-score")
    if cal:
        t, t10 = cal["threshold (recall kept >= 0.95)"], cal["threshold (false hits <= 0.10)"]
        out.append(
            f"- Calibration (SIB-200 sentences): z > {t10[0]:.2f} keeps {t10[2]:.3f} of on-topic "
            f"recall with {t10[1]:.3f} false hits; z > {t[0]:.2f} keeps {t[2]:.3f} with "
            f"{t[1]:.3f}. On the 207-paragraph sample corpus (section 4) on-topic top hits "
            "score z 2.4-3.6 and off-topic ones 2.0-4.1: no SIB-tuned threshold transfers "
            "there, so `--min-score` should stay opt-in until a paragraph-level bench says more.")
    return out + [""]


def _centring_md(res: dict) -> list[str]:
    langs = res["langs"]
    out = ["## 1. Language-neutral scores in a mixed pool", "",
           f"{len(langs)} languages x {res['n_per_lang']} sentences = "
           f"{len(langs) * res['n_per_lang']} passages, every sentence a query; relevant = the "
           f"same index_id in the other {len(langs) - 1} languages; the query's own sentence is "
           "left out. bias@10 = share of the top 10 in the query's own language (0 is ideal). "
           "Per-pair recall@1: pool = one document language; drop = vs raw cosine. "
           f"xsearch.langid accuracy on these sentences: {res['langid_accuracy']:.3f}. "
           f"({res['seconds']:.0f} s)", "",
           "| remedy | mixed mAP@100 | bias@10 | pair R@1 mean | pair R@1 worst | "
           "largest pair drop | pairs < -0.02 |", "|---|---|---|---|---|---|---|"]
    for name, v in res["variants"].items():
        drop = f"{v['largest pair drop']:+.3f} ({v['largest drop pair']})"
        out.append(f"| {name} | {_f(v['mAP@100'])} | {_f(v['bias@10'])} | {_f(v['R@1 mean'])} "
                   f"| {_f(v['R@1 worst'])} | {drop} | {v['pairs dropping >0.02']} |")
    show = [n for n in ("raw cosine (landed)", "per-language, langid, no renorm",
                        "per-language, langid, renorm passages", RECOMMENDED)
            if n in res["variants"]]
    out += ["", "Per query language (mAP@100 / bias@10 / mean R@1 as query):", "",
            "| language | " + " | ".join(show) + " |", "|---" * (len(show) + 1) + "|"]
    for lang in langs:
        cells = [f"{_f(res['variants'][n]['per_lang'][lang]['mAP@100'])} / "
                 f"{_f(res['variants'][n]['per_lang'][lang]['bias@10'])} / "
                 f"{_f(res['variants'][n]['per_lang'][lang]['R@1 as query'])}" for n in show]
        out.append(f"| {lang} | " + " | ".join(cells) + " |")
    return out + [""]


def _hybrid_md(res: dict) -> list[str]:
    out = ["## 2. Hybrid retrieval (dense + SQLite FTS5 with xsearch.lexical)", "",
           f"Dense scoring: {res['dense']} centring (langid). {res['n_entity_queries']} entity "
           f"queries ({', '.join(f'{k} {v}' for k, v in res['kinds'].items())}): ~6-word "
           "windows of SIB-200 sentences around a number, a capitalised name or the rarest "
           "word (`xsearch.bench.entity_queries`, seed 0); plain queries = whole SIB "
           "sentences (own sentence left out). Same-language R@5: the query's own sentence in "
           "the top 5 of the mixed pool. Cross-language pair R@k: pool = one other language's "
           "sentences, relevant = the same sentence. Other-language hit@5: any translation in "
           "the mixed top 5. bias@10 = own-language share of the mixed top 10. Fusions: "
           "`rrf w` = reciprocal rank fusion (k=60) with lexical weight w; `convex l` = dense "
           "score + l * bm25 / best bm25 of the query; `z+lex l` = calibrated z + l * "
           "min(1, idf-normalised bm25) (`ranking.hybrid_scores`), `same/other`: weight for "
           "passages in the query's language / in others; `dense z` = z alone. "
           f"({res['seconds']:.0f} s)", ""]
    cols = ["same-language R@5 (mixed pool)", "cross-language pair R@1",
            "cross-language pair R@5", "cross-language pair R@5 worst",
            "mixed pool: other-language hit@5", "bias@10 (mixed pool)"]
    for name, table in res.items():
        if not isinstance(table, dict) or "dense" not in table:
            continue
        out += [f"### {name}", "", "| fusion | " + " | ".join(cols) + " |",
                "|---" * (len(cols) + 1) + "|"]
        for m, v in table.items():
            out.append(f"| {m} | " + " | ".join(_f(v[c]) for c in cols) + " |")
        out.append("")
    first = next(k for k in res if k.startswith("entity") and "max_share 0.01" in k)
    table = res[first]
    langs = list(table["dense"]["per_lang same@5"])
    show = ["dense", "lexical", "rrf w=0.5", "z+lex l=2", "z+lex same=2 other=4"]
    out += [f"Same-language R@5 per query language ({first}):", "",
            "| language | " + " | ".join(show) + " |", "|---" * (len(show) + 1) + "|"]
    for lang in langs:
        out.append(f"| {lang} | " + " | ".join(
            _f(table[m]["per_lang same@5"][lang]) for m in show) + " |")
    return out + [""]


def _calibration_md(res: dict) -> list[str]:
    out = ["## 3. Calibrated scores: off-topic vs on-topic queries", "",
           f"For each of the {len(res['topics'])} SIB-200 topics T: pool = every sentence "
           "(all languages) not of topic T; off-topic queries = topic-T sentences, on-topic "
           f"queries = other sentences ({res['queries per language per topic']} per language "
           f"per topic each; {res['n_off_topic']} off-topic, {res['n_on_topic']} on-topic). "
           "False-hit rate = off-topic queries with any top-5 hit above the threshold; "
           "recall kept = relevant top-5 hits of on-topic queries above the threshold / all "
           f"relevant top-5 hits. ({res['seconds']:.0f} s)", "",
           "| score | threshold for recall kept >= 0.95 | false-hit rate there | "
           "recall kept | best recall kept with false hits <= 0.10 (threshold) | "
           "median relevant top-5 | median off-topic top-1 |", "|---|---|---|---|---|---|---|"]
    for kind, v in res["kinds"].items():
        b = v["threshold (recall kept >= 0.95)"]
        t = v["threshold (false hits <= 0.10)"]
        out.append(
            f"| {kind} | {_f(b[0])} | {_f(b[1])} | {_f(b[2])} | "
            + (f"{_f(t[2])} ({_f(t[0])})" if t else "none") + " | "
            f"{_f(v.get('relevant top-5 score median', float('nan')))} | "
            f"{_f(v.get('off-topic top-1 score median', float('nan')))} |")
    z = res["kinds"]["z-score"]
    if "false-hit rate per query language" in z:
        fh = z["false-hit rate per query language"]
        out += ["", f"z-score false-hit rate per query language at z > "
                f"{_f(z['threshold (recall kept >= 0.95)'][0])}: "
                + ", ".join(f"{k} {v:.2f}" for k, v in fh.items())]
    lg = res["logistic"]
    out += ["", f"Logistic fit P(relevant | z) on the top-5 hits: slope {lg['slope']:.3f}, "
            f"intercept {lg['intercept']:.3f} (p = 0.5 at z = {lg['z at p=0.5']:.2f}).", ""]
    return out


def _corpus_md(res: dict) -> list[str]:
    out = ["## 4. The same scores on the bundled sample corpus", "",
           f"{res['passages']} paragraphs of data/corpus txt/md files, {res['languages']} "
           "languages (per-language statistics from these paragraphs only; `shrink` = means, "
           "covariances and query offsets pulled toward the pooled ones with that many "
           "pseudo-passages, `ranking.shrunk`). Scores as "
           "recommended: per-language centring, re-normalised, per-language query offsets "
           "from the corpus' own paragraphs in query mode, z-score.", "",
           "| query | topic | raw cosine max | z max (shrink 0) | z max (shrink 20) | "
           "top-5 on topic (shrink 0) |", "|---|---|---|---|---|---|"]
    rows = {}
    for r in res["rows"]:
        rows.setdefault(r["query"], {})[r["shrink"]] = r
    for q, by in rows.items():
        r0, r20 = by[0], by[20]
        out.append(f"| {q} | {r0['topic']} | {_f(r0['raw max'])} | {_f(r0['z max'])} | "
                   f"{_f(r20['z max'])} | {r0['top-5 on topic']} |")
    return out + [""]


# ------------------------------------------------------------------------------ dense space

DENSE = "per-language-renorm"


class Space:
    """Pool vectors, per-language sums, and the dense scoring the later sections use."""

    def __init__(self, sib: Sib, vec: Vectors, cache_dir: Path, dense: str = DENSE) -> None:
        self.sib, self.vec, self.dense = sib, vec, dense
        self.P = vec.get(sib.all_texts, "passage", compute=False)
        self.Q = vec.get(sib.all_texts, "query", compute=False)
        self.stats = {lang: ranking.LangStats.of(self.P[sib.lang_of == a])
                      for a, lang in enumerate(sib.langs)}
        self.means = np.vstack([self.stats[x].mean for x in sib.langs]).astype(np.float32)
        sample = np.random.default_rng(0).choice(len(self.P), size=256, replace=False)
        self.offset = ranking.query_offset(self.Q[sample], self.P[sample])
        self.lang_offsets = own_language_offsets(sib, self.P, self.Q)
        self.detected = _detected_langs(sib, cache_dir / "langid_sib200.json")
        self.covs = np.stack([self.stats[x].cov for x in sib.langs])
        self.traces = np.trace(self.covs, axis1=1, axis2=2)
        self.renorm = dense == "per-language-renorm"
        if dense == "raw":
            self.Pv = self.P
        elif dense == "per-language":
            self.Pv = (self.P - self.means[sib.lang_of]).astype(np.float32)
        elif dense == "per-language-renorm":
            self.Pv = _norm(self.P - self.means[sib.lang_of]).astype(np.float32)
        else:
            raise ValueError(dense)

    def scales(self, qv: np.ndarray) -> np.ndarray:
        """z-score divisors for each query (rows) and pool language (columns)."""
        sc = _quad(qv, self.covs)
        return sc / np.sqrt(self.traces)[None, :] if self.renorm else sc

    def queries(self, q: np.ndarray, langs: list[str]) -> np.ndarray:
        """Query vectors as the chosen dense scoring uses them (langs from langid)."""
        if self.dense == "raw":
            return q
        return ranking.query_transform(q, langs, self.stats, self.offset, self.lang_offsets)


_SPACE: dict[tuple, Space] = {}


def space(sib: Sib, vec: Vectors, cache_dir: Path, dense: str = DENSE) -> Space:
    key = (tuple(sib.langs), dense)
    if key not in _SPACE:
        _SPACE[key] = Space(sib, vec, cache_dir, dense)
    return _SPACE[key]


# ------------------------------------------------------------------------------ hybrid


def _fts(sib: Sib) -> sqlite3.Connection:
    """In-memory FTS5: one mixed table (rowid = pool index) and one table per language."""
    from xsearch import lexical

    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    lexical.insert(conn, enumerate(sib.all_texts))
    for a in range(len(sib.langs)):
        lexical.create(conn, f"fts_{a}")
        base = a * sib.n
        lexical.insert(conn, ((base + i, t) for i, t in enumerate(sib.texts[sib.langs[a]])),
                       f"fts_{a}")
    return conn


def _fuse(dense_rows: np.ndarray, lex: list[tuple[int, float]], method: str, k: int,
          dense_scores: np.ndarray | None = None, same_lang: np.ndarray | None = None
          ) -> list[int]:
    """Fused top k from a dense ranking (ids, best first) and a lexical (id, bm25) list.
    ``same_lang[id]``: whether a passage is in the query's language (for split weights)."""
    lex_ids = [pid for pid, _ in lex]
    if method.startswith("z+lex same="):
        w_same, w_other = (float(x.split("=")[1]) for x in method[len("z+lex "):].split())
        cand = list(dict.fromkeys([*dense_rows, *lex_ids]))
        bm = dict(lex)
        score = {c: float(dense_scores[c]) + min(bm.get(c, 0.0), 1.0)
                 * (w_same if same_lang[c] else w_other) for c in cand}
        return sorted(cand, key=lambda c: -score[c])[:k]
    if method == "dense":
        return list(dense_rows[:k])
    if method == "lexical":
        return lex_ids[:k]
    if method.startswith("rrf"):
        w = float(method.split("=")[1]) if "=" in method else 1.0
        return [pid for pid, _ in ranking.rrf([list(dense_rows), lex_ids], [1.0, w], limit=k)]
    if method.startswith("z+lex"):
        lam = float(method.split("=")[1])
        cand = list(dict.fromkeys([*dense_rows, *lex_ids]))
        fused = ranking.hybrid_scores({c: float(dense_scores[c]) for c in cand}, dict(lex), lam)
        return [pid for pid, _ in fused[:k]]
    if method == "dense z":
        return list(dense_rows[:k])
    if method.startswith("convex"):
        lam = float(method.split("=")[1])
        cand = list(dict.fromkeys([*dense_rows, *lex_ids]))
        top = max((s for _, s in lex), default=1.0) or 1.0
        bm = dict(lex)
        score = {c: float(dense_scores[c]) + lam * bm.get(c, 0.0) / top for c in cand}
        return sorted(cand, key=lambda c: -score[c])[:k]
    raise ValueError(method)


FUSIONS = ("dense", "dense z", "lexical", "rrf w=0.5", "rrf w=1", "convex l=0.05",
           "z+lex l=1", "z+lex l=2", "z+lex l=4", "z+lex same=2 other=4")


def _run_queries(sp: Space, conn: sqlite3.Connection, qtexts: list[str], qlangs: list[int],
                 targets: list[int], exclude_self: bool, max_share: float | None) -> dict:
    """For each query (text, language index, sentence index): same-language hit@5 in the mixed
    pool, per-pair recall@1/@5 against every other language's pool, per fusion method."""
    from xsearch import lexical
    from xsearch.langid import detect_many

    sib = sp.sib
    n, nl = sib.n, len(sib.langs)
    qraw = sp.vec.get(qtexts, "query")
    q = sp.queries(qraw, [g.code for g in detect_many(qtexts)]).astype(np.float32)
    zscale = sp.scales(q).astype(np.float32)
    res = {m: {"same@5": [], "pair@1": np.zeros((nl, nl)), "pair@5": np.zeros((nl, nl)),
               "mixed_other@5": [], "own@10": []} for m in FUSIONS}
    counts = np.zeros(nl)
    for i, (text, a, s) in enumerate(zip(qtexts, qlangs, targets, strict=True)):
        counts[a] += 1
        scores = q[i] @ sp.Pv.T
        z = scores / zscale[i][sib.lang_of]
        if exclude_self:
            scores[a * n + s] = z[a * n + s] = -np.inf
        top = np.argsort(-scores)[:100]
        ztop = np.argsort(-z)[:100]
        lex = lexical.search(conn, text, 100, max_share=max_share, n_docs=n * nl,
                             normalize=True)
        if exclude_self:
            lex = [(p, v) for p, v in lex if p != a * n + s]
        same = sib.lang_of == a
        for m in FUSIONS:
            zm = m.startswith(("z", "dense z"))
            fused = _fuse(ztop if zm else top, lex, m, 10, z if zm else scores, same)
            res[m]["same@5"].append(float(a * n + s in fused[:5]))
            others = [p for p in fused[:5] if sib.sent_of[p] == s and sib.lang_of[p] != a]
            res[m]["mixed_other@5"].append(float(bool(others)))
            res[m]["own@10"].append(float(np.mean(sib.lang_of[fused[:10]] == a)))
        for b in range(nl):
            if b == a:
                continue
            sl = scores[b * n : (b + 1) * n]
            dtop = b * n + np.argsort(-sl)[:100]
            lexb = lexical.search(conn, text, 100, table=f"fts_{b}", max_share=max_share,
                                  n_docs=n, normalize=True)
            gold = b * n + s
            for m in FUSIONS:
                zm = m.startswith(("z", "dense z"))
                fused = _fuse(dtop, lexb, m, 5, z if zm else scores, same)
                res[m]["pair@1"][a, b] += float(fused[:1] == [gold])
                res[m]["pair@5"][a, b] += float(gold in fused)
    off = ~np.eye(nl, dtype=bool)
    out = {}
    for m, r in res.items():
        p1 = r["pair@1"] / np.maximum(counts[:, None], 1)
        p5 = r["pair@5"] / np.maximum(counts[:, None], 1)
        used = off & (counts[:, None] > 0)
        out[m] = {"same-language R@5 (mixed pool)": float(np.mean(r["same@5"])),
                  "cross-language pair R@1": float(p1[used].mean()),
                  "cross-language pair R@5": float(p5[used].mean()),
                  "cross-language pair R@5 worst": float(p5[used].min()),
                  "mixed pool: other-language hit@5": float(np.mean(r["mixed_other@5"])),
                  "bias@10 (mixed pool)": float(np.mean(r["own@10"])),
                  "per_lang same@5": {sib.langs[a]: float(np.mean(
                      [v for v, la in zip(r["same@5"], qlangs, strict=True) if la == a]))
                      for a in range(nl) if counts[a]}}
    return out


def hybrid(sib: Sib, vec: Vectors, cache_dir: Path, per_lang: int = 40) -> dict:
    from xsearch import lexical
    from xsearch.bench.entity_queries import make_queries

    sp = space(sib, vec, cache_dir)
    queries = make_queries({lang: list(zip(sib.ids, sib.texts[lang], strict=True))
                            for lang in sib.langs}, per_lang=per_lang, seed=0)
    pos = {i: j for j, i in enumerate(sib.ids)}
    lang_ix = {lang: a for a, lang in enumerate(sib.langs)}
    out: dict = {"dense": sp.dense, "n_entity_queries": len(queries),
                 "kinds": dict(Counter(q.kind for q in queries)),
                 "examples": [q.__dict__ for q in queries[:: max(1, len(queries) // 12)]]}
    ents = ([q.text for q in queries], [lang_ix[q.lang] for q in queries],
            [pos[q.index_id] for q in queries])
    rng = np.random.default_rng(0)
    picks = [(a, int(s)) for a in range(len(sib.langs))
             for s in rng.choice(sib.n, size=min(per_lang, sib.n), replace=False)]
    plain = ([sib.texts[sib.langs[a]][s] for a, s in picks], [a for a, _ in picks],
             [s for _, s in picks])
    runs = [("entity", False, None), ("entity", False, 0.01), ("entity", True, 0.01),
            ("plain", False, None), ("plain", False, 0.01)]
    conns = {}
    for kind, fold, share in runs:
        lexical.FOLD_DIACRITICS = fold
        if fold not in conns:
            conns[fold] = _fts(sib)
        t0 = time.time()
        name = (f"{kind} queries, diacritics {'folded' if fold else 'kept'}, "
                f"max_share {share}")
        qs = ents if kind == "entity" else plain
        out[name] = _run_queries(sp, conns[fold], *qs, exclude_self=kind == "plain",
                                 max_share=share)
        print(f"{name}: {time.time() - t0:.0f}s", file=sys.stderr)
    lexical.FOLD_DIACRITICS = False
    return out


def calibration(sib: Sib, vec: Vectors, cache_dir: Path, per_lang: int = 10) -> dict:
    """Off-topic queries (topic T absent from the pool) vs on-topic ones, per score kind."""
    sp = space(sib, vec, cache_dir)
    nl = len(sib.langs)
    topics = sorted(set(sib.topics))
    rng = np.random.default_rng(0)
    qc = sp.queries(sp.Q, sp.detected).astype(np.float32)  # centred queries (langid)
    zs = sp.scales(qc).astype(np.float32)
    Pc = sp.Pv
    kinds = ("raw cosine", f"centred score ({sp.dense})", "z-score")
    top5 = {k: {"off": [], "on": [], "on_rel": []} for k in kinds}
    qlang_off, qlang_on = [], []
    for t in topics:
        in_t = sib.topics[sib.sent_of] == t
        pool = np.flatnonzero(~in_t)
        for off in (True, False):
            cand = np.flatnonzero(in_t if off else ~in_t)
            picks = []
            for a in range(nl):
                mine = cand[sib.lang_of[cand] == a]
                picks.extend(rng.choice(mine, size=min(per_lang, len(mine)), replace=False))
            picks = np.array(picks)
            raw = sp.Q[picks] @ sp.P[pool].T
            cen = qc[picks] @ Pc[pool].T
            z = cen / zs[picks][:, sib.lang_of[pool]]
            for kind, sc in zip(kinds, (raw, cen, z), strict=True):
                sc = sc.copy()
                if not off:  # the query's own sentence is not a hit
                    self_col = np.searchsorted(pool, picks)
                    sc[np.arange(len(picks)), self_col] = -np.inf
                top = np.argsort(-sc, axis=1)[:, :5]
                vals = np.take_along_axis(sc, top, axis=1)
                if off:
                    top5[kind]["off"].append(vals)
                else:
                    rel = sib.sent_of[pool[top]] == sib.sent_of[picks][:, None]
                    top5[kind]["on"].append(vals)
                    top5[kind]["on_rel"].append(rel)
            (qlang_off if off else qlang_on).append(sib.lang_of[picks])
    qlang_off = np.concatenate(qlang_off)
    out: dict = {"topics": topics, "queries per language per topic": per_lang,
                 "n_off_topic": int(len(qlang_off)), "n_on_topic": int(sum(
                     len(v) for v in top5["raw cosine"]["on"])), "kinds": {}}
    for kind in kinds:
        off = np.vstack(top5[kind]["off"])
        on = np.vstack(top5[kind]["on"])
        rel = np.vstack(top5[kind]["on_rel"])
        n_rel = rel.sum()
        grid = np.quantile(np.concatenate([off.ravel(), on[rel]]), np.linspace(0, 1, 401))
        rows = []
        for thr in grid:
            fhr = float((off.max(axis=1) > thr).mean())
            kept = float((rel & (on > thr)).sum() / n_rel)
            rows.append((float(thr), fhr, kept))
        ok = [r for r in rows if r[2] >= 0.95]
        best = min(ok, key=lambda r: (r[1], -r[0])) if ok else None
        ok10 = [r for r in rows if r[1] <= 0.10]
        at10 = max(ok10, key=lambda r: r[2]) if ok10 else None
        entry = {"threshold (recall kept >= 0.95)": best,
                 "threshold (false hits <= 0.10)": at10,
                 "curve": rows[::20]}
        if best is not None:
            fh = off.max(axis=1) > best[0]
            entry["false-hit rate per query language"] = {
                sib.langs[a]: float(fh[qlang_off == a].mean()) for a in range(nl)}
            entry["relevant top-5 score median"] = float(np.median(on[rel]))
            entry["off-topic top-1 score median"] = float(np.median(off[:, 0]))
        out["kinds"][kind] = entry
    # P(relevant) from the z-score: logistic fit on top-5 hits (on-topic: relevant or not;
    # off-topic: never relevant)
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([np.vstack(top5["z-score"]["on"]).ravel(),
                        np.vstack(top5["z-score"]["off"]).ravel()])
    y = np.concatenate([np.vstack(top5["z-score"]["on_rel"]).ravel(),
                        np.zeros(np.vstack(top5["z-score"]["off"]).size, dtype=bool)])
    fit = LogisticRegression().fit(x[:, None], y)
    out["logistic"] = {"slope": float(fit.coef_[0][0]), "intercept": float(fit.intercept_[0]),
                       "z at p=0.5": float(-fit.intercept_[0] / fit.coef_[0][0])}
    return out


# ------------------------------------------------------------------------------ main

SECTIONS = ("centring", "hybrid", "calibration", "corpus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=(*SECTIONS, "all", "report"))
    parser.add_argument("--data", type=Path, default=default_sib200_root())
    parser.add_argument("--langs", default=None, help="comma list (default: all cached)")
    parser.add_argument("--cache", type=Path, default=SHARED_CACHE)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--core", action="store_true", help="only the CORE centring variants")
    args = parser.parse_args()
    global CORE_ONLY
    CORE_ONLY = args.core
    vec = Vectors(args.cache)
    langs = args.langs.split(",") if args.langs else sorted(
        p.name for p in args.data.iterdir() if p.is_dir())
    wanted = langs
    langs = available_langs(vec, args.data, langs)
    print(f"{len(langs)} languages cached: {','.join(langs)}", file=sys.stderr)
    json_path = args.out.with_suffix(".json")
    results = json.loads(json_path.read_text()) if json_path.is_file() else {}
    if args.section != "report":
        results["meta"] = {"languages": langs,
                           "not cached at run time": [x for x in wanted if x not in langs],
                           "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    todo = SECTIONS if args.section == "all" else (
        () if args.section == "report" else (args.section,))
    if todo:
        sib = Sib(args.data, langs)
    for section in todo:
        t0 = time.time()
        fn = {"centring": centring, "hybrid": hybrid, "calibration": calibration,
              "corpus": corpus}[section]
        results[section] = fn(sib, vec, OWN_CACHE.parent)
        results[section]["seconds"] = round(time.time() - t0, 1)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    args.out.with_suffix(".md").write_text(report(results))


if __name__ == "__main__":
    main()
