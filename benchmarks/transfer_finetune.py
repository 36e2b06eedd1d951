"""Fine-tuning runs on SIB-200 for the transfer report (slow; run in the background).

    python benchmarks/transfer_finetune.py --source eng_Latn --n 500 --lr 2e-5 --targets all \
        --retrieval eng_Latn,hin_Deva,rus_Cyrl,zho_Hans,swh_Latn

Each run appends one JSON line to benchmarks/results/transfer_finetune.jsonl;
benchmarks/transfer.py reads them into the report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from xsearch.bench.datasets import default_sib200_root
from xsearch.bench.transfer_ft import append_result, run_finetune

OUT = Path(__file__).parent / "results" / "transfer_finetune.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="eng_Latn")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--targets", default="all", help="comma-separated, or 'all' (30)")
    ap.add_argument("--retrieval", default="", help="languages for per-pair recall@1")
    ap.add_argument("--tag", default="")
    ap.add_argument("--save", default="", help="folder to keep the trained classifiers in")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    root = default_sib200_root()
    langs = sorted(p.name for p in root.iterdir() if p.is_dir())
    targets = langs if a.targets == "all" else a.targets.split(",")
    retrieval = [x for x in a.retrieval.split(",") if x]

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    name = f"{a.source}_{a.n}_{a.lr:g}"
    part = a.out.with_name(f"transfer_finetune.{name}.partial.json")

    def partial(res: dict) -> None:
        part.write_text(json.dumps(res), encoding="utf-8")

    save = Path(a.save) / name if a.save else None
    res = run_finetune(root, a.source, a.n, a.lr, targets, retrieval, a.epochs, log=log,
                       partial=partial, save_to=save)
    res["tag"] = a.tag
    part.unlink(missing_ok=True)
    res["threads"] = os.environ.get("XSEARCH_THREADS") or os.cpu_count()
    append_result(a.out, res)
    log(f"written to {a.out}")


if __name__ == "__main__":
    sys.exit(main())
