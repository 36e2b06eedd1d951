"""What a --full rebuild that keeps the model costs at scale (up to a million passages).

Passages are pairs of SIB-200 sentences (all splits, CC BY-SA 4.0) of one language, written as
.jsonl files of 1,000 records. Embedding a million passages takes hours here, so both builds
run with a stand-in embedder: the product's own tokenizer counts tokens, and each text's
vector is drawn from a generator seeded by its text (the same text, the same vector, as the
model gives), so the live index and the rebuild agree on the model, the engine and the
probe and the rebuild takes every vector. What is timed is everything but the model: walking,
reading, chunking, token counts, language identification, looking the live passages up,
checking the segments' checksums, reading their vectors, writing, merging.

What --re-embed would cost is estimated in the same run: the real engine embeds a sample of
the passages, and its tokens/s times the corpus's tokens is the embedding time alone.

    python benchmarks/full_rebuild_scale.py --passages 1000000   # SIB-200 at $XSEARCH_SIB200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xsearch.bench.datasets import default_sib200_root, load_sib200_split, sib200_languages
from xsearch.embedders import get_embedder
from xsearch.embedders.base import Embedder
from xsearch.indexer import build_index

OUT = Path(__file__).resolve().parent / "results" / "full_rebuild_scale"
PER_FILE = 1000


class Replay(Embedder):
    """The real embedder's name, engine, dimension and tokenizer; a vector drawn per text."""

    normalized = True

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.name, self.dim, self.max_tokens = real.name, real.dim, real.max_tokens
        self.engine = real.engine + "-replay"
        self.texts = 0

    def _vectors(self, texts: Sequence[str], mode: str) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for n, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b((mode + t).encode(), digest_size=8).digest(),
                                  "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[n] = v / np.linalg.norm(v)
        self.texts += len(texts)
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts, "passage: ")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts, "query: ")

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def ready(self) -> bool:
        return self.real.ready()


def _corpus(docs: Path, n: int, seed: int = 0) -> list[str]:
    root = default_sib200_root()
    by_lang = {lang: [t for _, _, t in load_sib200_split(root, lang, "all")]
               for lang in sib200_languages(root)}
    rng = random.Random(seed)
    langs = sorted(by_lang)
    texts, seen = [], set()
    while len(texts) < n:
        lang = langs[len(texts) % len(langs)]
        a, b = rng.sample(by_lang[lang], 2)
        t = a + " " + b
        if t not in seen:
            seen.add(t)
            texts.append(t)
    for f in range(0, n, PER_FILE):
        (docs / f"part-{f // PER_FILE:05d}.jsonl").write_text("".join(
            json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts[f:f + PER_FILE]),
            encoding="utf-8")
    return texts


def _timed(label: str, fn) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    print(f"{label}: {seconds:.1f} s", flush=True)
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=1000,
                        help="passages the real engine embeds to estimate --re-embed")
    parser.add_argument("--out", type=Path, default=OUT, help="results (.json, .md) stem")
    args = parser.parse_args()
    real = get_embedder("e5-small")
    replay = Replay(real)
    with tempfile.TemporaryDirectory() as tmp:
        docs, index = Path(tmp) / "docs", Path(tmp) / "index"
        docs.mkdir()
        texts = _corpus(docs, args.passages)
        tokens = sum(real.count_tokens(t) for t in texts)
        sample = random.Random(1).sample(texts, min(args.sample, len(texts)))
        real.embed_documents(sample[:32])  # loaded, warmed
        _, embed_s = _timed("real engine on the sample", lambda: real.embed_documents(sample))
        rate = sum(real.count_tokens(t) for t in sample) / embed_s
        runs = []
        for name, kw in (("first build (layout auto)", {}),
                         ("--full --layout hnsw", {"full": True, "layout": "hnsw"}),
                         ("--full --layout flat", {"full": True, "layout": "flat"})):
            before = replay.texts
            s, seconds = _timed(name, lambda kw=kw: build_index([docs], index, embedder=replay,
                                                                **kw))
            runs.append({"run": name, "seconds": seconds, "embedded": s.passages_embedded,
                         "kept": s.passages_kept, "replayed": replay.texts - before})
    report = {"passages": len(texts), "files": -(-len(texts) // PER_FILE), "tokens": tokens,
              "engine": real.engine, "engine_tokens_per_s": rate,
              "re_embed_estimate_s": tokens / rate, "runs": runs,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    est = report["re_embed_estimate_s"]
    lines = ["# A --full rebuild that keeps the model, at scale", "",
             f"Generated by `python benchmarks/full_rebuild_scale.py --passages {args.passages}`"
             f". {report['passages']:,} passages (pairs of SIB-200 sentences of one language, "
             f"30 languages; CC BY-SA 4.0) in {report['files']:,} .jsonl files, "
             f"{tokens:,} tokens. Both builds use a stand-in embedder (the real tokenizer; a "
             "vector drawn per text), so everything but the model is timed; the --full "
             "rebuilds take every vector from the live index.", "",
             f"Embedding alone with the {real.engine} engine, in the same run: "
             f"{rate:,.0f} tokens/s on a sample of {len(sample):,} passages, so "
             f"{est / 3600:.1f} h for the corpus: what `--re-embed` (and every --full before) "
             "costs at least.", "",
             "| run | passages embedded | taken from the live index | seconds | "
             "--re-embed estimate / seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['embedded']:,} | {r['kept']:,} | {r['seconds']:.0f} | "
              + (f"{est / r['seconds']:.1f}" if r["run"].startswith("--full") else "-") + " |"
              for r in runs]
    lines += ["", f"Peak RSS of the process: {report['peak_rss_mb']:,.0f} MB."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
