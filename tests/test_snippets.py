from __future__ import annotations

import random

import click
import numpy as np
from conftest import CORPUS

from xsearch import snippets
from xsearch.search import flatten, snippet

LONG = (
    "Bread needs flour, water and salt. Most loaves also need yeast. "
    "The history of milling goes back thousands of years and shaped many towns. "
    "Volcanic soils near Naples grow excellent wheat for pizza dough. "
    "Bake the loaf at 220 degrees for thirty minutes until the crust is brown. "
    "Let it cool on a rack before cutting, or the crumb turns gummy."
)


def _marked(snippet: str, highlights) -> list[str]:
    return [snippet[a:b] for a, b in highlights]


def test_picks_the_window_with_the_query_terms_and_highlights_them():
    snip, hl = snippets.best_snippet(LONG, "crust temperature bake", limit=100)
    assert len(snip) <= 100
    assert "220 degrees" in snip
    assert _marked(snip, hl) == ["Bake", "crust"]
    assert snip.startswith(snippets.ELLIPSIS)


def test_short_text_is_returned_whole():
    snip, hl = snippets.best_snippet("Coffee grows in the hills.", "coffee")
    assert snip == "Coffee grows in the hills."
    assert _marked(snip, hl) == ["Coffee"]


def test_cjk_pairs_highlight_as_one_range():
    text = (CORPUS / "bread" / "zho_Hans_bread.txt").read_text(encoding="utf-8")
    snip, hl = snippets.best_snippet(text, "面团发酵", limit=80)
    assert len(snip) <= 80
    marked = _marked(snip, hl)
    assert "发酵" in marked or "面团" in marked
    assert all(m in ("面团", "发酵") for m in marked)


def test_wide_characters_count_two_columns_so_cjk_snippets_are_as_wide_as_latin_ones():
    zho = (CORPUS / "bread" / "zho_Hans_bread.txt").read_text(encoding="utf-8")
    fra = (CORPUS / "bread" / "fra_Latn_bread.txt").read_text(encoding="utf-8")
    assert snippets.columns("ab面团") == [0, 1, 2, 4, 6]
    assert snippets.columns("कि") == [0, 1, 2]  # a spacing vowel sign takes a column
    assert snippets.columns("e\u0301\u200d") == [0, 1, 1, 1]  # a combining accent, a ZWJ
    snip, hl = snippets.best_snippet(zho, "面团发酵", limit=80)
    assert snippets.columns(snip)[-1] <= 80 and len(snip) <= 41
    assert len(snip) >= 30, "a window of whole sentences up to the width"
    assert {snip[a:b] for a, b in hl} <= {"面团", "发酵"}
    # one long sentence is cut to the width, around the match
    snip, hl = snippets.best_snippet("发酵" * 30 + "面团" + "发酵" * 30, "面团", limit=60)
    assert snippets.columns(snip)[-1] <= 60 and len(snip) >= 28
    assert [snip[a:b] for a, b in hl] == ["面团"]
    # the plain start-of-passage snippet too
    flat = snippet(zho, limit=60)
    assert snippets.columns(flat)[-1] <= 60 and flat.endswith(snippets.ELLIPSIS)
    assert len(flat) >= 28
    assert snippet(fra, limit=60) == " ".join(fra.split())[:59].rstrip() + snippets.ELLIPSIS


def test_a_long_run_without_spaces_is_wrapped_between_characters_not_before_a_mark():
    import unicodedata

    from xsearch.cli_format import wrap

    # click cut Thai between any two code points: a tone mark began the next line.
    thai = ("วัคซีนป้องกันโรคหัดเยอรมันสำหรับเด็กทุกคนในหมู่บ้านที่อยู่ห่างไกลจากโรงพยาบาล"
            "ประจำจังหวัดควรได้รับการฉีดภายในเดือนนี้ตามคำแนะนำของกระทรวงสาธารณสุข")
    for width in range(20, 60, 3):
        lines = wrap(thai, width=width).splitlines()
        assert "".join(line.strip() for line in lines) == thai
        for line in lines:
            assert not unicodedata.category(line.strip()[0]).startswith("M"), (width, line)
            assert snippets.columns(line)[-1] <= width, (width, line)
    hindi = "विश्वविद्यालयोंकीप्रवेशपरीक्षाएँ" * 4
    assert all(not unicodedata.category(line.strip()[0]).startswith("M")
               for line in wrap(hindi, width=30).splitlines())


def test_accents_do_not_stop_a_mark():
    snip, hl = snippets.best_snippet("Éruption volcanique : les habitants évacués.",
                                     "volcanic eruption")
    assert _marked(snip, hl) == ["Éruption"]
    snip, hl = snippets.best_snippet("The eruption forced thousands to leave.",
                                     "éruption volcanique")
    assert _marked(snip, hl) == ["eruption"]
    # only Latin and Greek accents go: a Devanagari vowel sign is part of the word
    snip, hl = snippets.best_snippet("कि की", "क")
    assert hl == []


