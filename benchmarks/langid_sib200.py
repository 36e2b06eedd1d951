"""Accuracy of xsearch.langid on SIB-200 (FLORES-200 sentences), per language.

Writes benchmarks/results/langid_sib200_<split>.md. A prediction counts only if the whole code
matches the folder name (hin_Deva for mai_Deva is wrong).

    python benchmarks/langid_sib200.py [--data DIR] [--split dev]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from xsearch.bench.datasets import default_sib200_root
from xsearch.langid import detect, detect_many

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """``$XSEARCH_SIB200``, else ``../shared/data/sib200`` next to the repository."""
    return default_sib200_root()


def read_texts(path: Path) -> list[str]:
    """The ``text`` column of one SIB-200 TSV."""
    with path.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def evaluate(data: Path, split: str) -> tuple[list[tuple[str, int, float, str]], float, int]:
    """Rows (language, n, accuracy, most common wrong prediction), texts/s, total texts."""
    langs = sorted(p.name for p in data.iterdir() if (p / f"{split}.tsv").is_file())
    texts = {lang: read_texts(data / lang / f"{split}.tsv") for lang in langs}
    detect("warm-up: load the model before timing")
    start = time.perf_counter()
    guesses = {lang: detect_many(texts[lang]) for lang in langs}
    elapsed = time.perf_counter() - start
    rows = []
    for lang in langs:
        codes = [g.code for g in guesses[lang]]
        wrong = Counter(c for c in codes if c != lang).most_common(1)
        worst = f"{wrong[0][0]} ({wrong[0][1]})" if wrong else "-"
        rows.append((lang, len(codes), sum(c == lang for c in codes) / len(codes), worst))
    total = sum(len(t) for t in texts.values())
    return rows, total / elapsed, total


def to_markdown(rows: list[tuple[str, int, float, str]], split: str, speed: float) -> str:
    """Table plus a summary line."""
    mean = sum(r[2] for r in rows) / len(rows)
    lines = [
        f"# Language identification on SIB-200 {split}",
        "",
        f"xsearch.langid (py3langid {version('py3langid')}, script from the text, "
        "exact FLORES-200 code match).",
        "",
        "| language | n | accuracy | most common wrong prediction (count) |",
        "|---|---:|---:|---|",
        *(f"| {lang} | {n} | {acc:.3f} | {worst} |" for lang, n, acc, worst in rows),
        "",
        f"Mean accuracy over {len(rows)} languages: **{mean:.3f}**. "
        f"Speed: {speed:,.0f} texts/s (one process, sentences of FLORES length).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="SIB-200 folder")
    parser.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    parser.add_argument("--out", type=Path, help="Markdown file (default benchmarks/results/)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        message = f"SIB-200 folder not found: {args.data} (use --data or XSEARCH_SIB200)"
        print(message, file=sys.stderr)
        return 2
    rows, speed, _ = evaluate(args.data, args.split)
    report = to_markdown(rows, args.split, speed)
    out = args.out or REPO / "benchmarks" / "results" / f"langid_sib200_{args.split}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    print(report)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
