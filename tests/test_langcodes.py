"""Language codes: every common spelling -> the product's FLORES codes, and `--lang` on a real
index through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xsearch import langcodes as L
from xsearch.cli import cli
from xsearch.errors import UnknownLanguageError


@pytest.mark.parametrize(("given", "want"), [
    # ISO 639-1, 639-2/B, 639-3, any case
    ("hi", "hin"), ("HIN", "hin"), ("en", "eng"), ("de", "deu"), ("ger", "deu"),
    ("fre", "fra"), ("iw", "heb"), ("in", "ind"), ("tl", "tgl"), ("fil", "tgl"),
    # macrolanguages -> the individual language FLORES-200 uses
    ("ar", "arb"), ("ara", "arb"), ("zh", "zho"), ("zho", "zho"), ("cmn", "zho"),
    ("fa", "pes"), ("per", "pes"), ("fas", "pes"), ("sw", "swh"), ("swa", "swh"),
    ("ms", "zsm"), ("ne", "npi"), ("et", "est"), ("ekk", "est"), ("lv", "lvs"),
    ("uz", "uzn"), ("mn", "khk"), ("sq", "als"), ("om", "gaz"), ("ps", "pbt"),
    ("no", "nob"), ("ku", "kmr"), ("az", "azj"), ("yi", "ydd"), ("qu", "quy"),
    # FLORES-200, case-insensitive
    ("hin_Deva", "hin_Deva"), ("HIN_deva", "hin_Deva"), ("zho_hant", "zho_Hant"),
    ("arb_Latn", "arb_Latn"),
    # BCP-47: script kept, region dropped (but it gives Chinese its script)
    ("zh-Hans", "zho_Hans"), ("zh-Hant", "zho_Hant"), ("zh-TW", "zho_Hant"),
    ("zh-CN", "zho_Hans"), ("zh_HK", "zho_Hant"), ("zh-Hant-HK", "zho_Hant"),
    ("sr-Latn", "srp_Latn"), ("sr-Cyrl-RS", "srp_Cyrl"), ("pt-BR", "por"),
    ("en-US", "eng"), ("es-419", "spa"), ("az-Arab", "azb_Arab"), ("ku-Arab", "ckb_Arab"),
    # English names
    ("hindi", "hin"), ("Arabic", "arb"), ("Chinese", "zho"), ("Persian", "pes"),
    ("farsi", "pes"), ("Norwegian Bokmål", "nob"), ("Traditional Chinese", "zho_Hant"),
    ("  Swahili ", "swh"), ("und", "und"),
])
def test_normalize(given: str, want: str) -> None:
    assert L.normalize(given) == want


@pytest.mark.parametrize("bad", ["xx_Yyyy", "*", "hin_Xyzw", "", "xyz", "hin-*", "zz"])
def test_normalize_refuses(bad: str) -> None:
    with pytest.raises(UnknownLanguageError, match="unknown language"):
        L.normalize(bad)


def test_unknown_suggests_close_matches() -> None:
    with pytest.raises(UnknownLanguageError, match=r"did you mean hin \(Hindi\)"):
        L.normalize("hindu")


def test_every_code_the_product_emits_is_known() -> None:
    from xsearch.langid import _LABEL_BY_SCRIPT, _LABELS

    for label, (lang, scripts) in _LABELS.items():
        assert L.normalize(label) == lang, label
        for script in scripts.split():
            code = _LABEL_BY_SCRIPT.get((label, script), lang) + "_" + script
            assert L.normalize(code) == code
            assert L.display_name(code) != code


def test_matches() -> None:
    assert L.matches("hi", "hin_Deva")
    assert L.matches("Hindi", "hin_Deva")
    assert L.matches("hin", "hin_Latn")  # a bare language matches all its scripts
    assert L.matches("zh", "zho_Hant") and L.matches("zh", "zho_Hans")
    assert L.matches("zh-TW", "zho_Hant") and not L.matches("zh-TW", "zho_Hans")
    assert L.matches("zho_Hans", "zho")  # a label without script does not contradict
    assert L.matches("ar", "arb_Arab") and not L.matches("ar", "arz_Arab")
    assert not L.matches("hin", "mai_Deva")
    assert not L.matches("xx_Yyyy", "hin_Deva")
    assert L.matches("quc", "quc")  # a well-formed code outside the table still compares


def test_display_name() -> None:
    assert L.display_name("hin_Deva") == "Hindi"
    assert L.display_name("hin") == "Hindi"
    assert L.display_name("zho_Hant") == "Chinese (Traditional)"
    assert L.display_name("zho_Hans") == "Chinese (Simplified)"
    assert L.display_name("arb_Latn") == "Arabic (Latin)"
    assert L.display_name("und") == "unknown"
    assert L.display_name("qqq") == "qqq"


def test_canonical_keeps_well_formed_rare_codes() -> None:
    assert L.canonical("AR") == "arb"
    assert L.canonical("QUC") == "quc"
    assert L.canonical("nav-latn") == "nav_Latn"
    with pytest.raises(UnknownLanguageError):
        L.canonical("not a language at all")


def test_resolve_filters() -> None:
    held = ["hin_Deva", "zho_Hans", "eng_Latn", "und"]
    assert L.resolve_filters(["hi", "Hindi", "HIN_deva"], held) == ["hin", "hin_Deva"]
    assert L.resolve_filters(["zh-CN", "en"], held) == ["zho_Hans", "eng"]
    with pytest.raises(UnknownLanguageError,
                       match=r"unknown language '\*'.*known: eng_Latn \(English\), hin_Deva"):
        L.resolve_filters(["*"], held)
    with pytest.raises(UnknownLanguageError, match="no passages in language 'fi'.*known:"):
        L.resolve_filters(["fi"], held)


# ------------------------------------------------------------------ --lang through the CLI


def _langs_of_hits(index, lang: str) -> set[str]:
    result = CliRunner().invoke(cli, ["query", "bread and baking", "--index", str(index),
                                      "--lang", lang, "-k", "10", "--json"])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]
    assert hits, f"--lang {lang} found nothing"
    return {h["language"] for h in hits}


@pytest.mark.parametrize("lang", ["hindi", "hi", "HIN", "hin_Deva", "Hindi"])
def test_cli_lang_spellings(corpus_index, lang: str) -> None:
    assert _langs_of_hits(corpus_index, lang) == {"hin_Deva"}


def test_cli_lang_macrolanguage_and_bcp47(corpus_index) -> None:
    assert _langs_of_hits(corpus_index, "ar") == {"arb_Arab"}
    assert _langs_of_hits(corpus_index, "zh-Hans") == {"zho_Hans"}


@pytest.mark.parametrize("lang", ["xx_Yyyy", "*", "hin_*"])
def test_cli_unknown_lang_refused(corpus_index, lang: str) -> None:
    result = CliRunner().invoke(cli, ["query", "bread", "--index", str(corpus_index),
                                      "--lang", lang])
    assert result.exit_code != 0
    assert "unknown language" in result.output
    assert "known: " in result.output and "hin_Deva (Hindi)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_lang_absent_from_index(corpus_index) -> None:
    result = CliRunner().invoke(cli, ["query", "bread", "--index", str(corpus_index),
                                      "--lang", "Finnish"])
    assert result.exit_code != 0
    assert "no passages in language 'Finnish'" in result.output and "known: " in result.output
