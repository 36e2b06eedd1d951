"""UTF-16 without a byte order mark: does a sample read as text in one byte order only?

Any even number of bytes decodes as UTF-16, so the reading itself must look like text:
characters from the blocks real text uses, letters of one or two scripts, and ideographs and
Hangul syllables from the common sets (GB 2312, JIS X 0208, Big5 level 1, KS X 1001) rather
than the rare ones 8-bit text or binary data read two bytes at a time lands on.
"""

from __future__ import annotations

import codecs
import functools
import unicodedata
from bisect import bisect_right
from collections import Counter

_OK, _ODD, _HAN, _HANGUL = range(4)
# (first code point, kind) up to the next entry. _ODD: blocks running text hardly ever uses,
# where misread bytes land (8-bit text read as UTF-16 puts a space or a letter in the high
# byte: U+2061-207A, U+4100-4DFF, U+2Cxx...).
_BLOCKS: tuple[tuple[int, int], ...] = (
    (0x0000, _OK),  # ASCII, Latin, Greek, Cyrillic ... Georgian, Ethiopic, Khmer, Vietnamese
    (0x2000, _OK),  # spaces, dashes, quotes, bullets, ellipsis, per mille, primes, guillemets
    (0x203F, _ODD),  # rare punctuation, invisible operators, super- and subscripts
    (0x20A0, _OK),  # currency
    (0x20D0, _ODD),  # combining marks for symbols
    (0x2100, _OK),  # letterlike, number forms, arrows, mathematical operators
    (0x2300, _ODD),  # technical, control pictures, OCR
    (0x2460, _OK),  # enclosed numbers, box drawing, shapes, symbols, dingbats
    (0x27C0, _ODD),  # braille, supplemental arrows and maths, Glagolitic, Coptic, Tifinagh ...
    (0x3000, _OK),  # CJK punctuation, kana
    (0x3100, _ODD),  # Bopomofo
    (0x3130, _OK),  # Hangul compatibility jamo
    (0x3190, _ODD),  # Kanbun, CJK strokes
    (0x31F0, _OK),  # katakana extension, enclosed CJK
    (0x3300, _ODD),  # squared katakana words
    (0x3380, _OK),  # squared units
    (0x3400, _ODD),  # CJK extension A, Yijing hexagrams
    (0x4E00, _HAN),
    (0xA000, _ODD),  # Yi, Vai, Bamum and other rare scripts
    (0xAC00, _HANGUL),
    (0xD7A4, _ODD),  # jamo extended-B, CJK compatibility, presentation forms (surrogates and
    # private use are not text at all: rejected before)
    (0xFF00, _OK),  # fullwidth forms
    (0xFF61, _ODD),  # halfwidth katakana: any byte 0xA1-0xDF in Shift_JIS
    (0xFFA0, _OK),  # halfwidth Hangul and symbols
    (0xFFF0, _ODD),
    (0x10000, _ODD),  # supplementary planes ...
    (0x1F000, _OK),  # ... except emoji and pictographs
    (0x1FB00, _ODD),
)
_STARTS = [start for start, _ in _BLOCKS]
_KINDS = [kind for _, kind in _BLOCKS]
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_ALLOWED_FORMAT = frozenset("\u00ad\u200b\u200c\u200d\u200e\u200f\u061c\ufeff")
# Scripts written together in one language count as one.
_SCRIPT_FAMILY = {
    "CJK": "CJK", "HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "FULLWIDTH": "CJK",
    "HALFWIDTH": "CJK", "IDEOGRAPHIC": "CJK",
}  # fmt: skip
_SAMPLE = 4096
_MAX_ODD_SHARE = 0.05


def _encodes_in(ch: str, codec: str) -> bytes | None:
    try:
        return ch.encode(codec)
    except UnicodeEncodeError:
        return None


@functools.lru_cache(maxsize=8192)
def _common_han(ch: str) -> bool:
    """Is the ideograph in GB 2312, JIS X 0208 or Big5 level 1 (the frequent half of Big5)?"""
    if _encodes_in(ch, "gb2312") is not None:
        return True
    jis = _encodes_in(ch, "euc_jp")
    if jis is not None and len(jis) == 2:
        return True
    big5 = _encodes_in(ch, "big5")
    return big5 is not None and big5[0] <= 0xC6


