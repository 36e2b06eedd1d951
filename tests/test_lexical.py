from __future__ import annotations

import sqlite3
import unicodedata

import pytest
from conftest import CORPUS, manifest

from xsearch import bm25, lexical


def test_words_keep_marks_and_cjk_thai_hangul_become_pairs():
    assert [t for t, _, _ in lexical.tokens("हिन्दी में वैक्सीन")] == ["हिन्दी", "में", "वैक्सीन"]
    assert [t for t, _, _ in lexical.tokens("ቡና በኢትዮጵያ፡ ይጠጣል።")] == ["ቡና", "በኢትዮጵያ", "ይጠጣል"]
    toks = lexical.tokens("東京タワーは333メートル")
    assert [t for t, _, _ in toks][:3] == ["東京", "京タ", "タワ"]
    assert ("333", 6, 9) in toks
    # a Thai base character and its tone mark are one unit
    assert "ง่า" in lexical.token_set("ภาษาไทยง่าย")
    assert "서울" in lexical.token_set("서울에서 만나요")
    assert lexical.token_set("中") == {"中"}


def test_spans_point_into_the_original_text():
    text = "Ｔｈｅ Café in 東京"
    for tok, start, end in lexical.tokens(text):
        assert lexical.normalize(text[start:end]) == tok
    assert [t for t, _, _ in lexical.tokens(text)] == ["the", "café", "in", "東京"]


def test_words_only_text_tokenises_as_the_paired_script_path_does():
    """Text without Han/kana/Thai... takes a shorter path; a paired-script character appended
    sends the same words through the general one: both must give the same tokens and spans,
    "_" included (it splits words; one regex class runs over it)."""
    texts = ["snake_case_name and __dunder__ x_1", "Ｔｈｅ ﬁne Café, ＡＢＣ — Straße!",
             "हिन्दी में वैक्सीन_टीका", "می\u200cخواهم ۱۲۳", "ቡና በኢትዮጵያ፡ ይጠጣል።", "_", "", " \t\n"]
    for text in texts:
        words = lexical.tokens(text)
        general = lexical.tokens(text + " 東")
        assert general[-1][0] == "東"
        assert words == general[:-1], text
    assert [t for t, _, _ in lexical.tokens("snake_case_name")] == ["snake", "case", "name"]
    assert lexical.tokens("a_b") == [("a", 0, 1), ("b", 2, 3)]


def test_nfkc_casefold_joiners_and_diacritics():
    assert lexical.normalize("ＡＢＣ") == "abc"
    assert lexical.normalize("Straße") == "strasse"
    assert lexical.normalize("می\u200cخواهم") == "ميخواهم"  # joiner out, Farsi yeh as yeh
    assert lexical.normalize("Éruption", fold_diacritics=True) == "eruption"
    assert lexical.normalize("Éruption", fold_diacritics=False) == "éruption"
    # folding never strips Indic vowel signs
    assert lexical.normalize("हिन्दी", fold_diacritics=True) == "हिन्दी"


@pytest.mark.parametrize(("written", "typed"), [
    ("كِتَابٌ", "كتاب"),  # Arabic harakat
    ("كـــتاب", "كتاب"),  # tatweel
    ("ﻛﺘﺎﺏ", "كتاب"),  # presentation forms (NFKC)
    ("أحمد", "احمد"), ("إسلام", "اسلام"), ("آمن", "امن"),  # hamza and madda on alef
    ("مدرسة", "مدرسه"), ("مستشفى", "مستشفي"),  # teh marbuta, alef maksura
    ("کتاب", "كتاب"), ("فارسی", "فارسي"),  # Persian keheh and yeh, typed on an Arabic keyboard
    ("ہے", "هے"),  # Urdu heh goal
    ("שָׁלוֹם", "שלום"),  # Hebrew points
    ("ज़रूर", "जरूर"), ("\u095B\u0930\u0942\u0930", "जरूर"),  # nukta, decomposed and not
    ("फ़िल्म", "फिल्म"),
    ("٢٠٢٣", "2023"), ("۱۴۰۲", "1402"), ("२०२३", "2023"), ("১৯৭১", "1971"),  # digits
    ("௧௯௪௭", "1947"), ("፩", "፩"), ("๒๕๖๖", "2566"),  # Tamil; Ethiopic numerals are not Nd
])
def test_optional_marks_and_letter_forms_fold_both_ways(written, typed):
    assert lexical.normalize(written) == lexical.normalize(typed)
    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    lexical.insert(conn, [(1, f"{written} x"), (2, "other words"), (3, "more words")])
    assert [p for p, _ in lexical.search(conn, typed, 5, max_share=None)] == [1]
    lexical.insert(conn, [(4, typed)])
    assert {p for p, _ in lexical.search(conn, written, 5, max_share=None)} == {1, 4}


