"""What re-indexing a changed file costs: passages embedded and kept, and the seconds.

SIB-200 sentences (all splits, CC BY-SA 4.0) of a few languages make two files, indexed once:
``records.jsonl`` (one record per sentence, no ids: each is named by its line) and
``report.txt`` (the same sentences as one long text of paragraphs of five). Then, each from
that same first index: a record added at the top of the .jsonl (every record's line moves),
the .jsonl read with another ``--id-field`` (ids change, texts do not), a paragraph added at
the end of the long text, a word added in its middle or near its start, a paragraph added
near its start, both files moved to another folder and edited in the same run. A changed file
(or one renamed and edited) keeps each passage whose text its previous version held; the
rest is embedded. The same runs work on an older xsearch (kept is then 0), for a comparison:

    python benchmarks/changed_file_reuse.py          # SIB-200 at $XSEARCH_SIB200
    PYTHONPATH=/old/src python benchmarks/changed_file_reuse.py --out /tmp/before
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from xsearch.bench.datasets import default_sib200_root, load_sib200_split
from xsearch.indexer import build_index
from xsearch.ingest import ReadOptions

OUT = Path(__file__).resolve().parent / "results" / "changed_file_reuse"
LANGS = ("eng_Latn", "fra_Latn", "hin_Deva", "arb_Arab", "zho_Hans", "swh_Latn")


def _sentences(per_lang: int) -> list[str]:
    root = default_sib200_root()
    out: list[str] = []
    for lang in LANGS:
        texts = [text for _, _, text in load_sib200_split(root, lang, "all")]
        out += texts[:per_lang]
    return out


def _write(folder: Path, sentences: list[str]) -> None:
    with open(folder / "records.jsonl", "w", encoding="utf-8") as f:
        for n, s in enumerate(sentences):
            f.write(json.dumps({"text": s, "uid": f"u{n}"}, ensure_ascii=False) + "\n")
    paragraphs = [" ".join(sentences[i:i + 5]) for i in range(0, len(sentences), 5)]
    (folder / "report.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


def _edits() -> dict[str, tuple]:
    """name -> (what it does to the folder, ReadOptions or None)."""
    def top(folder: Path) -> None:
        p = folder / "records.jsonl"
        p.write_text(json.dumps({"text": "A new first record about the harbour."}) + "\n"
                     + p.read_text(encoding="utf-8"), encoding="utf-8")

    def append(folder: Path) -> None:
        with open(folder / "report.txt", "a", encoding="utf-8") as f:
            f.write("\nA closing paragraph: the harbour reopens in spring.\n")

    def word_at(share: float):
        def edit(folder: Path) -> None:
            p = folder / "report.txt"
            text = p.read_text(encoding="utf-8")
            at = text.index(" ", int(len(text) * share))
            p.write_text(text[:at] + " harbour" + text[at:], encoding="utf-8")
        return edit

    def paragraph_at(share: float):
        def edit(folder: Path) -> None:
            p = folder / "report.txt"
            text = p.read_text(encoding="utf-8")
            at = text.index("\n\n", int(len(text) * share))
            p.write_text(text[:at] + "\n\nThe harbour was closed for three weeks in winter, "
                         "while the old quay was rebuilt and the ferries used the northern pier."
                         + text[at:], encoding="utf-8")
        return edit

    def moved(edit):
        def then_move(folder: Path) -> None:
            edit(folder)
            (folder / "archive").mkdir()
            for name in ("records.jsonl", "report.txt"):
                (folder / name).rename(folder / "archive" / f"2026-{name}")
        return then_move

    return {"record added at the top of the .jsonl": (top, None),
            "the .jsonl read with --id-field uid": (None, ReadOptions(id_field="uid")),
            "paragraph added at the end of the long text": (append, None),
            "word added in the middle of the long text": (word_at(0.5), None),
            "word added near the start of the long text": (word_at(0.02), None),
            "paragraph added near the start of the long text": (paragraph_at(0.02), None),
            "both files moved to another folder, a record added at the top of the .jsonl "
            "and a paragraph at the end of the long text": (moved(lambda f: (top(f),
                                                                              append(f))),
                                                            None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-lang", type=int, default=200, help="sentences per language")
    parser.add_argument("--out", type=Path, default=OUT, help="results (.json, .md) stem")
    args = parser.parse_args()
    sentences = _sentences(args.per_lang)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs, index = Path(tmp) / "docs", Path(tmp) / "index"
        pristine, first_index = Path(tmp) / "pristine", Path(tmp) / "first-index"
        docs.mkdir()
        _write(docs, sentences)
        shutil.copytree(docs, pristine)  # copy2: the same times, so unchanged files stay so
        t0 = time.perf_counter()
        first = build_index([docs], index, engine="auto")
        rows.append({"run": "first index (both files)", "seconds": time.perf_counter() - t0,
                     "embedded": first.passages_embedded, "kept": 0, "removed": 0})
        shutil.copytree(index, first_index)
        for name, (edit, options) in _edits().items():
            shutil.rmtree(docs)
            shutil.copytree(pristine, docs)
            shutil.rmtree(index)
            shutil.copytree(first_index, index)
            if edit is not None:
                edit(docs)
            given = frozenset({"id_field"}) if options else frozenset()
            t0 = time.perf_counter()
            s = build_index([docs], index, engine="auto", read_options=options,
                            record_fields_given=given)
            rows.append({"run": name, "seconds": time.perf_counter() - t0,
                         # getattr: the same runs on an xsearch from before passages were kept
                         "embedded": s.passages_embedded,
                         "kept": getattr(s, "passages_kept", 0),
                         "removed": s.passages_removed})
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    lines = ["# Re-indexing a changed file", "",
             f"Generated by `python benchmarks/changed_file_reuse.py --per-lang {args.per_lang}`."
             f" SIB-200 (CC BY-SA 4.0), {len(sentences)} sentences of {len(LANGS)} languages.",
             "", "| run | passages embedded | kept | removed | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['embedded']:,} | {r['kept']:,} | {r['removed']:,} | "
              f"{r['seconds']:.1f} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
