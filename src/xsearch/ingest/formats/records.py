""".jsonl and .csv: one document per record; a bad record is skipped alone with a warning."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..base import (
    ReadOptions,
    ReadResult,
    SourceDoc,
    Warnings,
    clip_title,
    err,
    warning_line,
)
from ..budget import Budget, BudgetExceeded
from ..decode import Decoded, decode, normalize_text, scrub_surrogates
from . import register

_CHECK_EVERY = 1000  # records between time-budget checks

#: The formats read as records: their --text-field and --id-field matter.
RECORD_SUFFIXES = frozenset({".jsonl", ".csv"})


def _scrub(value: Any) -> tuple[Any, int]:
    """``value`` (a JSON value) with lone surrogates in every string replaced by U+FFFD."""
    if isinstance(value, str):
        return scrub_surrogates(value)
    if isinstance(value, list):
        total = 0
        out = []
        for item in value:
            item, n = _scrub(item)
            out.append(item)
            total += n
        return out, total
    if isinstance(value, dict):
        total = 0
        clean = {}
        for key, item in value.items():
            key, n1 = _scrub(key)
            item, n2 = _scrub(item)
            clean[key] = item
            total += n1 + n2
        return clean, total
    return value, 0


class _Records:
    """Collects records of a .jsonl/.csv file, dropping empty texts and duplicate ids.

    A record's id is its id field; a record without one is named by its line number ("7").
    Explicit ids come first: when a line number is also the id of another kept record of the
    file, before or after it, the record without an id is named "line 7" instead ("line 7
    (2)", ... if that is taken too). Ids are stored in the index and compared on every run,
    so a file without such a clash keeps its line numbers, and the same file always gets the
    same ids. Only records with the same explicit id are duplicates: the first is kept.
    """

    def __init__(self, path: Path, options: ReadOptions, budget: Budget) -> None:
        self.max_chars = options.max_chars
        self.budget = budget
        self.seen = 0
        self.docs: list[SourceDoc] = []
        self.ids: dict[str, str] = {}  # explicit record id -> where it was first seen
        self.unnamed: list[tuple[int, int]] = []  # (index in docs, line) of records without id
        self.warnings = Warnings(path)
        self.cut_by: dict[str, float] = {}

    def add(self, line: int, record_id: str, text: Any, title: Any, meta: dict[str, Any]) -> None:
        """Keep one record found at ``line``; ``record_id`` is "" when it has none."""
        where = f"line {line}"
        self.seen += 1
        if self.seen % _CHECK_EVERY == 0:
            self.budget.check_time()
        if not isinstance(text, str):
            self.warnings.add(f"{where}: text field is {type(text).__name__}, not a string")
            return
        (record_id, text, title, meta), surrogates = _scrub([record_id, text, title, meta])
        if surrogates:
            self.warnings.add(f"{where}: {surrogates} lone surrogate(s) replaced with U+FFFD")
        text = normalize_text(text).strip()
        if not text:
            self.warnings.add(f"{where}: empty text, skipped")
            return
        if self.max_chars is not None and len(text) > self.max_chars:
            self.warnings.add(f"{where}: text too long ({len(text):,} characters, limit "
                              f"{self.max_chars:,}; raise it with --max-chars), skipped")
            self.cut_by["max_chars"] = self.max_chars
            return
        if not record_id:
            self.unnamed.append((len(self.docs), line))
        elif record_id in self.ids:
            self.warnings.add(
                f"{where}: duplicate id {record_id!r} (first at {self.ids[record_id]}), skipped"
            )
            return
        else:
            self.ids[record_id] = where
        title = clip_title(normalize_text(title)) if isinstance(title, str) else ""
        self.docs.append(SourceDoc(record_id, text, title, meta))

    def _name_unnamed(self) -> None:
        """Give each record without an id its line number, or "line N" if that is taken."""
        taken = set(self.ids)
        for index, line in self.unnamed:
            record_id = str(line)
            if record_id in taken:
                record_id = f"line {line}"
                suffix = 2
                while record_id in taken:
                    record_id = f"line {line} ({suffix})"
                    suffix += 1
            taken.add(record_id)
            self.docs[index] = replace(self.docs[index], record_id=record_id)

    def result(self, path: Path, encoding: str, note: str) -> ReadResult:
        self._name_unnamed()
        if not self.docs:
            first = self.warnings.reasons[0] if self.warnings.reasons else ""
            detail = f" ({len(self.warnings)} problems; first: {first})" if first else ""
            error = err(path, f"no usable records{detail}")
            raise BudgetExceeded(error.args[0], self.cut_by) if self.cut_by else error
        warnings = self.warnings.result()
        if note:
            warnings.insert(0, warning_line(path, note))
        return ReadResult(self.docs, warnings, encoding, self.cut_by)


def _record_id(value: Any) -> str | None:
    """The id in a JSON id field, "" for none, None when it is not a string or integer."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _decode_records(data: bytes, path: Path, budget: Budget) -> tuple[Decoded, str]:
    """Decoded text of a jsonl/csv file, BOM stripped; an empty file is skipped."""
    decoded = decode(data, path)
    budget.charge(len(decoded.text), "decoded text")
    raw = decoded.text.lstrip("\ufeff")
    if not raw.strip():
        raise err(path, "empty file")
    return decoded, raw


@register(".jsonl")
def read_jsonl(data: bytes, path: Path, options: ReadOptions, budget: Budget) -> ReadResult:
    decoded, raw = _decode_records(data, path, budget)
    records = _Records(path, options, budget)
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
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            records.warnings.add(f"{where}: unreadable JSON value ({exc})")
            continue
        if not isinstance(obj, dict):
            records.warnings.add(f"{where}: expected a JSON object, got {type(obj).__name__}")
            continue
        if options.text_field not in obj:
            records.warnings.add(f"{where}: no {options.text_field!r} field, skipped")
            continue
        record_id = _record_id(obj.get(options.id_field))
        if record_id is None:
            records.warnings.add(f"{where}: {options.id_field!r} is not a string or integer")
            continue
        meta = {
            k: v for k, v in obj.items() if k not in (options.text_field, options.id_field, "title")
        }
        records.add(number, record_id, obj[options.text_field], obj.get("title"), meta)
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


@register(".csv")
def read_csv(data: bytes, path: Path, options: ReadOptions, budget: Budget) -> ReadResult:
    decoded, raw = _decode_records(data, path, budget)
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
        raise err(path, f"no {options.text_field!r} column in the header; columns: {columns}")
    dialect, header, text_col, header_lines = chosen
    id_col = _find_column(header, options.id_field)
    title_col = _find_column(header, "title")
    names = [h.strip().lstrip("\ufeff") for h in header]
    records = _Records(path, options, budget)

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
                    line = row_start
                    row_start = start + reader.line_num + 1
                    _csv_row(records, line, row, names, text_col, id_col, title_col, options)
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
    line: int,
    row: list[str],
    names: list[str],
    text_col: int,
    id_col: int | None,
    title_col: int | None,
    options: ReadOptions,
) -> None:
    where = f"line {line}"
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
    record_id = row[id_col].strip() if id_col is not None and id_col < len(row) else ""
    title = row[title_col] if title_col is not None and title_col < len(row) else ""
    skip = {text_col, id_col, title_col}
    meta = {names[i]: row[i] for i in range(min(len(row), len(names))) if i not in skip}
    records.add(line, record_id, row[text_col], title, meta)


def record_fields(path: Path | str, options: ReadOptions) -> str | None:
    """The record fields a file is read with, as ``files.record_fields`` stores them (JSON);
    None for formats that have no records."""
    if Path(path).suffix.lower() not in RECORD_SUFFIXES:
        return None
    return json.dumps({"text_field": options.text_field, "id_field": options.id_field})


def with_record_fields(options: ReadOptions, stored: str | None,
                       given: frozenset[str] = frozenset()) -> ReadOptions:
    """``options`` for a file last read with the fields ``stored`` by :func:`record_fields`:
    each field not ``given`` for this run ("text_field", "id_field") is the stored one."""
    if not stored:
        return options
    got = json.loads(stored)
    return replace(options, **{k: got[k] for k in ("text_field", "id_field")
                               if k not in given and k in got})
