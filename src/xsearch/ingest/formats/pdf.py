"""PDF: text of every page (pypdf), with pypdf's stream limits tied to the budget."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from xsearch.errors import IngestError

from ..base import (
    ReadOptions,
    ReadResult,
    SourceDoc,
    Warnings,
    clip_title,
    err,
    first_line,
    one_line,
)
from ..budget import Budget
from ..decode import normalize_text
from . import register

_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ft", "ﬆ": "st"}
)

_BOMB = "a compressed stream inflates past pypdf's output limit (decompression bomb?)"


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    # pypdf logs every recoverable syntax problem; the caller only needs our summary.
    logger = logging.getLogger("pypdf")
    old_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old_level)


def _is_limit(exc: BaseException) -> bool:
    from pypdf.errors import LimitReachedError

    return isinstance(exc, LimitReachedError) or isinstance(exc.__cause__, LimitReachedError)


def _limit_reason(exc: BaseException) -> str:
    """Which of pypdf's own limits was reached: a stream that inflates too far (a bomb?), or
    another (a page of more drawing operators than it reads: not compressed at all)."""
    text = one_line(exc if "limit" in str(exc).lower() or exc.__cause__ is None
                    else exc.__cause__)
    if any(w in text.lower() for w in ("decompress", "inflate", "output", "zlib")):
        return _BOMB
    return f"pypdf refused it at one of its own limits, which no option raises ({text})"


@register(".pdf")
def read_pdf(data: bytes, path: Path, options: ReadOptions, budget: Budget) -> ReadResult:
    if not data:
        raise err(path, "empty file")
    if b"%PDF-" not in data[:1024]:  # the spec allows junk before the header, within 1 KiB
        raise err(path, "not a readable PDF: no %PDF header")
    from pypdf import PasswordType, PdfReader

    warnings = Warnings(path)
    with _quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                # Many PDFs are encrypted only to restrict printing/copying: empty user password.
                try:
                    opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
                except Exception as exc:
                    reason = one_line(exc) or type(exc).__name__
                    raise err(path, f"not a readable PDF: encrypted ({reason})") from exc
                if not opened:
                    raise err(path, "not a readable PDF: encrypted (password required)")
            pages = list(reader.pages)
        except IngestError:
            raise
        except Exception as exc:  # pypdf raises many exception types on malformed files
            if _is_limit(exc):
                raise budget.refuse(_limit_reason(exc)) from exc
            reason = one_line(exc) or type(exc).__name__
            raise err(path, f"not a readable PDF: {reason}") from exc
        texts: list[str] = []
        refused, refused_why = 0, _BOMB
        chars = 0
        for number, page in enumerate(pages, start=1):
            budget.check_time()
            try:
                page_text = page.extract_text() or ""
            except Exception as exc:  # one broken page should not lose the others
                if _is_limit(exc):
                    refused, refused_why = refused + 1, _limit_reason(exc)
                    warnings.add(f"page {number}: {refused_why}")
                else:
                    warnings.add(f"page {number}: text extraction failed ({one_line(exc)})")
                continue
            budget.charge(len(page_text), "extracted PDF text")
            page_text = normalize_text(page_text.translate(_LIGATURES)).strip()
            if page_text:
                texts.append(page_text)
                chars += len(page_text) + 2
                budget.check_chars(chars)
        title = ""
        try:
            meta = reader.metadata
            if meta is not None and meta.title:
                title = clip_title(normalize_text(str(meta.title)))
        except Exception:  # broken metadata is not worth a failure
            title = ""
    text = "\n\n".join(texts)
    if not text.strip():
        if refused:
            raise budget.refuse(f"{refused_why} (on {refused} of {len(pages)} pages, no "
                                "other text)")
        raise err(path, "no extractable text (scanned PDF?)")
    doc = SourceDoc("", text, title or first_line(text), {"pages": len(pages)})
    return ReadResult([doc], warnings.result(), "")
