"""Opening files safely: regular files only, never blocking on a FIFO or a device."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from xsearch.errors import IngestError

from .base import ReadOptions, err
from .budget import check_file_size, too_large

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: Path | str) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading, refusing anything that is not a regular file.

    lstat/stat before open keeps FIFOs, sockets and devices closed; O_NONBLOCK plus fstat
    after open covers a file swapped for a FIFO in between (the open cannot block then).
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise err(path, "not a regular file")
        fd = os.open(path, _OPEN_FLAGS)
    except IngestError:
        raise
    except OSError as exc:
        raise err(path, f"cannot read: {exc.strerror or exc}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise err(path, "not a regular file")
    os.set_blocking(fd, True)
    return fd, st


def read_limited(path: Path | str, options: ReadOptions) -> bytes:
    """The bytes of a regular file, refused if larger than ``options.max_bytes``."""
    fd, st = open_regular(path)
    max_bytes = options.max_bytes
    try:
        check_file_size(path, st.st_size, options)
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except IngestError:
        raise
    except OSError as exc:
        raise err(path, f"cannot read: {exc.strerror or exc}") from exc
    finally:
        if fd >= 0:
            os.close(fd)
    if max_bytes is not None and len(data) > max_bytes:  # the file grew while we read it
        raise too_large(path, len(data), max_bytes)
    return data


def file_fingerprint(path: Path | str, max_bytes: int | None = None
                     ) -> tuple[str, int, float]:
    """Return (sha256 hex of the raw bytes, size in bytes, mtime) of a regular file. One
    larger than ``max_bytes`` (refused unread) is not read whole on every run: its hash is
    "over:" and one of its size, mtime and first and last 64 KiB."""
    digest = hashlib.sha256()
    size = 0
    fd, st = open_regular(path)
    try:
        with os.fdopen(fd, "rb") as fh:
            if max_bytes is not None and st.st_size > max_bytes:
                digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
                digest.update(fh.read(1 << 16))
                fh.seek(max(0, st.st_size - (1 << 16)))
                digest.update(fh.read(1 << 16))
                return "over:" + digest.hexdigest(), st.st_size, st.st_mtime
            while block := fh.read(1024 * 1024):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise err(path, f"cannot read: {exc.strerror or exc}") from exc
    return digest.hexdigest(), size, st.st_mtime
