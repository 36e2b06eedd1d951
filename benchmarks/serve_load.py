"""Bounded load test of `xsearch serve` on 127.0.0.1 (issue #10).

Builds (once) an index of SIB-200 sentences (all languages, all splits: 30,120 passages), then
starts the real server as a subprocess and drives it with 1, 8 and 32 concurrent clients,
with micro-batching on and off, and once more while a separate `xsearch index` process adds
files to the served index. Every answer is checked against a precomputed expected top hit.
Each scenario stops after --requests requests or --seconds seconds, whichever comes first.

    python benchmarks/serve_load.py --cache ~/.cache/xsearch-bench/cache/embeddings.sqlite

With the embedding cache the index is built without re-embedding (as `xsearch bench` does).
Writes benchmarks/results/serve_load.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xsearch.bench.cache import _key  # noqa: E402
from xsearch.bench.datasets import default_sib200_root, load_sib200  # noqa: E402
from xsearch.bench.runner import _write_pools  # noqa: E402
from xsearch.embedders import Embedder, get_embedder  # noqa: E402
from xsearch.indexer import build_index  # noqa: E402
from xsearch.search import Searcher  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
       "OMP_WAIT_POLICY": "passive"}


class ReadOnlyCache(Embedder):
    """Vectors from a `xsearch bench` embedding cache, opened read-only (never written);
    texts it lacks are embedded here. (Ingest NFC-normalises text, so about 1,060 SIB-200
    sentences, mostly Bengali and Yoruba, reach the model as text the cache never saw.)"""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.max_tokens, self.normalized = inner.max_tokens, inner.normalized
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.computed = 0

    def _embed(self, texts, mode: str) -> np.ndarray:
        texts = list(texts)
        keys = [_key(mode, t) for t in texts]
        found = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            found.update(self.conn.execute(
                f"SELECT key, vector FROM vectors WHERE model = ? AND key IN "
                f"({','.join('?' * len(part))})", [self.name, *part]).fetchall())
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True)
                                  if k not in found))
        fresh = {}
        if todo:
            fn = self.inner.embed_queries if mode == "query" else self.inner.embed_documents
            fresh = dict(zip(todo, fn(todo), strict=True))
            self.computed += len(todo)
        return np.vstack([np.frombuffer(found[k], dtype=np.float32) if k in found
                          else fresh[t] for t, k in zip(texts, keys, strict=True)])

    def embed_documents(self, texts) -> np.ndarray:
        return self._embed(texts, "passage")

    def embed_queries(self, texts) -> np.ndarray:
        return self._embed(texts, "query")

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def embedder(args) -> Embedder:
    emb = get_embedder("e5-small")
    return ReadOnlyCache(emb, args.cache) if args.cache else emb


def build(args) -> tuple[Path, dict]:
    """The SIB-200 index (built once into --work) and the dataset."""
    ds = load_sib200(args.data, languages=args.languages, split="all")
    base = args.work / "index"
    # Incremental: a language file already indexed is skipped, so the index can be grown
    # language by language while the cache fills.
    emb = embedder(args)
    pools = _write_pools(ds, args.work / "corpus")
    t0 = time.perf_counter()
    summary = build_index(list(pools.values()), base, embedder=emb, batch_size=256,
                          commit_every=2048)
    print(f"index: {summary.new} new files, {summary.passages_embedded} passages added in "
          f"{time.perf_counter() - t0:.0f}s ({emb.computed if hasattr(emb, 'computed') else 'all'}"
          " embedded rather than read from the cache)", file=sys.stderr)
    return base, ds


def pick_queries(index: Path, ds, n: int, emb: Embedder, seed: int = 0) -> list[dict]:
    """n sentences as queries with their expected top passage, the queries embedded by the
    server's engine (``emb``); near-ties left out, since a batched embedding may differ from a
    single one in the last bits."""
    rng = random.Random(seed)
    ids = rng.sample(sorted(ds.corpus), min(len(ds.corpus), n * 2))
    texts = [ds.corpus[i] for i in ids]
    s = Searcher(index, embedder=emb)
    try:
        # Scored as the server scores them: the text too (hybrid, the query's language).
        results = s.search_vectors(emb.embed_queries(texts), k=2, texts=texts)
    finally:
        s.close()
    out = []
    for i, text, hits in zip(ids, texts, results, strict=True):
        if len(hits) == 2 and hits[0].score - hits[1].score >= 0.05:
            out.append({"id": i, "q": text, "expect": hits[0].passage_id})
        if len(out) == n:
            break
    return out


def server_embedder(args) -> Embedder:
    """The engine ``xsearch serve`` embeds queries with (its --engine)."""
    return get_embedder("e5-small", engine=args.engine, purpose="serve")


def model_batching_gain(emb: Embedder, queries: list[dict], n: int = 64) -> dict:
    """In-process: ms per query embedded one by one vs in batches of 32 (same texts), by the
    engine the server uses."""
    texts = [q["q"] for q in queries[:n]]
    emb.embed_queries(texts[:4])
    t0 = time.perf_counter()
    for t in texts:
        emb.embed_queries([t])
    single = (time.perf_counter() - t0) / len(texts)
    t0 = time.perf_counter()
    for start in range(0, len(texts), 32):
        emb.embed_queries(texts[start:start + 32])
    batched = (time.perf_counter() - t0) / len(texts)
    return {"ms_per_query_single": round(single * 1000, 1),
            "ms_per_query_batch32": round(batched * 1000, 1),
            "gain": round(single / batched, 2)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m xsearch serve` on a free local port."""

    def __init__(self, index: Path, *extra: str, server_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xsearch", "serve", "--index", str(index), "--port",
             str(self.port), "--bench-dir", str(ROOT / "benchmarks" / "runs"), *server_args,
             *extra],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read())
            try:
                if httpx.get(self.base + "/api/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server did not start")

    def stats(self) -> dict:
        return httpx.get(self.base + "/api/stats", timeout=60).json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load(base: str, queries: list[dict], clients: int, requests: int, seconds: float,
               k: int, stop_when=None) -> dict:
    """``clients`` workers send queries in turn until ``requests`` are done or time is up."""
    lat, errors, wrong, done = [], [], 0, 0
    counter = iter(range(requests))
    t_end = time.perf_counter() + seconds

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal wrong, done
        for n in counter:
            if time.perf_counter() > t_end or (stop_when is not None and stop_when()):
                return
            q = queries[n % len(queries)]
            t0 = time.perf_counter()
            try:
                r = await c.get("/api/search", params={"q": q["q"], "k": k})
                took = time.perf_counter() - t0
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:120]}")
                    continue
                hits = r.json()["hits"]
                if not hits or hits[0]["passage_id"] != q["expect"]:
                    wrong += 1
                lat.append(took)
                done += 1
            except httpx.HTTPError as exc:
                errors.append(repr(exc)[:120])

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(clients)))
        wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    return {"clients": clients, "requests": done, "seconds": round(wall, 2),
            "qps": round(done / wall, 1) if wall else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "errors": len(errors), "wrong": wrong, "error_samples": errors[:3]}


