"""Ingestion: find supported files and turn them into plain-text documents.

Every reader returns a :class:`ReadResult`; problems that make a whole file unusable raise
:class:`~xsearch.errors.IngestError` with a one-line message naming the file, while problems with
single records of a .jsonl/.csv file become warnings so that the good records still get indexed.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsearch.errors import IngestError, SkippedFile

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ReadOptions",
    "ReadResult",
    "SourceDoc",
    "file_fingerprint",
    "iter_files",
    "normalize_text",
    "read_bytes_as_text",
    "read_file",
]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl", ".csv"}
)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
TITLE_MAX_CHARS = 100
# Detailed warnings kept per file; the rest are summarised so a broken 1M-line file stays cheap.
MAX_WARNINGS = 50
_SNIFF_BYTES = 8192
# Encoding detection runs on a bounded sample: charset-normalizer decodes its whole input once
# per candidate code page, which is far too slow for tens of megabytes.
_DETECT_BYTES = 256 * 1024


@dataclass(frozen=True)
class SourceDoc:
    """One document read from a file: a whole file, or one record of a .jsonl/.csv file."""

    record_id: str  # "" for whole-file documents, the record's id for .jsonl/.csv rows
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class ReadOptions:
    """How to read files. ``max_bytes=None`` disables the size limit."""

    text_field: str = "text"
    id_field: str = "id"
    max_bytes: int | None = DEFAULT_MAX_BYTES


@dataclass
class ReadResult:
    """The documents of one file, one-line warnings about skipped parts, and the text encoding."""

    docs: list[SourceDoc]
    warnings: list[str] = field(default_factory=list)
    encoding: str = ""  # "" for binary formats (.pdf, .docx)


# --------------------------------------------------------------------------- errors / warnings


def _one_line(text: object, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _err(path: Path | str, reason: str) -> IngestError:
    # Binary and empty files are skipped with a warning; everything else is a failure.
    cls = SkippedFile if reason.startswith(("binary file", "empty file")) else IngestError
    return cls(f"{path}: {_one_line(reason, 300)}")


class _Warnings:
    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.reasons: list[str] = []
        self.dropped = 0

    def add(self, reason: str) -> None:
        if len(self.reasons) < MAX_WARNINGS:
            self.reasons.append(_one_line(reason))
        else:
            self.dropped += 1

    def __len__(self) -> int:
        return len(self.reasons) + self.dropped

    def result(self) -> list[str]:
        lines = [f"{self.path}: {reason}" for reason in self.reasons]
        if self.dropped:
            lines.append(f"{self.path}: … and {self.dropped} more problems")
        return lines


# --------------------------------------------------------------------------- finding files


def _fmt_suffixes(suffixes: Collection[str]) -> str:
    return ", ".join(sorted(suffixes))


def iter_files(
    paths: Iterable[Path | str],
    suffixes: Collection[str] = SUPPORTED_SUFFIXES,
    *,
    on_error: Callable[[Path, IngestError], None] | None = None,
) -> Iterator[Path]:
    """Yield the files to index under ``paths``, in a deterministic order.

    Arguments are handled in the order given; folder contents are walked depth-first in sorted
    name order. Hidden names (starting with ".") inside folders are skipped, symlinked folders
    are followed once (loops are cut), and a file reached twice is yielded once. A missing path,
    an explicitly named file with an unsupported suffix or an unreadable folder raises
    IngestError, or is passed to ``on_error`` (and skipped) when that callback is given.
    """
    wanted = {s.lower() if s.startswith(".") else "." + s.lower() for s in suffixes}
    seen_files: set[str] = set()
    seen_dirs: set[tuple[int, int]] = set()

    def fail(path: Path, reason: str) -> None:
        error = _err(path, reason)
        if on_error is None:
            raise error
        on_error(path, error)

    def first_visit(path: Path) -> bool:
        real = os.path.realpath(path)
        if real in seen_files:
            return False
        seen_files.add(real)
        return True

    for raw in paths:
        root = Path(raw)
        try:
            st = root.stat()
        except FileNotFoundError:
            fail(root, f"path not found: {root}")
            continue
        except OSError as exc:
            fail(root, f"cannot read: {exc.strerror or exc}")
            continue
        if stat.S_ISREG(st.st_mode):
            if root.suffix.lower() not in wanted:
                kind = root.suffix.lower() or "(no suffix)"
                fail(root, f"unsupported file type {kind}; supported: {_fmt_suffixes(wanted)}")
            elif first_visit(root):
                yield root
            continue
        if not stat.S_ISDIR(st.st_mode):
            fail(root, "not a regular file or folder")
            continue
        # Explicit stack of sorted listings instead of recursion: deep trees cannot overflow.
        stack: list[Iterator[os.DirEntry[str]]] = []
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        listing = _list_dir(root, fail)
        if listing is not None:
            stack.append(iter(listing))
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks; False for broken links
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            path = Path(entry.path)
            if is_dir:
                try:
                    dst = entry.stat()
                except OSError:
                    continue
                key = (dst.st_dev, dst.st_ino)
                if key in seen_dirs:  # symlink loop or folder already walked
                    continue
                seen_dirs.add(key)
                listing = _list_dir(path, fail)
                if listing is not None:
                    stack.append(iter(listing))
            elif is_file and path.suffix.lower() in wanted and first_visit(path):
                yield path


def _list_dir(path: Path, fail: Callable[[Path, str], None]) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        fail(path, f"cannot read: {exc.strerror or exc}")
        return None


# --------------------------------------------------------------------------- fingerprint


def file_fingerprint(path: Path | str) -> tuple[str, int, float]:
    """Return (sha256 hex of the raw bytes, size in bytes, mtime) of a file."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fh:
            mtime = os.fstat(fh.fileno()).st_mtime
            while block := fh.read(1024 * 1024):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise _err(path, f"cannot read: {exc.strerror or exc}") from exc
    return digest.hexdigest(), size, mtime


