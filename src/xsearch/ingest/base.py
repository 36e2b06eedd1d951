"""The types every ingest stage shares: documents, options, results, one-line messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsearch.errors import IngestError, SkippedFile

#: Largest file read at all (``--max-mb``).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
#: Largest decompressed/extracted content of one file (``--max-text-mb``): XML inside a .docx,
#: decoded PDF streams, decoded text.
DEFAULT_MAX_TEXT_BYTES = 256 * 1024 * 1024
#: Longest a single file may take to read and extract (``--read-timeout``).
DEFAULT_READ_TIMEOUT = 120.0
TITLE_MAX_CHARS = 100
# Detailed warnings kept per file; the rest are summarised so a broken 1M-line file stays cheap.
MAX_WARNINGS = 50


@dataclass(frozen=True)
class SourceDoc:
    """One document read from a file: a whole file, or one record of a .jsonl/.csv file."""

    record_id: str  # "" for whole-file documents, the record's id for .jsonl/.csv rows
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class ReadOptions:
    """How to read files; ``None`` disables a limit.

    ``max_bytes`` bounds the file on disk (CLI ``--max-mb``), ``max_text_bytes`` what is
    decompressed or extracted from it (``--max-text-mb``), ``timeout`` the seconds spent on
    one file (``--read-timeout``), checked between parser steps. ``max_chars`` is the longest
    document text: a longer record of a .jsonl/.csv file is skipped alone, a longer whole
    file is refused as soon as the extractor passes it (``--max-chars``).
    """

    text_field: str = "text"
    id_field: str = "id"
    max_bytes: int | None = DEFAULT_MAX_BYTES
    max_text_bytes: int | None = DEFAULT_MAX_TEXT_BYTES
    timeout: float | None = DEFAULT_READ_TIMEOUT
    max_chars: int | None = None


@dataclass
class ReadResult:
    """The documents of one file, one-line warnings about skipped parts, and the text encoding."""

    docs: list[SourceDoc]
    warnings: list[str] = field(default_factory=list)
    encoding: str = ""  # "" for binary formats (.pdf, .docx)
    #: The limits that left parts out (records over ``max_chars``) and their values.
    cut_by: dict[str, float] = field(default_factory=dict)


def display_path(path: Path | str) -> str:
    """A path as printable text: bytes that are not UTF-8 are shown as \\xNN escapes."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def one_line(text: object, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def err(path: Path | str, reason: str) -> IngestError:
    """The error for a whole file: "PATH: reason" on one line."""
    # Binary and empty files are skipped with a warning; everything else is a failure.
    cls = SkippedFile if reason.startswith(("binary file", "empty file")) else IngestError
    return cls(f"{display_path(path)}: {one_line(reason, 300)}")


def warning_line(path: Path | str, reason: str) -> str:
    """A one-line warning about part of a file: "PATH: reason"."""
    return f"{display_path(path)}: {one_line(reason)}"


class Warnings:
    """Per-file warnings, capped at MAX_WARNINGS lines plus a count of the rest."""

    def __init__(self, path: Path | str) -> None:
        self.path = display_path(path)
        self.reasons: list[str] = []
        self.dropped = 0

    def add(self, reason: str) -> None:
        if len(self.reasons) < MAX_WARNINGS:
            self.reasons.append(one_line(reason))
        else:
            self.dropped += 1

    def __len__(self) -> int:
        return len(self.reasons) + self.dropped

    def result(self) -> list[str]:
        lines = [f"{self.path}: {reason}" for reason in self.reasons]
        if self.dropped:
            lines.append(f"{self.path}: … and {self.dropped} more problems")
        return lines


def clip_title(title: str) -> str:
    title = " ".join(title.split())
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return title


def lines_prefix(text: str, limit: int = 500) -> Iterator[str]:
    """The first ``limit`` lines, each cut to 1,000 chars, without splitting the whole text."""
    start = 0
    for _ in range(limit):
        if start >= len(text):
            return
        end = text.find("\n", start)
        if end == -1:
            end = len(text)
        yield text[start : min(end, start + 1000)]
        start = end + 1


def first_line(text: str) -> str:
    for line in lines_prefix(text):
        if line.strip():
            return clip_title(line)
    return ""


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 2**20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 2**20:.1f} MiB"
