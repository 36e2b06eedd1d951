"""Put two or more benchmark runs side by side, per language.

    python benchmarks/compare.py benchmarks/runs/sib200-all-e5-small \
        benchmarks/runs/sib200-all-use-m3 --out benchmarks/runs/comparison.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xsearch.bench.report import best_few_shot


def _cell(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _scoring(options: dict) -> str:
    """How a run scored: xsearch 0.1 runs record `center`, later ones `centering`."""
    if "centering" in options:
        value = options["centering"]
        return "language-centred + hybrid (default)" if value in (None, "None") else value
    return "global centring (0.1)" if options.get("center") == "True" else "plain cosine (0.1)"


def main() -> None:
    parser = argparse.ArgumentParser(description="Compare benchmark runs per language.")
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with results.json")
    parser.add_argument("--out", type=Path, help="write Markdown here (default: print)")
    args = parser.parse_args()
    runs = [json.loads((r / "results.json").read_text(encoding="utf-8")) for r in args.runs]
    names = [r.name for r in args.runs]  # folder names: two runs may share a model
    langs = runs[0]["languages"]["document"]
    lines = [f"# {' vs '.join(names)} on {runs[0]['dataset']}", "",
             "Runs: " + "; ".join(
                 f"{n} = {r['model']}, scoring: {_scoring(r['options'])}"
                 for n, r in zip(names, runs, strict=True)), ""]
    head = ["metric"] + names
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in ("recall@1", "recall@5", "recall@10", "mrr@10"):
        lines.append(f"| {metric} (pair mean) | " + " | ".join(
            _cell(r["retrieval"][metric]["mean"]) for r in runs) + " |")
    lines.append("| mixed-pool mAP | " + " | ".join(
        _cell(next((v for k, v in r.get("mixed", {}).items() if k.startswith("map@")), None))
        for r in runs) + " |")
    for r in runs:
        zs = r.get("topics", {}).get("zero_shot", {})
        r["_zs_mean"] = (sum(v["accuracy"] for v in zs.get("per_language", {}).values())
                         / max(len(zs.get("per_language", {})), 1)) if zs else None
    lines.append("| zero-shot topic accuracy (mean) | " + " | ".join(
        _cell(r["_zs_mean"]) for r in runs) + " |")
    lines.append("| embedding passages/s (this machine) | " + " | ".join(
        f"{r['throughput']['embed_passages_per_second']:.1f}" for r in runs) + " |")
    lines += ["", "Per language: recall@1 as query (mean over the other document languages) "
              "· zero-shot topic accuracy · best few-shot accuracy from English.", ""]
    head = ["language"] + [f"{n} R@1" for n in names] + [f"{n} zero-shot" for n in names] + \
        [f"{n} few-shot eng" for n in names]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang in langs:
        row = [lang]
        row += [_cell(r["retrieval"]["recall@1"].get(  # older runs: no _cross key
            "per_query_lang_cross", r["retrieval"]["recall@1"]["per_query_lang"]).get(lang))
            for r in runs]
        row += [_cell(r.get("topics", {}).get("zero_shot", {}).get("per_language", {})
                      .get(lang, {}).get("accuracy")) for r in runs]
        row += [_cell(best_few_shot(r.get("topics", {}), lang, "eng_Latn")) for r in runs]
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
