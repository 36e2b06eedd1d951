"""Language codes: any common spelling of a language -> the product's FLORES-200 style codes.

The product labels passages ``xxx_Scrp`` (ISO 639-3 individual language + ISO 15924 script, as
FLORES-200 does; see :mod:`xsearch.langid`). Users and datasets say ``hi``, ``hin``, ``HIN_deva``,
``zh-Hant``, ``pt-BR`` or ``Hindi``. :func:`normalize` maps all of them to ``hin_Deva`` (script
given) or ``hin`` (no script: matches every script, see :func:`matches`).

Macrolanguages go to the individual language FLORES-200 uses (``ar``/``ara`` -> ``arb``,
``fa`` -> ``pes``, ``sw`` -> ``swh``, ``ms`` -> ``zsm``, ``zh``/``cmn`` -> ``zho``...).

The table covers the FLORES-200 languages and every language py3langid can emit. Sources:
the FLORES-200 code list (NLLB Team 2022); ISO 639-1/639-2 aliases from the IANA Language
Subtag Registry and CLDR language aliases (as shipped in langcodes 3.5.1's data_dicts),
generated once into the table below; macrolanguage choices as in FLORES-200. The
``langcodes``/``language_data`` packages were not used at run time: with marisa-trie they
weigh ~30 MB installed for a few hundred codes needed here.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Iterable

from .errors import UnknownLanguageError

UNKNOWN = "und"

# ISO 639-3 code -> (scripts, first = usual; English name; other codes naming it).
# fmt: off
_LANGS: dict[str, tuple[str, str, str]] = {
    "ace": ("Arab Latn", "Acehnese", ""),
    "acm": ("Arab", "Mesopotamian Arabic", ""),
    "acq": ("Arab", "Ta'izzi-Adeni Arabic", ""),
    "aeb": ("Arab", "Tunisian Arabic", ""),
    "afr": ("Latn", "Afrikaans", "af"),
    "ajp": ("Arab", "South Levantine Arabic", ""),
    "aka": ("Latn", "Akan", "ak"),
    "amh": ("Ethi", "Amharic", "am"),
    "apc": ("Arab", "North Levantine Arabic", ""),
    "arb": ("Arab Latn", "Arabic", "ar ara"),
    "ars": ("Arab", "Najdi Arabic", ""),
    "ary": ("Arab", "Moroccan Arabic", ""),
    "arz": ("Arab", "Egyptian Arabic", ""),
    "asm": ("Beng", "Assamese", "as"),
    "ast": ("Latn", "Asturian", ""),
    "awa": ("Deva", "Awadhi", ""),
    "ayr": ("Latn", "Aymara", "ay aym"),
    "azb": ("Arab", "South Azerbaijani", ""),
    "azj": ("Latn Cyrl", "Azerbaijani", "az aze"),
    "bak": ("Cyrl", "Bashkir", "ba"),
    "bam": ("Latn", "Bambara", "bm"),
    "ban": ("Latn", "Balinese", ""),
    "bel": ("Cyrl", "Belarusian", "be"),
    "bem": ("Latn", "Bemba", ""),
    "ben": ("Beng", "Bengali", "bn"),
    "bho": ("Deva", "Bhojpuri", ""),
    "bjn": ("Arab Latn", "Banjar", ""),
    "bod": ("Tibt", "Tibetan", "bo tib"),
    "bos": ("Latn Cyrl", "Bosnian", "bs"),
    "bug": ("Latn", "Buginese", ""),
    "bul": ("Cyrl", "Bulgarian", "bg"),
    "cat": ("Latn", "Catalan", "ca"),
    "ceb": ("Latn", "Cebuano", ""),
    "ces": ("Latn", "Czech", "cs cze"),
    "cjk": ("Latn", "Chokwe", ""),
    "ckb": ("Arab", "Central Kurdish", ""),
    "crh": ("Latn Cyrl", "Crimean Tatar", ""),
    "cym": ("Latn", "Welsh", "cy wel"),
    "dan": ("Latn", "Danish", "da"),
    "deu": ("Latn", "German", "de ger"),
    "dik": ("Latn", "Dinka", "din"),
    "dyu": ("Latn", "Dyula", ""),
    "dzo": ("Tibt", "Dzongkha", "adp dz"),
    "ell": ("Grek", "Greek", "el gre"),
    "eng": ("Latn", "English", "en"),
    "epo": ("Latn", "Esperanto", "eo"),
    "est": ("Latn", "Estonian", "ekk et"),
    "eus": ("Latn", "Basque", "baq eu"),
    "ewe": ("Latn", "Ewe", "ee"),
    "fao": ("Latn", "Faroese", "fo"),
    "fij": ("Latn", "Fijian", "fj"),
    "fin": ("Latn", "Finnish", "fi"),
    "fon": ("Latn", "Fon", ""),
    "fra": ("Latn", "French", "fr fre"),
    "fur": ("Latn", "Friulian", ""),
    "fuv": ("Latn", "Fulfulde", "ff ful"),
    "gla": ("Latn", "Scottish Gaelic", "gd"),
    "gle": ("Latn", "Irish", "ga"),
    "glg": ("Latn", "Galician", "gl"),
    "grn": ("Latn", "Guarani", "gn gug"),
    "guj": ("Gujr", "Gujarati", "gu"),
    "hat": ("Latn", "Haitian Creole", "ht"),
    "hau": ("Latn", "Hausa", "ha"),
    "heb": ("Hebr", "Hebrew", "he iw"),
    "hin": ("Deva", "Hindi", "hi"),
    "hne": ("Deva", "Chhattisgarhi", ""),
    "hrv": ("Latn", "Croatian", "hr scr"),
    "hun": ("Latn", "Hungarian", "hu"),
    "hye": ("Armn", "Armenian", "arm hy"),
    "ibo": ("Latn", "Igbo", "ig"),
    "ilo": ("Latn", "Ilocano", ""),
    "ind": ("Latn", "Indonesian", "id in"),
    "isl": ("Latn", "Icelandic", "ice is"),
    "ita": ("Latn", "Italian", "it"),
    "jav": ("Latn", "Javanese", "jv jw"),
    "jpn": ("Jpan", "Japanese", "ja"),
    "kab": ("Latn", "Kabyle", ""),
    "kac": ("Latn", "Jingpho", ""),
    "kam": ("Latn", "Kamba", ""),
    "kan": ("Knda", "Kannada", "kn"),
    "kas": ("Arab Deva", "Kashmiri", "ks"),
    "kat": ("Geor", "Georgian", "geo ka"),
    "knc": ("Arab Latn", "Kanuri", "kau kr"),
    "kaz": ("Cyrl Latn", "Kazakh", "kk"),
    "kbp": ("Latn", "Kabiye", ""),
    "kea": ("Latn", "Kabuverdianu", ""),
    "khm": ("Khmr", "Khmer", "km"),
    "kik": ("Latn", "Kikuyu", "ki"),
    "kin": ("Latn", "Kinyarwanda", "rw"),
    "kir": ("Cyrl", "Kyrgyz", "ky"),
    "kmb": ("Latn", "Kimbundu", ""),
    "kmr": ("Latn", "Kurdish", "ku kur"),
    "kon": ("Latn", "Kikongo", "kg"),
    "kor": ("Hang", "Korean", "ko"),
    "lao": ("Laoo", "Lao", "lo"),
    "lij": ("Latn", "Ligurian", ""),
    "lim": ("Latn", "Limburgish", "li"),
    "lin": ("Latn", "Lingala", "ln"),
    "lit": ("Latn", "Lithuanian", "lt"),
    "lmo": ("Latn", "Lombard", ""),
    "ltg": ("Latn", "Latgalian", ""),
    "ltz": ("Latn", "Luxembourgish", "lb"),
    "lua": ("Latn", "Luba-Kasai", ""),
    "lug": ("Latn", "Ganda", "lg"),
    "luo": ("Latn", "Luo", ""),
    "lus": ("Latn", "Mizo", ""),
    "lvs": ("Latn", "Latvian", "lav lv"),
    "mag": ("Deva", "Magahi", ""),
    "mai": ("Deva", "Maithili", ""),
    "mal": ("Mlym", "Malayalam", "ml"),
    "mar": ("Deva", "Marathi", "mr"),
    "min": ("Arab Latn", "Minangkabau", ""),
    "mkd": ("Cyrl", "Macedonian", "mac mk"),
    "plt": ("Latn", "Malagasy", "mg mlg"),
    "mlt": ("Latn", "Maltese", "mt"),
    "mni": ("Beng", "Meitei", ""),
    "khk": ("Cyrl", "Mongolian", "mn mon"),
    "mos": ("Latn", "Mossi", ""),
    "mri": ("Latn", "Maori", "mao mi"),
    "mya": ("Mymr", "Burmese", "bur my"),
    "nld": ("Latn", "Dutch", "dut nl"),
    "nno": ("Latn", "Norwegian Nynorsk", "nn"),
    "nob": ("Latn", "Norwegian", "nb no nor"),
    "npi": ("Deva", "Nepali", "ne nep"),
    "nso": ("Latn", "Northern Sotho", ""),
    "nus": ("Latn", "Nuer", ""),
    "nya": ("Latn", "Nyanja", "ny"),
    "oci": ("Latn", "Occitan", "oc"),
    "gaz": ("Latn", "Oromo", "om orm"),
    "ory": ("Orya", "Odia", "or ori"),
    "pag": ("Latn", "Pangasinan", ""),
    "pan": ("Guru", "Punjabi", "pa"),
    "pap": ("Latn", "Papiamento", ""),
    "pes": ("Arab", "Persian", "fa fas per"),
    "pol": ("Latn", "Polish", "pl"),
    "por": ("Latn", "Portuguese", "pt"),
    "prs": ("Arab", "Dari", ""),
    "pbt": ("Arab", "Pashto", "ps pus"),
    "quy": ("Latn", "Quechua", "qu que"),
    "ron": ("Latn", "Romanian", "mo ro rum"),
    "run": ("Latn", "Rundi", "rn"),
    "rus": ("Cyrl", "Russian", "ru"),
    "sag": ("Latn", "Sango", "sg"),
    "san": ("Deva", "Sanskrit", "sa"),
    "sat": ("Olck Beng", "Santali", ""),
    "scn": ("Latn", "Sicilian", ""),
    "shn": ("Mymr", "Shan", ""),
    "sin": ("Sinh", "Sinhala", "si"),
    "slk": ("Latn", "Slovak", "sk slo"),
    "slv": ("Latn", "Slovenian", "sl"),
    "smo": ("Latn", "Samoan", "sm"),
    "sna": ("Latn", "Shona", "sn"),
    "snd": ("Arab", "Sindhi", "sd"),
    "som": ("Latn", "Somali", "so"),
    "sot": ("Latn", "Southern Sotho", "st"),
    "spa": ("Latn", "Spanish", "es"),
    "als": ("Latn", "Albanian", "alb sq sqi"),
    "srd": ("Latn", "Sardinian", "sc"),
    "srp": ("Cyrl Latn", "Serbian", "scc sr"),
    "ssw": ("Latn", "Swati", "ss"),
    "sun": ("Latn", "Sundanese", "su"),
    "swe": ("Latn", "Swedish", "sv"),
    "swh": ("Latn", "Swahili", "sw swa"),
    "szl": ("Latn", "Silesian", ""),
    "tam": ("Taml", "Tamil", "ta"),
    "tat": ("Cyrl", "Tatar", "tt"),
    "tel": ("Telu", "Telugu", "te"),
    "tgk": ("Cyrl", "Tajik", "tg"),
    "tgl": ("Latn", "Tagalog", "fil tl"),
    "tha": ("Thai", "Thai", "th"),
    "tir": ("Ethi", "Tigrinya", "ti"),
    "taq": ("Latn Tfng", "Tamasheq", "tmh"),
    "tpi": ("Latn", "Tok Pisin", ""),
    "tsn": ("Latn", "Tswana", "tn"),
    "tso": ("Latn", "Tsonga", "ts"),
    "tuk": ("Latn", "Turkmen", "tk"),
    "tum": ("Latn", "Tumbuka", ""),
    "tur": ("Latn", "Turkish", "tr"),
    "twi": ("Latn", "Twi", "tw"),
    "tzm": ("Tfng", "Central Atlas Tamazight", ""),
    "uig": ("Arab", "Uyghur", "ug"),
    "ukr": ("Cyrl", "Ukrainian", "uk"),
    "umb": ("Latn", "Umbundu", ""),
    "urd": ("Arab", "Urdu", "ur"),
    "uzn": ("Latn Cyrl", "Uzbek", "uz uzb"),
    "vec": ("Latn", "Venetian", ""),
    "vie": ("Latn", "Vietnamese", "vi"),
    "war": ("Latn", "Waray", ""),
    "wol": ("Latn", "Wolof", "wo"),
    "xho": ("Latn", "Xhosa", "xh"),
    "ydd": ("Hebr", "Yiddish", "yi yid"),
    "yor": ("Latn", "Yoruba", "yo"),
    "yue": ("Hant Hans", "Cantonese", ""),
    "zho": ("Hans Hant", "Chinese", "chi cmn zh"),
    "zsm": ("Latn Arab", "Malay", "may ms msa"),
    "zul": ("Latn", "Zulu", "zu"),
    "arg": ("Latn", "Aragonese", "an"),
    "bcl": ("Latn", "Central Bikol", ""),
    "bre": ("Latn", "Breton", "br"),
    "ext": ("Latn", "Extremaduran", ""),
    "fry": ("Latn", "Western Frisian", "fy"),
    "gcf": ("Latn", "Guadeloupean Creole", ""),
    "gcr": ("Latn", "Guianese Creole", ""),
    "gom": ("Deva Latn", "Konkani", "kok"),
    "grc": ("Grek", "Ancient Greek", ""),
    "guw": ("Latn", "Gun", ""),
    "hbo": ("Hebr", "Ancient Hebrew", ""),
    "lat": ("Latn", "Latin", "la"),
    "pcm": ("Latn", "Nigerian Pidgin", ""),
    "pnb": ("Arab", "Western Panjabi", "lah"),
    "sdh": ("Arab", "Southern Kurdish", ""),
    "sme": ("Latn", "Northern Sami", "se"),
    "uzs": ("Arab", "Southern Uzbek", ""),
    "vol": ("Latn", "Volapuk", "vo"),
    "wln": ("Latn", "Walloon", "wa"),
    "wuu": ("Hans Hant", "Wu Chinese", ""),
}
# fmt: on

# The same language written in another script is another individual language in FLORES.
_BY_SCRIPT = {("azj", "Arab"): "azb", ("kmr", "Arab"): "ckb", ("pan", "Arab"): "pnb",
              ("uzn", "Arab"): "uzs"}

# ISO 15924 codes the product and FLORES-200 use, with display names.
_SCRIPTS = {
    "Arab": "Arabic", "Armn": "Armenian", "Beng": "Bengali", "Cyrl": "Cyrillic",
    "Deva": "Devanagari", "Ethi": "Ethiopic", "Geor": "Georgian", "Grek": "Greek",
    "Gujr": "Gujarati", "Guru": "Gurmukhi", "Hang": "Hangul", "Hans": "Simplified",
    "Hant": "Traditional", "Hebr": "Hebrew", "Jpan": "Japanese", "Khmr": "Khmer",
    "Knda": "Kannada", "Laoo": "Lao", "Latn": "Latin", "Mlym": "Malayalam", "Mong": "Mongolian",
    "Mymr": "Myanmar", "Nkoo": "N'Ko", "Olck": "Ol Chiki", "Orya": "Odia", "Sinh": "Sinhala",
    "Syrc": "Syriac", "Taml": "Tamil", "Telu": "Telugu", "Tfng": "Tifinagh", "Thaa": "Thaana",
    "Thai": "Thai", "Tibt": "Tibetan", "Cher": "Cherokee", "Cans": "Canadian Syllabics",
}

# BCP-47 regions that imply a Chinese script (zh-CN, zh-TW...).
_CHINESE_REGION_SCRIPT = {"cn": "Hans", "sg": "Hans", "my": "Hans", "tw": "Hant", "hk": "Hant",
                          "mo": "Hant"}

# Other English names people type.
_EXTRA_NAMES = {
    "farsi": "pes", "mandarin": "zho", "filipino": "tgl", "panjabi": "pan", "oriya": "ory",
    "sinhalese": "sin", "myanmar": "mya", "castilian": "spa", "flemish": "nld",
    "moldavian": "ron", "gaelic": "gla", "kirghiz": "kir", "pushto": "pbt", "uighur": "uig",
    "bangla": "ben", "haitian": "hat", "bokmal": "nob", "norwegian bokmal": "nob",
    "slovene": "slv", "luganda": "lug", "standard arabic": "arb",
    "modern standard arabic": "arb", "persian farsi": "pes", "kiswahili": "swh",
    "bahasa indonesia": "ind", "bahasa melayu": "zsm", "malagasy": "plt", "sotho": "sot",
    "sesotho": "sot", "setswana": "tsn", "isizulu": "zul", "isixhosa": "xho",
    "simplified chinese": "zho_Hans", "traditional chinese": "zho_Hant", "unknown": UNKNOWN,
}

_CODE = re.compile(r"^([a-z]{2,3})(?:[-_]([a-z0-9]+))*$")


def _fold(text: str) -> str:
    """Lower case, no accents, words separated by one space (for English names)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(re.sub(r"[^a-z]+", " ", text).split())