# --------------------------------------------------------------------------- decoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its LE BOM starts with the UTF-16 LE BOM.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Single-byte Latin code pages: charset-normalizer's pick among these is re-ranked against
# cp1252, see _guess_legacy.
_LATIN_FAMILY = frozenset(
    {
        "cp1250", "cp1254", "cp1257", "cp1258", "cp775", "cp437", "cp850", "cp852", "cp857",
        "cp858", "latin_1", "iso8859_1", "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_9",
        "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "mac_latin2",
        "mac_roman", "mac_iceland", "hp_roman8",
    }
)  # fmt: skip
# Code pages whose supersets decode strictly more real-world files.
_UPGRADE = {
    "ascii": "utf-8",
    "latin_1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "iso8859_1": "cp1252",
}
_CONTROL_BYTES = frozenset(set(range(0x00, 0x09)) | {0x0E, 0x0F} | set(range(0x10, 0x20)))
# A non-letter wedged between letters ("Za¿ó³æ", "p‰iv‰‰") is how text looks when read with the
# wrong Latin code page; these in-word characters are legitimate.
_MOJIBAKE_RE = re.compile(r"(?<=[^\W\d_])([^\x00-\x7f])(?=[^\W\d_])")
_IN_WORD_OK = frozenset("’‘ʼ´`·‐‑")
_RARE_PAGES = frozenset(
    {
        "cp437", "cp775", "cp850", "cp852", "cp857", "cp858", "cp1258", "mac_latin2",
        "mac_roman", "mac_iceland", "hp_roman8",
    }
)  # fmt: skip
_CZECH_IN_CP1252 = re.compile("[øìùèòïæÈÌØÙÆ]")  # cp1252 readings of ř ě ů č ň ď ć


def _looks_cp1250(text: str) -> bool:
    return bool(_CZECH_IN_CP1252.search(text)) and bool(re.search("[šžŠŽ]", text))


def _looks_cp1254(text: str) -> bool:
    return bool(re.search("[þðýÞÐÝ]", text))  # cp1252 readings of ş ğ ı Ş Ğ İ


# Per rival code page: does a cp1252 decoding look like that page's languages misread?
_RIVAL_LETTERS: dict[str, Callable[[str], bool]] = {
    "cp1250": _looks_cp1250,
    "cp1254": _looks_cp1254,
}


@dataclass
class _Decoded:
    text: str
    encoding: str
    note: str = ""  # a warning about lossy decoding, if any


def _is_binary(sample: bytes) -> bool:
    if not sample:
        return False
    controls = sum(1 for b in sample if b in _CONTROL_BYTES)
    return b"\x00" in sample or controls / len(sample) > 0.10