def test_long_sentence_is_cut_around_the_match():
    text = " ".join(["filler"] * 200 + ["Krakatoa"] + ["filler"] * 200)
    snip, hl = snippets.best_snippet(text, "Krakatoa", limit=60)
    assert len(snip) <= 60 and _marked(snip, hl) == ["Krakatoa"]
    assert snip.startswith(snippets.ELLIPSIS) and snip.endswith(snippets.ELLIPSIS)


def test_terms_restrict_what_counts():
    snip, hl = snippets.best_snippet(LONG, "the wheat", limit=80, terms={"wheat"})
    assert _marked(snip, hl) == ["wheat"]


def test_no_overlap_uses_the_embedding_callback():
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([[1.0, 0.0] if "Naples" in t else [0.0, 1.0] for t in texts])

    snip, hl = snippets.best_snippet(LONG, "éruption volcanique", limit=70,
                                     sentence_vectors=embed, query_vector=np.array([1.0, 0]))
    assert "Naples" in snip and hl == []
    assert calls, "the callback is used when no token matches"
    # without the callback: the start of the passage
    snip, _ = snippets.best_snippet(LONG, "éruption volcanique", limit=70)
    assert snip.startswith("Bread")


def test_sentence_spans_cover_scripts():
    text = "第一句。第二句！ एक वाक्य। दूसरा। ቡና ነው። ሻይ ነው።"
    sents = [text[a:b] for a, b in snippets.sentence_spans(text)]
    assert sents == ["第一句。", "第二句！", "एक वाक्य।", "दूसरा।", "ቡና ነው።", "ሻይ ነው።"]


def test_render_marks_terms_for_the_terminal():
    out = snippets.render("bake the bread", [[0, 4], [9, 14]])
    assert click.unstyle(out) == "bake the bread"
    assert out.count("\x1b[1m") == 2
    assert snippets.render("bake", [[0, 4]], color=False) == "bake"


def test_a_stray_character_pair_is_not_highlighted():
    text = "ต้นกาแฟออกดอก ปลูกอาราบิกาใต้ร่มไม้"
    snip, hl = snippets.best_snippet(text, "กาแฟ")
    assert _marked(snip, hl) == ["กาแฟ"]  # not the กา inside อาราบิกา


def _flatten_by_character(text: str, highlights: list) -> tuple[str, list[list[int]]]:
    """The reference: walk the text once, noting where each character lands."""
    out, where, prev_space = [], [], False
    for ch in text:
        where.append(len(out))
        if ch.isspace():
            if not prev_space and out:
                out.append(" ")
            prev_space = True
        else:
            out.append(ch)
            prev_space = False
    where.append(len(out))
    flat = "".join(out).rstrip()
    return flat, [[where[a], min(where[b], len(flat))] for a, b in highlights
                  if where[a] < min(where[b], len(flat))]


def test_flatten_moves_highlights_with_the_collapsed_white_space():
    rng = random.Random(7)
    alphabet = "ab \t\n\u00a0\u3000\u2028x.é"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        marks = []
        for _ in range(rng.randint(0, 4)):
            a = rng.randint(0, len(text))
            marks.append((a, rng.randint(a, len(text))))
        assert flatten(text, marks) == _flatten_by_character(text, marks), (text, marks)
    assert flatten("  a \n\n b  ", [(2, 3), (7, 8)]) == ("a b", [[0, 1], [2, 3]])


def test_a_cut_never_splits_a_user_perceived_character():
    # A Thai run without spaces cut after a tone mark left it orphaned after the "…"
    # (a quarter of the cases), and a family emoji lost its people after the joiner.
    import random
    import unicodedata

    rng = random.Random(3)
    thai = "ซุปเปอร์โนวาการระเบิดของดาวฤกษ์ที่สว่างที่สุดในกาแล็กซี่"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    flag, thumb = "\U0001f1eb\U0001f1f7", "\U0001f44d\U0001f3fd"  # two code points each
    for _ in range(300):
        parts = [rng.choice([thai, family, flag, thumb, "ก่อน", "น้ำ"]) for _ in range(40)]
        text = "".join(parts)
        snip, _ = snippets.best_snippet(text, "ซุปเปอร์โนวา", limit=rng.randint(20, 60))
        body = snip.strip(snippets.ELLIPSIS)
        assert unicodedata.category(body[0])[0] != "M" and body[0] != "\u200d", snip
        assert body[-1] != "\u200d" and not text.startswith(body[:-1] + "\u200d"), snip
        at = text.find(body)
        end = at + len(body)
        assert end == len(text) or snippets.cluster_starts(text, end), snip
