"""Measure the product on the bundled sample corpus: indexing speed, cold and warm query time,
and the cross-lingual hit rate of one query per (topic, query language).

    python benchmarks/sample_corpus.py [--out benchmarks/results/sample_corpus.md]

Hit rate: for each query, the share of the top 5 hits on the query's topic, and how many
*other* languages (and scripts) on that topic appear in the top 5.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus"

QUERIES = {
    "bread": {
        "eng_Latn": "How do I bake bread at home with flour, yeast and a hot oven?",
        "fra_Latn": "Comment faire du pain maison avec du levain ?",
        "hin_Deva": "घर पर आटे और खमीर से ब्रेड कैसे बनाएं",
        "zho_Hans": "在家用面粉和酵母烤面包",
    },
    "football": {
        "eng_Latn": "Who won the football match and scored the goals?",
        "arb_Arab": "من فاز بمباراة كرة القدم؟",
        "swh_Latn": "Timu ilishinda mechi ya mpira wa miguu kwa mabao mawili",
        "jpn_Jpan": "サッカーの試合で誰がゴールを決めた？",
    },
    "solar": {
        "eng_Latn": "solar panels bring electricity to villages",
        "spa_Latn": "paneles solares para casas y aldeas",
        "amh_Ethi": "የፀሐይ ኃይል ለመንደሮች ኤሌክትሪክ",
        "tha_Thai": "แผงโซลาร์เซลล์สำหรับบ้าน",
    },
    "vaccines": {
        "eng_Latn": "measles and polio vaccination campaign for children",
        "rus_Cyrl": "вакцинация детей против кори и полиомиелита",
        "hin_Deva": "बच्चों के लिए खसरा और पोलियो टीकाकरण अभियान",
        "mai_Deva": "नेना सभ के टीका लगाओल गेल",
    },
    "volcano": {
        "eng_Latn": "volcanic eruption forces evacuation, lava and ash",
        "deu_Latn": "Vulkanausbruch, Lava und Asche, Evakuierung",
        "zho_Hans": "火山喷发后，熔岩和火山灰迫使村民撤离",
        "amh_Ethi": "የእሳተ ገሞራ ፍንዳታ እና ላቫ",
    },
    "coffee": {
        "eng_Latn": "coffee farmers harvest and roast the beans",
        "spa_Latn": "los caficultores cosechan las cerezas de café",
        "swh_Latn": "wakulima wa kahawa huvuna na kukausha kahawa",
        "tha_Thai": "เกษตรกรปลูกกาแฟและเก็บเกี่ยวเมล็ด",
    },
}


def truth() -> dict[str, dict]:
    with open(CORPUS / "MANIFEST.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = {}
    for row in rows:
        key = str((CORPUS / row["path"]).resolve())
        out[key + ("#" + row["record_id"] if row["record_id"] else "")] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "sample_corpus.md")
    args = parser.parse_args()
    from xsearch.indexer import build_index
    from xsearch.search import Searcher

    gold = truth()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        summary = build_index([CORPUS], index)
        cold = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "xsearch", "query", "bread", "--index",
                            str(index)], check=True, capture_output=True)
            cold.append(time.perf_counter() - t0)
        searcher = Searcher(index)
        searcher.search("warm up")
        rows, warm = [], []
        for topic, by_lang in QUERIES.items():
            for lang, q in by_lang.items():
                t0 = time.perf_counter()
                hits = searcher.search(q, k=5)
                warm.append((time.perf_counter() - t0) * 1000)
                found = []
                for h in hits:
                    g = gold[h.path + (f"#{h.record_id}" if h.record_id else "")]
                    found.append((g["topic"], g["lang"]))
                on = [lg for t, lg in found if t == topic]
                others = {lg for lg in on if lg != lang}
                rows.append((topic, lang, len(on) / 5, len(others),
                             len({lg.split("_")[1] for lg in others}), q))
        searcher.close()

    lines = [
        "# Sample corpus: speed and cross-lingual hit rate", "",
        f"Indexing `data/corpus` with e5-small: {summary.files_seen} files, "
        f"{summary.documents_written} documents, {summary.passages_embedded} passages in "
        f"{summary.seconds:.1f} s total; embedding {summary.passages_per_second:.1f} passages/s.",
        f"Cold `xsearch query` (fresh process, wall): median {statistics.median(cold):.2f} s "
        f"of {len(cold)}. Warm query latency: median {statistics.median(warm):.0f} ms, "
        f"max {max(warm):.0f} ms over {len(warm)} queries.", "",
        f"Mean on-topic share of the top 5: {statistics.mean(r[2] for r in rows):.3f}; "
        f"queries with >= 3 other languages on topic in the top 5: "
        f"{sum(r[3] >= 3 for r in rows)}/{len(rows)}.", "",
        "| topic | query language | on-topic share @5 | other languages @5 | other scripts @5 |"
        " query |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {t} | {lg} | {p:.2f} | {n} | {s} | {q} |" for t, lg, p, n, s, q in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