def _bomless_utf16(sample: bytes) -> str | None:
    """Guess UTF-16 without BOM from the position of NUL bytes (ASCII-heavy text)."""
    n = len(sample) - len(sample) % 2
    if n < 16:
        return None
    even_nuls = sample[0:n:2].count(0)
    odd_nuls = sample[1:n:2].count(0)
    half = n // 2
    if odd_nuls >= 0.3 * half and even_nuls == 0:
        return "utf-16-le"
    if even_nuls >= 0.3 * half and odd_nuls == 0:
        return "utf-16-be"
    return None


def _decode_lossy(data: bytes, encoding: str) -> _Decoded:
    text = data.decode(encoding, errors="replace")
    bad = text.count("\ufffd")
    note = f"{bad} undecodable byte sequences replaced ({encoding})" if bad else ""
    return _Decoded(text, encoding, note)


def _detection_sample(data: bytes) -> bytes:
    if len(data) <= _DETECT_BYTES:
        return data
    sample = data[:_DETECT_BYTES]
    # End on a line break so a multi-byte character is not cut in half.
    cut = sample.rfind(b"\n")
    return sample[: cut + 1] if cut > _DETECT_BYTES // 2 else sample


def _has_mojibake(text: str) -> bool:
    return any(not ch.isalnum() and ch not in _IN_WORD_OK for ch in _MOJIBAKE_RE.findall(text))


def _guess_legacy(data: bytes) -> str:
    from charset_normalizer import from_bytes

    sample = _detection_sample(data)
    matches = list(from_bytes(sample))
    top = _UPGRADE.get(matches[0].encoding, matches[0].encoding) if matches else "cp1252"
    if matches and top not in _LATIN_FAMILY and top != "cp1252":
        return top
    # charset-normalizer cannot tell the Latin code pages apart on short text (it reads French
    # cp1252 as cp1257, Polish cp1250 as cp1252, Finnish as mac_iceland), so re-rank them:
    # drop decodings with mojibake, ignore rare DOS/Mac pages, and let cp1252 (by far the most
    # common) win ties unless its decoding shows letters typical of the rival's languages.
    try:
        as_cp1252: str | None = sample.decode("cp1252")
    except UnicodeDecodeError:
        as_cp1252 = None
    if as_cp1252 is not None and _has_mojibake(as_cp1252):
        as_cp1252 = None
    rivals = [
        m
        for m in matches
        if m.encoding in _LATIN_FAMILY
        and m.encoding not in _RARE_PAGES
        and not _has_mojibake(str(m))
    ]
    rival = max(rivals, key=lambda m: m.coherence) if rivals else None  # first on ties
    if as_cp1252 is None:
        return _UPGRADE.get(rival.encoding, rival.encoding) if rival is not None else top
    if rival is None:
        return "cp1252"
    ours = next((m for m in matches if m.encoding == "cp1252"), None)
    if ours is None:
        ours = next(iter(from_bytes(sample, cp_isolation=["cp1252"])), None)
    if ours is None:
        return _UPGRADE.get(rival.encoding, rival.encoding)
    doubt = _RIVAL_LETTERS.get(rival.encoding)
    if ours.coherence > rival.coherence or (
        ours.coherence == rival.coherence and not (doubt and doubt(as_cp1252))
    ):
        return "cp1252"
    return _UPGRADE.get(rival.encoding, rival.encoding)


