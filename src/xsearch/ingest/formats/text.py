"""Plain text and Markdown."""

from __future__ import annotations

import re
from pathlib import Path

from ..base import (
    ReadOptions,
    ReadResult,
    SourceDoc,
    clip_title,
    err,
    first_line,
    lines_prefix,
    warning_line,
)
from ..budget import Budget
from ..decode import decode, normalize_text
from . import register

_ATX_RE = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE_RE = re.compile(r"^ {0,3}(```|~~~)")
# *em*, **strong**, `code` and _em_ (underscores only at word edges: snake_case stays).
_EMPHASIS_RE = re.compile(r"(\*{1,3}|`)(\S(?:.*?\S)?)\1|(?<!\w)(_{1,3})(\S(?:.*?\S)?)\3(?!\w)")


def markdown_title(text: str) -> str:
    lines = list(lines_prefix(text))
    body = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                for fm in lines[1:i]:
                    if fm.lower().startswith("title:"):
                        value = fm[6:].strip().strip("\"'")
                        if value:
                            return clip_title(value)
                body = i + 1
                break
    in_fence = False
    for i, line in enumerate(lines[body:], start=body):
        if _FENCE_RE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = _ATX_RE.match(line)
        if match:
            heading = _EMPHASIS_RE.sub(lambda m: m.group(2) or m.group(4), match.group(1))
            return clip_title(heading)
        # Setext heading: a line underlined with === or ---.
        if (
            i + 1 < len(lines)
            and line.strip()
            and re.fullmatch(r" {0,3}(=+|-{2,})[ \t]*", lines[i + 1])
        ):
            return clip_title(line)
    return first_line(text)


def _read_plain(data: bytes, path: Path, budget: Budget, markdown: bool) -> ReadResult:
    decoded = decode(data, path)
    budget.charge(len(decoded.text), "decoded text")
    text = normalize_text(decoded.text).strip()
    if not text:
        raise err(path, "empty file")
    title = markdown_title(text) if markdown else first_line(text)
    warnings = [warning_line(path, note) for note in decoded.notes]
    return ReadResult([SourceDoc("", text, title)], warnings, decoded.encoding)


@register(".txt")
def read_txt(data: bytes, path: Path, options: ReadOptions, budget: Budget) -> ReadResult:
    return _read_plain(data, path, budget, markdown=False)


@register(".md", ".markdown")
def read_markdown(data: bytes, path: Path, options: ReadOptions, budget: Budget) -> ReadResult:
    return _read_plain(data, path, budget, markdown=True)