@functools.cache
def _aliases() -> dict[str, str]:
    """Every code spelling (lower case) -> ISO 639-3 code of the table."""
    out = {code: code for code in _LANGS}
    for code, (_, _, others) in _LANGS.items():
        for alias in others.split():
            out.setdefault(alias, code)
    out[UNKNOWN] = UNKNOWN
    return out


@functools.cache
def _names() -> dict[str, str]:
    """Folded English name -> code (``hindi`` -> ``hin``)."""
    out = {_fold(name): code for code, (_, name, _) in _LANGS.items()}
    out.update({_fold(k): v for k, v in _EXTRA_NAMES.items()})
    return out


def _script(tag: str) -> str | None:
    """``hans`` -> ``Hans`` when it is a script the table knows."""
    title = tag[:1].upper() + tag[1:].lower()
    return title if title in _SCRIPTS else None


def _close(value: str) -> list[str]:
    pool = list(_aliases()) + list(_names())
    hits = difflib.get_close_matches(value.lower(), pool, n=4, cutoff=0.75)
    out = []
    for hit in hits:
        code = _aliases().get(hit) or _names()[hit]
        if code not in out:
            out.append(code)
    return out


def _unknown(value: str, known: Iterable[str] | None = None) -> UnknownLanguageError:
    msg = f"unknown language {value!r}"
    close = _close(value) if value.strip() else []
    if close:
        msg += "; did you mean " + ", ".join(f"{c} ({display_name(c)})" for c in close) + "?"
    if known is not None:
        msg += "; known: " + (", ".join(sorted(known)) or "none (the index is empty)")
    return UnknownLanguageError(msg)


