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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .base import err
from .mostly_utf8 import read_mostly_utf8
from .utf16 import bomless_utf16, byte_fills_a_parity, reads_as_cjk_legacy

_SNIFF_BYTES = 8192
# Encoding detection runs on a bounded sample: charset-normalizer decodes its whole input once
# per candidate code page, which is far too slow for tens of megabytes.
_DETECT_BYTES = 256 * 1024
# NULs that are not strays in 8-bit text nor part of UTF-16 mean binary data when they are
# more than this share of the sample plus _STRAY_NULS (or come with other control bytes).
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

# The non-ASCII letters of the languages written in each single-byte Latin page (lower case;
# æ and ÿ left out of French, whose words hardly use them). Short text gives charset-normalizer
# too little to go on; a decoding whose accented letters all belong to one language does.
_ALPHABETS: dict[str, tuple[str, ...]] = {
    "cp1252": (
        "àâçéèêëîïôœùûü",  # French
        "äöüß",  # German
        "áéíñóúü¿¡",  # Spanish (no other language opens with ¿ or ¡)
        "áâãàçéêíóôõú",  # Portuguese
        "àèéìíîòóùú",  # Italian
        "àçéèíïòóúü",  # Catalan
        "áéèëïóöü",  # Dutch
        "åæøéó",  # Danish, Norwegian
        "åäöé",  # Swedish, Finnish
        "áðéíóúýþæö",  # Icelandic
        "çë",  # Albanian
    ),
    "cp1250": (
        "áčďéěíňóřšťúůýž",  # Czech
        "áäčďéíĺľňóôŕšťúýž",  # Slovak
        "ąćęłńóśźż",  # Polish
        "áéíóöőúüű",  # Hungarian
        "čćđšž",  # Croatian, Bosnian, Slovene
        "ăâîşţ",  # Romanian
    ),
    "cp1254": ("çğıöşüâîû",),  # Turkish
    "cp1257": ("ąčęėįšųūž", "āčēģīķļņšūž", "äõöüšž"),  # Lithuanian, Latvian, Estonian
}
# Letters of cp1252's languages with a fixed place in a word, where the cp1250 letters read
# as them (č ě ů ď đ) stand anywhere: è is followed by no vowel but i (Catalan vèiem), ì and
# ù end a word (Italian, French où), ï follows a vowel (naïve, maïs, ruïne), ð starts none
# (Icelandic), õ comes before e (Portuguese põe, lições).
_MISPLACED_CP1252_RE = re.compile(
    r"è[aeouy]|[ìù][^\W\d_]|(?<![aeiouy])ï|\bð|õ(?!e)", re.IGNORECASE
)
# Non-letters that may follow or precede a word: quotes, dashes and ellipsis either way;
# units (m², 20°C) and marks after one, ¿¡ before one.
_QUOTES = "“”‘’„‚«»‹›–—…·´\u00a0"
_AFTER_WORD = frozenset(_QUOTES + "²³°®™")
_BEFORE_WORD = frozenset(_QUOTES + "¿¡")
_NEUTRAL_LETTERS = frozenset("ªºµ")  # ordinal indicators and micro sign: any language
_TOKEN_RE = re.compile(r"[^\W_]+")
_STRAY_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
# Prose keeps these off its words (CJK read as a Latin page: "s*d:^&‹ĺuľ", "‚Yśg`Oó`f[").
_SYMBOLS = r"[`^*&\[\]{}|\\~@#<>=+$%_]"
_GLUED_SYMBOL_RE = re.compile(rf"[^\W\d_]{_SYMBOLS}|{_SYMBOLS}[^\W\d_]")
_WORD_RE = re.compile(rb"[A-Za-z\x80-\xff]{2,}")


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


def _utf8_prefix(sample: bytes) -> bool:
    """Is ``sample`` UTF-8, but for a character cut at its end?"""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample)
    except UnicodeDecodeError:
        return False
    return True


def _too_many_nuls(sample: bytes) -> bool:
    """More NUL bytes than damage usually leaves in text (a test for binary data only)."""
    return sample.count(0) > _MAX_NUL_SHARE * len(sample) + _STRAY_NULS


def _stray_nuls(sample: bytes, utf16: bool) -> bool:
    """Are the NUL bytes of ``sample`` damage in 8-bit text, not half of UTF-16 without BOM?

    Yes when the other bytes outnumber them and are 8-bit text (no control byte; UTF-8,
    nearly all ASCII, or words of a Latin page), unless the sample reads as UTF-16 text
    (``utf16``) and one byte value fills every other position, as the NULs of ASCII or the
    block byte of an alphabet do in UTF-16. Strays fall anywhere, so they fill a parity only
    by chance, in a short sample; how many there are says nothing (a short line with three
    holds more than 1% of them). Real UTF-16 whose other bytes read as 8-bit text is CJK
    whose bytes happen to be UTF-8 or mostly ASCII: very rare past a few characters.
    """
    nuls = sample.count(0)
    if not nuls or 2 * nuls >= len(sample):
        return False
    rest = sample.replace(b"\x00", b"")
    if any(b in _CONTROL_BYTES for b in rest) or (utf16 and byte_fills_a_parity(sample)):
        return False
    if _utf8_prefix(rest):
        return True
    ascii_share = sum(1 for b in rest if b < 0x80) / len(rest)
    return ascii_share >= 0.9 or _latin_page(rest) is not None


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


