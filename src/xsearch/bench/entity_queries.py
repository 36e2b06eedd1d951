"""Queries where words matter: short windows of SIB-200 sentences around a number, a name or a
rare word.

For each chosen sentence the *anchor* is, in this order: a token with a digit (the longest), a
capitalised word that does not start the sentence (the rarest in its language), else the
rarest token of length >= 3 (document frequency over that language's sentences, with
:mod:`xsearch.lexical` tokens). The query keeps ``window`` words around the anchor (two before
it), or ``2 * window`` characters of Han/kana text (``4 * window`` for Thai and other
unspaced scripts). Relevant: the same
sentence (``index_id``) in the query's language, and in every other language for
cross-lingual use. Deterministic: the sentences drawn depend on ``seed`` and the language only.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xsearch import lexical

MIN_WORDS = 9
"""Sentences shorter than this (in words) are not used: their window would be the sentence."""
MIN_CHARS = 24
"""The same for scripts without spaces, in characters."""

_WORD = re.compile(r"\S+")
_HAN_KANA = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass(frozen=True)
class EntityQuery:
    """One query: ``text`` cut from sentence ``index_id`` of ``lang`` around ``anchor``."""

    qid: str
    lang: str
    index_id: str
    text: str
    anchor: str
    kind: str  # "number" | "name" | "rare"


def spaced(text: str) -> bool:
    """Whether ``text`` separates words with spaces (not Chinese, Japanese, Thai...)."""
    chars = sum(1 for c in text if not c.isspace())
    return chars > 0 and len(text.split()) * 100 / chars >= 8.0


def _anchor(text: str, df: Counter[str]) -> tuple[int, int, str, str] | None:
    toks = lexical.tokens(text)
    if not toks:
        return None
    numbers = [t for t in toks if any(c.isdigit() for c in t[0])]
    if numbers:
        tok = max(numbers, key=lambda t: (len(t[0]), -t[1]))
        return tok[1], tok[2], text[tok[1] : tok[2]], "number"
    first = toks[0][1]
    names = [t for t in toks if t[1] > first and text[t[1]].isupper()]
    if names:
        tok = min(names, key=lambda t: (df[t[0]], -len(t[0]), t[1]))
        return tok[1], tok[2], text[tok[1] : tok[2]], "name"
    rare = [t for t in toks if len(t[0]) >= 3] or toks
    tok = min(rare, key=lambda t: (df[t[0]], -len(t[0]), t[1]))
    return tok[1], tok[2], text[tok[1] : tok[2]], "rare"


def window_query(text: str, df: Counter[str], window: int = 6) -> tuple[str, str, str] | None:
    """``(query, anchor, kind)`` for one sentence, or None when it is too short."""
    is_spaced = spaced(text)
    words = list(_WORD.finditer(text))
    if (is_spaced and len(words) < MIN_WORDS) or (not is_spaced and len(text) < MIN_CHARS):
        return None
    found = _anchor(text, df)
    if found is None:
        return None
    start, end, anchor, kind = found
    if is_spaced:
        i = next(j for j, w in enumerate(words) if w.end() > start)
        lo = max(0, min(i - 2, len(words) - window))
        query = " ".join(w.group() for w in words[lo : lo + window])
    else:
        # ~2 characters a word in Chinese/Japanese, ~4 in Thai, Lao, Khmer, Myanmar
        width = (2 if _HAN_KANA.search(text) else 4) * window
        lo = max(0, min(start - width // 3, len(text) - width))
        query = text[lo : max(lo + width, end)].strip()
    return query, anchor, kind


def make_queries(
    sentences: Mapping[str, Sequence[tuple[str, str]]],
    per_lang: int = 100,
    seed: int = 0,
    window: int = 6,
) -> list[EntityQuery]:
    """Up to ``per_lang`` queries per language from ``sentences[lang] = [(index_id, text)]``."""
    out: list[EntityQuery] = []
    for lang in sorted(sentences):
        rows = list(sentences[lang])
        df: Counter[str] = Counter()
        for _, text in rows:
            df.update(lexical.token_set(text))
        order = sorted(range(len(rows)), key=lambda i: rows[i][0])
        random.Random(f"{seed}:{lang}").shuffle(order)
        made = 0
        for i in order:
            if made >= per_lang:
                break
            index_id, text = rows[i]
            got = window_query(text, df, window)
            if got is None:
                continue
            query, anchor, kind = got
            out.append(EntityQuery(f"{lang}:{index_id}:w", lang, index_id, query, anchor, kind))
            made += 1
    return out
