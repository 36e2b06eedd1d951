"""Measure a model's per-language priors (``xsearch.priors``) on SIB-200's train split.

Each language's mean passage vector and query-minus-passage offset, from its 701 train
sentences embedded in both modes; written to ``src/xsearch/model_priors/<model>.npz``, which
the package ships. The train split only, so the bench's test split stays held out.
SIB-200 (Adelani et al. 2024) is CC BY-SA 4.0.

    python benchmarks/make_priors.py [--model e5-small] [--cache PATH] [--sib200 DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from xsearch import priors
from xsearch.bench.datasets import default_sib200_root, load_sib200_split
from xsearch.centering import PROBE_SENTENCES
from xsearch.embedders import get_embedder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="e5-small")
    ap.add_argument("--sib200", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=os.environ.get("XSEARCH_BENCH_CACHE"),
                    help="embedding cache (sqlite) of xsearch bench, read and filled")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = args.sib200 or default_sib200_root()
    emb = get_embedder(args.model)
    fingerprint = np.asarray(emb.embed_documents([PROBE_SENTENCES[0]])[0], np.float32)
    if args.cache:
        from xsearch.bench.cache import CachedEmbedder

        emb = CachedEmbedder(emb, Path(args.cache))
    langs = sorted(p.name for p in Path(root).iterdir() if (p / "train.tsv").is_file())
    passages, queries = {}, {}
    for lang in langs:
        texts = [t for _, _, t in load_sib200_split(root, lang, "train")]
        passages[lang] = np.asarray(emb.embed_documents(texts), np.float32)
        queries[lang] = np.asarray(emb.embed_queries(texts), np.float32)
        print(f"{lang}: {len(texts)} sentences")
    table = priors.build(emb.name, passages, queries, fingerprint,
                         source="SIB-200 train split (CC BY-SA 4.0), "
                                f"{len(langs)} languages")
    out = args.out or priors.PRIORS_DIR / f"{emb.name}.npz"
    table.save(out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {len(langs)} languages)")


if __name__ == "__main__":
    main()
