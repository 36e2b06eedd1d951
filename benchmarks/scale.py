"""Scale benchmark (issue #9): indexes of 10k, 100k and 1M passages, per layout.

Builds each (N, layout) index through the product's write path (see ``scale_data``) under
``--work`` (never in the repo; reused when it is already complete), then measures: build time,
disk, open time, cold ``xsearch query`` (fresh process), warm ``Searcher.search_vectors``
latency on one thread with hits joined with SQLite, recall@10 against exact centred search,
filtered search, the query process's peak RSS, one-file add/delete through ``xsearch index``,
and raw FAISS on the same vectors side by side. Writes ``scale.json``, ``scale.md`` and
``scale.png`` to ``--out``.

    python benchmarks/scale.py --sizes 10000,100000 --layouts flat,auto,ivf-sq8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import scale_data as D  # noqa: E402
import scale_report  # noqa: E402
from bench_paths import BENCH_HOME, EMBED_CACHE  # noqa: E402

K = 10
HERE = Path(__file__).resolve().parent


def _faiss():
    import faiss

    faiss.omp_set_num_threads(1)
    return faiss


def _pct(xs, p) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, p))


class Scorer:
    """The product's exact scores for a batch of raw query vectors: the index's centring
    (``Centering.transform`` + ``segment_scores``: per-language centred, re-normalised z)."""

    def __init__(self, centering, qv: np.ndarray) -> None:
        self.c, self.qv = centering, np.asarray(qv, dtype=np.float32)
        self.qc = centering.transform(self.qv, [None] * len(self.qv))

    def _ready(self) -> None:
        if self.c._qc is not self.qc:  # another Scorer transformed other queries since
            self.qc = self.c.transform(self.qv, [None] * len(self.qv))

    def scores(self, block: np.ndarray, lang: str) -> np.ndarray:
        """z of every query (rows) against passages ``block`` of language ``lang``."""
        self._ready()
        mu = self.c.mean_for(lang)
        pmu = np.asarray(block, dtype=np.float64) @ mu if mu is not None else None
        return self.c.segment_scores(self.qc @ np.asarray(block, np.float32).T, pmu, lang)[1]

    def bias_scale(self, lang: str) -> tuple[np.ndarray, np.ndarray]:
        """(-q'·mu_L, spread) per query: the centred score without the re-normalisation,
        what FAISS alone can apply to its raw q'·p (for the raw-FAISS comparison)."""
        self._ready()
        mu = self.c.mean_for(lang)
        bias = -(self.qc.astype(np.float64) @ mu) if mu is not None else np.zeros(len(self.qc))
        return bias, self.c._scale_of(lang)


def exact_top_k(vectors: np.ndarray, langs: np.ndarray, scorer: Scorer,
                k: int = K, mask: np.ndarray | None = None) -> np.ndarray:
    """Passage ids (1-based) of the k best scores, by brute force over every vector."""
    nq = len(scorer.qv)
    best_s = np.full((nq, 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((nq, 0), dtype=np.int64)
    step = 100_000
    for s in range(0, len(vectors), step):
        block = np.asarray(vectors[s:s + step], dtype=np.float32)
        block_langs = langs[s:s + step]
        sc = np.full((nq, len(block)), -np.inf, dtype=np.float32)
        for code in np.unique(block_langs):
            sel = block_langs == code
            sc[:, sel] = scorer.scores(block[sel], str(code))
        if mask is not None:
            sc[:, ~mask[s:s + step]] = -np.inf
        ids = np.arange(s + 1, s + 1 + len(block))
        kk = min(k, len(block))
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        best_s = np.hstack([best_s, np.take_along_axis(sc, part, axis=1)])
        best_i = np.hstack([best_i, ids[part]])
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    return np.where(np.isfinite(best_s), best_i, -1)


def recall(got: list[list[int]], truth: np.ndarray) -> float:
    vals = []
    for g, t in zip(got, truth, strict=True):
        t = [int(x) for x in t if x >= 0]
        if t:
            vals.append(len(set(g[:K]) & set(t)) / len(t))
    return float(np.mean(vals)) if vals else float("nan")


#: CPU seconds of each timed search (thread_time), beside the wall times: on a shared, loaded
#: machine the wall time mostly measures waiting for a core; one-thread CPU time does not.
CPU: dict[str, list[float]] = {}


def page_in(path: Path) -> None:
    """Read every file of the index once, so that "warm" means the page cache holds it (as
    the issue's targets assume): the machine's cache drops files that other runs pushed out,
    and a search that reads pages from disk measures the disk."""
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def timed_searches(searcher, qv: np.ndarray, filters=None, per_document: int = 0,
                   cpu_key: str | None = None, texts: list[str] | None = None,
                   mode: str = "dense"):
    times, got, cpu = [], [], []
    faults = resource.getrusage(resource.RUSAGE_SELF)
    for n, q in enumerate(qv):
        t, c = time.perf_counter(), time.thread_time()
        hits = searcher.search_vectors(q[None], K, filters, per_document=per_document,
                                       texts=None if texts is None else [texts[n]],
                                       mode=mode)[0]
        cpu.append(time.thread_time() - c)
        times.append(time.perf_counter() - t)
        got.append([h.passage_id for h in hits])
    if cpu_key:
        CPU[cpu_key] = cpu
        # pages read from disk and forced context switches while timing: what a wall-time
        # outlier with an ordinary CPU time was waiting for
        after = resource.getrusage(resource.RUSAGE_SELF)
        CPU[cpu_key + "_waits"] = [after.ru_majflt - faults.ru_majflt,
                                   after.ru_nivcsw - faults.ru_nivcsw]
    return times, got


def keyword_queries(texts: list[str], n_tokens: int = 3, seed: int = 2) -> list[str]:
    """A run of ``n_tokens`` consecutive words (lexical tokens: character pairs in Chinese or
    Japanese) from each query sentence, cut from its text: what a user types into a search
    box, where the sentences are what one pastes."""
    from xsearch import lexical

    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        toks = lexical.tokens(text)
        if len(toks) <= n_tokens:
            out.append(text)
            continue
        i = int(rng.integers(0, len(toks) - n_tokens + 1))
        out.append(text[toks[i][1]:toks[i + n_tokens - 1][2]])
    return out


def text_timings(searcher, qv: np.ndarray, texts: list[str]) -> dict:
    """One hit per document with the query's text too: its language and snippets, dense and
    hybrid (the CLI's default mode: the lexical index's top passages fused in), for the
    whole query sentences and for three-word queries cut from them."""
    t_text, _ = timed_searches(searcher, qv, per_document=1, texts=texts)
    t_hyb, _ = timed_searches(searcher, qv, per_document=1, texts=texts, mode="hybrid")
    t_short, _ = timed_searches(searcher, qv, per_document=1, texts=keyword_queries(texts),
                                mode="hybrid")
    return {"warm_p50_ms_text_dense": _pct(t_text, 50), "warm_p50_ms_hybrid": _pct(t_hyb, 50),
            "warm_p99_ms_hybrid": _pct(t_hyb, 99), "warm_p50_ms_hybrid_3words":
            _pct(t_short, 50), "warm_p99_ms_hybrid_3words": _pct(t_short, 99)}


def disk(path: Path, n: int, dim: int) -> dict:
    db = sum((path / f).stat().st_size for f in ("xsearch.db", "xsearch.db-wal")
             if (path / f).exists())
    seg = sum(p.stat().st_size for p in (path / "segments").iterdir())
    payload = n * dim * 4
    return {"db_mb": db / 1e6, "segments_mb": seg / 1e6, "total_mb": (db + seg) / 1e6,
            "payload_mb": payload / 1e6, "segments_share_of_payload": seg / payload}


def _env() -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # the CLI as a user runs it
    env.pop("OMP_WAIT_POLICY", None)
    return env


def cold_query(path: Path, text: str, runs: int = 3) -> dict:
    cmd = [sys.executable, "-m", "xsearch", "query", text, "--index", str(path), "--json",
           "-k", str(K)]
    subprocess.run(cmd, capture_output=True, env=_env())  # warms the page cache
    times, rc, out = [], 0, ""
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        times.append(time.perf_counter() - t)
        rc, out = p.returncode, p.stdout if p.returncode == 0 else p.stderr
    return {"cold_query_s": float(np.median(times)), "cold_query_runs_s": times,
            "cold_query_rc": rc, "cold_query_hits": len(out.strip().splitlines()) if rc == 0
            else out.strip()[-300:]}


def probe(path: Path, qfile: Path) -> dict:
    """Peak RSS and bytes read() of a fresh process that opens the index, runs 200 searches."""
    p = subprocess.run([sys.executable, str(HERE / "scale.py"), "--probe", str(path),
                        "--probe-queries", str(qfile)], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    if p.returncode:
        return {"probe_error": p.stderr.strip()[-400:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _hwm_mb() -> float:
    """Peak RSS of this process image. Not getrusage's ru_maxrss: Linux carries that over
    from the parent through fork and exec, so a child of a big process reports the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6  # kB (KiB) to MB, as payload_mb
    return float("nan")


def _rss_parts_mb() -> dict[str, float]:
    """This process's resident memory now, anonymous and file-backed (mapped segment files,
    libraries) apart, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        for key, name in (("RssAnon:", "rss_anon_mb"), ("RssFile:", "rss_file_mb")):
            if line.startswith(key):
                out[name] = int(line.split()[1]) * 1024 / 1e6
    return out


def run_probe(path: Path, qfile: Path) -> None:
    from xsearch.search import Searcher

    _faiss()
    qv = np.load(qfile)
    base = _hwm_mb()
    r0 = _rchar()
    searcher = Searcher(path)
    r1 = _rchar()
    searcher.search_vectors(qv[:1], K, per_document=0)
    r2 = _rchar()
    for q in qv[:200]:
        searcher.search_vectors(q[None], K, per_document=0)
    peak = _hwm_mb()
    print(json.dumps({"rss_peak_mb": peak, "rss_before_open_mb": base, **_rss_parts_mb(),
                      "read_on_open_mb": (r1 - r0) / 1e6,
                      "read_first_query_mb": (r2 - r1) / 1e6}))


def add_delete(path: Path, work: Path, key: str) -> dict:
    folder = work / f"addfile-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keep.txt").write_text("Der Zug nach Lyon fährt um acht Uhr morgens ab.\n")
    one = folder / "one.txt"
    one.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "xsearch", "index", str(folder), "--index", str(path), "-q"]
    setup = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    one.write_text("The river flooded the village after three days of heavy rain. "
                   "Farmers moved their animals to the hills.\n")
    t = time.perf_counter()
    add = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    t_add = time.perf_counter() - t
    one.unlink()
    t = time.perf_counter()
    dele = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    t_del = time.perf_counter() - t
    # Leave the index as it was built (ids 1..n), for the next measurement.
    clean = subprocess.run([sys.executable, "-m", "xsearch", "rm", str(folder), "--index",
                            str(path)], capture_output=True, text=True, env=_env())
    errs = [p.stderr.strip()[-300:] for p in (setup, add, dele, clean) if p.returncode]
    return {"add_one_file_s": t_add, "delete_one_file_s": t_del,
            "add_delete_errors": errs}


def raw_faiss(path: Path, vectors: np.ndarray, scorer: Scorer, qv: np.ndarray,
              truth: np.ndarray, layout: str, global_max: int) -> dict:
    """FAISS alone on the same vectors: one global index, and the index's own segment files."""
    from xsearch import segment_kinds as SK
    from xsearch.index_dir import IndexDir

    faiss = _faiss()
    out: dict = {}
    dim = vectors.shape[1]
    n = len(vectors)
    flat = faiss.IndexFlatIP(dim)
    flat.add(np.ascontiguousarray(vectors))
    times, raw_truth = [], []
    for q in qv[:50]:
        t = time.perf_counter()
        _, i = flat.search(q[None], K)
        times.append(time.perf_counter() - t)
        raw_truth.append(i[0])
    out["raw_flat_p50_ms"] = _pct(times, 50)
    if layout != "flat" and n <= global_max:
        if layout == SK.IVF_SQ8:
            nlist = int(max(1, min(4096, round(4 * np.sqrt(n)))))
            index = faiss.index_factory(dim, SK.FACTORY[layout].format(nlist=nlist),
                                        faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.random.default_rng(0).choice(n, min(n, 64 * nlist),
                                                             replace=False)]
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            index.train(sample)
            index.add(vectors)
            index.nprobe = SK.ivf_nprobe(nlist, n)
        else:
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = SK.HNSW_EF_CONSTRUCTION
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            t = time.perf_counter()
            index.add(vectors)
            out["raw_global_build_s"] = time.perf_counter() - t
            index.hnsw.efSearch = SK.HNSW_EF_SEARCH
        faiss.omp_set_num_threads(1)
        times, got, cpu = [], [], []
        for q in qv[:300]:
            t, c = time.perf_counter(), time.thread_time()
            _, i = index.search(q[None], K)
            cpu.append(time.thread_time() - c)
            times.append(time.perf_counter() - t)
            got.append([int(x) + 1 for x in i[0]])
        _, exact_i = flat.search(qv[:300], K)
        out["raw_global_p50_ms"] = _pct(times, 50)
        out["raw_global_cpu_p50_ms"] = _pct(cpu, 50)
        out["raw_global_p99_ms"] = _pct(times, 99)
        out["raw_global_recall"] = recall(got, exact_i + 1)
    del flat
    # The same per-language segment files, searched by FAISS directly: centred query,
    # the centred score's per-language bias and spread (no re-normalisation: that needs p·mu).
    idx = IndexDir.open(path)
    rows = idx.store.segments()
    segs = []
    for r in rows:
        f = path / "segments" / (r["name"] + (".faiss" if r["kind"] != "flat" else ".npy"))
        if r["kind"] == "flat":
            segs.append((r, np.load(f, mmap_mode="r"),
                         np.load(path / "segments" / (r["name"] + ".ids.npy"), mmap_mode="r")))
        else:
            ix = faiss.read_index(str(f), faiss.IO_FLAG_MMAP_IFC)
            if r["kind"] in SK.GRAPHS:
                faiss.downcast_index(ix.index).hnsw.efSearch = (
                    SK.HNSW_C_EF_SEARCH if r["kind"] == SK.HNSW_C else SK.HNSW_EF_SEARCH)
            else:
                ix.nprobe = SK.ivf_nprobe(ix.nlist, r["n"])
            segs.append((r, ix, None))
    idx.close()
    qc = scorer.qc
    nq = min(len(qc), 300 if layout != "flat" else 50)
    terms = {r["language"]: scorer.bias_scale(r["language"]) for r, _, _ in segs}
    # A centred graph's q'·u is already the re-normalised centred score (with the segment's
    # own mean): it takes the spread alone.
    for r, _, _ in segs:
        if r["kind"] == SK.HNSW_C:
            bias, scale = terms[r["language"]]
            terms[r["language"]] = (np.zeros_like(bias), scale)
    times, got, cpu = [], [], []
    for qi in range(nq):
        q = qc[qi:qi + 1]
        t, c = time.perf_counter(), time.thread_time()
        ss, ii = [], []
        for r, ix, ids in segs:
            if ids is not None:
                sc = np.asarray(ix @ q[0])
                top = np.argpartition(-sc, min(K, len(sc)) - 1)[:K]
                s, i = sc[top][None], np.asarray(ids)[top][None]
            else:
                s, i = ix.search(q, K)
            bias, scale = terms[r["language"]]
            ss.append((s + bias[qi]) / scale[qi])
            ii.append(i)
        s = np.hstack(ss)
        order = np.argsort(-s[0])[:K]
        cpu.append(time.thread_time() - c)
        times.append(time.perf_counter() - t)
        got.append([int(x) for x in np.hstack(ii)[0][order]])
    out["raw_segments_p50_ms"] = _pct(times, 50)
    out["raw_segments_cpu_p50_ms"] = _pct(cpu, 50)
    out["raw_segments_p99_ms"] = _pct(times, 99)
    out["raw_segments_recall"] = recall(got, truth[:nq])
    return out


def measure(path: Path, n: int, layout: str, sources, work: Path, nq: int,
            global_max: int) -> dict:
    from xsearch.index_dir import IndexDir
    from xsearch.search import Searcher

    _faiss()
    key = f"{n}-{layout}"
    vectors, langs = D.corpus_vectors(sources, n, work / f"synth-L{len(sources.languages)}")
    res: dict = {"n": n, "layout": layout}
    res.update(disk(path, n, sources.dim))
    idx = IndexDir.open(path)
    lo, hi, cnt = idx.store.db.execute("SELECT min(id), max(id), count(*) FROM passages"
                                       ).fetchone()
    res["segments"] = {r["kind"]: 0 for r in idx.store.segments()}
    for r in idx.store.segments():
        res["segments"][r["kind"]] += 1
    idx.close()
    if (lo, hi) != (1, n) or cnt < n:
        raise SystemExit(f"{path}: passage ids {lo}..{hi} ({cnt}), expected 1..{n}")
    opens = []
    for _ in range(5):
        t = time.perf_counter()
        IndexDir.open(path).close()
        opens.append(time.perf_counter() - t)
    res["open_s"] = float(np.median(opens))

    qv, qlangs, qtexts = D.queries(sources, max(nq, 300))
    if layout == "flat" and n >= 1_000_000:
        nq = min(nq, 40)  # exact search over 1M on one thread: enough for its percentiles
    qv = qv[:nq]
    page_in(path)
    searcher = Searcher(path)
    timed_searches(searcher, qv[:10])  # warm-up
    times, got = timed_searches(searcher, qv, cpu_key="warm")
    scorer = Scorer(searcher.centering(), qv)
    truth = exact_top_k(vectors, langs, scorer)
    res.update({"warm_cpu_p50_ms": _pct(CPU["warm"], 50), "warm_cpu_p99_ms":
                _pct(CPU["warm"], 99)})
    res.update({"queries": len(qv), "warm_p50_ms": _pct(times, 50), "warm_p95_ms":
                _pct(times, 95), "warm_p99_ms": _pct(times, 99), "recall_at_10":
                recall(got, truth)})
    t_doc, _ = timed_searches(searcher, qv, per_document=1)  # the CLI's default, same queries
    res["warm_p50_ms_per_doc1"] = _pct(t_doc, 50)
    res.update(text_timings(searcher, qv, qtexts[:nq]))
    res.update({"warm_major_faults": CPU["warm_waits"][0],
                "warm_preemptions": CPU["warm_waits"][1]})

    res.update(filters_part(searcher, vectors, langs, sources, qv, n))
    searcher.close()

    res.update(raw_faiss(path, vectors, scorer, qv, truth, layout, global_max))
    res["overhead_vs_raw_segments"] = res["warm_p50_ms"] / res["raw_segments_p50_ms"]
    res["cpu_overhead_vs_raw_segments"] = res["warm_cpu_p50_ms"] / res["raw_segments_cpu_p50_ms"]
    if "raw_global_p50_ms" in res:
        res["overhead_vs_raw_global"] = res["warm_p50_ms"] / res["raw_global_p50_ms"]
    del vectors

    qfile = work / f"queries-{key}.npy"
    np.save(qfile, D.queries(sources, 300)[0])
    res.update(probe(path, qfile))
    res["rss_over_payload"] = res.get("rss_peak_mb", float("nan")) / res["payload_mb"]
    en = [t for c, t, _ in sources.queries if c == "eng_Latn"] or [qtexts[0]]
    res.update(cold_query(path, en[0]))
    res.update(add_delete(path, work, key))
    return res


def filters_part(searcher, vectors, langs, sources, qv, n: int) -> dict:
    """--lang (one language) and --path (1% of the files): k hits? recall within the filter."""
    from xsearch.search import Filters

    centering = searcher.centering()
    one = sources.languages[len(sources.languages) // 2].code
    fq = qv[:50]
    t_lang, got_lang = timed_searches(searcher, fq, Filters(languages=(one,)))
    truth_lang = exact_top_k(vectors, langs, Scorer(centering, fq), mask=langs == one)
    glob = f"/corpus/d{7:02d}/*"
    files = (np.arange(n) // D.PASSAGES_PER_FILE) % D.PATH_BUCKETS
    t_path, got_path = timed_searches(searcher, fq[:20], Filters(path_glob=glob))
    truth_path = exact_top_k(vectors, langs, Scorer(centering, fq[:20]), mask=files == 7)
    return {"filter_lang": one, "filter_lang_p50_ms": _pct(t_lang, 50),
            "filter_lang_full_k_share": float(np.mean([len(g) == K for g in got_lang])),
            "filter_lang_recall": recall(got_lang, truth_lang),
            "filter_path": glob, "filter_path_p50_ms": _pct(t_path, 50),
            "filter_path_full_k_share": float(np.mean([len(g) == K for g in got_path])),
            "filter_path_recall": recall(got_path, truth_path)}


def remeasure(path: Path, n: int, layout: str, sources, work: Path, parts: set[str],
              res: dict, warmup: int = 0) -> dict:
    """Re-run only some parts of a stored measurement (warm, filters, probe, cold, add)."""
    from xsearch.search import Searcher

    _faiss()
    if "warm" in parts:
        vectors, langs = D.corpus_vectors(sources, n, work / f"synth-L{len(sources.languages)}")
        allq, _, alltexts = D.queries(sources, 300 + warmup)
        qv = allq[:300]
        page_in(path)
        searcher = Searcher(path)
        timed_searches(searcher, allq[300:] if warmup else qv[:10])  # other queries: warm-up
        times, got = timed_searches(searcher, qv, cpu_key="warm")
        # the CLI's default, one hit per document, on the same warm process and queries
        t_doc, _ = timed_searches(searcher, qv, per_document=1)
        text_times = text_timings(searcher, qv, alltexts[:300])
        scorer = Scorer(searcher.centering(), qv)
        truth = exact_top_k(vectors, langs, scorer)
        searcher.close()
        res.update({"warm_cpu_p50_ms": _pct(CPU["warm"], 50), "warm_cpu_p99_ms":
                    _pct(CPU["warm"], 99), "warm_major_faults": CPU["warm_waits"][0],
                    "warm_preemptions": CPU["warm_waits"][1], "warm_p50_ms": _pct(times, 50),
                    "warm_p95_ms": _pct(times, 95), "warm_p99_ms": _pct(times, 99),
                    "recall_at_10": recall(got, truth), "queries": len(qv),
                    "warmup_queries": warmup or 10})
        res["warm_p50_ms_per_doc1"] = _pct(t_doc, 50)
        res.update(text_times)
        res.update(raw_faiss(path, vectors, scorer, qv, truth, layout, 100_000))
        res["overhead_vs_raw_segments"] = res["warm_p50_ms"] / res["raw_segments_p50_ms"]
        res["cpu_overhead_vs_raw_segments"] = (res["warm_cpu_p50_ms"]
                                               / res["raw_segments_cpu_p50_ms"])
    if "filters" in parts:
        vectors, langs = D.corpus_vectors(sources, n, work / f"synth-L{len(sources.languages)}")
        qv = D.queries(sources, 300)[0]
        searcher = Searcher(path)
        timed_searches(searcher, qv[:10])
        res.update(filters_part(searcher, vectors, langs, sources, qv, n))
        searcher.close()
    if "cold" in parts:
        en = [t for c, t, _ in sources.queries if c == "eng_Latn"]
        res.update(cold_query(path, en[0]))
    if "add" in parts:
        res.update(add_delete(path, work, f"{n}-{layout}"))
    if "probe" in parts:
        qfile = work / f"queries-{n}-{layout}.npy"
        np.save(qfile, D.queries(sources, 300)[0])
        res.update(probe(path, qfile))
        res["rss_over_payload"] = res.get("rss_peak_mb", float("nan")) / res["payload_mb"]
    return res


def tune(path: Path, n: int, layout: str, sources, work: Path, nq: int) -> dict:
    """Warm p50/p99 and recall@10 for several HNSW efSearch / IVF nprobe values."""
    from xsearch import segment_kinds as SK
    from xsearch import segments as S
    from xsearch.search import Searcher

    _faiss()
    vectors, langs = D.corpus_vectors(sources, n, work / f"synth-L{len(sources.languages)}")
    qv = D.queries(sources, nq)[0]
    searcher = Searcher(path)
    kinds = {r["kind"] for r in searcher.index.store.segments()}
    timed_searches(searcher, qv[:10])
    truth = exact_top_k(vectors, langs, Scorer(searcher.centering(), qv))
    del vectors
    name, values = (("HNSW_C_EF_SEARCH", [16, 24, 32, 36, 40, 48, 64]) if SK.HNSW_C in kinds else
                    ("HNSW_EF_SEARCH", [16, 24, 32, 48, 64, 96, 128]) if SK.HNSW in kinds else
                    ("IVF_PROBES", [4, 8, 16, 24, 32, 48, 64, 96]))
    if name != "IVF_PROBES":
        old = getattr(S, name)

        def knob(v):
            setattr(S, name, v)
    else:  # the least lists probed; the codes to scan keep their ratio to it
        old = SK.IVF_PROBES

        def knob(v):
            SK.IVF_PROBES = v if isinstance(v, tuple) else (v, v * old[1] // old[0])
    out = {"knob": name, "default": old, "points": []}
    try:
        for v in values:
            knob(v)
            times, got = timed_searches(searcher, qv, cpu_key="tune")
            out["points"].append({"value": v, "p50_ms": _pct(times, 50),
                                  "cpu_p50_ms": _pct(CPU["tune"], 50),
                                  "cpu_p99_ms": _pct(CPU["tune"], 99),
                                  "p99_ms": _pct(times, 99), "recall_at_10": recall(got, truth)})
            print(json.dumps(out["points"][-1]), flush=True)
    finally:
        knob(old)
        searcher.close()
    return out


def crossover(sources, work: Path, sizes=(2000, 5000, 10000, 20000, 40000)) -> list[dict]:
    """One language's segment, flat vs HNSW, at several sizes: where ANN starts to pay
    (single-thread Segment.search, k=10; recall of HNSW against the flat result)."""
    from xsearch import segment_kinds as SK
    from xsearch import segments as S

    faiss = _faiss()
    lang = sources.languages[0]
    rng = np.random.default_rng(5)
    qv = D.queries(sources, 200)[0]
    folder = work / "crossover"
    shutil.rmtree(folder, ignore_errors=True)
    out = []
    for n in sizes:
        rows = rng.integers(0, len(lang.texts), n)
        v = D._unit(lang.vectors[rows] + D.ALPHA * lang.noise(rng, n))
        ids = np.arange(1, n + 1, dtype=np.int64)
        point = {"n": n}
        got = {}
        for kind in (SK.FLAT, SK.HNSW):
            name = S.segment_name(n // 1000 * 10 + (kind == SK.HNSW), lang.code)
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            t = time.perf_counter()
            info = S.write_segment(folder, name, ids, v, kind)
            point[f"{kind}_build_s"] = time.perf_counter() - t
            faiss.omp_set_num_threads(1)
            seg = S.Segment(folder, info, lang.code, 1)
            seg.search(qv[:5], K)
            times, res = [], []
            for q in qv:
                t = time.perf_counter()
                _, i = seg.search(q[None], K)
                times.append(time.perf_counter() - t)
                res.append([int(x) for x in i[0]])
            point[f"{kind}_p50_ms"] = _pct(times, 50)
            got[kind] = res
        point["hnsw_recall"] = recall(got[SK.HNSW], np.array(got[SK.FLAT]))
        print(json.dumps(point), flush=True)
        out.append(point)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def hnsw_m(sources, n: int = 55_560, ms=(16, 24, 32), efs=(48, 64, 96)) -> list[dict]:
    """One language's segment of n vectors (a 1M index holds 18 of 55,560): HNSW's M against
    disk (share of the vector payload), single-thread search time and recall of the 56 best
    (what a segment hands the rescorer for k=10) and of the 10 best, vs exact search."""
    import tempfile

    from xsearch import segment_kinds as SK

    def overlap(got: np.ndarray, truth: np.ndarray) -> float:
        return float(np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth,
                                                                         strict=True)]))

    faiss = _faiss()
    lang = sources.languages[0]
    rng = np.random.default_rng(5)
    v = D._unit(lang.vectors[rng.integers(0, len(lang.texts), n)]
                + D.ALPHA * lang.noise(rng, n)).astype(np.float32)
    qc = (D.queries(sources, 300)[0] - v.mean(axis=0)).astype(np.float32)
    fetch = 4 * K + 16
    exact = np.argsort(-(qc @ v.T), axis=1)[:, :fetch]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in ms:
            index = faiss.index_factory(v.shape[1], f"IDMap,HNSW{m},Flat",
                                        faiss.METRIC_INNER_PRODUCT)
            faiss.downcast_index(index.index).hnsw.efConstruction = SK.HNSW_EF_CONSTRUCTION
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            index.add_with_ids(v, np.arange(n, dtype=np.int64))
            faiss.write_index(index, f"{tmp}/h.faiss")
            share = os.path.getsize(f"{tmp}/h.faiss") / v.nbytes
            faiss.omp_set_num_threads(1)
            for ef in efs:
                params = faiss.SearchParametersHNSW(efSearch=max(ef, fetch))
                t = time.perf_counter()
                _, got = index.search(qc, fetch, params=params)
                ms_q = (time.perf_counter() - t) / len(qc) * 1e3
                point = {"M": m, "efSearch": ef, "disk_share_of_payload": share,
                         "p_mean_ms": ms_q,
                         f"recall_at_{fetch}": overlap(got, exact),
                         "recall_at_10": overlap(got[:, :K], exact[:, :K])}
                print(json.dumps(point), flush=True)
                out.append(point)
    return out


def _save_tuning(out: Path, key: str, value) -> None:
    """Set one entry of results/scale_tuning.json, keeping the others."""
    tfile = out / "scale_tuning.json"
    data = json.loads(tfile.read_text()) if tfile.exists() else {}
    data[key] = value
    tfile.write_text(json.dumps(data, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--layouts", default="flat,auto,ivf-sq8")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--work", type=Path, default=BENCH_HOME / "scale",
                    help="where the indexes are built (GBs at 1M; outside the repository)")
    ap.add_argument("--cache", type=Path, default=EMBED_CACHE,
                    help="the SIB-200 embedding cache that `xsearch bench --split all "
                    "--cache DIR` writes (DIR/embeddings.sqlite)")
    ap.add_argument("--sib200", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--languages", type=int, default=18,
                    help="use the first N complete languages of the cache (pinned corpus)")
    ap.add_argument("--raw-global-max", type=int, default=100_000,
                    help="build a global raw FAISS HNSW/IVF index only up to this size")
    ap.add_argument("--remeasure", action="store_true")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--crossover", action="store_true",
                    help="flat vs HNSW segment latency at several sizes (ANN_MIN_VECTORS)")
    ap.add_argument("--parts", help="re-run only these parts of stored runs: "
                    "warm,probe,filters,cold,add")
    ap.add_argument("--warmup", type=int, default=0,
                    help="with --parts warm: this many other queries first (default 10 of them)")
    ap.add_argument("--hnsw-m", action="store_true",
                    help="HNSW's M against disk, time and recall on one 1M-sized segment")
    ap.add_argument("--tune", action="store_true",
                    help="sweep efSearch / nprobe on the built ANN indexes instead")
    ap.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--probe-queries", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        run_probe(args.probe, args.probe_queries)
        return 0
    from xsearch.bench.datasets import default_sib200_root

    sources = D.load_sources(args.cache, args.sib200 or default_sib200_root(), args.languages)
    print(f"sources: {len(sources.languages)} languages, {len(sources.queries)} queries",
          flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.hnsw_m:
        _save_tuning(args.out, "hnsw_m", hnsw_m(sources))
        return 0
    if args.crossover:
        _save_tuning(args.out, "crossover", crossover(sources, args.work))
        return 0
    out_json = args.out / "scale.json"
    results = json.loads(out_json.read_text()) if out_json.exists() else {"runs": {}}
    results["sources"] = {"languages": [lang.code for lang in sources.languages],
                          "alpha": D.ALPHA, "query_alpha": D.QUERY_ALPHA,
                          "passages_per_file": D.PASSAGES_PER_FILE}
    for n in [int(s) for s in args.sizes.split(",")]:
        for layout in args.layouts.split(","):
            key = f"{n}-{layout}"
            path = args.work / f"n{n}-{layout}"
            marker = args.work / f"n{n}-{layout}.build.json"
            built = False
            if not marker.exists():
                built = True
                if path.exists():
                    shutil.rmtree(path)  # an unfinished build of ours
                print(f"[{time.strftime('%H:%M:%S')}] build {key}", flush=True)
                info = D.build(path, n, layout, sources)
                info["languages"] = [lang.code for lang in sources.languages]
                marker.write_text(json.dumps(info))
            info = json.loads(marker.read_text())
            # An index cached by an older xsearch is brought to this schema, as the next
            # `xsearch index` would (a reader would search it the older, slower way).
            from xsearch.store import Store

            Store(path / "xsearch.db").close()
            if info["languages"] != [lang.code for lang in sources.languages]:
                raise SystemExit(f"{path} was built from other languages; remove it or pass "
                                 f"--languages {len(info['languages'])}")
            if args.tune:
                if layout != "flat":
                    print(f"[{time.strftime('%H:%M:%S')}] tune {key}", flush=True)
                    _save_tuning(args.out, key, tune(path, n, layout, sources, args.work,
                                                     args.queries))
                continue
            if args.parts and key in results["runs"] and not built:
                print(f"[{time.strftime('%H:%M:%S')}] remeasure {key}: {args.parts}", flush=True)
                res = remeasure(path, n, layout, sources, args.work, set(args.parts.split(",")),
                                results["runs"][key], args.warmup)
                res.update(disk(path, n, sources.dim))  # cheap, and the index may be rebuilt
                res.update({k: info[k] for k in ("build_s", "write_s", "merge_s") if k in info})
                fresh = json.loads(out_json.read_text()) if out_json.exists() else results
                fresh["runs"][key] = res
                results = fresh
                out_json.write_text(json.dumps(results, indent=1, sort_keys=True))
                scale_report.write(results, args.out)
                continue
            if args.build_only or (key in results["runs"] and not args.remeasure and not built):
                continue
            print(f"[{time.strftime('%H:%M:%S')}] measure {key}", flush=True)
            res = measure(path, n, layout, sources, args.work, args.queries,
                          args.raw_global_max)
            res.update(info)
            # re-read: another run (another size or --work) may have written meanwhile
            fresh = json.loads(out_json.read_text()) if out_json.exists() else results
            fresh["runs"][key] = res
            fresh["sources"] = results["sources"]
            results = fresh
            out_json.write_text(json.dumps(results, indent=1, sort_keys=True))
            scale_report.write(results, args.out)
            print(json.dumps(res), flush=True)
    scale_report.write(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
