"""Does the lexical half of hybrid ranking favour a small language's own off-topic passages?

A skewed mixed index from SIB-200 (CC BY-SA 4.0): sentences of the test split, many of six
large languages (default 204 each, the whole split) and few of six small ones (default 30).
Queries: 40 dev sentences of every language (not in the index). A hit is relevant when its
topic is the query's. Per query language and mode (dense, hybrid): precision@10, and the share
of the top 10 that is off topic *and in the query's language* (what function words such as
Swahili "ya" or "kwa" pull up: rare in the whole index, in most passages of their language).

    python benchmarks/minority_lexical.py                        # results/minority_lexical.*
    python benchmarks/minority_lexical.py --large 40 --small 10  # a small index (300 passages)
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
from pathlib import Path

from xsearch.bench.datasets import default_sib200_root, load_sib200_split
from xsearch.indexer import build_index
from xsearch.ingest import ReadOptions
from xsearch.search import Searcher

ROOT = Path(__file__).resolve().parents[1]
LARGE = ("eng_Latn", "fra_Latn", "spa_Latn", "deu_Latn", "hin_Deva", "zho_Hans")
SMALL = ("swh_Latn", "hau_Latn", "yor_Latn", "amh_Ethi", "tha_Thai", "ind_Latn")
QUERIES, K = 40, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--index", type=Path, help="keep the index here (default: temporary)")
    parser.add_argument("--large", type=int, default=204, help="sentences per large language")
    parser.add_argument("--small", type=int, default=30, help="sentences per small language")
    args = parser.parse_args()
    root = default_sib200_root()
    rng = random.Random(13)
    work = Path(tempfile.mkdtemp(prefix="xsearch-minority-"))
    try:
        topic: dict[str, str] = {}
        lang_of: dict[str, str] = {}
        with (work / "pool.jsonl").open("w", encoding="utf-8") as out:
            for lang in LARGE + SMALL:
                rows = load_sib200_split(root, lang, "test")
                rows = rng.sample(rows, min(len(rows), args.small if lang in SMALL
                                            else args.large))
                for index_id, category, text in rows:
                    key = f"{lang}:{index_id}"
                    topic[key], lang_of[key] = category, lang
                    out.write(json.dumps({"id": key, "text": text}, ensure_ascii=False) + "\n")
        index = args.index or work / "index"
        build_index([work / "pool.jsonl"], index,
                    read_options=ReadOptions(text_field="text", id_field="id"))
        searcher = Searcher(index)
        per_lang: dict[str, dict] = {}
        for lang in LARGE + SMALL:
            rows = rng.sample(load_sib200_split(root, lang, "dev"), QUERIES)
            texts = [r[2] for r in rows]
            row: dict[str, float] = {}
            for mode in ("dense", "hybrid"):
                hits = searcher.search_many(texts, k=K, mode=mode)
                p, own_wrong = [], []
                for (_, category, _), got in zip(rows, hits, strict=True):
                    keys = [h.record_id for h in got]
                    p.append(sum(topic[k] == category for k in keys) / K)
                    own_wrong.append(sum(topic[k] != category and lang_of[k] == lang
                                         for k in keys) / K)
                row[f"{mode}_p@10"] = round(statistics.mean(p), 4)
                row[f"{mode}_own_lang_off_topic@10"] = round(statistics.mean(own_wrong), 4)
            per_lang[lang] = row
        result = {"pool": {"large": {lang: args.large for lang in LARGE},
                           "small": {lang: args.small for lang in SMALL}},
                  "queries_per_language": QUERIES, "k": K, "per_language": per_lang}
        for group, langs in (("large", LARGE), ("small", SMALL)):
            for key in per_lang[LARGE[0]]:
                result[f"{group}_mean_{key}"] = round(
                    statistics.mean(per_lang[lang][key] for lang in langs), 4)
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"minority_lexical_{args.large}_{args.small}"
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / f"{name}.md").write_text(_markdown(result))
        print(_markdown(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _markdown(result: dict) -> str:
    lines = ["# Hybrid ranking and small languages (SIB-200, skewed mixed index)", "",
             f"Index: {result['pool']['large'][LARGE[0]]} sentences of each large language, "
             f"{result['pool']['small'][SMALL[0]]} of each small one; "
             f"{result['queries_per_language']} dev queries per "
             "language; relevant = same topic. *off-topic own-language@10*: share of the top "
             "10 that is off topic and in the query's language.", "",
             "| query language | group | P@10 dense | P@10 hybrid | off-topic own-language@10 "
             "dense | hybrid |", "|---|---|---|---|---|---|"]
    for lang, row in result["per_language"].items():
        group = "small" if lang in SMALL else "large"
        lines.append(f"| {lang} | {group} | {row['dense_p@10']:.3f} | {row['hybrid_p@10']:.3f}"
                     f" | {row['dense_own_lang_off_topic@10']:.3f} | "
                     f"{row['hybrid_own_lang_off_topic@10']:.3f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
