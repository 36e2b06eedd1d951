"""What the CLI prints besides results: escaped text and the indexing progress line."""

from __future__ import annotations

import re
import time

import click

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _safe(text: object) -> str:
    """Escape control characters (and bidi overrides) so a file name cannot drive the terminal."""
    s = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", s)


class _Progress:
    """One status line on stderr: passages, tokens, rate and ETA, updated per batch."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.total_bytes = 1
        self.bytes = self.passages = self.tokens = self.files = self.total_files = 0
        self.shown = False

    def update(self, event: str, info: dict) -> None:
        if event == "start":
            self.total_bytes = max(1, info["bytes"])
            self.total_files = info["files"]
            self.started = time.monotonic()
            return
        self.bytes += info["bytes"]
        self.passages += info["n"]
        self.tokens += info["tokens"]
        self.files += info["files"]
        elapsed = max(1e-6, time.monotonic() - self.started)
        share = min(1.0, self.bytes / self.total_bytes)
        eta = elapsed * (1 - share) / share if share > 0 else float("nan")
        line = (f"\r{self.files}/{self.total_files} files, {self.passages:,} passages, "
                f"{self.tokens:,} tokens  {self.passages / elapsed:.1f} passages/s "
                f"{self.tokens / elapsed:,.0f} tokens/s  ETA {eta:,.0f}s ")
        click.echo(line, err=True, nl=False)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\033[K", err=True, nl=False)
            self.shown = False