def _decode(data: bytes, path: Path | str) -> _Decoded:
    """Decode raw bytes (BOM, then UTF-8, then detection) without normalising the text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            decoded = _decode_lossy(data[len(bom) :], encoding)
            if _is_binary(decoded.text[:_SNIFF_BYTES].encode("utf-8", errors="replace")):
                raise _err(path, "binary file, skipped")
            return decoded
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        encoding16 = _bomless_utf16(sample)
        if encoding16 is None:
            raise _err(path, "binary file, skipped")
        decoded = _decode_lossy(data, encoding16)
        if _is_binary(decoded.text[: _SNIFF_BYTES // 2].encode("utf-8", errors="replace")):
            raise _err(path, "binary file, skipped")
        return decoded
    if _is_binary(sample):
        raise _err(path, "binary file, skipped")
    try:
        return _Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    # Mostly valid UTF-8 with a few broken bytes (truncation, one pasted legacy snippet) is
    # still UTF-8: guessing a legacy code page would garble every other character instead.
    lossy = data.decode("utf-8", errors="replace")
    bad = lossy.count("\ufffd")
    good = len(lossy) - len(lossy.encode("ascii", errors="ignore")) - bad
    if good >= 10 * bad:
        return _Decoded(lossy, "utf-8", f"{bad} invalid UTF-8 byte sequences replaced")
    return _decode_lossy(data, _guess_legacy(data))


_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad]")
_NEWLINE_RE = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")


def normalize_text(text: str) -> str:
    """Normalise decoded text: newlines to \\n, drop control characters, Unicode NFC."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = _NEWLINE_RE.sub("\n", text)
    if "\x1b" in text:
        text = _ANSI_RE.sub("", text)
    text = _CONTROL_RE.sub("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def read_bytes_as_text(data: bytes, path: Path | str) -> str:
    """Decode file bytes to normalised text; ``path`` is only used in error messages.

    Order: BOM (UTF-8, UTF-16, UTF-32), strict UTF-8, mostly-UTF-8 with replacement characters,
    then charset-normalizer's guess. NUL bytes or many control bytes raise IngestError.
    """
    return normalize_text(_decode(data, path).text)


# --------------------------------------------------------------------------- plain text


_ATX_RE = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE_RE = re.compile(r"^ {0,3}(```|~~~)")
# *em*, **strong**, `code` and _em_ (underscores only at word edges: snake_case stays).
_EMPHASIS_RE = re.compile(r"(\*{1,3}|`)(\S(?:.*?\S)?)\1|(?<!\w)(_{1,3})(\S(?:.*?\S)?)\3(?!\w)")


def _clip_title(title: str) -> str:
    title = " ".join(title.split())
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return title


def _first_line(text: str) -> str:
    for line in _lines_prefix(text):
        if line.strip():
            return _clip_title(line)
    return ""


def _lines_prefix(text: str, limit: int = 500) -> Iterator[str]:
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


def _markdown_title(text: str) -> str:
    lines = list(_lines_prefix(text))
    body = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                for fm in lines[1:i]:
                    if fm.lower().startswith("title:"):
                        value = fm[6:].strip().strip("\"'")
                        if value:
                            return _clip_title(value)
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
            return _clip_title(heading)
        # Setext heading: a line underlined with === or ---.
        if (
            i + 1 < len(lines)
            and line.strip()
            and re.fullmatch(r" {0,3}(=+|-{2,})[ \t]*", lines[i + 1])
        ):
            return _clip_title(line)
    return _first_line(text)


def _read_plain(data: bytes, path: Path, markdown: bool) -> ReadResult:
    decoded = _decode(data, path)
    text = normalize_text(decoded.text).strip()
    if not text:
        raise _err(path, "empty file")
    title = _markdown_title(text) if markdown else _first_line(text)
    warnings = [f"{path}: {decoded.note}"] if decoded.note else []
    return ReadResult([SourceDoc("", text, title)], warnings, decoded.encoding)


# --------------------------------------------------------------------------- HTML

_HTML_DROP = frozenset(
    {
        "head", "script", "style", "noscript", "template", "svg", "iframe", "object", "embed",
        "canvas", "nav", "select", "datalist",
    }
)  # fmt: skip
# Blocks that end a paragraph ("\n\n") and blocks that only end a line ("\n").
_HTML_PARA = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
        "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "form",
        "fieldset", "figure", "figcaption", "details", "summary", "address", "hr", "body",
    }
)  # fmt: skip
_HTML_LINE = frozenset({"li", "tr", "dt", "dd", "caption", "legend", "option"})
_HTML_CELL = frozenset({"td", "th"})
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_XML_ENCODING_RE = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_:.\-]+)""", re.I)
_HIDDEN_STYLE_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
# WHATWG: these labels mean windows-1252 in browsers; UTF-16 in a meta tag means UTF-8.
_HTML_LABELS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "utf-16": "utf-8",
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
}


def _declared_html_encoding(data: bytes) -> str | None:
    head = data[:4096]
    match = _META_CHARSET_RE.search(head) or _XML_ENCODING_RE.search(head)
    if not match:
        return None
    label = match.group(1).decode("ascii", errors="ignore").strip().lower()
    label = _HTML_LABELS.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _UPGRADE.get(name.replace("-", "_"), name)


def _decode_html(data: bytes, path: Path) -> _Decoded:
    if not any(data.startswith(bom) for bom, _ in _BOMS):
        declared = _declared_html_encoding(data)
        if declared and not _is_binary(data[:_SNIFF_BYTES]):
            try:
                return _Decoded(data.decode(declared), declared)
            except UnicodeDecodeError:
                pass  # the declaration is wrong; fall back to detection
    return _decode(data, path)


def _is_hidden(node: Any) -> bool:
    attrs = node.attributes
    if "hidden" in attrs:
        return True
    style = attrs.get("style")
    return bool(style and _HIDDEN_STYLE_RE.search(style))


_BREAK_RANK = {"": 0, "\t": 1, "\n": 2, "\n\n": 3}
_WS_RE = re.compile(r"\s+")
_SPACES_RE = re.compile(r" {2,}")
_CELL_RE = re.compile(r" *\t *")
_LINE_EDGE_RE = re.compile(r"[ \t]*\n[ \t]*")
_BLANKS_RE = re.compile(r"\n{3,}")


class _TextSink:
    """Collects HTML text; adjacent breaks merge into the strongest (paragraph > line > cell)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pending = ""  # "", "\t", "\n" or "\n\n"

    def brk(self, sep: str) -> None:
        if _BREAK_RANK[sep] > _BREAK_RANK[self.pending]:
            self.pending = sep

    def text(self, text: str) -> None:
        if not text or (self.pending and text.isspace()):
            return  # source indentation next to a block boundary adds nothing
        if self.pending:
            if self.parts:
                self.parts.append(self.pending)
            self.pending = ""
        self.parts.append(text)

    def result(self) -> str:
        text = _CELL_RE.sub("\t", _SPACES_RE.sub(" ", "".join(self.parts)))
        return _BLANKS_RE.sub("\n\n", _LINE_EDGE_RE.sub("\n", text)).strip(" \t\n")


