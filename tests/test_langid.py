"""Language identification on real sentences in several languages and scripts."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xsearch.bench.datasets import default_sib200_root
from xsearch.langid import (
    UNKNOWN,
    LangGuess,
    detect,
    detect_many,
    majority_language,
    script_of,
)

SENTENCES = {
    "eng_Latn": "The library opens at nine in the morning and closes late in the evening.",
    "fra_Latn": "La bibliothèque ouvre à neuf heures du matin et ferme tard le soir.",
    "rus_Cyrl": "Библиотека открывается в девять часов утра и закрывается поздно вечером.",
    "arb_Arab": "تفتح المكتبة في الساعة التاسعة صباحا وتغلق في وقت متأخر من المساء.",
    "hin_Deva": "पुस्तकालय सुबह नौ बजे खुलता है और शाम को देर से बंद होता है।",
    "zho_Hans": "图书馆早上九点开门，晚上很晚才关门。",
    "zho_Hant": "圖書館早上九點開門，晚上很晚才關門。",
    "jpn_Jpan": "図書館は朝九時に開いて、夜遅くに閉まります。",
    "kor_Hang": "도서관은 아침 아홉 시에 문을 열고 저녁 늦게 닫습니다.",
    "amh_Ethi": "ቤተ መጻሕፍቱ ጠዋት በሦስት ሰዓት ይከፈታል፤ ምሽት ላይ ዘግይቶ ይዘጋል።",
    "tha_Thai": "ห้องสมุดเปิดเวลาเก้าโมงเช้าและปิดดึกในตอนเย็น",
    "swh_Latn": "Maktaba hufunguliwa saa tatu asubuhi na kufungwa jioni sana.",
}


@pytest.mark.parametrize("code", sorted(SENTENCES))
def test_detect_sentence(code: str) -> None:
    guess = detect(SENTENCES[code])
    assert guess.code == code
    assert 0.0 < guess.score <= 1.0
    assert (guess.language, guess.script) == tuple(code.split("_"))


def test_detect_many_matches_detect() -> None:
    texts = list(SENTENCES.values())
    assert detect_many(texts) == [detect(t) for t in texts]
    assert detect_many([]) == []


@pytest.mark.parametrize(
    "text", ["", "   \n", "12345", "3.14 + 2.71 = 5.85", "!!! ???", "a1b2c3d4e5f6"]
)
def test_no_language_is_unknown(text: str) -> None:
    assert detect(text) == LangGuess(UNKNOWN, 0.0)


def test_unsupported_script_is_unknown() -> None:
    assert detect("𐌰𐌱𐌲𐌳𐌴") == LangGuess(UNKNOWN, 0.0)  # Gothic


def test_short_text_still_guessed_with_low_score() -> None:
    guess = detect("Hello")
    assert guess.code != UNKNOWN and guess.script == "Latn"
    assert guess.score < 0.5


def test_script_comes_from_the_text() -> None:
    # Serbian in both scripts; the model may call the Latin one Croatian, the script must follow
    assert detect("Ово је реченица на српском језику, написана ћирилицом.").code == "srp_Cyrl"
    assert detect("Ovo je rečenica na srpskom jeziku, napisana latinicom.").script == "Latn"


def test_chinese_with_english_terms_stays_chinese() -> None:
    assert detect("我用Python写了一个search engine，速度很快。").code == "zho_Hans"


def test_script_only_fixes() -> None:
    assert detect("안녕").code == "kor_Hang"
    assert detect("ありがとう").code == "jpn_Jpan"
    assert detect("สวัสดี").code == "tha_Thai"
    # Tigrinya (no model class): its ቐ/ኽ letters are not Amharic
    assert detect("ሎሚ ቐልጢፉ ናብ ቤት ትምህርቲ ከይዱ፡ ክኽእል እየ ኢሉ።").code == "tir_Ethi"


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Hello, world", "Latn"),
        ("Привет, мир", "Cyrl"),
        ("مرحبا بالعالم", "Arab"),
        ("नमस्ते दुनिया", "Deva"),
        ("你好，世界。这是简体字。", "Hans"),
        ("你好，世界。這是繁體字。", "Hant"),
        ("こんにちは世界", "Jpan"),
        ("東京は日本の首都です", "Jpan"),
        ("안녕하세요", "Hang"),
        ("ሰላም ለዓለም", "Ethi"),
        ("שלום עולם", "Hebr"),
        ("Γειά σου Κόσμε", "Grek"),
        ("สวัสดีชาวโลก", "Thai"),
        ("வணக்கம் உலகம்", "Taml"),
        ("ওহে বিশ্ব", "Beng"),
        ("2024-01-01 12:00", "Zyyy"),
        ("", "Zyyy"),
        ("𐌰𐌱𐌲", "Zzzz"),
        ("Der Name ist 山田 Tarō", "Latn"),
    ],
)
def test_script_of(text: str, script: str) -> None:
    assert script_of(text) == script


def test_majority_language_weighted() -> None:
    guesses = [LangGuess("eng_Latn", 0.9), LangGuess("fra_Latn", 0.8), LangGuess("fra_Latn", 0.7)]
    assert majority_language(guesses) == "fra_Latn"
    assert majority_language(guesses, [500, 100, 120]) == "eng_Latn"


def test_majority_language_ignores_unknown_and_breaks_ties_by_order() -> None:
    guesses = [LangGuess(UNKNOWN, 0.0), LangGuess("deu_Latn", 0.9), LangGuess("hin_Deva", 0.9)]
    assert majority_language(guesses, [1000, 10, 10]) == "deu_Latn"
    assert majority_language([LangGuess(UNKNOWN, 0.0)]) == UNKNOWN
    assert majority_language([]) == UNKNOWN


def test_majority_language_needs_one_weight_per_guess() -> None:
    with pytest.raises(ValueError):
        majority_language([LangGuess("eng_Latn", 1.0)], [1.0, 2.0])


def test_every_model_label_has_a_code() -> None:
    from xsearch.langid import _LABELS, _NON_LANGUAGE
    from xsearch.langid_model import identifier

    labels = set(identifier().labels) - {_NON_LANGUAGE}
    assert labels <= set(_LABELS)
    for lang, scripts in _LABELS.values():
        assert re.fullmatch(r"[a-z]{3}", lang)
        assert all(re.fullmatch(r"[A-Z][a-z]{3}", s) for s in scripts.split())


def test_import_does_not_load_the_model() -> None:
    code = "import sys, xsearch.langid; print('py3langid' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr


def _sib200_dir() -> Path:
    return default_sib200_root()


@pytest.mark.slow
@pytest.mark.skipif(not _sib200_dir().is_dir(), reason="needs ../shared/data/sib200")
@pytest.mark.parametrize(
    "lang",
    ["eng_Latn", "rus_Cyrl", "arb_Arab", "hin_Deva", "mai_Deva", "zho_Hans", "jpn_Jpan",
     "swh_Latn"],
)
def test_sib200_dev_accuracy(lang: str) -> None:
    path = _sib200_dir() / lang / "dev.tsv"
    with path.open(encoding="utf-8", newline="") as f:
        texts = [r["text"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    accuracy = sum(g.code == lang for g in detect_many(texts)) / len(texts)
    assert accuracy >= 0.9


def test_maithili_is_told_from_hindi_and_nepali() -> None:
    assert detect("हमर गाम मे सभ लोक खेती करैत अछि।").code == "mai_Deva"
    assert detect("ओ काल्हि बजार गेल छल आ ओतय सँ फल कीनलक।").code == "mai_Deva"
    assert detect("मेरे गाँव में सभी लोग खेती करते हैं।").code == "hin_Deva"
    assert detect("मेरो गाउँमा सबै मानिसहरू खेती गर्छन्।").code == "npi_Deva"


def test_the_langid_model_is_unpacked_once_into_the_cache_and_rebuilt_when_damaged(
        tmp_path, monkeypatch):
    from pathlib import Path

    from py3langid.langid import MODEL_DIR, MODEL_FILE
    from py3langid.modelio import load_model

    from xsearch import langid_model as L

    monkeypatch.setenv("XSEARCH_CACHE", str(tmp_path))
    src = Path(MODEL_DIR) / MODEL_FILE
    first = L.unpacked_model(src)
    first_depth = first[6]
    (cached,) = tmp_path.glob("langid-*")
    assert cached.is_dir()
    reference = load_model(src)
    assert first[2] == reference[2] and list(first[4]) == list(reference[4])
    assert (first[0] == reference[0]).all() and (first[1] == reference[1]).all()
    assert np.array_equal(np.asarray(first[3]), np.frombuffer(reference[3], dtype=np.uint32))
    assert first[5] == list(reference[5])
    nextmove = cached / "nextmove.npy"
    mtime = nextmove.stat().st_mtime_ns
    L.unpacked_model(src)
    assert nextmove.stat().st_mtime_ns == mtime  # read back, not unpacked again
    expected = np.asarray(first[3]).copy()
    del first  # its mapping of the file cut short below would fault (SIGBUS) if read
    with open(nextmove, "r+b") as fh:  # cut short, as by a full disk
        fh.truncate(nextmove.stat().st_size // 2)
    again = L.unpacked_model(src)
    assert again[2] == reference[2] and nextmove.stat().st_size > 1_000_000
    assert np.array_equal(np.asarray(again[3]), expected)
    assert not list(tmp_path.glob("*.tmp"))
    assert first_depth == again[6] == 6
    (cached / "dfa_depth.npy").unlink()  # a copy made before the depth was kept
    assert L.unpacked_model(src)[6] == 6 and (cached / "dfa_depth.npy").is_file()
    # Same size and header, data zeroed (or overwritten): it read back wrong languages for
    # every passage, or raised IndexError, until the user deleted it.
    del again
    ptc = cached / "ptc.npy"
    size = ptc.stat().st_size
    with open(ptc, "r+b") as fh:
        fh.seek(128)  # past the .npy header
        fh.write(b"\0" * (size - 128))
    assert np.array_equal(np.asarray(L.unpacked_model(src)[0]), reference[0])


def _corpus_texts() -> list[str]:
    root = Path(__file__).resolve().parents[1] / "data" / "corpus"
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.rglob("*.txt"))]
    rng = np.random.default_rng(7)
    noise = [bytes(rng.integers(0, 256, n)).decode("latin-1") for n in (0, 1, 5, 6, 7, 700)]
    return texts + noise + ["", "a", "ab", "12345", "\U0001F600" * 3]


def test_the_vector_walk_counts_the_features_py3langid_counts() -> None:
    from py3langid.langid import visit_counts

    from xsearch.langid_model import feature_counts, identifier

    ident = identifier()
    assert ident._depth == 6
    shallower = 0
    for text in _corpus_texts():
        raw = ident._encode(text[:2000])
        expected = visit_counts(ident.tk_nextmove, ident._rowbase, ident.tk_output, raw) or {}
        got = feature_counts(raw, *ident._tables, ident._depth)
        assert list(got.items()) == list(expected.items())  # same counts, same order
        shallower += feature_counts(raw, *ident._tables, 5) != got
    assert shallower  # a window one byte short is wrong: the texts can tell


def test_identifier_scores_long_texts_as_py3langid_does() -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from xsearch.langid_model import VECTOR_WALK_BYTES, identifier

    fast, plain = identifier(), LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    long_texts = [t[:2000] for t in _corpus_texts() if len(t.encode()) >= VECTOR_WALK_BYTES]
    assert len(long_texts) >= 20
    for text in long_texts:
        assert fast.rank(text) == plain.rank(text)


def test_a_short_quote_in_another_script_does_not_relabel_the_text() -> None:
    # The model put Hindi (or Arabic) first on the quote; going down its list for a language
    # written in Latin letters gave Konkani (gom_Latn) and Guadeloupean Creole (gcf_Latn).
    english = ("Field notes from the football tournament. The home side won the final on "
               "penalties after a two-all draw, and the captain dedicated the trophy to the "
               "fans. The local newspaper headline read: ")
    assert detect(english + "मेज़बान टीम ने पेनल्टी शूटआउट में फाइनल जीतकर इतिहास रच दिया"
                  ).code == "eng_Latn"
    assert detect(english + "الفريق المضيف يفوز بالنهائي بركلات الترجيح").code == "eng_Latn"
    assert detect("फाइनल में पेनल्टी से जीत हुई और घरेलू टीम ने कप जीता।").code == "hin_Deva"


@pytest.mark.parametrize("text, code", [
    ("北京大学", "zho_Hans"),  # the model: Wu
    ("Cell（细胞）一词源自拉丁语cella（意思是小房间）。", "zho_Hans"),  # the model: Wu
    ("侬好，今朝天气老好个。", "wuu_Hans"),
    ("我哋係香港人，唔該晒。", "yue_Hant"),
    # Tigrinya without the letters Amharic lacks: its function words tell it (ኣብ, in).
    ("ትግርኛ ቋንቋ ኣብ ኤርትራን ኢትዮጵያን ይዝረብ።", "tir_Ethi"),
    ("አማርኛ የኢትዮጵያ የሥራ ቋንቋ ነው።", "amh_Ethi"),
])
def test_chinese_varieties_and_tigrinya_need_words_of_their_own(text, code) -> None:
    assert detect(text).code == code
