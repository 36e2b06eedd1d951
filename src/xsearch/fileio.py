"""Small file helpers every writer shares: checksums, atomic JSON, fsync of a folder."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path


def surely_gone(path: str | Path) -> bool:
    """Whether nothing is at ``path`` any more, as far as the system can say: a folder that
    cannot be read (EACCES), a stale network mount (ESTALE) or an I/O error is not "gone"
    (``os.path.lexists`` says False for all of them, and --prune dropped such files)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def sha256_file(path: Path) -> str:
    return full_checksum([path])


_PROBE_BYTES = 1 << 16


def quick_fingerprint(paths: list[Path]) -> str:
    """Size plus the first and last 64 KiB of each file: O(1), catches a swapped file."""
    h = hashlib.sha256()
    for p in paths:
        size = p.stat().st_size
        h.update(str(size).encode())
        with open(p, "rb") as fh:
            h.update(fh.read(_PROBE_BYTES))
            if size > _PROBE_BYTES:
                fh.seek(max(_PROBE_BYTES, size - _PROBE_BYTES))
                h.update(fh.read())
    return h.hexdigest()[:32]


def sampled_digest(path: Path) -> str:
    """Size and a sha256 of 4 KiB every MiB (and of the end): ~1 ms for 70 MB, where hashing
    it whole takes ~100 ms; catches a file cut, zeroed or overwritten, not one changed byte."""
    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as fh:
        for at in [*range(0, size, 1 << 20), max(0, size - 4096)]:
            fh.seek(at)
            h.update(fh.read(4096))
    return f"{size}:{h.hexdigest()[:32]}"


def full_checksum(paths: list[Path]) -> str:
    """sha256 of the files' bytes one after another."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``data`` at ``path`` whole or not at all: a temporary file beside it, fsync'd, renamed
    over it, and the rename made durable."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_checked(path: Path, data: bytes, **extra) -> dict:
    """``data`` at ``path`` and, beside it, ``path`` with suffix ``.json`` holding its size and
    sha256 (and ``extra``), each written atomically; returns that record. Readers trust the
    data only when both agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    meta = {**extra, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    write_bytes_atomic(path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    sweep_stale_temps(path.parent, f"{path.name}.*.tmp")
    return meta


#: A temporary file older than this is a killed writer's: any write takes seconds at most.
STALE_TEMP_SECONDS = 600


def sweep_stale_temps(folder: Path, pattern: str) -> None:
    """Remove what writers killed mid-write left in a cache folder (``pattern``: their
    temporary names; a 14 MB graph each time, kept forever)."""
    import shutil

    now = time.time()
    for left in folder.glob(pattern):
        try:
            if now - left.lstat().st_mtime > STALE_TEMP_SECONDS:
                if left.is_dir() and not left.is_symlink():
                    shutil.rmtree(left, ignore_errors=True)
                else:
                    left.unlink()
        except OSError:
            pass


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cache_dir() -> Path:
    """``$XSEARCH_CACHE``, else ``$XDG_CACHE_HOME/xsearch``, else ``~/.cache/xsearch``."""
    if os.environ.get("XSEARCH_CACHE"):
        return Path(os.environ["XSEARCH_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "xsearch"
    return Path.home() / ".cache" / "xsearch"


def advise_mapped_file(path: Path, huge: bool = False) -> int:
    """Advise this process's mappings of ``path`` (Linux; elsewhere a no-op) and return the
    bytes advised. With ``huge``, first ask for huge pages: a page-cache miss then reads the
    file in 2 MB folios that map with one TLB entry each (for reads at random all over the
    file). Then drop the resident pages: FAISS's mmap read copies the graph's levels, offsets
    and ids out of the mapping, and the pages it read would stay resident twice for the life
    of the process. The file stays mapped: a later read faults a page back in from the page
    cache."""
    try:
        import ctypes  # noqa: PLC0415 - only Linux readers of big FAISS files need it
        import mmap  # noqa: PLC0415

        target = os.path.realpath(path)
        ranges = []
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.rstrip("\n").split(maxsplit=5)
                if len(fields) == 6 and fields[5] == target:
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    ranges.append((start, end - start))
        if not ranges:
            return 0
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        hugepage = getattr(mmap, "MADV_HUGEPAGE", None) if huge else None
        done = 0
        for start, size in ranges:
            if hugepage is not None:
                libc.madvise(start, size, hugepage)  # EINVAL where THP is off: no matter
            if libc.madvise(start, size, mmap.MADV_DONTNEED) == 0:
                done += size
        return done
    except (OSError, AttributeError, ValueError):
        return 0
