"""Probe: does centering the vectors reduce hubness in cross-lingual retrieval?

Not part of the product yet. Compares recall@1 on SIB-200 (all 1004 sentences) for every
ordered pair of the languages given, with raw cosine, with vectors centred on the pool's own
mean, and centred on the mean of all languages' documents (what an index holding every
language would use). Reads vectors from the benchmark cache when present.

    python benchmarks/hubness_probe.py [--data ../shared/data/sib200] [--langs a,b,c]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from xsearch.bench.cache import CachedEmbedder
from xsearch.bench.datasets import default_sib200_root, load_sib200_split
from xsearch.embedders import get_embedder

ROOT = Path(__file__).resolve().parents[1]
LANGS = ("eng_Latn,por_Latn,ukr_Cyrl,yor_Latn,zho_Hans,hau_Latn,tir_Ethi,hin_Deva,arb_Arab,"
         "jpn_Jpan")


def _norm(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_sib200_root())
    parser.add_argument("--langs", default=LANGS)
    parser.add_argument("--model", default="e5-small")
    args = parser.parse_args()
    langs = args.langs.split(",")
    emb = CachedEmbedder(get_embedder(args.model), ROOT / "benchmarks/cache/embeddings.sqlite")
    texts = {}
    for lang in langs:
        rows = [r for split in ("train", "dev", "test")
                for r in load_sib200_split(args.data, lang, split)]
        texts[lang] = dict((r[0], r[2]) for r in rows)
    ids = sorted(texts[langs[0]])
    q = {lg: emb.embed_queries([texts[lg][i] for i in ids]) for lg in langs}
    d = {lg: emb.embed_documents([texts[lg][i] for i in ids]) for lg in langs}
    mu_all = np.vstack(list(d.values())).mean(axis=0)
    gold = np.arange(len(ids))
    rows = {"raw cosine": [], "centred on the pool": [], "centred on all languages": []}
    for a, b in itertools.permutations(langs, 2):
        mu = d[b].mean(axis=0)
        rows["raw cosine"].append(((q[a] @ d[b].T).argmax(1) == gold).mean())
        rows["centred on the pool"].append(
            ((_norm(q[a] - mu) @ _norm(d[b] - mu).T).argmax(1) == gold).mean())
        rows["centred on all languages"].append(
            ((_norm(q[a] - mu_all) @ _norm(d[b] - mu_all).T).argmax(1) == gold).mean())
    print(f"{args.model}, {len(langs)} languages, {len(ids)} sentences, "
          f"{len(rows['raw cosine'])} pairs")
    print("| scoring | mean recall@1 | worst pair |\n|---|---|---|")
    for name, vals in rows.items():
        print(f"| {name} | {np.mean(vals):.3f} | {np.min(vals):.3f} |")


if __name__ == "__main__":
    main()
