"""Warm search latency of two builds of xsearch side by side (issue #9): alternating processes.

Each round runs one fresh process per side: it opens the side's index, searches 300 other
queries to warm it, then times 300 (one thread, k=10, hits joined with their SQLite rows, as
`scale.py --parts warm --warmup 300` does), and reports p50/p99 and recall@10 against one exact
truth (this checkout's scores, computed once). Side A may be another source tree (an older
commit: `git worktree add /tmp/old COMMIT`), so a change is measured against what it replaced
on the same machine, minutes apart.

    python benchmarks/scale_ab.py --a-src /tmp/old/src \\
        --a-index ~/.cache/xsearch-bench/scale-old/n1000000-auto \\
        --b-index ~/.cache/xsearch-bench/scale/n1000000-auto --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scale_data as D  # noqa: E402
from bench_paths import BENCH_HOME, EMBED_CACHE  # noqa: E402

N_TIMED = 300


def _sources(args):
    from xsearch.bench.datasets import default_sib200_root

    return D.load_sources(args.cache, args.sib200 or default_sib200_root(), args.languages)


def _side(args) -> None:
    """One side, in its own process: warm up, time, print JSON (ids found, for recall)."""
    from scale import CPU, _pct, timed_searches

    from xsearch.search import Searcher

    allq = D.queries(_sources(args), 2 * N_TIMED)[0]
    searcher = Searcher(args.index)
    try:
        timed_searches(searcher, allq[N_TIMED:])
        times, got = timed_searches(searcher, allq[:N_TIMED], cpu_key="ab")
    finally:
        searcher.close()
    print(json.dumps({"p50_ms": _pct(times, 50), "p99_ms": _pct(times, 99),
                      "cpu_p50_ms": _pct(CPU["ab"], 50), "got": got}))


def _truth(args, n: int) -> np.ndarray:
    from scale import Scorer, exact_top_k

    from xsearch.search import Searcher

    cached = args.work / f"ab-truth-{n}.npy"
    if cached.exists():
        return np.load(cached)
    sources = _sources(args)
    vectors, langs = D.corpus_vectors(sources, n, args.work / f"synth-L{len(sources.languages)}")
    searcher = Searcher(args.b_index)
    try:
        qv = D.queries(sources, 2 * N_TIMED)[0][:N_TIMED]
        truth = exact_top_k(vectors, langs, Scorer(searcher.centering(), qv))
    finally:
        searcher.close()
    np.save(cached, truth)
    return truth


def _run(src: Path | None, index: Path, args) -> dict:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", str(index),
           "--cache", str(args.cache), "--languages", str(args.languages),
           "--sib200", str(args.sib200)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a-src", type=Path, help="side A's source tree (default: this one)")
    ap.add_argument("--a-index", type=Path)
    ap.add_argument("--b-index", type=Path)
    ap.add_argument("--n", type=int, default=1_000_000, help="passages in both indexes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=BENCH_HOME / "scale")
    ap.add_argument("--cache", type=Path, default=EMBED_CACHE)
    ap.add_argument("--sib200", type=Path, default=None)
    ap.add_argument("--languages", type=int, default=18)
    ap.add_argument("--side", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        args.index = args.side
        _side(args)
        return 0
    if not (args.a_index and args.b_index):
        ap.error("--a-index and --b-index are needed")
    from scale import recall

    from xsearch.bench.datasets import default_sib200_root

    args.sib200 = args.sib200 or default_sib200_root()  # side A's tree may lie elsewhere

    truth = _truth(args, args.n)
    rows = []
    for r in range(args.rounds):
        a = _run(args.a_src, args.a_index, args)
        b = _run(None, args.b_index, args)
        for side, res in (("A", a), ("B", b)):
            res["recall_at_10"] = recall(res.pop("got"), truth)
            print(json.dumps({"round": r + 1, "side": side, **res}), flush=True)
        rows.append((a, b))
    ratios = [b["p50_ms"] / a["p50_ms"] for a, b in rows]
    print(f"B/A warm p50, pair by pair: {', '.join(f'{x:.2f}' for x in ratios)} "
          f"(median {statistics.median(ratios):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
