"""HTML: visible text and title. Nesting is capped before parsing (the HTML tree builder is
quadratic in depth), the way browsers cap DOM depth."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

from ..base import (
    ReadOptions,
    ReadResult,
    SourceDoc,
    clip_title,
    err,
    first_line,
    warning_line,
)
from ..budget import Budget
from ..decode import _BOMS, _SNIFF_BYTES, _UPGRADE, Decoded, _is_binary, decode, normalize_text
from . import register

#: Deepest element nesting kept; deeper tags are dropped (their text stays). Blink uses 512.
MAX_DEPTH = 512
# "<" ends an attribute scan too, so a file of unclosed "<a<a<a" stays linear.
_TAG_RE = re.compile(r"<(/?)([A-Za-z][^\s/<>]{0,40})[^<>]{0,4000}?(/?)>")
# Elements that never hold children, or that close themselves when a sibling opens.
_NO_DEPTH = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td",
        "th", "thead", "tbody", "tfoot", "colgroup", "rb", "rt", "rp",
    }
)  # fmt: skip


def cap_depth(html: str, max_depth: int = MAX_DEPTH) -> tuple[str, int]:
    """``html`` with tags nested deeper than ``max_depth`` removed; and how many were removed.

    A linear scan over tags (approximate: no tokenizer), so a 200,000-level file costs one
    regex pass instead of a quadratic parse.
    """
    if html.count("<") <= max_depth:
        return html, 0
    depth = 0
    cuts: list[tuple[int, int]] = []
    for match in _TAG_RE.finditer(html):
        name = match.group(2).lower()
        if name in _NO_DEPTH or match.group(3):
            continue
        if match.group(1):  # closing tag
            if depth > max_depth:
                cuts.append(match.span())
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > max_depth:
                cuts.append(match.span())
    if not cuts:
        return html, 0
    parts, last = [], 0
    for start, end in cuts:
        parts.append(html[last:start])
        parts.append(" ")
        last = end
    parts.append(html[last:])
    return "".join(parts), len(cuts)


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


def _decode_html(data: bytes, path: Path) -> Decoded:
    if not any(data.startswith(bom) for bom, _ in _BOMS):
        declared = _declared_html_encoding(data)
        if declared and not _is_binary(data[:_SNIFF_BYTES]):
            try:
                return Decoded(data.decode(declared), declared)
            except UnicodeDecodeError:
                pass  # the declaration is wrong; fall back to detection
    return decode(data, path)


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


def _html_visible_text(root: Any, budget: Budget) -> str:
    sink = _TextSink()
    # Stack items: (node, inside <pre>) to visit, or a break to emit after a block's children.
    stack: list[Any] = [(root, False)]
    steps = 0
    while stack:
        item = stack.pop()
        steps += 1
        if steps % 10_000 == 0:
            budget.check_time()
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


@register(".html", ".htm")
def read_html(data: bytes, path: Path, options: ReadOptions, budget: Budget) -> ReadResult:
    from selectolax.lexbor import LexborHTMLParser

    decoded = _decode_html(data, path)
    budget.charge(len(decoded.text), "decoded text")
    warnings = [warning_line(path, note) for note in decoded.notes]
    html, dropped = cap_depth(decoded.text)
    if dropped:
        warnings.append(warning_line(
            path, f"nesting deeper than {MAX_DEPTH} levels: {dropped:,} tags flattened"))
    try:
        tree = LexborHTMLParser(html)
    except Exception as exc:  # parser failures come in many types; all mean "unusable"
        raise err(path, f"not parseable HTML: {exc}") from exc
    budget.check_time()
    title_node = tree.css_first("head > title")  # not an inline <svg><title>
    title = clip_title(normalize_text(title_node.text())) if title_node is not None else ""
    body = tree.body if tree.body is not None else tree.root
    text = normalize_text(_html_visible_text(body, budget)) if body is not None else ""
    if not text.strip():
        raise err(path, "empty file (no visible text)")
    if not title:
        h1 = tree.css_first("h1")
        title = clip_title(normalize_text(h1.text())) if h1 is not None else ""
    title = title or first_line(text)
    return ReadResult([SourceDoc("", text, title)], warnings, decoded.encoding)