def test_spelling_fold_keeps_what_distinguishes_words():
    # Indic vowel signs, virama and other scripts' nuktas stay; yeh with hamza stays
    for word in ("हिन्दी", "कि", "की", "বড়", "ਜ਼ਮੀਨ", "سائل", "ئ", "ھ"):
        assert lexical.normalize(word) == unicodedata.normalize("NFKC", word).casefold()
    assert lexical.normalize("ـ") == "" and lexical.tokens("ـ ً ok") == [("ok", 4, 6)]


def test_a_number_is_one_word_in_scripts_written_without_spaces():
    # Thai letters pair up; its digits, like ASCII ones in CJK text, stay one token
    assert lexical.fts_text("ปี๒๕๖๖นี้") == "ปี 2566 นี้"
    assert lexical.fts_text("東京2020年") == "東京 2020 年"
    assert lexical.fts_text("၁၉၄၈ ခုနှစ်").split()[0] == "1948"  # Myanmar digits


def test_the_shipped_digit_table_is_what_a_scan_of_unicode_finds():
    from xsearch.unicode_marks import DIGIT_ZEROS, UNIDATA_VERSION

    if unicodedata.unidata_version != UNIDATA_VERSION:
        pytest.skip(f"the table is Unicode {UNIDATA_VERSION}; this Python scans instead")
    scanned = tuple(cp for cp in range(0x80, 0x110000) if unicodedata.category(chr(cp)) == "Nd"
                    and unicodedata.digit(chr(cp)) == 0)
    assert DIGIT_ZEROS == scanned
    assert all(unicodedata.digit(chr(zero + d)) == d for zero in scanned for d in range(10))


@pytest.mark.parametrize("hostile", [
    'a" OR "b', "NEAR(a b)", "body:secret", "x*", "a AND NOT b", "^start", "(((", '"', "-x",
])
def test_fts_query_cannot_inject_syntax(hostile):
    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    lexical.insert(conn, [(1, "a b secret start x"), (2, "nothing here")])
    expr = lexical.fts_query(hostile)
    if expr is not None:
        assert all(part.startswith('"') and part.endswith('"') for part in expr.split(" OR "))
    # runs without an FTS5 syntax error and only matches on the words themselves
    hits = lexical.search(conn, hostile, 5, max_share=None)
    assert {pid for pid, _ in hits} <= {1}


def test_fts_query_is_none_without_tokens():
    assert lexical.fts_query("  ?! … —") is None
    assert lexical.fts_query("tax TAX tax") == '"tax"'


def test_search_every_script_of_the_sample_corpus():
    """Each document of the sample corpus is found by a word (or CJK/Thai pair) of its own."""
    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    rows = [r for r in manifest() if r["format"] in ("txt", "md")]
    texts = {i: (CORPUS / r["path"]).read_text(encoding="utf-8", errors="replace")
             for i, r in enumerate(rows)}
    with conn:
        lexical.insert(conn, texts.items())
    df = {}
    for text in texts.values():
        for tok in lexical.token_set(text):
            df[tok] = df.get(tok, 0) + 1
    for i, text in texts.items():
        # the document's rarest long-ish token as the query
        toks = sorted(lexical.token_set(text), key=lambda t: (df[t], -len(t), t))
        hits = lexical.search(conn, toks[0], 3, max_share=None)
        assert i in [pid for pid, _ in hits], (rows[i]["path"], toks[0])


def test_search_filters_ids_drops_common_tokens_and_deletes():
    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    docs = {i: f"the report number {i}" for i in range(1, 101)}
    docs[200] = "the volcano erupted in 2021"
    lexical.insert(conn, docs.items())
    hits = lexical.search(conn, "the volcano", 5)
    assert hits[0][0] == 200
    assert len(hits) == 1  # "the" is in every passage: dropped, not OR-ed in
    assert lexical.search(conn, "the", 5) == []
    assert len(lexical.search(conn, "the", 5, max_share=None)) == 5
    assert lexical.informative_tokens(conn, "the volcano") == ["volcano"]
    assert lexical.search(conn, "report 7", 5, allowed_ids={7, 8})[0][0] == 7
    assert {p for p, _ in lexical.search(conn, "report", 50, allowed_ids={7, 8},
                                         max_share=None)} == {7, 8}
    assert lexical.search(conn, "report", 5, allowed_ids=set()) == []
    # normalised: a passage holding every (kept) token once scores about 1
    score = lexical.search(conn, "volcano erupted", 1, normalize=True)[0][1]
    assert 0.5 < score < 2.0
    lexical.delete(conn, [(200, docs[200])])
    assert lexical.search(conn, "volcano", 5) == []


