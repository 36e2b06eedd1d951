"""``xsearch bench`` runs under a folder, as language-pair matrices for the page.

A run is named by its folder; the request picks one of the names listed here (or gets the
newest), so no path from a request is ever opened.
"""

from __future__ import annotations

import json
from pathlib import Path


def _runs(root: Path) -> dict[str, Path]:
    """Run name -> folder, newest first."""
    found = [p for p in [root / "results.json", *root.glob("*/results.json")] if p.is_file()]
    found.sort(key=lambda p: (p.stat().st_mtime, p.parent.name), reverse=True)
    return {p.parent.name: p.parent for p in found}


def latest_bench(root: Path, metric: str = "recall@1", run: str | None = None) -> dict | None:
    """{run, runs, model, metric, query_languages, document_languages, matrix, ...} or None
    (no run, or no run of that name)."""
    runs = _runs(Path(root))
    if not runs:
        return None
    folder = runs.get(run) if run else next(iter(runs.values()))
    if folder is None:
        return None
    try:
        res = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        pairs = res["retrieval"]["pairs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    qs = sorted(pairs)
    ds = sorted({d for row in pairs.values() for d in row})
    matrix = [[(pairs[q].get(d) or {}).get(metric) for d in ds] for q in qs]
    summary = res["retrieval"].get(metric, {})
    return {"run": folder.name, "runs": list(runs), "model": res.get("model"),
            "dataset": res.get("dataset"), "metric": metric, "query_languages": qs,
            "document_languages": ds, "matrix": matrix, "mean": summary.get("mean"),
            "metrics": sorted(k for k in res["retrieval"] if k != "pairs"),
            "pngs": sorted(p.name for p in folder.glob("*.png"))}


def png_path(root: Path, name: str, run: str | None = None) -> Path | None:
    """The PNG called ``name`` in that run (default the newest), only if the run lists it."""
    runs = _runs(Path(root))
    folder = runs.get(run) if run else next(iter(runs.values()), None)
    if folder is None:
        return None
    return next((p for p in folder.glob("*.png") if p.name == name), None)
