"""The newest ``xsearch bench`` run under a folder, as a language-pair matrix for the page."""

from __future__ import annotations

import json
from pathlib import Path


def _newest_run(root: Path) -> Path | None:
    runs = [p for p in [root / "results.json", *root.glob("*/results.json")] if p.is_file()]
    return max(runs, key=lambda p: p.stat().st_mtime).parent if runs else None


def latest_bench(root: Path, metric: str = "recall@1") -> dict | None:
    """{run, model, metric, query_languages, document_languages, matrix, pngs} or None."""
    run = _newest_run(Path(root))
    if run is None:
        return None
    try:
        res = json.loads((run / "results.json").read_text(encoding="utf-8"))
        pairs = res["retrieval"]["pairs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    qs = sorted(pairs)
    ds = sorted({d for row in pairs.values() for d in row})
    matrix = [[(pairs[q].get(d) or {}).get(metric) for d in ds] for q in qs]
    summary = res["retrieval"].get(metric, {})
    return {"run": run.name, "model": res.get("model"), "dataset": res.get("dataset"),
            "metric": metric, "query_languages": qs, "document_languages": ds,
            "matrix": matrix, "mean": summary.get("mean"),
            "metrics": sorted(k for k in res["retrieval"] if k != "pairs"),
            "pngs": sorted(p.name for p in run.glob("*.png"))}


def png_path(root: Path, name: str) -> Path | None:
    """The PNG called ``name`` in the newest run, only if that run lists it."""
    run = _newest_run(Path(root))
    if run is None:
        return None
    return next((p for p in run.glob("*.png") if p.name == name), None)