@functools.lru_cache(maxsize=4096)
def _common_hangul(ch: str) -> bool:
    """Is the syllable one of the 2,350 of KS X 1001 (nearly all real Korean text)?"""
    euc = _encodes_in(ch, "euc_kr")
    return euc is not None and len(euc) == 2  # Python spells the rest as 8-byte sequences


def _odd_chars(text: str) -> int | None:
    """How many characters of ``text`` running text hardly ever holds; None if it is not
    text at all (control, unassigned, private-use or surrogate code points)."""
    odd = 0
    previous = ""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in _ALLOWED_CONTROLS or category in ("Cn", "Co", "Cs"):
            return None
        kind = _KINDS[bisect_right(_STARTS, ord(ch)) - 1]
        if (
            kind == _ODD
            or (kind == _HAN and not _common_han(ch))
            or (kind == _HANGUL and not _common_hangul(ch))
            or (category == "Cf" and ch not in _ALLOWED_FORMAT)
            or (category[0] == "M" and not (previous and unicodedata.category(previous)[0] in "LM"))
        ):
            odd += 1
        previous = ch
    return odd


def _one_script(text: str) -> bool:
    """Are the non-ASCII letters and digits of ``text`` (nearly) all in one script, or in two
    when there are enough of them to tell?"""
    scripts: Counter[str] = Counter()
    for ch in text:
        if ch >= "\x80" and unicodedata.category(ch)[0] in "LMN":
            name = unicodedata.name(ch, "?").split(" ")[0].split("-")[0]
            if name != "COMBINING":  # diacritics go with any script
                scripts[_SCRIPT_FAMILY.get(name, name)] += 1
    letters = sum(scripts.values())
    top = [n for _, n in scripts.most_common(2)]
    if letters < 8:
        return not top or top[0] >= 0.8 * letters
    return sum(top) >= 0.9 * letters


def reads_as_text(text: str) -> tuple[bool, int]:
    """Does ``text`` (a UTF-16 reading) look like text; and how many odd characters it has."""
    odd = _odd_chars(text)
    if odd is None or odd > _MAX_ODD_SHARE * len(text):
        return False, len(text)
    # A short repeated pattern (padding, a table of small integers) is not text.
    varied = len(set(text)) >= min(8, len(text) / 2)
    return varied and _one_script(text), odd


def byte_fills_a_parity(sample: bytes) -> bool:
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


def bomless_utf16(sample: bytes, whole: bool) -> str | None:
    """The byte order ("utf-16-le" or "utf-16-be") in which ``sample`` reads as text, if
    exactly one does; ``whole`` says the sample is the whole file, whose length must be even."""
    if whole and len(sample) % 2:
        return None
    n = min(len(sample), _SAMPLE) & ~1
    if n < 4:
        return None
    cut = n < len(sample)
    readings: dict[str, tuple[int, int]] = {}
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = sample[:n].decode(encoding)
        except UnicodeDecodeError:
            if not cut:
                continue
            try:  # the cut may fall inside a surrogate pair
                text = sample[: n - 2].decode(encoding)
            except UnicodeDecodeError:
                continue
        is_text, odd = reads_as_text(text)
        if is_text:
            readings[encoding] = (odd, -sum(1 for ch in text if ch < "\x80"))
    if len(readings) == 2 and len(set(readings.values())) == 1:
        return None  # both byte orders read as text alike: no evidence either way
    return min(readings, key=readings.__getitem__, default=None)


def reads_as_cjk_legacy(sample: bytes, whole: bool) -> bool:
    """Does ``sample`` read as text in a multi-byte East Asian page too? Then UTF-16 is no
    better a guess than that page: short Shift_JIS katakana are common ideographs in UTF-16.
    ``whole`` says the sample is the whole file, which must not end inside a character."""
    for encoding in ("cp932", "gbk", "big5", "cp949", "euc_jp"):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(sample, final=whole)
        except UnicodeDecodeError:
            continue
        if reads_as_text(text)[0]:
            return True
    return False
