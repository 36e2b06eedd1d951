"""Kill `xsearch index` with SIGKILL at every named crash point and at random moments, and
try damaged or foreign index folders; print a table of what each left behind.

For every kill: does the index open and answer a query right after, does the next plain
`xsearch index` (no --full) finish, does `xsearch check` pass, and does the index then hold
exactly what a clean build holds. Results go to benchmarks/results/kill_campaign.{md,json}.

    python benchmarks/hostile/kill_campaign.py [--random 20] [--src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "data" / "corpus"
POINTS = ["create:db", "segment:written", "write:before-commit", "write:after-commit",
          "merge:written", "merge:committed", "finish:complete", "finish:old-wal-removed",
          "finish:swapped"]
FILES = ["bread/eng_Latn_bread.txt", "bread/hin_Deva_bread.txt", "coffee/eng_Latn_coffee.txt",
         "volcano/jpn_Jpan_volcano.txt", "solar/hin_Deva_solar.txt", "mixed/news.jsonl"]


def xs(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xsearch", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def counts(index: Path) -> tuple | None:
    out = xs("stats", "--index", str(index), "--json")
    if out.returncode:
        return None
    info = json.loads(out.stdout)
    return info["files"], info["documents"], info["passages"]


def outcome(case: str, index: Path, docs: Path, reference: tuple, killed_rc: int) -> dict:
    q = xs("query", "bread and flour", "--index", str(index), "--json")
    answers = q.returncode == 0
    rerun = xs("index", str(docs), "--index", str(index), "--json")
    chk = xs("check", "--index", str(index), "--no-model")
    got = counts(index)
    summary = json.loads(rerun.stdout) if rerun.returncode == 0 else {}
    return {"case": case, "killed": killed_rc == -signal.SIGKILL,
            "answers_after_kill": answers,
            "after_kill": (q.stderr.strip().splitlines() or [""])[-1][:80] if not answers else "",
            "rerun_ok": rerun.returncode == 0, "check_ok": chk.returncode == 0,
            # What the next run kept of a killed fresh build, and what it still embedded.
            "taken_up": summary.get("resumed", 0),
            "rerun_embedded": summary.get("passages_embedded"),
            "same_as_clean": got == reference,
            "traceback": "Traceback" in (q.stderr + rerun.stderr + chk.stderr)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=10, help="random-moment kills")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--src", type=Path, help="run another checkout's src (PYTHONPATH)")
    args = parser.parse_args()
    if args.src:
        os.environ["PYTHONPATH"] = str(args.src)
    work = Path(tempfile.mkdtemp(prefix="xsearch-kill-"))
    rows: list[dict] = []
    try:
        docs = work / "docs"
        docs.mkdir()
        for name in FILES:
            shutil.copy(CORPUS / name, docs / Path(name).name)
        clean = work / "clean"
        t0 = time.perf_counter()
        xs("index", str(docs), "--index", str(clean), "-q")
        # Random moments fall inside a run: a fixed window missed every run once runs got
        # faster than it (all ten "random kills" of one campaign found the run finished).
        took = time.perf_counter() - t0
        reference = counts(clean)
        for point in POINTS:
            for full in (False, True):
                index = work / f"i-{point.replace(':', '-')}-{int(full)}"
                if full:
                    shutil.copytree(clean, index)
                env = dict(os.environ, XSEARCH_FAULT=point)
                p = xs("index", str(docs), "--index", str(index), "-q", "--commit-every", "1",
                       *(["--full"] if full else []), env=env)
                rows.append(outcome(f"{'--full' if full else 'new'} @ {point}", index, docs,
                                    reference, p.returncode))
                print(rows[-1], flush=True)
        rng = random.Random(0)
        for n in range(args.random):
            index = work / f"r{n}"
            if n % 2:
                shutil.copytree(clean, index)
            proc = subprocess.Popen([sys.executable, "-m", "xsearch", "index", str(docs),
                                     "--index", str(index), "-q", "--commit-every", "1",
                                     *(["--full"] if n % 2 else [])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            at = rng.uniform(0.1, 0.95) * took
            time.sleep(at)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            rows.append(outcome(f"random kill {n} ({'--full' if n % 2 else 'new'}, at "
                                f"{at:.1f} s of ~{took:.1f} s)", index, docs, reference,
                                proc.returncode))
            print(rows[-1], flush=True)
        rows += folder_cases(work, docs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(rows, reference[2], args.out)


def folder_cases(work: Path, docs: Path) -> list[dict]:
    """Foreign and damaged folders: nothing of theirs is deleted, every error is one line."""
    out = []
    theirs = work / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"theme": "dark"}')
    (theirs / "xsearch.db").write_bytes(b"not ours")
    before = sorted((p.name, p.read_bytes()) for p in theirs.iterdir())
    for full in (False, True):
        r = xs("index", str(docs), "--index", str(theirs), "-q", *(["--full"] if full else []))
        after = sorted((p.name, p.read_bytes()) for p in theirs.iterdir())
        out.append({"case": f"foreign folder with config.json{' --full' if full else ''}",
                    "exit": r.returncode, "message": r.stderr.strip()[:90],
                    "data_lost": after != before, "traceback": "Traceback" in r.stderr})
    for name, edit in (("dim 768", {"dim": 768}), ("dim abc", {"dim": "abc"}),
                       ("chunk_tokens 0", {"chunk_tokens": 0})):
        index = work / f"cfg-{name.replace(' ', '')}"
        xs("index", str(docs), "--index", str(index), "-q")
        con = sqlite3.connect(index / "xsearch.db")
        raw = json.loads(con.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
        raw.update(edit)
        con.execute("UPDATE meta SET value = ? WHERE key = 'config'", [json.dumps(raw)])
        con.commit()
        con.close()
        r = xs("query", "bread", "--index", str(index))
        out.append({"case": f"committed config {name}", "exit": r.returncode,
                    "message": r.stderr.strip()[:90], "data_lost": False,
                    "traceback": "Traceback" in r.stderr})
    return out


def write(rows: list[dict], passages: int, out: Path) -> None:
    """``passages``: how many a clean build holds."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "kill_campaign.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    kills = [r for r in rows if "killed" in r]
    lines = ["# Kill and folder campaign", "",
             "`python benchmarks/hostile/kill_campaign.py` (SIGKILL at every named crash point "
             "of a new index and of `--full`, plus random moments).", "",
             f"{len(kills)} kills: {sum(r['killed'] for r in kills)} died by SIGKILL; "
             f"{sum(r['answers_after_kill'] for r in kills)} answered a query right after; "
             f"{sum(r['rerun_ok'] and r['check_ok'] and r['same_as_clean'] for r in kills)} "
             "were whole again after one plain `xsearch index`; "
             f"{sum(r['traceback'] for r in kills)} tracebacks.", "",
             f"The next run took up the killed run's fresh database in "
             f"{sum(bool(r['taken_up']) for r in kills)} cases (files it kept / passages it "
             f"still embedded, of {passages} in a clean build).", "",
             "| case | killed | answers after kill | next index ok | files taken up / passages "
             "embedded | check ok | same as clean build | traceback |",
             "|---|---|---|---|---|---|---|---|"]
    for r in kills:
        lines.append(f"| {r['case']} | {r['killed']} | {r['answers_after_kill']} "
                     f"{r['after_kill']} | {r['rerun_ok']} | {r['taken_up']} / "
                     f"{r['rerun_embedded']} | {r['check_ok']} | "
                     f"{r['same_as_clean']} | {r['traceback']} |")
    lines += ["", "| folder case | exit | message | data lost | traceback |",
              "|---|---|---|---|---|"]
    for r in rows:
        if "killed" not in r:
            lines.append(f"| {r['case']} | {r['exit']} | {r['message']} | {r['data_lost']} | "
                         f"{r['traceback']} |")
    (out / "kill_campaign.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
