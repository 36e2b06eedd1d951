"""How much wall time a whole `xsearch index` run spends beyond embedding its passages.

Side by side in one run, each in a fresh process, alternating A B A B:
  A  `python -m xsearch index CORPUS --index NEW` on a cold (new) index;
  B  the same model loaded in a fresh process embedding exactly the passages A stored, in
     the same batches (the floor the pipeline tries to reach).
A is timed as a whole process; B both from inside (import, model load and embedding, what
`ratio` divides by: the stricter figure) and as a whole process like A (`ratio_to_process`).
Reports the median of each and the ratios A/B (issue #8 asks for at most 1.10). Both run as an
installed package does: with Python's compiled bytecode cached (this sandbox sets
PYTHONDONTWRITEBYTECODE, which would recompile xsearch's modules in every process: 0.06 s of
an index run, less of the embed-only one), after one warm-up pair that is not counted.

    python benchmarks/index_overhead.py data/corpus
    python benchmarks/index_overhead.py --sib200 --runs 3 --warmup 0   # 30 languages

``--also SRC`` also times ``xsearch index`` from another source tree (``SRC`` put first on
``PYTHONPATH``, e.g. ``git archive REV src | tar -x -C /tmp/old`` then ``--also /tmp/old/src``)
in every round, the two index runs in alternating order, against the same embed-only run:
old and new code side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EMBED_ONLY = """
import sys, json, time
t0 = time.perf_counter()
from xsearch.embedders import get_embedder
texts = json.load(open(sys.argv[1], encoding="utf-8"))
emb = get_embedder("e5-small", batch_size=int(sys.argv[2]) or None)
emb.embed_documents(texts)
print(json.dumps({"seconds": time.perf_counter() - t0, "passages": len(texts)}))
"""


def _sib_corpus(dest: Path) -> Path:
    """SIB-200 (all splits, 30 languages) as one .txt file per language and split."""
    from xsearch.bench.datasets import default_sib200_root, load_sib200_split

    root = default_sib200_root()
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for split in ("train", "dev", "test"):
            rows = load_sib200_split(root, lang_dir.name, split)
            # One sentence per paragraph: the chunker keeps them as separate passages only
            # when they overflow, so write small files of 10 sentences each.
            for start in range(0, len(rows), 10):
                part = rows[start:start + 10]
                (dest / f"{lang_dir.name}_{split}_{start:04d}.txt").write_text(
                    "\n\n".join(r[2] for r in part) + "\n", encoding="utf-8")
    return dest


def _index(corpus: Path, index: Path, batch_size: int, env: dict) -> float:
    """Seconds of one whole ``xsearch index`` process on a new index."""
    t0 = time.perf_counter()
    size = ["--batch-size", str(batch_size)] if batch_size else []
    subprocess.run([sys.executable, "-m", "xsearch", "index", str(corpus), "--index", str(index),
                    "-q", *size], check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT / "data" / "corpus")
    parser.add_argument("--sib200", action="store_true", help="use SIB-200 (30 languages)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, choices=(0, 1),
                        help="an uncounted first pair (0 for long corpora such as --sib200)")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="texts per embedding call (default: the engine's own)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--also", type=Path, help="another source tree's src/ to index with")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xsearch-overhead-"))
    try:
        corpus = args.corpus
        if args.sib200:
            (work / "sib").mkdir(exist_ok=True)
            corpus = _sib_corpus(work / "sib")
        index_s, embed_s, embed_wall_s, passages = [], [], [], 0
        texts_file = work / "texts.json"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # not into the source tree
        also_s: list[float] = []
        for run in range(-args.warmup, args.runs):  # run -1: the warm-up
            index = work / f"index{run}"
            # one index run per round (None: this tree), or both trees in alternating order
            codes = [None] if args.also is None else (
                [None, args.also] if run % 2 == 0 else [args.also, None])
            for code in codes:
                if code is None:
                    index_s.append(_index(corpus, index, args.batch_size, env))
                elif args.also is not None:
                    also_s.append(_index(corpus, work / "also", args.batch_size,
                                         dict(env, PYTHONPATH=str(code.resolve()),
                                              PYTHONPYCACHEPREFIX=str(work / "pycache-also"))))
                    shutil.rmtree(work / "also")
            if run == -args.warmup:
                con = sqlite3.connect(index / "xsearch.db")
                texts = [r[0] for r in con.execute("SELECT text FROM passages ORDER BY id")]
                con.close()
                passages = len(texts)
                texts_file.write_text(json.dumps(texts), encoding="utf-8")
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", EMBED_ONLY, str(texts_file),
                                  str(args.batch_size)], check=True, capture_output=True,
                                 text=True, env=env)
            embed_wall_s.append(time.perf_counter() - t0)
            embed_s.append(json.loads(out.stdout)["seconds"])
            shutil.rmtree(index)
            if run == -1:
                index_s, embed_s, embed_wall_s, also_s = [], [], [], []
        ratios = [a / b for a, b in zip(index_s, embed_s, strict=True)]
        wall_ratios = [a / b for a, b in zip(index_s, embed_wall_s, strict=True)]
        result = {"corpus": "SIB-200 (30 languages, all splits)" if args.sib200 else
                  str(corpus), "passages": passages, "runs": args.runs,
                  "index_seconds": index_s,
                  "embed_only_seconds": embed_s, "embed_only_process_seconds": embed_wall_s,
                  "ratio_median": statistics.median(ratios), "ratios": ratios,
                  "ratio_to_process_median": statistics.median(wall_ratios),
                  "ratios_to_process": wall_ratios}
        if args.also is not None:
            also_ratios = [a / b for a, b in zip(also_s, embed_s, strict=True)]
            result.update({"also": str(args.also), "also_index_seconds": also_s,
                           "also_ratio_median": statistics.median(also_ratios),
                           "also_ratios": also_ratios})
        name = "index_overhead_sib200" if args.sib200 else "index_overhead_corpus"
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