def server_args(args) -> tuple[str, ...]:
    out = ("--engine", args.engine) if args.engine else ()
    return out + (("--batch-window-ms", str(args.window_ms)) if args.window_ms is not None
                  else ())


def run_scenarios(args, index: Path, queries: list[dict]) -> list[dict]:
    rows = []
    for mode, extra in (("micro-batching", ()), ("no batching", ("--max-batch", "1"))):
        server = Server(index, *extra, server_args=server_args(args))
        try:
            asyncio.run(load(server.base, queries, 4, 16, 60, args.k))  # warm up
            engine = httpx.get(server.base + "/api/health", timeout=60).json().get("engine")
            for clients in args.clients:
                before = server.stats()
                row = asyncio.run(load(server.base, queries, clients, args.requests,
                                       args.seconds, args.k))
                after = server.stats()
                embedded = after["queries_embedded"] - before["queries_embedded"]
                calls = after["batches"] - before["batches"]
                row.update(mode=mode, writer="none", engine=engine,
                           mean_batch=round(embedded / calls, 2) if calls else None)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        finally:
            server.stop()
    return rows


def run_with_writer(args, base_index: Path, queries: list[dict]) -> dict:
    """Load while a separate `xsearch index` process adds files to the served index."""
    live = args.work / "index-live"
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(base_index, live)
    extra = ROOT / "data" / "corpus"
    server = Server(live, server_args=server_args(args))
    try:
        asyncio.run(load(server.base, queries, 4, 16, 60, args.k))
        before = server.stats()
        writer = subprocess.Popen(
            [sys.executable, "-m", "xsearch", "index", str(extra), "--index", str(live),
             "--json", "--commit-every", "16"],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.perf_counter()
        # Clients keep going for as long as the writer runs (bounded by --writer-seconds).
        row = asyncio.run(load(server.base, queries, args.writer_clients, 10**9,
                               args.writer_seconds, args.k,
                               stop_when=lambda: writer.poll() is not None))
        out, err = writer.communicate(timeout=600)
        writer_s = time.perf_counter() - t0
        after = server.stats()
        summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"error": err}
        # The server must now see everything the writer committed.
        seen = httpx.get(server.base + "/api/health", timeout=60).json()["passages"]
        row.update(mode="micro-batching", writer="xsearch index data/corpus",
                   writer_seconds=round(writer_s, 1),
                   writer_passages=summary.get("passages_embedded"),
                   writer_exit=writer.returncode,
                   reloads=after["reloads"] - before["reloads"],
                   passages_before=before["passages"], passages_after=seen,
                   mean_batch=None)
        print(json.dumps(row), file=sys.stderr)
        return row
    finally:
        server.stop()