def _html_visible_text(root: Any) -> str:
    sink = _TextSink()
    # Stack items: (node, inside <pre>) to visit, or a break to emit after a block's children.
    stack: list[Any] = [(root, False)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            sink.brk(item)
            continue
        node, in_pre = item
        tag = node.tag
        if tag == "-text":
            text = node.text_content or ""
            sink.text(text if in_pre else _WS_RE.sub(" ", text))
            continue
        if tag is None or tag.startswith("-") or tag in _HTML_DROP:
            continue
        if node.is_element_node and _is_hidden(node):
            continue
        if tag == "br":
            sink.brk("\n")
            continue
        if tag in _HTML_PARA:
            sink.brk("\n\n")
            stack.append("\n\n")
        elif tag in _HTML_LINE:
            sink.brk("\n")
            stack.append("\n")
        elif tag in _HTML_CELL:
            stack.append("\t")
        child_pre = in_pre or tag in ("pre", "textarea")
        children = list(node.iter(include_text=True))
        stack.extend((child, child_pre) for child in reversed(children))
    return sink.result()


def _read_html(data: bytes, path: Path) -> ReadResult:
    from selectolax.lexbor import LexborHTMLParser

    decoded = _decode_html(data, path)
    try:
        tree = LexborHTMLParser(decoded.text)
    except Exception as exc:  # parser failures come in many types; all mean "unusable"
        raise _err(path, f"not parseable HTML: {exc}") from exc
    title_node = tree.css_first("head > title")  # not an inline <svg><title>
    title = _clip_title(normalize_text(title_node.text())) if title_node is not None else ""
    body = tree.body if tree.body is not None else tree.root
    text = normalize_text(_html_visible_text(body)) if body is not None else ""
    if not text.strip():
        raise _err(path, "empty file (no visible text)")
    if not title:
        h1 = tree.css_first("h1")
        title = _clip_title(normalize_text(h1.text())) if h1 is not None else ""
    title = title or _first_line(text)
    warnings = [f"{path}: {decoded.note}"] if decoded.note else []
    return ReadResult([SourceDoc("", text, title)], warnings, decoded.encoding)


# --------------------------------------------------------------------------- PDF

_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ft", "ﬆ": "st"}
)