def _latin_words(text: str) -> bool:
    """Does ``text`` look like words in a Latin alphabet? Mostly letters, no tokens mixing
    letters and digits, no upper-case letter inside a word, no symbol glued to a letter."""
    visible = len(text) - sum(map(str.isspace, text))
    if sum(map(str.isalpha, text)) < 0.5 * visible:
        return False
    tokens = set(_TOKEN_RE.findall(text))
    if 2 * sum(1 for t in tokens if not (t.isalpha() or t.isdigit())) >= len(tokens):
        return False
    if _STRAY_CONTROL_RE.search(text) or _GLUED_SYMBOL_RE.search(text):
        return False
    # Regular expressions over the characters present, not a Python loop over 256 KB.
    chars = {ch for ch in set(text) if ch >= "\x80"}
    upper = re.escape("".join(sorted(ch for ch in chars if ch.isupper())))
    lower = re.escape("".join(sorted(ch for ch in chars if ch.islower())))
    breaks = [f"[a-z{lower}][{upper}]" if upper else "", f"[{lower}][A-Z{upper}]" if lower else ""]
    if any(b and re.search(b, text) for b in breaks):
        return False
    symbols = "".join(sorted(ch for ch in chars if not ch.isalpha()))
    for match in re.finditer(f"[{re.escape(symbols)}]", text) if symbols else ():
        i, ch = match.start(), match.group()
        before = i > 0 and text[i - 1].isalpha()
        after = i + 1 < len(text) and text[i + 1].isalpha()
        if before and after:
            if ch not in _IN_WORD_OK:
                return False
        elif before and ch not in _AFTER_WORD or after and ch not in _BEFORE_WORD:
            return False
    return True


def _latin_page(sample: bytes) -> str | None:
    """The single-byte Latin page in which ``sample`` reads as words of one language, if any.

    Only for text shaped like a Latin script: most words holding a non-ASCII byte hold an
    ASCII letter too (no word of Cyrillic, Greek or CJK legacy text does). A page fits when
    the accented letters of its reading all belong to one of its languages and the reading
    looks like words; when pages with different readings fit, ``_most_coherent`` decides.
    """
    words = [w for w in set(_WORD_RE.findall(sample)) if max(w) >= 0x80]
    latin_words = sum(1 for w in words if min(w) < 0x80)
    if not re.search(rb"[A-Za-z]", sample) or 2 * latin_words < len(words):
        return None
    fits: dict[str, str] = {}
    for page, alphabets in _ALPHABETS.items():
        try:
            text = sample.decode(page)
        except UnicodeDecodeError:
            continue
        if page == "cp1252" and _MISPLACED_CP1252_RE.search(text):
            continue
        found = {ch.lower()[0] for ch in set(text) if ch.isalpha() or ch in "¿¡"}
        letters = {ch for ch in found if ch >= "\x80"} - _NEUTRAL_LETTERS
        if any(letters <= set(abc) for abc in alphabets) and _latin_words(text):
            fits[page] = text
    if len(set(fits.values())) <= 1:
        return next(iter(fits), None)
    return _most_coherent(sample, fits)


def _most_coherent(sample: bytes, fits: dict[str, str]) -> str:
    """Of the Latin pages whose readings spell words of their languages, the one whose reading
    charset-normalizer finds most coherent (letter frequencies: evidence that grows with the
    text); on a tie (short text) cp1252, unless its reading shows a rival's letters misread
    (Turkish ş ı ğ as Icelandic þ ý ð)."""
    from charset_normalizer import from_bytes

    # A page charset-normalizer leaves out (it does so at random on a short text) scores 0.
    found = {m.encoding: m.coherence for m in from_bytes(sample, cp_isolation=list(fits))}
    coherence = {page: found.get(page, 0.0) for page in fits}
    best = max(fits, key=coherence.__getitem__)  # the first on ties
    # cp1252's reading shared by another page ("dobrý" in cp1250 too) is no misreading.
    if best == "cp1252" and list(fits.values()).count(fits[best]) == 1:
        for rival, doubt in _RIVAL_LETTERS.items():
            if coherence.get(rival) == coherence[best] and doubt(fits[best]):
                return rival
    return best


def _guess_legacy(data: bytes) -> str:
    from charset_normalizer import from_bytes

    sample = _detection_sample(data)
    matches = list(from_bytes(sample))
    top = _UPGRADE.get(matches[0].encoding, matches[0].encoding) if matches else "cp1252"
    if matches and top not in _LATIN_FAMILY and top != "cp1252":
        if matches[0].coherence == 0.0:  # no reading it trusts: short text, a lone line
            from .readings import read_best

            return read_best(sample, [m.encoding for m in matches]) or top
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


