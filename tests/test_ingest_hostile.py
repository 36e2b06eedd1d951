"""The hostile-input campaign (issue #7) as tests: each file comes from the same generator as
benchmarks/hostile/campaign.py, sized down where that still proves the point."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import sqlite3
import stat
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from xsearch.cli import cli
from xsearch.errors import IngestError, SkippedFile
from xsearch.ingest import (
    Budget,
    BudgetExceeded,
    ReadOptions,
    file_fingerprint,
    normalize_text,
    read_bytes_as_text,
    read_file,
)
from xsearch.ingest.decode import decode

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "make_hostile", ROOT / "benchmarks" / "hostile" / "make_hostile.py"
)
H = importlib.util.module_from_spec(_spec)
sys.modules["make_hostile"] = H
_spec.loader.exec_module(H)


def make(name: str, tmp_path: Path, scale: float = 1.0) -> Path:
    return H.CASES[name](tmp_path / "corpus", scale)[0]


def utf8_safe(*values: object) -> None:
    for value in values:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- records


def test_jsonl_huge_integer_skips_that_record_only(tmp_path: Path) -> None:
    result = read_file(make("jsonl-huge-int", tmp_path))
    assert [d.record_id for d in result.docs] == ["r1", "r3"]
    assert len(result.warnings) == 1
    assert "line 2" in result.warnings[0] and "4300 digits" in result.warnings[0]


def test_jsonl_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    result = read_file(make("jsonl-surrogates", tmp_path))
    assert [d.record_id for d in result.docs] == ["s1", "\ufffd", "s3"]
    assert result.docs[0].text == "Broken \ufffd text about harbour cranes."
    assert result.docs[1].title == "T\ufffd"
    assert result.docs[1].metadata == {"tags": ["\ufffd"]}
    for doc in result.docs:
        utf8_safe(doc.record_id, doc.text, doc.title, doc.metadata)
    assert any("line 2: 3 lone surrogate" in w for w in result.warnings)
    assert normalize_text("a\ud800b\udc80") == "a\ufffdb\ufffd"


def test_jsonl_deep_nesting_skips_that_record_only(tmp_path: Path) -> None:
    result = read_file(make("jsonl-deep-nesting", tmp_path, 0.2))
    assert [d.record_id for d in result.docs] == ["ok"]
    assert "nested too deeply" in result.warnings[0]


def test_csv_nul_byte_is_stripped_with_a_warning(tmp_path: Path) -> None:
    result = read_file(make("csv-nul", tmp_path))
    assert [d.text for d in result.docs][1] == "The ferry leaves at seven every morning."
    assert len(result.docs) == 3
    assert result.warnings == [f"{tmp_path / 'corpus' / 'nul.csv'}: 1 NUL byte removed"]


def test_csv_oversized_record_is_skipped_alone(tmp_path: Path) -> None:
    path = make("csv-oversized-record", tmp_path, 0.002)  # a 4,999-char record
    result = read_file(path, ReadOptions(max_chars=4000))
    assert [d.record_id for d in result.docs] == ["1", "3"]
    assert "line 3: text too long (4,999 characters, limit 4,000" in result.warnings[0]
    assert len(read_file(path).docs) == 3  # no limit: all rows


# --------------------------------------------------------------------------- encodings


def test_txt_with_a_nul_byte_is_text(tmp_path: Path) -> None:
    result = read_file(make("txt-nul", tmp_path))
    assert "Stray byte here." in result.docs[0].text
    assert "1 NUL byte removed" in result.warnings[0]
    with pytest.raises(SkippedFile, match="binary file"):  # mostly NULs is still binary
        read_bytes_as_text(b"abc\x00\x00\x00\x00def\x00\x00\x00" * 20, "x.txt")
    import random

    noise = bytearray(random.Random(7).randbytes(4096).replace(b"\x00", b"\x01"))
    noise[100] = noise[2000] = 0  # random data with few NULs is binary, not damaged text
    with pytest.raises(SkippedFile, match="binary file"):
        read_bytes_as_text(bytes(noise), "noise.txt")


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("utf16-nobom-hindi", H.HINDI),
        ("utf16-nobom-chinese", H.CHINESE),
        ("utf16-nobom-arabic", H.ARABIC),
    ],
)
def test_bomless_utf16_in_any_script(tmp_path: Path, case: str, text: str) -> None:
    result = read_file(make(case, tmp_path))
    assert result.encoding == "utf-16-le"
    assert result.docs[0].text == normalize_text(text * 4).strip()
    assert "no byte order mark" in result.warnings[0]
    big_endian = tmp_path / "be.txt"
    big_endian.write_bytes((text * 4).encode("utf-16-be"))
    assert read_file(big_endian).encoding == "utf-16-be"


@pytest.mark.parametrize(
    ("text", "encoding", "nuls_at"),
    [
        ("Quokkas live near Perth.\n", "utf-8", (11,)),
        ("Кофе растёт на склонах.\n", "utf-8", (13,)),
        ("沿岸的农民依靠季节性洪水获得肥沃的土壤。\n", "utf-8", (6, 30)),
        ("किसान बाढ़ पर निर्भर हैं।\n", "utf-8", (10, 21)),
        ("Le café pousse à l'ombre.\n", "cp1252", (4, 20)),
    ],
)
def test_short_file_utf16_without_bom_or_8bit_with_stray_nuls(
    tmp_path: Path, text: str, encoding: str, nuls_at: tuple[int, ...]
) -> None:
    # The same short text both ways: as BOM-less UTF-16 (42-52 bytes) it is UTF-16; as 8-bit
    # text with one or two stray NULs it is that text with the NULs removed (was read as
    # UTF-16 into CJK-looking garbage, or refused as binary).
    for utf16 in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"{utf16}.txt"
        path.write_bytes(text.encode(utf16))
        assert 20 <= path.stat().st_size <= 60
        result = read_file(path)
        assert result.encoding == utf16
        assert result.docs[0].text == normalize_text(text).strip()
    damaged = bytearray(text.encode(encoding))
    for at in reversed(nuls_at):
        damaged.insert(at, 0)
    path = tmp_path / "damaged.txt"
    path.write_bytes(bytes(damaged))
    result = read_file(path)
    assert result.encoding == encoding
    assert result.docs[0].text == normalize_text(text).strip()
    removed = f"{len(nuls_at)} NUL byte{'s' if len(nuls_at) > 1 else ''} removed"
    assert result.warnings[0] == f"{path}: {removed}"
    assert not any("byte order mark" in w for w in result.warnings)


def test_cyrillic_utf8_with_a_nul_byte_is_not_utf16(tmp_path: Path) -> None:
    # Not only short files: two-byte UTF-8 read as UTF-16 is Hangul and CJK that scores as text.
    text = "Кофе растёт на тенистых склонах гор Эфиопии и Кении, где фермеры собирают ягоды.\n"
    data = (text * 6).encode("utf-8")
    path = tmp_path / "ru.txt"
    path.write_bytes(data[:400] + b"\x00" + data[400:])
    result = read_file(path)
    assert result.encoding == "utf-8"
    assert result.docs[0].text == (text * 6).strip()
    assert result.warnings == [f"{path}: 1 NUL byte removed"]


def test_reported_short_file_with_a_nul_is_indexed_as_english(tmp_path: Path) -> None:
    corpus = tmp_path / "cn"
    corpus.mkdir()
    (corpus / "n.txt").write_bytes(
        b"text with \x00 NUL bytes about coffee farming in the highlands"
    )
    index = tmp_path / "index"
    result = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "n.txt: 1 NUL byte removed" in result.output
    assert "byte order mark" not in result.output
    hits = CliRunner().invoke(cli, ["query", "coffee", "--index", str(index), "--json"])
    hit = json.loads(hits.output.splitlines()[0])
    assert hit["language"] == "eng_Latn"
    assert "about coffee farming in the highlands" in hit["snippet"]


def _with_nuls_at(data: bytes, offsets: tuple[int, ...]) -> bytes:
    """``data`` with NUL bytes inserted so that they end up at ``offsets``."""
    damaged = bytearray(data)
    for at in sorted(offsets):
        damaged.insert(at, 0)
    return bytes(damaged)


@pytest.mark.parametrize(
    ("text", "encoding", "nuls_at"),
    [
        # The reported file: b"Hello\x00 world\x00, this is\x00 a note.\n" was UTF-16-BE.
        ("Hello world, this is a note.\n", "utf-8", (5, 12, 22)),
        ("Quokkas live near Perth.\n", "utf-8", (2, 6, 10, 14, 18)),  # all at even offsets
        ("déjà vu\n", "utf-8", (0, 4, 8)),  # a third of the file, all at even offsets
        ("Le café pousse à l'ombre.\n", "utf-8", (2, 9, 17, 24)),
        ("Кофе растёт на склонах.\n", "utf-8", (3, 14, 27, 40)),
        ("沿岸的农民依靠季节性洪水获得肥沃的土壤。\n", "utf-8", (6, 21, 33)),
        ("Le café pousse à l'ombre.\n", "cp1252", (1, 8, 15)),
        ("Zażółć gęślą jaźń.\n", "cp1250", (4, 9, 13)),
    ],
)
def test_short_text_with_three_or_more_stray_nuls(
    tmp_path: Path, text: str, encoding: str, nuls_at: tuple[int, ...]
) -> None:
    # Stray NULs fall at either parity, or by chance at one, but the bytes around them are
    # 8-bit text and do not read as UTF-16 text; a NUL share over 1% (3 in 32 bytes) is no
    # evidence of UTF-16 (was read as UTF-16 into CJK-looking garbage, or refused as binary).
    path = tmp_path / "damaged.txt"
    path.write_bytes(_with_nuls_at(text.encode(encoding), nuls_at))
    result = read_file(path)
    assert result.encoding == encoding
    assert result.docs[0].text == normalize_text(text).strip()
    assert result.warnings[0] == f"{path}: {len(nuls_at)} NUL bytes removed"
    assert len(result.warnings) == (1 if encoding == "utf-8" else 2)
    assert not any("byte order mark" in w for w in result.warnings)
    decoded = decode(_with_nuls_at(text.encode(encoding), nuls_at), path)
    assert decoded.text == text
    assert decoded.notes[0] == f"{len(nuls_at)} NUL bytes removed"


@pytest.mark.parametrize(
    "text",
    [
        "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",  # Thai: no space; block byte 0x0E is a control
        "ภาษาไทย",
        "สวัสดีครับ",
        "שלום עולם",
        "مرحبا",
        "Привет",
        "ሰላም",
        "გამარჯობა",
        "こんにちは",  # no NUL, no control byte: only UTF-8 fails
        "我们明天见。",
        "안녕하세요",
    ],
)
def test_short_bomless_utf16_in_scripts_without_ascii(tmp_path: Path, text: str) -> None:
    # 6-76 bytes with no NUL, or NULs only from one space; Thai, Hebrew, Cyrillic ... look
    # binary (their block byte is a control byte). Was skipped as binary or misread.
    for encoding in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(text.encode(encoding))
        result = read_file(path)
        assert result.encoding == encoding
        assert result.docs[0].text == normalize_text(text)
        assert result.warnings == [f"{path}: no byte order mark; read as {encoding}"]


def test_bomless_utf16_decode_names_the_byte_order() -> None:
    decoded = decode("東京は日本の首都です。".encode("utf-16-le"), "x.txt")
    assert (decoded.encoding, decoded.text) == ("utf-16-le", "東京は日本の首都です。")
    assert decoded.notes == ["no byte order mark; read as utf-16-le"]  # was charset-normalizer's


@pytest.mark.parametrize(
    ("data", "text", "encoding"),
    [
        # Even-length ASCII and UTF-8 are UTF-16 too ("ab" is one CJK character in UTF-16-LE).
        (b"ab", "ab", "utf-8"),
        (b"abcd", "abcd", "utf-8"),
        ("Zoë\n".encode(), "Zoë\n", "utf-8"),
        (b"\x1b[31mError\x1b[0m: disk full\n", "\x1b[31mError\x1b[0m: disk full\n", "utf-8"),
        # Even-length cp1252 (was UTF-16: 瑓慲旟, 慍懱慮, 䝲ﳟ攠慵猠䯶汮)
        ("Straße".encode("cp1252"), "Straße", "cp1252"),
        ("Mañana".encode("cp1252"), "Mañana", "cp1252"),
        ("Grüße aus Köln".encode("cp1252"), "Grüße aus Köln", "cp1252"),
        # Shift_JIS katakana read as UTF-16-BE are common ideographs (荊荞荊荩): not UTF-16.
        ("カタカナ".encode("shift_jis"), "カタカナ", "cp932"),
    ],
)
def test_short_8bit_text_is_not_utf16(data: bytes, text: str, encoding: str) -> None:
    decoded = decode(data, "x.txt")
    assert (decoded.encoding, decoded.text) == (encoding, text)
    assert not any("byte order mark" in note for note in decoded.notes)


def test_binary_files_are_still_skipped(tmp_path: Path) -> None:
    import random

    noise = random.Random(0).randbytes
    samples = {
        "image.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + noise(300),
        "program.txt": b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00>\x00" + noise(300),
        "archive.txt": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + noise(300),
        "noise64.txt": noise(64),  # no NUL: was cp1252 "by guess"
        "noise128.txt": noise(128),
        "noise4k.txt": noise(4096),
        "thai-block.txt": bytes(b for i in range(200) for b in (i % 256, 0x0E)),  # U+0E00-0EC7
    }
    for name, data in samples.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(SkippedFile, match="binary file, skipped"):
            read_file(path)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Ďakujem, môžeme ísť.", "cp1250"),
        ("Árvíztűrő tükörfúrógép", "cp1250"),
        ("Ő és ű betűk", "cp1250"),  # was UTF-16
        ("Dobrý deň", "cp1250"),  # was cp1006 (Urdu)
        ("Ľúbim ťa", "cp1250"),
        ("Žaba skače", "cp1250"),
        ("Čestitke in lep pozdrav", "cp1250"),  # cp1252 "Èestitke": è before a vowel
        ("Děkuji", "cp1250"),  # cp1252 "Dìkuji": ì ends Italian words
        ("Kůň", "cp1250"),
        ("Łódź", "cp1250"),  # cp1252 "£ódŸ": a pound sign glued to a word, Ÿ inside one
        ("Cześć!", "cp1250"),  # cp1252 "Czeœæ!": no language spells œ with æ
        ("Noël à Paris", "cp1252"),
        ("déjà vu", "cp1252"),
        ("Ça va très bien, merci.", "cp1252"),
        ("¿Dónde está el baño?", "cp1252"),  # cp1250 "żDónde": upper case inside a word
        ("Ação", "cp1252"),
        ("Hyvää päivää!", "cp1252"),
        ("Één ijsje, alstublieft", "cp1252"),
        ("Price: 100€", "cp1252"),
    ],
)
def test_short_cp1250_and_cp1252_lines(tmp_path: Path, text: str, encoding: str) -> None:
    # One line, one to a few accented letters: charset-normalizer has too little to go on
    # (it said cp1006, big5hkscs, cp949, UTF-16); the page whose reading has the accented
    # letters of one language wins, cp1252 first.
    path = tmp_path / "line.txt"
    path.write_bytes(text.encode(encoding))
    result = read_file(path)
    assert (result.encoding, result.docs[0].text) == (encoding, text)
    invalid = path.read_bytes().decode("utf-8", errors="replace").count("\ufffd")
    assert result.warnings == [
        f"{path}: not valid UTF-8 ({invalid} invalid byte sequences); decoded as {encoding} "
        "by guess, check the text"
    ]


@pytest.mark.parametrize(
    ("text", "encoding", "read_as"),
    [
        # Polish whose only Polish letters are ę and ś: French ê and œ in cp1252. Both pages
        # spell words; letter frequencies over a whole sentence say cp1250.
        (
            "Narciarstwo alpejskie jako dyscyplina sportowa sięga przynajmniej XVII wieku, a w "
            "1861 roku Norwegowie otworzyli w Australii pierwszy rekreacyjny ośrodek narciarski.",
            "cp1250",
            "cp1250",
        ),
        ("Alaşımlar karışımıdır.", "cp1254", "cp1254"),  # not Icelandic "Alaþýmlar"
        ("Dobrý den, pane.", "cp1250", "cp1252"),  # the same text in both: cp1252 first
    ],
)
def test_latin_pages_that_both_spell_words(text: str, encoding: str, read_as: str) -> None:
    decoded = decode(text.encode(encoding), "x.txt")
    assert (decoded.encoding, decoded.text) == (read_as, text)


def test_invalid_utf8_in_english_warns_with_a_count(tmp_path: Path) -> None:
    result = read_file(make("invalid-utf8-english", tmp_path))
    assert result.docs[0].text.startswith("Rivers carry sediment")
    assert "not valid UTF-8 (3 invalid byte sequences)" in result.warnings[0]


_VOLCAN = "Le volcan est entré en éruption mardi ; des milliers d'habitants ont été évacués.\n"
_VULKAN = "Die Behörden öffneten Notunterkünfte; Ärzte waren die ganze Nacht im Einsatz.\n"
_VULKAN_RU = "Вулкан начал извергаться во вторник; тысячи жителей были эвакуированы.\n"
_TOKYO = "東京は日本の首都です。火山は火曜日に噴火しました。\n"


@pytest.mark.parametrize(
    ("before", "pasted", "encoding", "after", "page"),
    [
        (_VOLCAN * 4, "Dernière mise à jour : rédigée par André.\n", "cp1252", "", "cp1252"),
        (_VULKAN * 2, "Zuletzt geändert: Jürgen Müller, Straße überprüft.\n", "cp1252", _VULKAN,
         "cp1252"),
        (_VULKAN_RU * 2, "Zażółć gęślą jaźń. Łódź jest pięknym miastem.\n", "cp1250", "", "cp1250"),
        (_TOKYO * 2, "数千人の住民が避難しました。\n", "shift_jis", "", "cp932"),
    ],
    ids=["french-cp1252", "german-cp1252-middle", "russian-polish-cp1250", "japanese-shift-jis"],
)
def test_utf8_file_with_a_pasted_legacy_line_keeps_both(
    tmp_path: Path, before: str, pasted: str, encoding: str, after: str, page: str
) -> None:
    # Concatenated files: UTF-8 with one line from a legacy file. The whole file was read in
    # a guessed page (iso8859_10 "entrÃĐ", cp1258), garbling every UTF-8 letter and the line.
    path = tmp_path / "report.txt"
    path.write_bytes(before.encode() + pasted.encode(encoding) + after.encode())
    result = read_file(path)
    assert result.encoding == "utf-8"
    assert result.docs[0].text == (before + pasted + after).strip()
    raw = pasted.encode(encoding)
    invalid = len(raw) - len(raw.decode("utf-8", "surrogateescape").encode("utf-8", "ignore"))
    assert result.warnings == [
        f"{path}: line {before.count(chr(10)) + 1} not valid UTF-8 ({invalid} bytes) decoded as "
        f"{page} by guess, check it; the rest is UTF-8"
    ]


def test_reported_utf8_report_with_a_cp1252_line_is_indexed_intact(tmp_path: Path) -> None:
    corpus = tmp_path / "mx"
    corpus.mkdir()
    (corpus / "rapport.txt").write_bytes(
        _VOLCAN.encode() * 4 + b"Derni\xe8re mise \xe0 jour : r\xe9dig\xe9e par Andr\xe9.\n"
    )
    index = tmp_path / "index"
    result = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert (
        "rapport.txt: line 5 not valid UTF-8 (5 bytes) decoded as cp1252 by guess, check it; "
        "the rest is UTF-8" in result.output
    )
    with sqlite3.connect(index / "xsearch.db") as con:
        text = "\n".join(row[0] for row in con.execute("SELECT text FROM passages ORDER BY id"))
    assert text == (_VOLCAN * 4).strip() + "\nDernière mise à jour : rédigée par André."


def test_utf8_with_legacy_lines_and_a_broken_sequence(tmp_path: Path) -> None:
    # Lines that are mostly not UTF-8 are read in their page; a broken sequence inside a UTF-8
    # line is damage (U+FFFD), not a reason to read that line in another page.
    data = (
        _VOLCAN.encode() * 3
        + "Mise à jour par André.\nRelu par Hélène.\n".encode("cp1252")
        + "Coût estimé : 10 ".encode() + b"\xe2\x82" + " millions, évacués compris.\n".encode()
    )
    path = tmp_path / "mixed.txt"
    path.write_bytes(data)
    result = read_file(path)
    assert result.encoding == "utf-8"
    assert result.docs[0].text == (
        _VOLCAN * 3 + "Mise à jour par André.\nRelu par Hélène.\n"
        "Coût estimé : 10 \ufffd millions, évacués compris."
    )
    assert result.warnings == [
        f"{path}: 2 lines not valid UTF-8 (4 bytes; first: line 4) decoded as cp1252 by guess, "
        "check them; the rest is UTF-8",
        f"{path}: 1 invalid UTF-8 byte sequences replaced with U+FFFD",
    ]


def test_utf8_cut_inside_its_last_character_is_not_read_as_legacy(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    path.write_bytes(_VOLCAN.encode() * 3 + "Dernière mise à jour : André".encode()[:-1])
    result = read_file(path)
    assert (result.encoding, result.docs[0].text) == (
        "utf-8", _VOLCAN * 3 + "Dernière mise à jour : Andr\ufffd"
    )
    assert result.warnings == [f"{path}: 1 invalid UTF-8 byte sequences replaced with U+FFFD"]


@pytest.mark.parametrize(
    ("text", "encoding", "read_as"),
    [
        (_VOLCAN + "Dernière mise à jour : rédigée par André.\n", "cp1252", "cp1252"),
        (_VULKAN + "Zuletzt geändert: Jürgen Müller, Straße überprüft.\n", "cp1252", "cp1252"),
        ("Zażółć gęślą jaźń. Łódź jest pięknym miastem w Polsce.\nKsiążka leży na stole.\n",
         "cp1250", "cp1250"),
        ("Včera jsem šel do obchodu a koupil chléb, máslo a mléko pro děti.\n"
         "Řeka Vltava protéká Prahou.\n", "cp1250", "cp1250"),
        (_VULKAN_RU + "Власти открыли временные убежища.\n", "cp1251", "cp1251"),
        (_TOKYO + "数千人の住民が避難しました。\n", "shift_jis", "cp932"),
        # 10 byte pairs valid in UTF-8 by chance for 9 invalid bytes, all on one line.
        ("なめらかになるまでよく伸ばします", "shift_jis", "cp932"),
        ("北京是中国的首都。火山于星期二喷发。\n数千名居民被疏散。\n", "gb18030", "gb18030"),
        ("臺北是臺灣的首都。火山於星期二噴發。\n數千名居民被疏散。\n", "big5", "big5hkscs"),
        ("서울은 대한민국의 수도입니다. 화산이 화요일에 분화했습니다.\n"
         "수천 명의 주민이 대피했습니다.\n", "euc_kr", "cp949"),
    ],
)
def test_legacy_files_are_still_read_whole_in_their_page(
    tmp_path: Path, text: str, encoding: str, read_as: str
) -> None:
    # Legacy text has byte pairs that are valid UTF-8 by chance (a quarter of Shift-JIS ones),
    # but they share lines with invalid bytes: no such file is mostly UTF-8.
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode(encoding))
    result = read_file(path)
    assert (result.encoding, result.docs[0].text) == (read_as, text.strip())
    assert result.warnings[0].startswith(f"{path}: not valid UTF-8 (")

def test_crlf_and_cr_only_newlines(tmp_path: Path) -> None:
    doc = read_file(make("crlf-cr-only", tmp_path)).docs[0]
    assert doc.text == (
        "Windows line one.\nWindows line two.\n\nOld Mac line.\nAnother Mac line."
    )


def test_one_long_line_and_empty_file(tmp_path: Path) -> None:
    doc = read_file(make("one-line-10mb", tmp_path, 0.1)).docs[0]
    assert len(doc.text) == int(10 * 2**20 * 0.1)
    assert "\n" not in doc.text
    with pytest.raises(SkippedFile, match="empty file"):
        read_file(make("empty-file", tmp_path))


# --------------------------------------------------------------------------- bombs


def test_docx_zip_bomb_is_refused_early(tmp_path: Path) -> None:
    before = peak_rss_mb()
    path = H.docx_bomb(tmp_path / "bomb.docx", 300_000_000)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(BudgetExceeded, match=r"decompression bomb\?; raise --max-text-mb") as bomb:
        read_file(path, ReadOptions(max_text_bytes=100 * 2**20))
    # Without a byte budget the text budget stops the stream after ~100,000 characters.
    with pytest.raises(BudgetExceeded, match="text too long .*--max-chars") as long:
        read_file(path, ReadOptions(max_text_bytes=None, max_chars=100_000))
    # Each refusal names its limit: a run that raises it reads the file again.
    assert bomb.value.limits == {"max_text_bytes": 100 * 2**20}
    assert long.value.limits == {"max_chars": 100_000}
    assert peak_rss_mb() - before < 200


def test_budget_meter_refuses_while_streaming() -> None:
    import io

    budget = Budget("x.docx", ReadOptions(max_text_bytes=3 * 2**20))
    stream = budget.reader(io.BytesIO(b"x" * (10 * 2**20)), "inflated word/document.xml")
    with pytest.raises(BudgetExceeded, match="inflated word/document.xml exceeds the budget"):
        while stream.read(65536):
            pass
    assert budget.used <= 3 * 2**20 + 65536
    slow = Budget("y.pdf", ReadOptions(timeout=0.0))
    with pytest.raises(BudgetExceeded, match=r"longer than 0 s \(raise --read-timeout") as late:
        slow.check_time()
    assert late.value.limits == {"timeout": 0.0}


def test_docx_streamed_text_matches_python_docx_layout(tmp_path: Path) -> None:
    path = H.docx_bomb(tmp_path / "small.docx", 200_000)
    doc = read_file(path).docs[0]
    paragraphs = doc.text.split("\n\n")
    assert len(paragraphs) > 300
    assert set(paragraphs) == {("flood plain " * 40).strip()}


def test_html_nested_200k_deep_is_flattened(tmp_path: Path) -> None:
    result = read_file(make("html-deep-200k", tmp_path))
    assert result.docs[0].text == (
        "Text at the bottom of a very deep tree.\n\nText after the deep tree."
    )
    assert "nesting deeper than 512 levels" in result.warnings[0]


def test_pdf_flate_bomb_is_refused_as_a_bomb(tmp_path: Path) -> None:
    path = make("pdf-flate-bomb", tmp_path, 0.4)  # 80 MB: over pypdf's 75 MB stream limit
    with pytest.raises(BudgetExceeded, match="decompression bomb") as info:
        read_file(path)
    assert "scanned PDF" not in str(info.value)
    assert info.value.limits == {}  # pypdf's own limit: no option of ours raises it


# --------------------------------------------------------------------------- special files


def _must_not_block(fn, path: Path) -> Exception | None:
    outcome: list[Exception | None] = []

    def call() -> None:
        try:
            fn(path)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the reader so the test run can end, then fail
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
        pytest.fail(f"{fn.__name__} blocked on a FIFO")
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_never_opened_for_a_blocking_read(tmp_path: Path) -> None:
    fifo = make("fifo", tmp_path)
    for fn in (file_fingerprint, read_file):
        exc = _must_not_block(fn, fifo)
        assert isinstance(exc, IngestError) and "not a regular file" in str(exc)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_file_swapped_for_a_fifo_after_stat(tmp_path: Path, monkeypatch) -> None:
    import xsearch.ingest.files as files

    fifo = make("fifo", tmp_path)
    regular = os.stat(H.good_file(tmp_path))
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):  # what stat said before the swap
        return regular if Path(path) == fifo else real_stat(path, *args, **kwargs)

    monkeypatch.setattr(files.os, "stat", stale_stat)
    exc = _must_not_block(file_fingerprint, fifo)
    assert isinstance(exc, IngestError) and "not a regular file" in str(exc)
    assert stat.S_ISFIFO(real_stat(fifo).st_mode)


# --------------------------------------------------------------------------- through the CLI


def _indexed_paths(index: Path) -> set[str]:
    with sqlite3.connect(index / "xsearch.db") as con:
        return {row[0] for row in con.execute("SELECT path FROM files")}


def test_hostile_corpus_indexes_without_traceback(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    good = H.good_file(corpus)
    for name in ("jsonl-huge-int", "jsonl-surrogates", "txt-nul", "csv-nul",
                 "utf16-nobom-hindi", "non-utf8-filename", "symlink-out", "symlink-dir-loop"):
        H.CASES[name](corpus, 1.0)
    if hasattr(os, "mkfifo"):
        H.CASES["fifo"](corpus, 1.0)
    index = tmp_path / "index"
    result = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "caf\\xe9-notes.txt: name is not valid UTF-8, skipped" in result.output
    assert "symlink leads out of the indexed folders" in result.output
    indexed = {Path(p).name for p in _indexed_paths(index)}
    assert indexed == {good.name, "huge-int.jsonl", "surrogates.jsonl", "nul.txt", "nul.csv",
                       "hindi-utf16.txt", "leaf.txt"}
    assert "secret" not in " ".join(_indexed_paths(index))
    assert "left out:" in result.output and "1 non-UTF-8 names" in result.output
    hits = CliRunner().invoke(cli, ["query", "harbour cranes", "--index", str(index), "--json"])
    assert hits.exit_code == 0 and "harbour cranes" in hits.output


def test_cli_messages_name_the_option_and_the_path_once(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    H.good_file(corpus)
    H.CASES["csv-oversized-record"](corpus, 0.002)
    long = corpus / "long.txt"
    long.write_text("word " * 1000, encoding="utf-8")
    index = tmp_path / "index"
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(corpus), "--index", str(index), "--max-chars",
                                 "4000"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {long.resolve()}: text too long (4,999 characters, limit 4,000; "
                      "raise it with --max-chars)"]
    assert "oversized.csv: line 3: text too long" in result.output
    assert {Path(p).name for p in _indexed_paths(index)} == {"good.txt", "oversized.csv"}

    bad = runner.invoke(cli, ["index", str(corpus), "--index", str(index), "--max-mb", "-1"])
    assert bad.exit_code == 2 and "--max-mb" in bad.output
    tiny = runner.invoke(cli, ["index", str(corpus), "--index", str(index), "--full",
                               "--max-mb", "0.0001"])
    assert "file too large: 172 bytes" in tiny.output
    assert "raise --max-mb (now " in tiny.output
    assert "max_bytes" not in tiny.output


def test_time_budget_is_checked_inside_every_extractor(tmp_path: Path) -> None:
    files = [
        H.CASES["html-deep-100k"](tmp_path, 0.1)[0],
        H.docx_bomb(tmp_path / "long.docx", 5_000_000),
        tmp_path / "page.pdf",
        tmp_path / "many.jsonl",
    ]
    files[2].write_bytes(H.pdf_with_stream(b"BT /F1 12 Tf 72 712 Td (A page.) Tj ET"))
    files[3].write_text("".join(f'{{"text": "record {i}"}}\n' for i in range(2000)), "utf-8")
    for path in files:
        assert read_file(path).docs  # readable with the default budget
        with pytest.raises(BudgetExceeded, match=r"took longer than 0 s \(raise --read-timeout"):
            read_file(path, ReadOptions(timeout=0.0))


@pytest.mark.parametrize("text, encoding", [
    ("Москва является столицей России и крупнейшим городом страны.", "koi8_r"),
    ("القاهرة هي عاصمة مصر وأكبر مدنها، ويعبرها نهر النيل.", "cp1256"),
    ("กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย", "cp874"),
    ("東京は日本の首都であり、最大の都市です。", "euc_jp"),
    # read right before, and still: charset-normalizer's first reading is kept when sure
    ("北京是中国的首都，也是最大的城市之一。", "gbk"),
    ("台北是台灣的首都，也是最大的城市之一。", "big5"),
    ("서울은 대한민국의 수도이며 가장 큰 도시입니다.", "euc_kr"),
    ("東京は日本の首都であり、最大の都市です。", "shift_jis"),
    ("Москва является столицей России и крупнейшим городом страны.", "cp1251"),
])
def test_one_line_in_a_legacy_encoding_reads_as_its_language(text: str,
                                                             encoding: str) -> None:
    """One line of KOI8-R Russian, Windows-1256 Arabic, TIS-620 Thai or EUC-JP Japanese read
    as Shift-JIS or Korean garbage (charset-normalizer's only reading, coherence 0): now the
    reading language identification is sure of wins."""
    assert decode(text.encode(encoding), "one-line.txt").text == text


def test_a_pdf_page_of_too_many_operators_is_not_called_a_bomb(tmp_path: Path) -> None:
    """A page of 600,000 drawing operators (11 MB, nothing compressed) reaches pypdf's
    tokens-per-stream limit: it was refused as "a compressed stream inflates past pypdf's
    output limit (decompression bomb?)", which sent a user after --max-text-mb in vain."""
    ops = (b"BT /F1 12 Tf 100 700 Td (Heavy page about rockets) Tj ET\n"
           + b"q 1 0 0 1 0 0 cm Q\n" * 600_000)
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
               b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R"
               b"/Resources<</Font<</F1 5 0 R>>>>>>",
               b"<</Length %d>>stream\n" % len(ops) + ops + b"\nendstream",
               b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o
                                                       for o in offsets)
    out += b"trailer<</Size 6/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref
    path = tmp_path / "heavy.pdf"
    path.write_bytes(out)
    with pytest.raises(BudgetExceeded) as info:
        read_file(path)
    assert "bomb" not in str(info.value) and "tokens per stream" in str(info.value)
    assert "no option raises" in str(info.value)
