"""Mostly UTF-8: text that is UTF-8 but for a few broken bytes or lines in a legacy code page.

Concatenated files often hold a line or a block pasted from a cp1252 (or other legacy) file.
Reading the whole file in a guessed legacy page garbles every UTF-8 character; here the UTF-8
text stays UTF-8, lines that are not UTF-8 are read in a page guessed from them alone, and
stray broken bytes inside UTF-8 lines become U+FFFD.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

# With errors="surrogateescape" each invalid byte becomes one of U+DC80-U+DCFF.
_ESCAPED_RE = re.compile("[\udc80-\udcff]+")
_BREAK_RE = re.compile("[\r\n]")
# Legacy text holds byte pairs that are valid UTF-8 by chance (10-40 per 100 invalid bytes in
# cp874 Thai, GBK, Shift-JIS, EUC-KR or cp866 text; a 16-character Shift-JIS line has 10 for 9
# invalid bytes), but they share their lines with invalid bytes. So the evidence for UTF-8 is
# the lines that are entirely valid: in legacy files (texts in 10 pages, also cut into lines of
# 1-3 characters) their multi-byte sequences outnumbered the invalid bytes only when there were
# at most 4 of them, and past 8 they were at most a quarter of the invalid bytes.
_MIN_CLEAN = 8
# Without such lines (one long line) UTF-8 needs ten valid sequences per broken one.
_ONE_LINE_RATIO = 10
_FALLBACK_PAGE = "cp1252"


def _non_ascii(text: str) -> int:
    return len(text) - len(text.encode("ascii", "ignore"))


def _damaged_lines(escaped: str) -> list[tuple[int, int, int]]:
    """Start, end and invalid byte count of each line of ``escaped`` holding invalid bytes."""
    lines: list[tuple[int, int, int]] = []
    for run in _ESCAPED_RE.finditer(escaped):
        bad = run.end() - run.start()
        if lines and run.start() < lines[-1][1]:
            start, end, before = lines[-1]
            lines[-1] = (start, end, before + bad)
            continue
        # Searches bounded by the previous damaged line and the next break keep this linear.
        floor = lines[-1][1] if lines else 0
        at = run.start()
        start = max(escaped.rfind("\n", floor, at), escaped.rfind("\r", floor, at))
        brk = _BREAK_RE.search(escaped, run.end())
        end = brk.end() if brk else len(escaped)
        lines.append((max(start + 1, floor), end, bad))
    return lines


def _cut_tail(data: bytes) -> int:
    """Length of a character cut off at the end of ``data`` (a truncated file), else 0."""
    for n in (1, 2, 3):
        if len(data) < n or data[-n] < 0x80:
            return 0
        if data[-n] >= 0xC0:  # the lead byte
            try:
                return 0 if codecs.getincrementaldecoder("utf-8")().decode(data[-n:]) else n
            except UnicodeDecodeError:
                return 0
    return 0


def _line_number(text: str, at: int) -> int:
    return (text.count("\n", 0, at) or text.count("\r", 0, at)) + 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def read_mostly_utf8(data: bytes, guess: Callable[[bytes], str]) -> tuple[str, list[str]] | None:
    """``data`` (not valid UTF-8) read as UTF-8 with repairs, and one note per repair; None
    when it is not mostly UTF-8. ``guess`` names the legacy page of the lines that are not."""
    escaped = data.decode("utf-8", "surrogateescape")
    invalid = len(data) - len(escaped.encode("utf-8", "ignore"))
    multi = len(escaped) - invalid - len(escaped.encode("ascii", "ignore"))
    if multi < invalid:
        return None
    lines = _damaged_lines(escaped)
    line_multi = [_non_ascii(escaped[a:b]) - bad for a, b, bad in lines]
    clean = multi - sum(line_multi)
    if clean < max(invalid, _MIN_CLEAN):
        broken = data.decode("utf-8", "replace").count("\ufffd") - escaped.count("\ufffd")
        if multi < _ONE_LINE_RATIO * broken:
            return None
    # A damaged line with fewer valid sequences than invalid bytes is legacy text; a character
    # cut off at the end of the file is no evidence of that.
    tail = _cut_tail(data)
    legacy = [
        m < bad - (tail if b == len(escaped) else 0)
        for (_, b, bad), m in zip(lines, line_multi, strict=True)
    ]
    page = _FALLBACK_PAGE
    if any(legacy):
        raw = (escaped[a:b] for (a, b, _), paged in zip(lines, legacy, strict=True) if paged)
        page = guess(b"".join(line.encode("utf-8", "surrogateescape") for line in raw))
        # Lines of 8-bit text between UTF-8 ones are no UTF-16 (nor UTF-8) whatever a
        # detector says of a few bytes ("é\n" three times reads as UTF-16).
        if codecs.lookup(page).name.startswith("utf"):
            page = _FALLBACK_PAGE
    parts: list[str] = []
    pos = replaced = legacy_bad = undecodable = 0
    for (a, b, bad), paged in zip(lines, legacy, strict=True):
        line = escaped[a:b]
        if paged:
            text = line.encode("utf-8", "surrogateescape").decode(page, "replace")
            undecodable += text.count("\ufffd")
            legacy_bad += bad
        else:
            text = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            replaced += text.count("\ufffd") - line.count("\ufffd")
        parts += [escaped[pos:a], text]
        pos = b
    parts.append(escaped[pos:])
    notes = []
    if any(legacy):
        n = sum(legacy)
        first = _line_number(escaped, lines[legacy.index(True)][0])
        where = f"line {first}" if n == 1 else f"{n} lines"
        detail = _plural(legacy_bad, "byte") + ("" if n == 1 else f"; first: line {first}")
        notes.append(
            f"{where} not valid UTF-8 ({detail}) decoded as {page} by guess, "
            f"check {'it' if n == 1 else 'them'}; the rest is UTF-8"
        )
    if undecodable:
        notes.append(f"{undecodable} undecodable byte sequences replaced ({page})")
    if replaced:
        notes.append(f"{replaced} invalid UTF-8 byte sequences replaced with U+FFFD")
    return "".join(parts), notes
