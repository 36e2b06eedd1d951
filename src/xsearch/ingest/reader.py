"""read_file: bounded read of one file, then its format's reader under the file's budget."""

from __future__ import annotations

from pathlib import Path

from xsearch.errors import IngestError

from .base import ReadOptions, ReadResult, err, one_line
from .budget import Budget
from .files import read_limited
from .formats import reader_for, supported_suffixes


def fmt_suffixes(suffixes: object) -> str:
    return ", ".join(sorted(suffixes))  # type: ignore[call-overload]


def read_file(path: Path | str, options: ReadOptions | None = None) -> ReadResult:
    """Read one file into documents, dispatching on its (case-insensitive) suffix.

    Problems that make the whole file unusable raise IngestError ("PATH: reason", one line;
    BudgetExceeded for size/time refusals, SkippedFile for binary/empty files); problems with
    parts of it (one record, one page) come back as warnings.
    """
    path = Path(path)
    options = options or ReadOptions()
    suffix = path.suffix.lower()
    reader = reader_for(suffix)
    if reader is None:
        kind = suffix or "(no suffix)"
        raise err(path, f"unsupported file type {kind}; supported: "
                        f"{fmt_suffixes(supported_suffixes())}")
    budget = Budget(path, options)
    data = read_limited(path, options)
    if not data.strip():
        raise err(path, "empty file")
    try:
        return reader(data, path, options, budget)
    except IngestError:
        raise
    except (Exception, RecursionError, MemoryError) as exc:
        # The ingest boundary: whatever a parser trips over in a user's file is this file's
        # failure, one line, never a traceback that stops the run.
        raise err(path, f"unreadable ({type(exc).__name__}: {one_line(exc)})") from exc
