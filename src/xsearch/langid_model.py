"""py3langid's model, loaded fast: an uncompressed copy in the user's cache, and its DFA walk
done in numpy.

The package ships the model LZMA-compressed (decompressing it was a fifth of a cold
``xsearch query``, and reading even the uncompressed 68 MB took 0.13 s of every index run), so
the model's arrays are kept as memory-mapped .npy files in the cache. py3langid counts a text's
byte n-gram features by walking an Aho-Corasick automaton one byte at a time in Python, about
half the time of identifying a 1 KB passage. In such an automaton the state after a byte
depends only on the last ``depth`` bytes (its deepest state's distance from the root: 6
here), so every position's state is found at once by ``depth`` vectorised steps over the whole
text; the features, their counts and their order are the same, and so are the scores.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_LANGID_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")
_DEPTH = "dfa_depth"
#: Texts this long (bytes) or longer are walked in numpy: 1.5x faster at 1 KB, 3x at 6 KB;
#: below ~400 bytes numpy's per-call cost loses to py3langid's loop (7 us vs 32 us at 50).
VECTOR_WALK_BYTES = 512


@functools.cache
def identifier() -> Any:
    """The identifier (py3langid's ``LanguageIdentifier`` with the fast walk when the cached
    copy reads back; else py3langid's own, from the package's file)."""
    # Imported here so that importing xsearch does not load the model (~0.7 s).
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    src = Path(MODEL_FILE) if Path(MODEL_FILE).is_absolute() else Path(MODEL_DIR) / MODEL_FILE
    try:
        model = unpacked_model(src)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        model = None
    if model is None:
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ptc, pc, classes, nextmove, row, output, depth = model
    return _walker_class()(ptc, pc, classes, nextmove, output, norm_probs=True, tk_row=row,
                           depth=depth)


@functools.cache
def _walker_class() -> type:
    from py3langid.langid import LanguageIdentifier

    class Walker(LanguageIdentifier):
        """py3langid's identifier counting features with the vectorised walk."""

        def __init__(self, *args: Any, depth: int, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._depth = depth

        @functools.cached_property
        def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            # Made on the first long text: a query (short) never pays for them (~3 ms).
            return (np.asarray(self.tk_nextmove), np.asarray(self.tk_row, dtype=np.int64) << 8,
                    np.asarray(self.tk_output, dtype=np.int64))

        def _raw_score(self, text: bytes) -> np.ndarray:
            if len(text) < VECTOR_WALK_BYTES:
                return super()._raw_score(text)
            visits = feature_counts(text, *self._tables, self._depth)
            if not visits:  # py3langid's own score for a text without features
                return super()._raw_score(text)
            return self._sparse_score(visits, self.nb_ptc)

    return Walker


def feature_counts(text: bytes, nextmove: np.ndarray, base: np.ndarray, out: np.ndarray,
                   depth: int) -> dict[int, int]:
    """{feature: count} in order of first appearance, as py3langid's ``visit_counts`` gives.

    Position i's state is the walk from the root over bytes i-depth+1..i (fewer at the start).
    """
    b = np.frombuffer(text, dtype=np.uint8)
    n = len(b)
    state = np.zeros(n, dtype=np.int64)
    for lag in range(min(depth, n) - 1, -1, -1):
        state[lag:] = nextmove[base[state[lag:]] + b[: n - lag]]
    feats = out[state]
    feats = feats[feats >= 0]
    if not len(feats):
        return {}
    uniq, first, counts = np.unique(feats, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return dict(zip(uniq[order].tolist(), counts[order].tolist(), strict=True))


def dfa_depth(nextmove: np.ndarray, rows: np.ndarray) -> int:
    """The largest distance from the root to any state (breadth-first over all 256 bytes)."""
    base = np.asarray(rows, dtype=np.int64) << 8
    seen = np.zeros(len(base), dtype=bool)
    seen[0] = True
    frontier, depth = np.array([0], dtype=np.int64), 0
    while True:
        parts = [np.unique(nextmove[(base[frontier[i:i + 4096], None]
                                     + np.arange(256)).ravel()])
                 for i in range(0, len(frontier), 4096)]
        nxt = np.unique(np.concatenate(parts)).astype(np.int64)
        nxt = nxt[~seen[nxt]]
        if not len(nxt):
            return depth
        seen[nxt] = True
        frontier, depth = nxt, depth + 1


def unpacked_model(src: Path) -> tuple | None:
    """The model's arrays memory-mapped from the cache, and its DFA's depth: a folder of .npy
    files named by the source's size and mtime, written then renamed, and rebuilt when it does
    not read back (None: no cache could be written, use the package's file)."""
    from py3langid.modelio import _to_array

    from .fileio import cache_dir

    st = src.stat()
    key = hashlib.sha256(f"{src}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_dir() / f"langid-{key}"
    for attempt in range(2):
        if not folder.is_dir():
            try:
                _unpack(src, folder)
            except OSError:
                return None
        try:
            names = (*_LANGID_ARRAYS, _DEPTH)
            if _read_sums(folder) != _sums(folder, names):
                raise ValueError("the unpacked model does not match its sums")
            arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                      for name in names}
            depth = int(arrays[_DEPTH])
            if not 0 < depth <= 64:
                raise ValueError(f"implausible DFA depth {depth}")
            # py3langid's own walk indexes nextmove one state at a time: a memoryview of the
            # mapping gives it Python ints as fast as an array('I') copy would, without the copy.
            nextmove = memoryview(arrays["nextmove"])
            return (arrays["ptc"], np.array(arrays["pc"]), arrays["classes"].tolist(),
                    nextmove, _to_array(arrays["nextmove_row"]), arrays["out_feat"].tolist(),
                    depth)
        except (OSError, ValueError, KeyError, TypeError):
            if attempt:
                raise
            _remove_cache(folder)  # damaged, or written by an older xsearch: unpack it again
    return None


_SUMS = "sums.json"


def _sums(folder: Path, names) -> dict[str, str]:
    """Each array file's sampled digest (~1 ms for the 66 MB, where hashing them whole took
    110 ms of every process's start): a zeroed or overwritten array read back wrong
    languages, or an IndexError, every run."""
    from .fileio import sampled_digest

    return {name: sampled_digest(folder / f"{name}.npy") for name in names}


def _read_sums(folder: Path) -> dict | None:
    try:
        return json.loads((folder / _SUMS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _unpack(src: Path, folder: Path) -> None:
    """The model's arrays as .npy files in ``folder``, which appears whole or not at all."""
    import lzma
    import os

    from .fileio import sweep_stale_temps

    folder.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(folder.parent, "langid-*.tmp")
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    _remove_cache(tmp)
    tmp.mkdir()
    try:
        with lzma.open(src) as fin, np.load(fin, allow_pickle=False) as data:
            arrays = {name: np.ascontiguousarray(data[name]) for name in _LANGID_ARRAYS}
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        depth = dfa_depth(arrays["nextmove"], arrays["nextmove_row"])
        np.save(tmp / f"{_DEPTH}.npy", np.array(depth, dtype=np.int64))
        (tmp / _SUMS).write_text(json.dumps(_sums(tmp, (*_LANGID_ARRAYS, _DEPTH))),
                                 encoding="utf-8")
        try:
            os.replace(tmp, folder)
        except OSError:
            if not folder.is_dir():  # else another process unpacked it first
                raise
    finally:
        _remove_cache(tmp)
    folder.with_name(folder.name + ".npz").unlink(missing_ok=True)  # this version's old copy


def _remove_cache(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