def normalize(code: str) -> str:
    """The product's code for ``code``: ``hin_Deva`` when a script is given, else ``hin``.

    Accepts ISO 639-1 (``hi``), ISO 639-2/639-3 (``hin``, ``ara``, ``per``), FLORES-200
    (``hin_Deva``, any case), BCP-47 (``zh-Hans``, ``zh-TW``, ``sr-Latn``, ``pt-BR``: regions
    are dropped except that they give Chinese its script) and English names (``Hindi``).
    ``und`` stays ``und``. Raises UnknownLanguageError, with close matches, for anything else.
    """
    raw = code.strip() if isinstance(code, str) else ""
    low = raw.lower()
    if not low:
        raise _unknown(str(code))
    name = _names().get(_fold(raw))
    if name is not None and not _CODE.match(low):
        return name
    m = _CODE.match(low)
    if not m:
        if name is not None:
            return name
        raise _unknown(raw)
    parts = re.split(r"[-_]", low)
    lang = _aliases().get(parts[0])
    if lang is None:
        if name is not None:  # a three-letter name such as "lao" is also a code
            return name
        raise _unknown(raw)
    if lang == UNKNOWN:
        return UNKNOWN
    script = None
    for sub in parts[1:]:
        if len(sub) == 4 and sub.isalpha():
            script = _script(sub)
            if script is None:
                raise _unknown(raw)
        elif lang == "zho" and script is None and sub in _CHINESE_REGION_SCRIPT:
            script = _CHINESE_REGION_SCRIPT[sub]
        elif not (len(sub) == 2 and sub.isalpha() or len(sub) == 3 and sub.isdigit()
                  or len(sub) >= 5):
            raise _unknown(raw)  # neither a region nor a variant: not a tag we understand
    if script is None:
        return lang
    lang = _BY_SCRIPT.get((lang, script), lang)
    return f"{lang}_{script}"