def _read_pdf(data: bytes, path: Path) -> ReadResult:
    if not data:
        raise _err(path, "empty file")
    if b"%PDF-" not in data[:1024]:  # the spec allows junk before the header, within 1 KiB
        raise _err(path, "not a readable PDF: no %PDF header")
    import logging

    from pypdf import PasswordType, PdfReader

    warnings = _Warnings(path)
    # pypdf logs every recoverable syntax problem; the caller only needs our summary.
    pypdf_logger = logging.getLogger("pypdf")
    old_level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)
    try:
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                # Many PDFs are encrypted only to restrict printing/copying: empty user password.
                try:
                    opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
                except Exception as exc:
                    reason = _one_line(exc) or type(exc).__name__
                    raise _err(path, f"not a readable PDF: encrypted ({reason})") from exc
                if not opened:
                    raise _err(path, "not a readable PDF: encrypted (password required)")
            pages = list(reader.pages)
        except IngestError:
            raise
        except Exception as exc:  # pypdf raises many exception types on malformed files
            reason = _one_line(exc) or type(exc).__name__
            raise _err(path, f"not a readable PDF: {reason}") from exc
        texts: list[str] = []
        for number, page in enumerate(pages, start=1):
            try:
                page_text = page.extract_text() or ""
            except Exception as exc:  # one broken page should not lose the others
                warnings.add(f"page {number}: text extraction failed ({_one_line(exc)})")
                continue
            page_text = normalize_text(page_text.translate(_LIGATURES)).strip()
            if page_text:
                texts.append(page_text)
        title = ""
        try:
            meta = reader.metadata
            if meta is not None and meta.title:
                title = _clip_title(normalize_text(str(meta.title)))
        except Exception:  # broken metadata is not worth a failure
            title = ""
    finally:
        pypdf_logger.setLevel(old_level)
    text = "\n\n".join(texts)
    if not text.strip():
        raise _err(path, "no extractable text (scanned PDF?)")
    doc = SourceDoc("", text, title or _first_line(text), {"pages": len(pages)})
    return ReadResult([doc], warnings.result(), "")


# --------------------------------------------------------------------------- DOCX


def _docx_blocks(container: Any, depth: int = 0) -> Iterator[str]:
    from docx.table import Table

    for block in container.iter_inner_content():
        if isinstance(block, Table):
            if depth > 20:
                continue
            rows = []
            for row in block.rows:
                cells, last = [], None
                for cell in row.cells:
                    if cell._tc is last:  # a merged cell repeats across the grid
                        continue
                    last = cell._tc
                    cells.append(" ".join(" ".join(_docx_blocks(cell, depth + 1)).split()))
                if any(cells):
                    rows.append("\t".join(cells))
            if rows:
                yield "\n".join(rows)
        else:
            text = block.text.strip()
            if text:
                yield text


def _read_docx(data: bytes, path: Path) -> ReadResult:
    if not data:
        raise _err(path, "empty file")
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_docx_blocks(document))
    except Exception as exc:  # not a zip, no word/document.xml, wrong content type, bad XML...
        reason = _one_line(exc) or type(exc).__name__
        raise _err(path, f"not a valid .docx ({reason})") from exc
    text = normalize_text("\n\n".join(blocks)).strip()
    if not text:
        raise _err(path, "empty file (no text)")
    title = ""
    try:
        title = _clip_title(document.core_properties.title or "")
        if not title:
            for paragraph in document.paragraphs[:50]:
                style = (paragraph.style.name if paragraph.style is not None else "") or ""
                if paragraph.text.strip() and style.startswith(("Title", "Heading")):
                    title = _clip_title(paragraph.text)
                    break
    except Exception:  # odd styles or properties are not worth a failure
        title = ""
    return ReadResult([SourceDoc("", text, title or _first_line(text))], [], "")


# --------------------------------------------------------------------------- records


