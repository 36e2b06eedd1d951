"""How long the lexical re-tokenising migrations (m008, m010) take on a big index.

Builds an index database (SQLite only: the migrations touch no vector file) holding N
passages of about 700 characters, each a run of SIB-200 sentences of one language (30
languages, round robin; Bengali ones carry their own digits, so m010 finds work), with an
empty lexical table recorded as tokenisation 2 and m010 not applied. Then opens it for
writing as ``xsearch index`` does, which applies m010: every passage tokenised again, its
FTS5 rows and lengths written, in one transaction. Reports seconds, passages/s and the
database's size before and after. SIB-200 (CC BY-SA 4.0).

    python benchmarks/lexical_upgrade_scale.py --passages 1000000 [--dir /tmp/upgrade]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import time
from pathlib import Path

from xsearch.bench.datasets import SIB_SPLITS, default_sib200_root, load_sib200_split
from xsearch.store import Store

OUT = Path(__file__).resolve().parent / "results" / "lexical_upgrade_scale"
PASSAGE_CHARS = 700


def passages(root: Path):
    """Endless passages: SIB-200 sentences of one language joined to ~700 characters."""
    langs = sorted(p.name for p in root.iterdir() if p.is_dir() and "_" in p.name)
    texts = {lang: [r[2] for s in SIB_SPLITS for r in load_sib200_split(root, lang, s)]
             for lang in langs}
    cursor = dict.fromkeys(langs, 0)
    while True:
        for lang in langs:
            parts, size = [], 0
            while size < PASSAGE_CHARS:
                sentence = texts[lang][cursor[lang] % len(texts[lang])]
                cursor[lang] += 1
                parts.append(sentence)
                size += len(sentence) + 1
            yield lang, " ".join(parts)


def build(path: Path, n: int, root: Path) -> None:
    """An index database at ``path`` with ``n`` passages, waiting for m010."""
    store = Store(path)  # every migration: today's schema
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO files (path, content_hash, size, mtime, format, indexed_at) "
                 "VALUES ('/corpus/big.jsonl', 'x', 0, 0, 'jsonl', 0)")
    made = passages(root)
    batch = []
    for i in range(1, n + 1):
        lang, text = next(made)
        batch.append((i, lang, text))
        if len(batch) == 10_000 or i == n:
            conn.executemany(
                "INSERT INTO documents (id, path, record_id, content_hash, n_chars, language, "
                "n_passages) VALUES (?, '/corpus/big.jsonl', ?, 'h', ?, ?, 1)",
                [(j, str(j), len(t), lang) for j, lang, t in batch])
            conn.executemany(
                "INSERT INTO passages (id, document_id, ordinal, char_start, char_end, text, "
                "language, n_tokens) VALUES (?, ?, 0, 0, ?, ?, ?, 200)",
                [(j, j, len(t), t, lang) for j, lang, t in batch])
            batch = []
    conn.execute("DELETE FROM _migrations WHERE name = 'm010_lexical_digits'")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'lexical_version'")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def size_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/xsearch-lexical-upgrade"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    db = args.dir / "xsearch.db"
    t0 = time.perf_counter()
    build(db, args.passages, default_sib200_root())
    built = time.perf_counter() - t0
    before = size_mb(db)
    t0 = time.perf_counter()
    store = Store(db)  # what `xsearch index` does first: pending migrations apply
    seconds = time.perf_counter() - t0
    version = store.db.execute("SELECT value FROM meta WHERE key = 'lexical_version'"
                               ).fetchone()[0]
    store.close()
    result = {"passages": args.passages, "passage_chars": PASSAGE_CHARS,
              "build_seconds": round(built, 1), "migration_seconds": round(seconds, 1),
              "passages_per_second": round(args.passages / seconds),
              "lexical_version_after": version, "database_mb_before": before,
              "database_mb_after": size_mb(db),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "cpu": os.cpu_count()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    OUT.with_suffix(".md").write_text(report(result))
    print(report(result))
    shutil.rmtree(args.dir, ignore_errors=True)


def report(r: dict) -> str:
    return "\n".join([
        "# Lexical re-tokenising upgrade (m010) at scale", "",
        f"Generated by `python benchmarks/lexical_upgrade_scale.py --passages {r['passages']}` "
        f"({r['cpu']} cores; SIB-200 sentences, CC BY-SA 4.0, joined into passages of "
        f"~{r['passage_chars']} characters).", "",
        f"- {r['passages']:,} passages tokenised again in {r['migration_seconds']} s "
        f"({r['passages_per_second']:,} passages/s), one transaction, peak RSS "
        f"{r['peak_rss_mb']} MB",
        f"- database {r['database_mb_before']} MB before, {r['database_mb_after']} MB after "
        "(the lexical table was empty before: the passages were written straight into SQLite)",
        f"- lexical tokenisation after: {r['lexical_version_after']}", ""])


if __name__ == "__main__":
    main()