def canonical(code: str) -> str:
    """Like :func:`normalize`, but a well-formed code the table lacks is kept (lower-cased
    language, title-cased script) instead of refused: for datasets with rare languages."""
    try:
        return normalize(code)
    except UnknownLanguageError:
        m = re.match(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?$", code.strip())
        if not m:
            raise
        lang, script = m.group(1).lower(), m.group(2)
        return f"{lang}_{script.title()}" if script else lang


def _split(code: str) -> tuple[str, str]:
    lang, _, script = canonical(code).partition("_")
    return lang, script


def matches(filter_code: str, passage_code: str) -> bool:
    """Whether a passage labelled ``passage_code`` is in the language ``filter_code`` names.

    A filter without script (``hin``, ``hi``, ``Hindi``) matches every script of the language;
    with a script (``zho_Hant``) only that script. A passage code without script matches any
    filter script of its language. Codes are normalised first (``ar`` matches ``arb_Arab``).
    """
    try:
        f_lang, f_script = _split(filter_code)
        p_lang, p_script = _split(passage_code)
    except UnknownLanguageError:
        return False
    return f_lang == p_lang and (not f_script or not p_script or f_script == p_script)


def display_name(code: str) -> str:
    """English name: ``Hindi`` for ``hin_Deva``, ``Chinese (Traditional)`` for ``zho_Hant``.

    The script is named when it is not the language's usual one, and always for Chinese; an
    unknown code is returned as it is.
    """
    try:
        lang, script = _split(code)
    except UnknownLanguageError:
        return code
    if lang == UNKNOWN:
        return "unknown"
    if lang not in _LANGS:
        return code
    scripts, name, _ = _LANGS[lang]
    usual = scripts.split()[0]
    if script and (script != usual or usual in ("Hans", "Hant")):
        return f"{name} ({_SCRIPTS.get(script, script)})"
    return name


def resolve_filters(values: Iterable[str], known_codes: Iterable[str]) -> list[str]:
    """User ``--lang`` values -> normalised codes, refusing what cannot match.

    ``known_codes`` are the languages the index holds (``hin_Deva``...). A value that is no
    language, or names none of the known languages, raises UnknownLanguageError listing them.
    """
    known = sorted({k for k in known_codes if k})
    listed = [f"{k} ({display_name(k)})" for k in known]
    out: list[str] = []
    for value in values:
        try:
            code = normalize(value)
        except UnknownLanguageError:
            raise _unknown(value, listed) from None
        if not any(matches(code, k) for k in known):
            raise UnknownLanguageError(
                f"no passages in language {value!r} ({display_name(code)}, {code}); known: "
                + (", ".join(listed) or "none (the index is empty)"))
        if code not in out:
            out.append(code)
    return out


def known_codes() -> list[str]:
    """ISO 639-3 codes of every language in the table."""
    return sorted(_LANGS)
