"""The one place that enforces the size and time budgets of reading a file.

Every extractor charges what it inflates (XML read from a zip, decoded PDF streams, decoded
text) to a :class:`Budget` while it streams, and calls :meth:`Budget.check_time` between
steps, so a decompression bomb or a pathological file is refused early instead of after the
whole text is in memory. A refusal is a :class:`BudgetExceeded` naming the option to raise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

from xsearch.errors import IngestError

from .base import ReadOptions, err, human_size


class BudgetExceeded(IngestError):
    """A file was refused because reading it would pass a size or time budget.

    ``limits`` names the option that refused it and its value (``{"max_bytes": 1048576}``),
    empty for a parser's own guard: a later run with that option raised reads it again."""

    def __init__(self, message: str, limits: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.limits = dict(limits or {})


def _mb(limit: int) -> str:
    return f"{limit / 2**20:g}"


def too_large(path: Path | str, size: int, limit: int) -> BudgetExceeded:
    """The error for a file larger than ``max_bytes``, in the CLI's terms (--max-mb)."""
    return BudgetExceeded(err(
        path,
        f"file too large: {size:,} bytes ({human_size(size)}) exceeds the limit of "
        f"{limit:,} bytes ({human_size(limit)}); raise --max-mb (now {_mb(limit)}) to read it",
    ).args[0], {"max_bytes": limit})


def check_file_size(path: Path | str, size: int, options: ReadOptions) -> None:
    if options.max_bytes is not None and size > options.max_bytes:
        raise too_large(path, size, options.max_bytes)


class Budget:
    """Decompressed bytes, extracted characters and seconds left for one file."""

    def __init__(self, path: Path | str, options: ReadOptions | None = None) -> None:
        options = options or ReadOptions()
        self.path = path
        self.max_text_bytes = options.max_text_bytes
        self.max_chars = options.max_chars
        self.timeout = options.timeout
        self.deadline = None if options.timeout is None else time.monotonic() + options.timeout
        self.used = 0

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded(
                err(self.path, f"refused: reading took longer than {self.timeout:g} s "
                               "(raise --read-timeout to allow more)").args[0],
                {"timeout": self.timeout})

    def charge(self, nbytes: int, what: str = "decompressed content") -> None:
        """Count ``nbytes`` more of inflated content; refuse once past ``max_text_bytes``."""
        self.used += nbytes
        if self.max_text_bytes is not None and self.used > self.max_text_bytes:
            raise self.exceeded(what)
        self.check_time()

    def exceeded(self, what: str = "decompressed content") -> BudgetExceeded:
        limit = self.max_text_bytes or 0
        return BudgetExceeded(
            err(self.path, f"refused: {what} exceeds the budget of {human_size(limit)} "
                           f"(decompression bomb?; raise --max-text-mb, now {_mb(limit)})").args[0],
            {"max_text_bytes": limit})

    def refuse(self, reason: str) -> BudgetExceeded:
        """A refusal for another limit (a parser's own bomb guard), worded the same way."""
        return BudgetExceeded(err(self.path, f"refused: {reason}").args[0])

    def check_chars(self, n: int) -> None:
        """Refuse a whole-file text once it is longer than ``max_chars``."""
        if self.max_chars is not None and n > self.max_chars:
            raise BudgetExceeded(
                err(self.path, f"text too long (more than {self.max_chars:,} characters; "
                               "raise it with --max-chars)").args[0],
                {"max_chars": self.max_chars})

    def reader(self, fh: IO[bytes], what: str = "decompressed content") -> _Metered:
        """``fh`` wrapped so every read is charged to this budget."""
        return _Metered(fh, self, what)


class _Metered:
    """A read-only file object that charges each read to a budget (for streaming parsers)."""

    def __init__(self, fh: IO[bytes], budget: Budget, what: str) -> None:
        self.fh, self.budget, self.what = fh, budget, what

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > 1 << 20:
            n = 1 << 20  # never inflate more than 1 MiB past the budget
        data = self.fh.read(n)
        self.budget.charge(len(data), self.what)
        return data


def cut_by(limits: dict[str, float] | None) -> str | None:
    """The limits that refused a file or left parts of it out, as ``cut_by`` stores them."""
    return json.dumps(limits, sort_keys=True) if limits else None


def limits_raised(stored: str | None, options: ReadOptions) -> bool:
    """Whether ``options`` allow more than the limits a file was refused or cut under
    (``None``, no limit, allows more than any)."""
    if not stored:
        return False
    for name, was in json.loads(stored).items():
        now = getattr(options, name, was)
        if now is None or now > was:
            return True
    return False