class _Records:
    """Collects records of a .jsonl/.csv file, dropping empty texts and duplicate ids."""

    def __init__(self, path: Path) -> None:
        self.docs: list[SourceDoc] = []
        self.ids: dict[str, str] = {}  # record id -> where it was first seen
        self.warnings = _Warnings(path)

    def add(self, where: str, record_id: str, text: Any, title: Any, meta: dict[str, Any]) -> None:
        if not isinstance(text, str):
            self.warnings.add(f"{where}: text field is {type(text).__name__}, not a string")
            return
        text = normalize_text(text).strip()
        if not text:
            self.warnings.add(f"{where}: empty text, skipped")
            return
        if record_id in self.ids:
            self.warnings.add(
                f"{where}: duplicate id {record_id!r} (first at {self.ids[record_id]}), skipped"
            )
            return
        self.ids[record_id] = where
        title = _clip_title(normalize_text(title)) if isinstance(title, str) else ""
        self.docs.append(SourceDoc(record_id, text, title, meta))

    def result(self, path: Path, encoding: str, note: str) -> ReadResult:
        if not self.docs:
            first = self.warnings.reasons[0] if self.warnings.reasons else ""
            detail = f" ({len(self.warnings)} problems; first: {first})" if first else ""
            raise _err(path, f"no usable records{detail}")
        warnings = self.warnings.result()
        if note:
            warnings.insert(0, f"{path}: {note}")
        return ReadResult(self.docs, warnings, encoding)


def _record_id(value: Any, fallback: str) -> str | None:
    if value is None:
        return fallback
    if isinstance(value, str):
        return value.strip() or fallback
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _decode_records(data: bytes, path: Path) -> tuple[_Decoded, str]:
    """Decoded text of a jsonl/csv file, BOM stripped; an empty file is skipped."""
    decoded = _decode(data, path)
    raw = decoded.text.lstrip("\ufeff")
    if not raw.strip():
        raise _err(path, "empty file")
    return decoded, raw


