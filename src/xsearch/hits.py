"""What a search is asked for and what it answers: ``Filters``, ``Hit``, ``QueryInfo``."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from . import arguments


@dataclass
class Hit:
    """One ranked passage: its scores, where it is, its text and the snippet shown."""

    rank: int
    score: float
    relevance: float
    cosine: float
    passage_id: int
    document_id: int
    language: str
    path: str
    record_id: str
    title: str
    ordinal: int
    char_start: int
    char_end: int
    snippet: str
    highlights: list[list[int]]
    text: str
    topic: str | None
    topic_score: float | None
    document_language: str | None
    #: The file as it is now: None (as indexed), "changed" (since it was indexed: the text
    #: shown may no longer be there) or "missing".
    file_state: str | None = None

    def as_dict(self, with_text: bool = False) -> dict:
        out = asdict(self)
        if not with_text:
            out.pop("text")
        return out


@dataclass
class Filters:
    languages: tuple[str, ...] = ()
    #: One glob, or several: files matching any of them.
    path_glob: str | tuple[str, ...] | None = None
    topics: tuple[str, ...] = ()
    min_score: float | None = None

    def __post_init__(self) -> None:
        self.languages = arguments.names(self.languages, "languages")
        self.topics = arguments.names(self.topics, "topics")

    def active(self) -> bool:
        return bool(self.languages or self.path_glob or self.topics)


@dataclass
class QueryInfo:
    """How one query was scored: its detected language and the centring applied."""

    language: str
    centering: str
    extra: dict = field(default_factory=dict)


def file_state(path: str, size: int | None, mtime: float | None,
               seen: dict[str, str | None]) -> str | None:
    """"missing", "changed" (size or time of change not those indexed) or None; ``seen``
    keeps one stat a file for the hits of a search."""
    if path not in seen:
        try:
            st = os.stat(path)
        except OSError:
            seen[path] = "missing"
        else:
            seen[path] = None if size is None or (
                st.st_size == size and abs(st.st_mtime - (mtime or 0)) < 1e-6) else "changed"
    return seen[path]
