"""Choosing among the readings of legacy-encoded bytes by the language they read as, when
charset-normalizer trusts none of its own (one short line gives it too little)."""

from __future__ import annotations

#: Legacy encodings tried besides charset-normalizer's when none of its readings is
#: coherent (it does not offer KOI8-R for one line of Russian, and reads it as Shift-JIS).
_TRIES = ("cp1251", "koi8_r", "cp1256", "cp1255", "cp1253", "cp874", "euc_jp", "shift_jis",
          "gb18030", "big5", "euc_kr")
#: How sure language identification must be of a reading for it to replace the first guess.
_SURE = 0.5


def read_best(sample: bytes, offered: list[str]) -> str | None:
    """When the first guess reads as no language (KOI8-R Russian, Windows-1256 Arabic or
    TIS-620 Thai read as Shift-JIS: one line gives charset-normalizer too little), the
    reading that language identification is surest of, if it is sure; ties go to the
    earlier (charset-normalizer's order, then ``_TRIES``)."""
    from ..langid import detect  # its model loads only when a file needs it

    def score(encoding: str) -> float:
        try:
            text = sample.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            return 0.0
        guess = detect(text)
        return 0.0 if guess.code == "und" else guess.score

    if score(offered[0]) >= _SURE:
        return None
    tries = [e for e in dict.fromkeys([*offered, *_TRIES]) if not e.startswith("utf")]
    scored = [(score(e), -n, e) for n, e in enumerate(tries)]
    best = max(scored)
    return best[2] if best[0] >= _SURE else None
