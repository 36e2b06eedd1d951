"""Decoding: raw bytes to normalised text (BOMs, UTF-8, UTF-16 without BOM, legacy pages).

Every lossy step is reported: replaced byte sequences, removed NUL bytes and a guessed legacy
code page each give a note with a count, which the readers turn into one-line warnings.
Text leaving this module never holds a lone surrogate, so every later ``.encode("utf-8")``
(hashing, SQLite) succeeds.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .base import err

_SNIFF_BYTES = 8192
# Encoding detection runs on a bounded sample: charset-normalizer decodes its whole input once
# per candidate code page, which is far too slow for tens of megabytes.
_DETECT_BYTES = 256 * 1024
# A few NUL bytes in text are damage (a bad copy, a padded record); more than this share of
# the sample, plus _STRAY_NULS, means the file is binary or UTF-16.
_MAX_NUL_SHARE = 0.01
_STRAY_NULS = 2

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
class Decoded:
    text: str
    encoding: str
    notes: list[str] = field(default_factory=list)  # lossy steps, one line each

    @property
    def note(self) -> str:
        return "; ".join(self.notes)


def _control_share(sample: bytes) -> float:
    if not sample:
        return 0.0
    return sum(1 for b in sample if b in _CONTROL_BYTES) / len(sample)


def _is_binary(sample: bytes) -> bool:
    return _control_share(sample) > 0.10


_COMMON = frozenset(" \t\n\r")


def _text_score(text: str) -> tuple[float, int]:
    """How much ``text`` reads as text: (share in its main scripts plus spaces, digits and
    punctuation; number of ASCII characters).

    Real text in any script (or a mix) scores near 1 and holds ASCII spaces and newlines;
    bytes read with the wrong UTF-16 byte order hit control, unassigned or private-use code
    points, or many unrelated blocks, and ASCII turns into U+xx00 characters.
    """
    if not text:
        return 0.0, 0
    scripts: Counter[str] = Counter()
    common = 0
    for ch in text:
        if ch in _COMMON:
            common += 1
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cn", "Co", "Cs"):
            return 0.0, 0  # control, unassigned, private-use or surrogate: not text
        if category[0] in "NPZS" and (ord(ch) < 0x3040 or 0xFF00 <= ord(ch) <= 0xFFEF):
            common += 1
            continue
        scripts[unicodedata.name(ch, "?").split(" ")[0].split("-")[0]] += 1
    if common < 0.02 * len(text) or len(set(text)) < 8:
        return 0.0, 0  # no spaces or punctuation at all, or a short repeated pattern
    letters = sum(scripts.values())
    main = sum(n for n in scripts.values() if n >= 0.03 * letters)
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    return (common + main) / len(text), ascii_chars


def _bomless_utf16(sample: bytes) -> str | None:
    """Recognise UTF-16 without a BOM in any script: the byte order whose decoding reads as
    text wins, if it is clearly text."""
    n = min(len(sample), 4096)
    n -= n % 2
    if n < 16:
        return None
    scores = {}
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = sample[:n].decode(encoding)
        except UnicodeDecodeError:
            # The sample may end inside a surrogate pair.
            try:
                text = sample[: n - 2].decode(encoding)
            except UnicodeDecodeError:
                continue
        score, ascii_chars = _text_score(text)
        if score >= 0.9:
            scores[encoding] = (ascii_chars, score)
    if not scores:
        return None
    return max(scores, key=lambda e: scores[e])


def _one_byte_fills_a_parity(sample: bytes) -> bool:
    """Does one ASCII byte value fill half of the even or of the odd positions of ``sample``?

    In UTF-16 text of an alphabetic script nearly every high byte is 0x00 (ASCII) or the
    script's block (0x09 for Devanagari, 0x30 for kana); in 8-bit text no ASCII byte is that
    common. UTF-8 lead bytes can be, and so can the spaces of a padded table; neither counts
    (no script is written in the punctuation block U+20xx).
    """
    for half in (sample[0::2], sample[1::2]):
        if len(half) >= 4:
            value, count = Counter(half).most_common(1)[0]
            if value < 0x80 and value != 0x20 and 2 * count >= len(half):
                return True
    return False


def _too_many_nuls(sample: bytes) -> bool:
    """More NUL bytes than damage leaves in text: binary, or UTF-16."""
    return sample.count(0) > _MAX_NUL_SHARE * len(sample) + _STRAY_NULS


def _stray_nuls(sample: bytes) -> bool:
    """Are the NUL bytes of ``sample`` damage in 8-bit text, not half of UTF-16 without BOM?

    Yes when they are few, the other bytes hold no control byte and are UTF-8 (or nearly all
    ASCII, as in a Latin code page), and no byte value fills a parity. This is decided before
    any UTF-16 guess: 8-bit text read two bytes at a time is a string of CJK ideographs or
    Hangul that the text score cannot tell from real text, least of all in a short file.
    Real UTF-16 with this few NULs is CJK text, whose bytes are neither UTF-8 nor mostly
    ASCII, or a few words of an alphabetic script, whose block byte fills a parity.
    """
    if not sample.count(0) or _too_many_nuls(sample):
        return False
    rest = sample.replace(b"\x00", b"")
    if any(b in _CONTROL_BYTES for b in rest) or _one_byte_fills_a_parity(sample):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(rest)  # the sample may cut a character
    except UnicodeDecodeError:
        return sum(1 for b in rest if b < 0x80) >= 0.9 * len(rest)
    return True


def _strip_nuls(data: bytes) -> tuple[bytes, int]:
    count = data.count(0)
    return (data.replace(b"\x00", b""), count) if count else (data, 0)


def _decode_lossy(data: bytes, encoding: str) -> Decoded:
    text = data.decode(encoding, errors="replace")
    bad = text.count("\ufffd")
    notes = [f"{bad} undecodable byte sequences replaced ({encoding})"] if bad else []
    return Decoded(text, encoding, notes)


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


def _decode_bom(data: bytes, path: Path | str) -> Decoded | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            decoded = _decode_lossy(data[len(bom) :], encoding)
            if _is_binary(decoded.text[:_SNIFF_BYTES].encode("utf-8", errors="replace")):
                raise err(path, "binary file, skipped")
            return decoded
    return None


def decode(data: bytes, path: Path | str) -> Decoded:
    """Decode raw bytes (BOM, UTF-16 without BOM, UTF-8, then detection), not normalised."""
    decoded = _decode_bom(data, path)
    if decoded is not None:
        return decoded
    sample = data[:_SNIFF_BYTES]
    notes: list[str] = []
    if (b"\x00" in sample or _is_binary(sample)) and not _stray_nuls(sample):
        encoding16 = _bomless_utf16(sample)
        if encoding16 is not None:
            decoded = _decode_lossy(data, encoding16)
            decoded.notes.insert(0, f"no byte order mark; read as {encoding16}")
            return decoded
        # Stray NULs in otherwise clean text are damage; NULs among other control bytes
        # (random or compressed data has about 10%) mean binary.
        if _too_many_nuls(sample) or _control_share(
            sample.replace(b"\x00", b"")
        ) > 0.01:
            raise err(path, "binary file, skipped")
    if b"\x00" in data:
        data, nuls = _strip_nuls(data)
        notes.append(f"{nuls} NUL byte{'s' if nuls != 1 else ''} removed")
    try:
        return Decoded(data.decode("utf-8"), "utf-8", notes)
    except UnicodeDecodeError:
        pass
    # Mostly valid UTF-8 with a few broken bytes (truncation, one pasted legacy snippet) is
    # still UTF-8: guessing a legacy code page would garble every other character instead.
    lossy = data.decode("utf-8", errors="replace")
    bad = lossy.count("\ufffd")
    good = len(lossy) - len(lossy.encode("ascii", errors="ignore")) - bad
    if good >= 10 * bad:
        notes.append(f"{bad} invalid UTF-8 byte sequences replaced with U+FFFD")
        return Decoded(lossy, "utf-8", notes)
    decoded = _decode_lossy(data, _guess_legacy(data))
    decoded.notes[:0] = notes + [
        f"not valid UTF-8 ({bad} invalid byte sequences); decoded as {decoded.encoding} "
        "by guess, check the text"
    ]
    return decoded


_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad]")
_NEWLINE_RE = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def scrub_surrogates(text: str) -> tuple[str, int]:
    """``text`` with every lone surrogate replaced by U+FFFD, and how many there were."""
    if not _SURROGATE_RE.search(text):
        return text, 0
    return _SURROGATE_RE.subn("\ufffd", text)


def normalize_text(text: str) -> str:
    """Normalise decoded text: newlines to \\n, drop control characters, lone surrogates to
    U+FFFD, Unicode NFC."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = _NEWLINE_RE.sub("\n", text)
    if "\x1b" in text:
        text = _ANSI_RE.sub("", text)
    text = _CONTROL_RE.sub("", text)
    text, _ = scrub_surrogates(text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def read_bytes_as_text(data: bytes, path: Path | str) -> str:
    """Decode file bytes to normalised text; ``path`` is only used in error messages.

    Order: BOM (UTF-8, UTF-16, UTF-32), UTF-16 without BOM (unless the NUL bytes are a few
    strays in 8-bit text), strict UTF-8 (stray NUL bytes removed), mostly-UTF-8 with
    replacement characters, then charset-normalizer's guess. Binary data (many NUL or control
    bytes) raises IngestError.
    """
    return normalize_text(decode(data, path).text)
