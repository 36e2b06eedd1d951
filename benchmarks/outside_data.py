"""SIB-200 written out as an outside dataset (ISO 639-1 codes, other ids, `item` marks) and
benchmarked both ways: the numbers must match the native SIB-200 run.

Each sentence is a query (id ``q:<code>:<index_id>``) and a document (``<code>:<index_id>``,
another id), marked as the same item. Also run: the generic set without the marks, i.e. what
the mixed-pool numbers were before items existed (each query finds its own sentence first).
Writes benchmarks/results/outside_data.md.

    python benchmarks/outside_data.py [--languages eng_Latn,arb_Arab,...] [--split test]
        [--cache benchmarks/cache]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from xsearch.bench.datasets import default_sib200_root, load_sib200
from xsearch.bench.generic import load_generic
from xsearch.bench.runner import BenchOptions, run_benchmark

REPO = Path(__file__).resolve().parents[1]
# How outside data tends to spell them: ISO 639-1, or BCP-47 where it has a script.
OUTSIDE = {"eng_Latn": "en", "arb_Arab": "ar", "hin_Deva": "hi", "fra_Latn": "fr",
           "deu_Latn": "de", "heb_Hebr": "he", "zho_Hans": "zh-Hans", "amh_Ethi": "am"}


def write_generic(ds, root: Path, items: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    code = {lang: OUTSIDE[lang] for lang in set(ds.doc_lang.values())}
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for d, text in ds.corpus.items():
            lang, idx = d.split(":")
            rec = {"id": f"{code[lang]}:{idx}", "lang": code[lang], "text": text}
            fh.write(json.dumps(rec | ({"item": d} if items else {}), ensure_ascii=False) + "\n")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for q, text in ds.queries.items():
            lang, idx = q.split(":")
            rec = {"id": f"q:{code[lang]}:{idx}", "lang": code[lang], "text": text}
            fh.write(json.dumps(rec | ({"item": q} if items else {}), ensure_ascii=False) + "\n")
    with (root / "qrels.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q, rel in ds.qrels.items():
            ql, qi = q.split(":")
            for d in sorted(rel):
                dl, di = d.split(":")
                fh.write(f"q:{code[ql]}:{qi}\t{code[dl]}:{di}\t1\n")


def summary(res: dict, lang_of) -> dict:
    r1 = res["retrieval"]["recall@1"]
    mixed = res["mixed"]["per_query_language"]
    return {
        "recall@1 off-diagonal mean": r1["off_diagonal_mean"],
        "recall@5 off-diagonal mean": res["retrieval"]["recall@5"]["off_diagonal_mean"],
        f"mixed mAP@{res['mixed']['depth']}": res["mixed"][f"map@{res['mixed']['depth']}"],
        "mixed recall@1 (mean over query languages)":
            sum(v["recall@1"] for v in mixed.values()) / len(mixed),
        "language-id accuracy (mean)":
            sum(v["accuracy"] for v in res["language_id"].values()) / len(res["language_id"]),
        "language columns": ", ".join(lang_of(x) for x in res["languages"]["document"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--languages", default="eng_Latn,arb_Arab,hin_Deva,fra_Latn,deu_Latn,heb_Hebr")
    ap.add_argument("--split", default="test")
    ap.add_argument("--cache", type=Path, default=REPO / "benchmarks" / "cache")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" /
                    "outside_data.md")
    args = ap.parse_args()
    langs = args.languages.split(",")
    sib = load_sib200(default_sib200_root(), languages=langs, split=args.split)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, items in (("generic, ISO 639-1 codes, item marks", True),
                            ("generic, ISO 639-1 codes, no item marks", False)):
            write_generic(sib, tmp / name.replace(" ", "_").replace(",", ""), items)
        datasets = {"SIB-200 layout (FLORES folders)": sib}
        for name in ("generic, ISO 639-1 codes, item marks",
                     "generic, ISO 639-1 codes, no item marks"):
            datasets[name] = load_generic(tmp / name.replace(" ", "_").replace(",", ""))
        for name, ds in datasets.items():
            t0 = time.perf_counter()
            opts = BenchOptions(out_dir=tmp / "out", cache_dir=args.cache, ks=(1, 5, 10))
            res = run_benchmark(ds, opts, log=lambda msg: None)
            runs[name] = summary(res, str)
            runs[name]["seconds"] = round(time.perf_counter() - t0, 1)
            print(name, runs[name], flush=True)
    keys = list(next(iter(runs.values())))
    lines = [f"# SIB-200 {args.split} as outside data ({', '.join(langs)})", "",
             "Same sentences, same relevance (translations), same model (e5-small); the "
             "generic copies use ISO 639-1 codes and ids that differ between a query and its "
             "own sentence in the pool. Mixed recall@1 is at most 1/(languages - 1): each query "
             "has a translation in every other language. Command: "
             "`python benchmarks/outside_data.py`.", "",
             "| measure | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for k in keys:
        cells = [f"{v[k]:.4f}" if isinstance(v[k], float) and k != "seconds" else str(v[k])
                 for v in runs.values()]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