def write(args, rows: list[dict], meta: dict) -> None:
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve_load.json").write_text(json.dumps({**meta, "rows": rows}, indent=2,
                                                    ensure_ascii=False) + "\n")
    lines = [
        "# `xsearch serve` under load",
        "",
        f"Index: {meta['passages']:,} passages (SIB-200, {meta['languages']} languages, all "
        f"splits), e5-small. Queries: {meta['queries']} SIB-200 sentences in every language, "
        f"GET /api/search k={args.k}; an answer is wrong unless its top hit is the passage "
        "expected (precomputed in-process). Server and clients on one machine "
        f"({meta['machine']}), 127.0.0.1, OMP_NUM_THREADS=1; each scenario stops after "
        f"{args.requests} requests or {args.seconds:.0f} s. The server embedded queries with "
        f"{', '.join(sorted({str(r.get('engine')) for r in rows if r.get('engine')})) or '?'}. "
        f"Command: `{meta['command']}`.",
        "",
        "| mode | concurrent index run | clients | requests | queries/s | p50 ms | p95 ms | "
        "p99 ms | errors | wrong | mean batch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['writer']} | {r['clients']} | {r['requests']} | "
                     f"{r['qps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
                     f"{r['errors']} | {r['wrong']} | {r.get('mean_batch') or ''} |")
    by = {(r["mode"], r["clients"]): r for r in rows if r["writer"] == "none"}
    ratios = [f"{c} clients: {by[('micro-batching', c)]['qps'] / base['qps']:.2f}x"
              for c in args.clients if ('micro-batching', c) in by
              and (base := by.get(('no batching', c))) and base["qps"]]
    lines += ["", "Throughput with micro-batching relative to without (same run): "
              + ", ".join(ratios) + "."]
    g = meta.get("model_batching")
    if g:
        lines += ["", f"The model alone, in-process in the same run: {g['ms_per_query_single']} ms "
                  f"per query embedded one at a time, {g['ms_per_query_batch32']} ms per query in "
                  f"batches of 32 ({g['gain']}x): micro-batching can only win what the embedder "
                  "gains from batching."]
    w = next((r for r in rows if r["writer"] != "none"), None)
    if w:
        lines += ["", f"During the concurrent run, `xsearch index` (a separate process) added "
                  f"{w['writer_passages']} passages in {w['writer_seconds']} s (exit "
                  f"{w['writer_exit']}); the server reopened the index {w['reloads']} times "
                  f"and afterwards served {w['passages_after']:,} passages (before: "
                  f"{w['passages_before']:,})."]
    (out / "serve_load.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="SIB-200 folder")
    ap.add_argument("--languages", default=None, help="comma-separated (default: all)")
    ap.add_argument("--cache", type=Path, default=None, help="embedding cache (SQLite)")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "cache" / "serve_load")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--writer-clients", type=int, default=8)
    ap.add_argument("--writer-seconds", type=float, default=600,
                    help="longest load run beside the concurrent `xsearch index`")
    ap.add_argument("--requests", type=int, default=400, help="per scenario")
    ap.add_argument("--seconds", type=float, default=60, help="per scenario")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--engine", default=None, help="the server's --engine (default: its own)")
    ap.add_argument("--window-ms", type=float, default=None,
                    help="the server's --batch-window-ms (default: its own)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--build-only", action="store_true", help="build or grow the index, stop")
    args = ap.parse_args()
    args.data = args.data or default_sib200_root()
    args.languages = args.languages.split(",") if args.languages else None
    args.clients = [int(c) for c in args.clients.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    index, ds = build(args)
    if args.build_only:
        return
    queries = pick_queries(index, ds, args.queries, server_embedder(args))
    gain = model_batching_gain(server_embedder(args), queries)
    print(json.dumps(gain), file=sys.stderr)
    rows = run_scenarios(args, index, queries)
    rows.append(run_with_writer(args, index, queries))
    s = Searcher(index)
    passages = s.index.store.counts()["passages"]
    s.close()
    meta = {"passages": passages, "languages": len(set(ds.doc_lang.values())),
            "queries": len(queries), "machine": f"{len(os.sched_getaffinity(0))} usable "
            f"core(s) of {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, "
            f"{platform.machine()}, Python {platform.python_version()}",
            "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "model_batching": gain}
    if not args.no_write:
        write(args, rows, meta)
    print(json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
