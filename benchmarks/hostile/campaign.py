"""Run `xsearch index` on every hostile case, each in a fresh corpus and a fresh index.

    python benchmarks/hostile/campaign.py [--src DIR] [--label after] [CASE ...]

Each case's corpus holds the hostile file(s) and one good file. Per case: exit code, first
stderr line, whether the good file is in the index's `files` table, peak RSS of the indexing
process (os.wait4 rusage) and wall seconds. A case is killed after --timeout seconds or when
its RSS passes --max-rss-mb (to spare the shared machine), and shows as a row either way.
``--src`` points at another checkout's ``src`` to measure the code before a change.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from make_hostile import CASES  # noqa: E402

# Extra `xsearch index` options per case (skipped with --plain, e.g. for code without them).
CASE_ARGS = {"docx-bomb-1gb-streamed": ["--max-text-mb", "2000"]}


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_case(name: str, src: Path, work: Path, timeout: float, max_rss_mb: float,
             plain: bool = False) -> dict:
    corpus = work / name / "corpus"
    corpus.mkdir(parents=True)
    good = corpus / "good.txt"
    gen_started = time.monotonic()
    # Generated in a child process: on Linux a spawned child's ru_maxrss starts from the
    # parent's peak, so the parent must never hold a bomb in memory.
    subprocess.run([sys.executable, str(HERE / "make_hostile.py"), str(corpus), name, "--flat"],
                   check=True, stdout=subprocess.DEVNULL)
    gen_seconds = time.monotonic() - gen_started
    index = work / name / "index"
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out_path, err_path = work / name / "stdout", work / name / "stderr"
    cmd = [sys.executable, "-m", "xsearch", "index", str(corpus), "--index", str(index)]
    if not plain:
        cmd += CASE_ARGS.get(name, [])
    started = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        pid = os.posix_spawn(sys.executable, cmd, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ])
    killed = ""
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        elapsed = time.monotonic() - started
        if not killed and elapsed > timeout:
            killed = f"killed after {timeout:.0f} s"
        elif not killed and _rss_mb(pid) > max_rss_mb:
            killed = f"killed at RSS > {max_rss_mb:.0f} MB"
        if killed:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.05)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_bytes().decode("utf-8", "backslashreplace").splitlines()
    first = next((line for line in stderr if line.strip()), "")
    first = first.replace(str(corpus), "CORPUS")
    indexed: list[str] = []
    db = index / "xsearch.db"
    if db.exists():
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                paths = {row[0] for row in con.execute("SELECT path FROM files")}
            indexed = sorted(os.path.relpath(p, corpus.resolve()) for p in paths)
        except sqlite3.Error:
            pass
    good_indexed = os.path.relpath(good.resolve(), corpus.resolve()) in indexed
    return {
        "case": name,
        "exit": code,
        "killed": killed,
        "first_stderr": first[:160],
        "good_indexed": good_indexed,
        "indexed": indexed,
        "args": cmd[7:],
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "seconds": round(seconds, 1),
        "generate_seconds": round(gen_seconds, 1),
    }


def to_markdown(rows: list[dict], label: str) -> str:
    lines = [
        f"### {label}",
        "",
        "| case | exit | good file indexed | files indexed | peak RSS MB | seconds "
        "| first stderr line |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        exit_ = f"{r['exit']} ({r['killed']})" if r["killed"] else str(r["exit"])
        first = r["first_stderr"].replace("|", "\\|")
        case = " ".join([r["case"], *r.get("args", [])])
        files = ", ".join(r.get("indexed", [])).replace("|", "\\|")
        lines.append(
            f"| {case} | {exit_} | {'yes' if r['good_indexed'] else 'NO'} | {files} | "
            f"{r['peak_rss_mb']} | {r['seconds']} | {first} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*")
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--label", default="after")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--max-rss-mb", type=float, default=3000.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--plain", action="store_true",
                        help="no per-case extra options (for code that lacks them)")
    args = parser.parse_args()
    names = args.cases or list(CASES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="xsearch-hostile-") as tmp:
        for name in names:
            row = run_case(name, args.src.resolve(), Path(tmp), args.timeout, args.max_rss_mb,
                           args.plain)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    table = to_markdown(rows, args.label)
    print(table)
    # One .json/.md pair holds every labelled run (before/after) side by side.
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "hostile_campaign.json"
    runs = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    runs[args.label] = rows
    json_path.write_text(json.dumps(runs, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md = ["# Hostile-input campaign", "", "`python benchmarks/hostile/campaign.py` "
          f"(timeout {args.timeout:.0f} s, RSS cap {args.max_rss_mb:.0f} MB per case)", ""]
    md += [to_markdown(r, label) for label, r in runs.items()]
    (args.out / "hostile_campaign.md").write_text("\n".join(md), encoding="utf-8")

if __name__ == "__main__":
    main()