def _guess_page(data: bytes) -> str:
    """The legacy code page of ``data``: a Latin page that spells words, else a guess."""
    return _latin_page(_detection_sample(data)) or _guess_legacy(data)


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """(encoding, length of the mark) for bytes that begin with a byte order mark."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def bom_text(data: bytes) -> str:
    """A small text file people save (a labels or examples file): UTF-8, or the encoding
    its byte order mark names (Notepad's and Excel's UTF-8 and UTF-16); strict."""
    found = bom_encoding(data)
    return data[found[1]:].decode(found[0]) if found else data.decode("utf-8")


def short_of_bom(data: bytes) -> bool:
    """True while ``data`` is too short to tell: it could still grow into a byte order mark."""
    return any(len(data) < len(bom) and bom.startswith(data) for bom, _ in _BOMS)


def _decode_bom(data: bytes, path: Path | str) -> Decoded | None:
    if (found := bom_encoding(data)) is None:
        return None
    encoding, skip = found
    decoded = _decode_lossy(data[skip:], encoding)
    if _is_binary(decoded.text[:_SNIFF_BYTES].encode("utf-8", errors="replace")):
        raise err(path, "binary file, skipped")
    return decoded


def _decode_utf16(data: bytes, encoding: str) -> Decoded:
    decoded = _decode_lossy(data, encoding)
    decoded.notes.insert(0, f"no byte order mark; read as {encoding}")
    return decoded


def decode(data: bytes, path: Path | str) -> Decoded:
    """Decode raw bytes (BOM, UTF-16 without BOM, UTF-8, then detection), not normalised."""
    decoded = _decode_bom(data, path)
    if decoded is not None:
        return decoded
    sample = data[:_SNIFF_BYTES]
    whole = len(data) <= _SNIFF_BYTES
    notes: list[str] = []
    # UTF-16 is weighed only where UTF-8 does not fit: an even number of ASCII bytes is
    # valid UTF-16 too, CJK or Hangul by the byte pair. Short UTF-16 in an alphabet whose
    # block byte is a control byte (Thai 0x0E, Cyrillic 0x04) is valid UTF-8, binary-looking.
    control = _control_share(sample)
    odd_bytes = b"\x00" in sample or control > 0.10 or (control > 0 and not _utf8_prefix(sample))
    if odd_bytes:
        encoding16 = bomless_utf16(sample, whole)
        strays = _stray_nuls(sample, encoding16 is not None)
        if encoding16 is not None and not strays:
            return _decode_utf16(data, encoding16)
        # Stray NULs in otherwise clean text are damage; NULs among other control bytes
        # (random or compressed data has about 10%) mean binary.
        if (
            not strays
            and (b"\x00" in sample or control > 0.10)
            and (_too_many_nuls(sample) or _control_share(sample.replace(b"\x00", b"")) > 0.01)
        ):
            raise err(path, "binary file, skipped")
    if b"\x00" in data:
        data, nuls = _strip_nuls(data)
        notes.append(f"{nuls} NUL byte{'s' if nuls != 1 else ''} removed")
    try:
        return Decoded(data.decode("utf-8"), "utf-8", notes)
    except UnicodeDecodeError:
        pass
    # Mostly valid UTF-8 with a few broken bytes or pasted legacy lines is still UTF-8:
    # reading it all in a legacy code page would garble every UTF-8 character instead.
    mostly = read_mostly_utf8(data, _guess_page)
    if mostly is not None:
        text, repairs = mostly
        return Decoded(text, "utf-8", notes + repairs)
    bad = data.decode("utf-8", errors="replace").count("\ufffd")
    # Legacy text holds no control byte but a terminal's ESC or a DOS end-of-file mark;
    # random or compressed data has about 10%.
    if _control_share(data[:_SNIFF_BYTES].translate(None, b"\x1a\x1b")) > 0.01:
        raise err(path, "binary file, skipped")
    latin = _latin_page(_detection_sample(data))
    # Words of a Latin alphabet say more than a UTF-16 reading: even-length 8-bit text is
    # UTF-16 too, and short BOM-less UTF-16 with no NUL nor control byte is rare.
    if not odd_bytes and latin is None:
        encoding16 = bomless_utf16(sample, whole)
        if encoding16 is not None and not reads_as_cjk_legacy(sample, whole):
            return _decode_utf16(data, encoding16)
    decoded = _decode_lossy(data, latin or _guess_legacy(data))
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

    Order: BOM (UTF-8, UTF-16, UTF-32); UTF-16 without BOM if NUL or control bytes are there
    (unless the NULs are strays in 8-bit text); strict UTF-8 (stray NUL bytes removed);
    mostly-UTF-8 (broken bytes replaced, legacy lines read in their own page); the Latin
    page whose reading spells words of one language; UTF-16 without BOM; then
    charset-normalizer's guess. Binary data (many NUL or control bytes) raises IngestError.
    """
    return normalize_text(decode(data, path).text)