def test_the_shipped_mark_table_is_what_a_scan_of_unicode_finds():
    import unicodedata

    from xsearch import lexical
    from xsearch.unicode_marks import UNIDATA_VERSION

    if unicodedata.unidata_version != UNIDATA_VERSION:
        pytest.skip(f"the table is Unicode {UNIDATA_VERSION}; this Python scans instead")
    assert lexical._marks() == lexical._scan_marks()


def test_search_scores_the_also_passages_in_the_same_statement():
    """Beyond its top k, ``search`` scores the ``also`` passages that match (those the dense
    search found), best first then by id, with the scores a deeper search gives them; the
    top k is the same whichever ``also`` is asked, and ties are broken by passage id."""
    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    docs = {i: "volcano " * (1 + i % 4) + f"ash cloud number {i}" for i in range(1, 41)}
    docs[99] = "a recipe for bread"
    lexical.insert(conn, docs.items())
    every = dict(lexical.search(conn, "volcano ash", 100, max_share=None))
    top = lexical.search(conn, "volcano ash", 3, max_share=None)
    assert [p for p, _ in top] == sorted(every, key=lambda p: (-every[p], p))[:3]
    also = [38, 5, 99, 12, top[0][0]]  # 99 does not match; top[0] is already in the top
    got = lexical.search(conn, "volcano ash", 3, max_share=None, also=also)
    assert got[:3] == top
    assert got[3:] == [(p, every[p]) for p in sorted({5, 12, 38} - {p for p, _ in top})]
    assert all(abs(s - every[p]) < 1e-12 for p, s in got)


def test_document_frequency_cache_is_read_first_and_survives_being_emptied():
    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    lexical.insert(conn, {1: "volcano ash", 2: "volcano bread", 3: "bread"}.items())
    plain = lexical.document_frequency(conn, ["volcano", "bread", "ash", "nowhere"])
    assert plain == {"volcano": 2, "bread": 2, "ash": 1, "nowhere": 0}
    cache: dict[str, int] = {}
    assert lexical.document_frequency(conn, list(plain), cache=cache) == plain
    assert cache == plain
    cache["volcano"] = 7  # a count the cache holds is not read again
    assert lexical.document_frequency(conn, ["volcano", "ash"], cache=cache)["volcano"] == 7
    # a full cache is emptied after the counts it held were used
    full = {f"t{i}": 1 for i in range(100_001)} | {"bread": 2}
    assert lexical.document_frequency(conn, ["bread", "ash"], cache=full) == {"bread": 2,
                                                                             "ash": 1}
    assert full == {"ash": 1}


def test_words_common_in_one_language_are_dropped_though_rare_in_the_index():
    """Eight Swahili passages among 60: "kwa" is in all of them, rare in the whole index (kept
    by the global rule) but common in its language, so it no longer matches every Swahili
    passage; "mpira" (in one) still finds its passage, and snippets mark the same words."""
    conn = sqlite3.connect(":memory:")
    lexical.create(conn)
    bm25.create(conn, lexical.TABLE)
    conn.execute("CREATE TABLE passages (id INTEGER PRIMARY KEY, language TEXT)")
    docs = {i: f"a report on harvest number {i}" for i in range(1, 53)}
    docs.update({100 + i: f"habari kwa siku ya {w}" for i, w in enumerate(
        ["mvua", "jua", "soko", "shule", "chakula", "maji", "barabara"])})
    docs[200] = "mpira wa miguu kwa watoto"
    lexical.insert(conn, docs.items())
    conn.executemany("INSERT INTO passages VALUES (?, ?)",
                     [(i, "swh" if i >= 100 else "eng") for i in docs])
    sizes = {"eng": 52, "swh": 8}
    plain = lexical.search(conn, "mpira kwa", 20, max_share=20 / 60)
    assert len(plain) == 8  # every Swahili passage through "kwa"
    cache: dict = {}
    hits = lexical.search(conn, "mpira kwa", 20, max_share=20 / 60, language_sizes=sizes,
                          language_cache=cache)
    assert [p for p, _ in hits] == [200]
    assert cache["kwa"] == {"swh": 8} and cache["mpira"] == {"swh": 1}
    assert lexical.informative(conn, ["mpira", "kwa"], max_share=20 / 60,
                               language_sizes=sizes) == ["mpira"]
    # Common is in more than a quarter of the language's passages (and more than five).
    assert lexical.informative(conn, ["mpira", "kwa"], max_share=20 / 60,
                               language_sizes={"eng": 52, "swh": 40}) == ["mpira", "kwa"]
