"""What a failed write says: one line naming the index, the cause (a full disk, a file size
limit, a read-only folder...) and what is kept (every write is a transaction)."""

from __future__ import annotations

import errno
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IndexWriteError


@contextmanager
def write_errors(path: Path) -> Iterator[None]:
    """OSError and SQLite's operational errors inside become one :class:`IndexWriteError`
    naming the index, the cause and what is kept (every write is a transaction)."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        raise IndexWriteError(write_failure(path, exc)) from exc


def write_failure(path: Path, exc: BaseException) -> str:
    """``could not write index X: No space left on device (FILE); ...`` in one line."""
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename else ""
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        # numpy's short write has no errno: "9984 requested and 2016 written"
        if exc.errno is None and re.fullmatch(r"\d+ requested and \d+ written", what):
            what, full = f"the disk is full ({what})", True
    else:
        what, where = str(exc) or type(exc).__name__, ""
        full = "full" in what
        if "disk I/O error" in what:  # SQLite's word for a write refused: say which cause
            cause = _io_cause(path)
            what += cause
            full = "disk is full" in cause
    then = ("free some space and run it again: it keeps what was committed and goes on from "
            "there" if full else "what was committed before is kept")
    return f"could not write index {path}: {what}{where}; {then}"


def _io_cause(path: Path) -> str:
    """What likely refused SQLite's write: a file size limit, or a full disk."""
    import resource
    import shutil

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        return f" (this process may write files of at most {limit:,} bytes: ulimit -f)"
    try:
        if shutil.disk_usage(path if path.exists() else path.parent).free < 64 << 20:
            return " (the disk is full)"
    except OSError:
        pass
    return ""
