"""What one ``xsearch index`` run did (``IndexSummary``), and how it tells progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ProgressFn = Callable[[str, dict], None]


@dataclass
class IndexSummary:
    """What one `xsearch index` run did."""

    files_seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    renamed: int = 0
    #: New paths of files the index holds under another path (a symlink, a hard link).
    same_file: int = 0
    removed: int = 0
    #: Indexed files this run did not read again (its walk left them out, or a --full
    #: rebuild could not read them now) that are still on disk: they stay indexed.
    kept: int = 0
    failed: int = 0
    skipped: int = 0
    failed_before: int = 0
    #: Unchanged files read again because a limit that refused them or cut records was raised.
    limits_raised: int = 0
    documents_written: int = 0
    passages_embedded: int = 0
    #: Passages whose text a changed file's previous version, or a gone file, held: kept with
    #: their vectors, not embedded.
    passages_kept: int = 0
    tokens_embedded: int = 0
    passages_removed: int = 0
    segments_merged: int = 0
    repaired: int = 0
    #: Files an interrupted fresh build had committed, taken up by this run.
    resumed: int = 0
    # Left out by the walk (see xsearch.ingest.walk): --exclude/--include, ignore files,
    # hidden and build folders, FIFOs/devices, symlinks out of the roots, non-UTF-8 names.
    excluded: int = 0
    ignored: int = 0
    hidden: int = 0
    special: int = 0
    links_skipped: int = 0
    bad_names: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    labels: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passages_per_second(self) -> float:
        return self.passages_embedded / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items()}
        out["passages_per_second"] = round(self.passages_per_second, 2)
        out["seconds"] = round(self.seconds, 3)
        out["embed_seconds"] = round(self.embed_seconds, 3)
        return out