def _read_jsonl(data: bytes, path: Path, options: ReadOptions) -> ReadResult:
    decoded, raw = _decode_records(data, path)
    records = _Records(path)
    # Split on "\n" only: str.splitlines() would also split on U+2028 etc., which JSON allows
    # raw inside strings.
    for number, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            obj = json.loads(line, strict=False)
        except json.JSONDecodeError as exc:
            records.warnings.add(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            records.warnings.add(f"{where}: invalid JSON (nested too deeply)")
            continue
        if not isinstance(obj, dict):
            records.warnings.add(f"{where}: expected a JSON object, got {type(obj).__name__}")
            continue
        if options.text_field not in obj:
            records.warnings.add(f"{where}: no {options.text_field!r} field, skipped")
            continue
        record_id = _record_id(obj.get(options.id_field), str(number))
        if record_id is None:
            records.warnings.add(f"{where}: {options.id_field!r} is not a string or integer")
            continue
        meta = {
            k: v for k, v in obj.items() if k not in (options.text_field, options.id_field, "title")
        }
        records.add(where, record_id, obj[options.text_field], obj.get("title"), meta)
    return records.result(path, decoded.encoding, decoded.note)


_CSV_DELIMITERS = ",;\t|"
_MAX_CSV_RESTARTS = 100


def _find_column(header: list[str], name: str) -> int | None:
    cleaned = [h.strip().lstrip("\ufeff") for h in header]
    if name in cleaned:
        return cleaned.index(name)
    folded = [h.casefold() for h in cleaned]
    if folded.count(name.casefold()) == 1:
        return folded.index(name.casefold())
    return None


def _csv_dialects(sample: str) -> list[Any]:
    dialects: list[Any] = []
    try:
        dialects.append(csv.Sniffer().sniff(sample, delimiters=_CSV_DELIMITERS))
    except csv.Error:
        pass
    for delimiter in _CSV_DELIMITERS:
        dialect = type("_Dialect", (csv.excel,), {"delimiter": delimiter})
        dialects.append(dialect)
    return dialects


def _read_csv(data: bytes, path: Path, options: ReadOptions) -> ReadResult:
    decoded, raw = _decode_records(data, path)
    lines = io.StringIO(raw, newline="").readlines()
    sample = "".join(lines[:200])[:65536]

    # The sniffer guesses wrong on some files; the dialect whose header has the text column wins.
    chosen = None
    first_header: list[str] | None = None
    for dialect in _csv_dialects(sample):
        header_reader = csv.reader(iter(lines), dialect)
        try:
            header = next(header_reader)
        except (csv.Error, StopIteration):
            continue
        if first_header is None:
            first_header = header
        text_col = _find_column(header, options.text_field)
        if text_col is not None:
            chosen = (dialect, header, text_col, header_reader.line_num)
            break
    if chosen is None:
        columns = ", ".join(repr(h.strip()) for h in (first_header or [])) or "none"
        raise _err(path, f"no {options.text_field!r} column in the header; columns: {columns}")
    dialect, header, text_col, header_lines = chosen
    id_col = _find_column(header, options.id_field)
    title_col = _find_column(header, "title")
    names = [h.strip().lstrip("\ufeff") for h in header]
    records = _Records(path)

    old_limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a whole document can sit in one field
    try:
        start = header_lines  # index into ``lines`` of the first data row
        restarts = 0
        while start < len(lines):
            reader = csv.reader(iter(lines[start:]), dialect, strict=True)
            row_start = start + 1  # 1-based physical line where the current row begins
            try:
                for row in reader:
                    where = f"line {row_start}"
                    row_start = start + reader.line_num + 1
                    _csv_row(records, where, row, names, text_col, id_col, title_col, options)
                break
            except csv.Error as exc:
                restarts += 1
                records.warnings.add(f"line {row_start}: malformed CSV row ({exc}), skipped")
                if restarts >= _MAX_CSV_RESTARTS:
                    records.warnings.add("too many malformed rows; rest of the file skipped")
                    break
                start = row_start  # resume on the line after the broken row's first line
    finally:
        csv.field_size_limit(old_limit)
    return records.result(path, decoded.encoding, decoded.note)


def _csv_row(
    records: _Records,
    where: str,
    row: list[str],
    names: list[str],
    text_col: int,
    id_col: int | None,
    title_col: int | None,
    options: ReadOptions,
) -> None:
    if not row or not any(cell.strip() for cell in row):
        return
    if len(row) > len(names) and any(cell.strip() for cell in row[len(names) :]):
        records.warnings.add(
            f"{where}: {len(row)} fields but the header has {len(names)} "
            "(unquoted delimiter?), skipped"
        )
        return
    if text_col >= len(row):
        records.warnings.add(f"{where}: no {options.text_field!r} value, skipped")
        return
    fallback = where.removeprefix("line ")
    record_id = fallback
    if id_col is not None and id_col < len(row) and row[id_col].strip():
        record_id = row[id_col].strip()
    title = row[title_col] if title_col is not None and title_col < len(row) else ""
    skip = {text_col, id_col, title_col}
    meta = {names[i]: row[i] for i in range(min(len(row), len(names))) if i not in skip}
    records.add(where, record_id, row[text_col], title, meta)


# --------------------------------------------------------------------------- dispatch


def _read_limited(path: Path, max_bytes: int | None) -> bytes:
    try:
        # stat before open: opening a FIFO would block until some writer shows up.
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise _err(path, "not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise _err(path, _too_large(st.st_size, max_bytes))
        with open(path, "rb") as fh:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except IngestError:
        raise
    except OSError as exc:
        raise _err(path, f"cannot read: {exc.strerror or exc}") from exc
    if max_bytes is not None and len(data) > max_bytes:  # the file grew while we read it
        raise _err(path, _too_large(len(data), max_bytes))
    return data


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 2**20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 2**20:.1f} MiB"


def _too_large(size: int, limit: int) -> str:
    return (
        f"file too large: {size:,} bytes ({_human(size)}) exceeds the limit of "
        f"{limit:,} bytes ({_human(limit)}); raise max_bytes to read it"
    )


def read_file(path: Path | str, options: ReadOptions | None = None) -> ReadResult:
    """Read one file into documents, dispatching on its (case-insensitive) suffix."""
    path = Path(path)
    options = options or ReadOptions()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = suffix or "(no suffix)"
        raise _err(
            path, f"unsupported file type {kind}; supported: {_fmt_suffixes(SUPPORTED_SUFFIXES)}"
        )
    data = _read_limited(path, options.max_bytes)
    if not data.strip():
        raise _err(path, "empty file")
    if suffix in (".txt", ".md", ".markdown"):
        return _read_plain(data, path, markdown=suffix != ".txt")
    if suffix in (".html", ".htm"):
        return _read_html(data, path)
    if suffix == ".pdf":
        return _read_pdf(data, path)
    if suffix == ".docx":
        return _read_docx(data, path)
    if suffix == ".jsonl":
        return _read_jsonl(data, path, options)
    return _read_csv(data, path, options)
