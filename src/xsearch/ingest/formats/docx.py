"""DOCX: paragraphs and tables of the main document part, streamed.

``word/document.xml`` is inflated from the zip through the file's budget and parsed with
lxml's iterparse, clearing each element once handled, so a zip bomb is refused after at most
``max_text_bytes`` of XML (or ``max_chars`` of text) instead of being built into a tree.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import Path
from typing import Any

from xsearch.errors import IngestError

from ..base import ReadOptions, ReadResult, SourceDoc, clip_title, err, first_line, one_line
from ..budget import Budget
from ..decode import normalize_text
from . import register

_RELS = "_rels/.rels"
_OFFICE_DOCUMENT = "/officeDocument"
_DEFAULT_PART = "word/document.xml"
_SMALL_PART = 1 << 20  # .rels and core.xml are read whole, up to this many bytes
_TITLE_SCAN = 50  # paragraphs searched for a Title/Heading style
_RUN_TEXT = {"tab": "\t", "ptab": "\t", "br": "\n", "cr": "\n", "noBreakHyphen": "-"}


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parse_small(archive: zipfile.ZipFile, name: str) -> Any:
    from lxml import etree

    with archive.open(name) as fh:
        data = fh.read(_SMALL_PART + 1)
    if len(data) > _SMALL_PART:
        raise ValueError(f"{name} is larger than {_SMALL_PART:,} bytes")
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(data, parser)


def _main_part(archive: zipfile.ZipFile) -> str:
    names = set(archive.namelist())
    if _RELS in names:
        for rel in _parse_small(archive, _RELS):
            if str(rel.get("Type", "")).endswith(_OFFICE_DOCUMENT):
                target = posixpath.normpath(str(rel.get("Target", "")).lstrip("/"))
                if target in names:
                    return target
    if _DEFAULT_PART in names:
        return _DEFAULT_PART
    raise ValueError("no word/document.xml")


def _core_title(archive: zipfile.ZipFile) -> str:
    try:
        root = _parse_small(archive, "docProps/core.xml")
    except Exception:  # missing or odd properties are not worth a failure
        return ""
    for node in root:
        if _local(node.tag) == "title" and node.text:
            return clip_title(normalize_text(node.text))
    return ""


class _Body:
    """Collects blocks: top-level paragraphs, and tables as rows of tab-separated cells."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.blocks: list[str] = []
        self.chars = 0
        self.paras: list[list[str]] = []  # open paragraphs (text boxes nest them)
        self.styles: list[str] = []
        self.cells: list[list[str]] = []
        self.rows: list[list[str]] = []
        self.tables: list[list[str]] = []
        self.title = ""
        self.seen_paras = 0

    def emit(self, text: str) -> None:
        if self.cells:
            self.cells[-1].append(text)
            return
        self.blocks.append(text)
        self.chars += len(text) + 2
        self.budget.check_chars(self.chars)

    def start(self, name: str) -> None:
        if name == "p":
            self.paras.append([])
            self.styles.append("")
        elif name == "tc":
            self.cells.append([])
        elif name == "tr":
            self.rows.append([])
        elif name == "tbl":
            self.tables.append([])

    def end(self, name: str, elem: Any) -> None:
        if name == "t":
            if self.paras and elem.text:
                self.paras[-1].append(elem.text)
        elif name in _RUN_TEXT:
            if self.paras:
                self.paras[-1].append(_RUN_TEXT[name])
        elif name == "pStyle":
            if self.styles:
                self.styles[-1] = str(next((v for k, v in elem.attrib.items()
                                            if _local(k) == "val"), ""))
        elif name == "p" and self.paras:
            text = "".join(self.paras.pop()).strip()
            style = self.styles.pop()
            if text:
                top = not self.cells and not self.paras
                if top and not self.title and self.seen_paras < _TITLE_SCAN:
                    self.seen_paras += 1
                    if style.startswith(("Title", "Heading")):
                        self.title = clip_title(text)
                self.emit(text)
        elif name == "tc" and self.cells:
            cell = " ".join(" ".join(self.cells.pop()).split())
            if self.rows:
                self.rows[-1].append(cell)
        elif name == "tr" and self.rows:
            cells = self.rows.pop()
            if any(cells) and self.tables:
                self.tables[-1].append("\t".join(cells))
        elif name == "tbl" and self.tables:
            rows = self.tables.pop()
            if rows:
                self.emit("\n".join(rows))


def _stream_body(fh: Any, budget: Budget) -> _Body:
    from lxml import etree

    body = _Body(budget)
    events = etree.iterparse(fh, events=("start", "end"), resolve_entities=False,
                             no_network=True, remove_comments=True, remove_pis=True)
    steps = 0
    for event, elem in events:
        name = _local(elem.tag)
        if event == "start":
            body.start(name)
            continue
        body.end(name, elem)
        if name not in ("body", "document"):
            # Forget what was handled: memory stays flat however long the part is.
            elem.clear(keep_tail=False)
            while elem.getprevious() is not None:
                del elem.getparent()[0]
        steps += 1
        if steps % 4096 == 0:
            budget.check_time()
    return body


@register(".docx")
def read_docx(data: bytes, path: Path, options: ReadOptions, budget: Budget) -> ReadResult:
    if not data:
        raise err(path, "empty file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        part = _main_part(archive)
        declared = archive.getinfo(part).file_size
        if budget.max_text_bytes is not None and declared > budget.max_text_bytes:
            raise budget.exceeded(f"{part} ({declared:,} bytes once inflated)")
        with archive.open(part) as raw:
            body = _stream_body(budget.reader(raw, f"inflated {part}"), budget)
        title = _core_title(archive) or body.title
    except IngestError:
        raise
    except Exception as exc:  # not a zip, no document part, bad XML, bad CRC...
        reason = one_line(exc) or type(exc).__name__
        raise err(path, f"not a valid .docx ({reason})") from exc
    text = normalize_text("\n\n".join(body.blocks)).strip()
    if not text:
        raise err(path, "empty file (no text)")
    return ReadResult([SourceDoc("", text, title or first_line(text))], [], "")

