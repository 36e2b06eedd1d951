from __future__ import annotations

from collections import Counter

from xsearch.bench.entity_queries import make_queries, spaced, window_query

SENTENCES = {
    "eng_Latn": [
        ("1", "The committee met on Tuesday and agreed to fund the new bridge over the river."),
        ("2", "Officials said that 4,500 people were evacuated from the coastal town last night."),
        ("3", "Short one."),
        ("4", "The team from Rotterdam won the cup after a long season of hard matches."),
    ],
    "zho_Hans": [
        ("1", "委员会星期二开会，同意为河上的新桥提供资金，工程将于明年开始。"),
        ("2", "官员说，昨晚有4500人从沿海小镇撤离，没有人受伤。"),
    ],
}


def test_anchor_kinds_and_windows():
    df: Counter[str] = Counter()
    num = window_query(SENTENCES["eng_Latn"][1][1], df)
    assert num is not None
    query, anchor, kind = num
    assert (kind, anchor) == ("number", "500")
    assert "4,500" in query and len(query.split()) == 6
    name = window_query(SENTENCES["eng_Latn"][3][1], df)
    assert name is not None and name[2] == "name" and name[1] == "Rotterdam"
    assert "Rotterdam" in name[0]
    assert window_query("Short one.", df) is None


def test_unspaced_text_gets_a_character_window():
    assert not spaced(SENTENCES["zho_Hans"][1][1])
    got = window_query(SENTENCES["zho_Hans"][1][1], Counter())
    assert got is not None and got[2] == "number" and "4500" in got[0]
    assert len(got[0]) <= 16


def test_make_queries_is_deterministic_and_seeded():
    a = make_queries(SENTENCES, per_lang=2, seed=1)
    assert a == make_queries(SENTENCES, per_lang=2, seed=1)
    assert {q.lang for q in a} == {"eng_Latn", "zho_Hans"}
    assert all(q.text in dict(SENTENCES[q.lang])[q.index_id] or q.text.replace(" ", "") in
               dict(SENTENCES[q.lang])[q.index_id].replace(" ", "") for q in a)
    assert sum(q.lang == "eng_Latn" for q in a) == 2
    assert any(make_queries(SENTENCES, per_lang=1, seed=s)[0].index_id !=
               make_queries(SENTENCES, per_lang=1, seed=0)[0].index_id for s in range(1, 20))
