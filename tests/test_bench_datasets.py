"""Benchmark dataset loaders on tiny datasets written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xsearch.bench.datasets import (
    BenchDataset,
    load_sib200,
    load_sib200_split,
    pair_subset,
)
from xsearch.bench.generic import load_generic
from xsearch.errors import DatasetError, UnknownLanguageError

LANGS = ["eng_Latn", "fra_Latn", "zho_Hans"]
LABELS = ["science", "travel", "sports"]
HEADER = "index_id\tcategory\ttext\n"
# index_id -> category; texts are "<lang> <id>", with an unbalanced quote to need QUOTE_NONE
TEST_ROWS = {"1": "science", "2": "travel", "3": "sports", "10": "travel"}
TRAIN_ROWS = {"4": "science", "5": "sports"}
DEV_ROWS = {"6": "travel"}


def _write_split(folder: Path, name: str, rows: dict[str, str], lang: str) -> None:
    lines = [f'{i}\t{cat}\t{lang} "sentence {i}\n' for i, cat in rows.items()]
    (folder / f"{name}.tsv").write_text(HEADER + "".join(lines), encoding="utf-8")


def make_sib(root: Path, langs: list[str] = LANGS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    (root / "README.md").write_text("not a language\n", encoding="utf-8")
    for lang in langs:
        folder = root / lang
        folder.mkdir()
        _write_split(folder, "test", TEST_ROWS, lang)
        _write_split(folder, "train", TRAIN_ROWS, lang)
        _write_split(folder, "dev", DEV_ROWS, lang)
    return root


def test_load_sib200_test_split(tmp_path: Path) -> None:
    ds = load_sib200(make_sib(tmp_path / "sib"))
    assert isinstance(ds, BenchDataset)
    assert ds.languages == LANGS
    assert len(ds.queries) == len(ds.corpus) == 12
    assert ds.queries == ds.corpus
    assert ds.queries["fra_Latn:2"] == 'fra_Latn "sentence 2'
    assert ds.query_lang["zho_Hans:10"] == "zho_Hans"
    assert ds.doc_lang == ds.query_lang
    # translations in the other languages, never itself
    assert ds.qrels["eng_Latn:1"] == {"fra_Latn:1", "zho_Hans:1"}
    assert ds.qrels["zho_Hans:10"] == {"eng_Latn:10", "fra_Latn:10"}
    assert len(ds.qrels) == 12
    assert ds.labels == LABELS
    assert ds.doc_label["fra_Latn:3"] == "sports"
    assert ds.doc_group["zho_Hans:10"] == "10"


def test_load_sib200_language_subset_and_all_split(tmp_path: Path) -> None:
    root = make_sib(tmp_path / "sib")
    ds = load_sib200(root, languages=["eng_Latn", "zho_Hans"])
    assert ds.languages == ["eng_Latn", "zho_Hans"]
    assert ds.qrels["eng_Latn:3"] == {"zho_Hans:3"}
    # train 2 + dev 1 + test 4 per language
    full = load_sib200(root, languages=["eng_Latn", "fra_Latn"], split="all")
    assert len(full.corpus) == 14
    assert full.qrels["fra_Latn:6"] == {"eng_Latn:6"}
    # a single language has no cross-lingual relevance at all
    assert load_sib200(root, languages=["eng_Latn"]).qrels == {}


def test_load_sib200_sample_same_ids_everywhere(tmp_path: Path) -> None:
    root = make_sib(tmp_path / "sib")
    ds = load_sib200(root, sample=2, seed=7)
    groups = {
        lang: {ds.doc_group[d] for d in ds.corpus if ds.doc_lang[d] == lang} for lang in LANGS
    }
    assert len(groups["eng_Latn"]) == 2
    assert groups["eng_Latn"] == groups["fra_Latn"] == groups["zho_Hans"]
    assert len(ds.corpus) == 6
    # deterministic for a seed
    assert load_sib200(root, sample=2, seed=7).corpus == ds.corpus
    # more than available keeps everything
    assert len(load_sib200(root, sample=99).corpus) == 12


def test_sample_draws_only_ids_present_in_every_language(tmp_path: Path) -> None:
    root = make_sib(tmp_path / "sib")
    rows = {k: v for k, v in TEST_ROWS.items() if k != "10"}
    _write_split(root / "fra_Latn", "test", rows, "fra_Latn")
    ds = load_sib200(root, sample=3, seed=0)
    assert {ds.doc_group[d] for d in ds.corpus} == {"1", "2", "3"}
    assert len(ds.corpus) == 9
    # without sampling the id missing in French stays, relevant to the remaining translation
    assert load_sib200(root).qrels["eng_Latn:10"] == {"zho_Hans:10"}


def test_load_sib200_split(tmp_path: Path) -> None:
    root = make_sib(tmp_path / "sib")
    rows = load_sib200_split(root, "fra_Latn", "train")
    assert rows == [
        ("4", "science", 'fra_Latn "sentence 4'),
        ("5", "sports", 'fra_Latn "sentence 5'),
    ]
    assert len(load_sib200_split(root, "fra_Latn", "all")) == 7


def test_sib200_errors(tmp_path: Path) -> None:
    root = make_sib(tmp_path / "sib")
    with pytest.raises(DatasetError, match="xxx_Latn"):
        load_sib200(root, languages=["eng_Latn", "xxx_Latn"])
    with pytest.raises(DatasetError, match="not a folder"):
        load_sib200(tmp_path / "nowhere")
    with pytest.raises(ValueError):
        load_sib200(root, split="validation")

    (root / "fra_Latn" / "dev.tsv").unlink()
    with pytest.raises(DatasetError, match="dev.tsv"):
        load_sib200(root, split="all")
    load_sib200(root, split="test")  # the test split alone is still fine

    (root / "eng_Latn" / "test.tsv").write_text("id\tlabel\ttext\n1\tscience\thi\n")
    with pytest.raises(DatasetError, match="header"):
        load_sib200(root)

    (root / "eng_Latn" / "test.tsv").write_text(HEADER + "1\tscience\n")
    with pytest.raises(DatasetError, match=r"test\.tsv:2"):
        load_sib200(root)

    (root / "eng_Latn" / "test.tsv").write_text(HEADER + "1\tcooking\thi\n")
    with pytest.raises(DatasetError, match="cooking"):
        load_sib200(root)

    (root / "labels.txt").unlink()
    with pytest.raises(DatasetError, match="labels.txt"):
        load_sib200(root)


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")


def make_generic(root: Path) -> Path:
    root.mkdir(parents=True)
    _write_jsonl(
        root / "corpus.jsonl",
        [
            {"id": "d1", "lang": "eng", "text": "The cat sleeps."},
            {"id": "d2", "lang": "fra", "text": "Le chat dort."},
            {"id": "d3", "lang": "deu", "text": "Der Hund bellt."},
            {"id": "d4", "lang": "eng", "title": "Dogs", "text": "A dog barks."},
        ],
    )
    _write_jsonl(
        root / "queries.jsonl",
        [
            {"id": "q1", "lang": "eng", "text": "sleeping cat"},
            {"id": "q2", "lang": "fra", "text": "chien qui aboie"},
            {"id": "q3", "lang": "eng", "text": "no answer here"},
        ],
    )
    (root / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t1\nq1\td3\t0\n\nq2\td4\t2\n",
        encoding="utf-8",
    )
    return root


def test_load_generic(tmp_path: Path) -> None:
    ds = load_generic(make_generic(tmp_path / "toy"))
    assert ds.name == "toy"
    assert ds.languages == ["deu", "eng", "fra"]
    assert set(ds.queries) == {"q1", "q2", "q3"}
    assert ds.query_lang["q2"] == "fra"
    assert ds.doc_lang == {"d1": "eng", "d2": "fra", "d3": "deu", "d4": "eng"}
    # q1 has relevant documents in two languages; score 0 is not relevant; q3 has none
    assert ds.qrels == {"q1": {"d1", "d2"}, "q2": {"d4"}}
    assert ds.corpus["d4"] == "Dogs A dog barks."
    assert ds.labels is None and ds.doc_label == {} and ds.doc_group == {}


def test_pair_subset_generic(tmp_path: Path) -> None:
    ds = load_generic(make_generic(tmp_path / "toy"))
    sub = pair_subset(ds, "eng", "fra")
    assert sub.queries == {"q1": "sleeping cat"}
    assert sub.query_lang == {"q1": "eng"}
    assert sub.corpus == {"d2": "Le chat dort."}
    assert sub.doc_lang == {"d2": "fra"}
    assert sub.qrels == {"q1": {"d2"}}
    # d3 (German) is judged but not relevant -> no query survives, the pool stays
    empty = pair_subset(ds, "eng", "deu")
    assert empty.queries == {} and empty.qrels == {}
    assert set(empty.corpus) == {"d3"}
    # the original is untouched
    assert ds.qrels["q1"] == {"d1", "d2"}


def test_pair_subset_sib(tmp_path: Path) -> None:
    ds = load_sib200(make_sib(tmp_path / "sib"))
    sub = pair_subset(ds, "eng_Latn", "zho_Hans")
    assert set(sub.queries) == {"eng_Latn:1", "eng_Latn:2", "eng_Latn:3", "eng_Latn:10"}
    assert set(sub.corpus) == {"zho_Hans:1", "zho_Hans:2", "zho_Hans:3", "zho_Hans:10"}
    assert sub.qrels["eng_Latn:2"] == {"zho_Hans:2"}
    assert sub.doc_label["zho_Hans:3"] == "sports"
    assert set(sub.doc_group) == set(sub.corpus)
    assert sub.labels == LABELS
    # same language: a sentence is not relevant to itself
    assert pair_subset(ds, "eng_Latn", "eng_Latn").queries == {}


def test_generic_errors(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "toy")
    corpus = (root / "corpus.jsonl").read_text(encoding="utf-8")
    qrels = (root / "qrels.tsv").read_text(encoding="utf-8")

    (root / "corpus.jsonl").write_text(corpus + "{not json\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:5"):
        load_generic(root)

    (root / "corpus.jsonl").write_text(
        corpus + json.dumps({"id": "d5", "text": "no lang"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:5: missing field 'lang'"):
        load_generic(root)

    (root / "corpus.jsonl").write_text(
        corpus + json.dumps({"id": "d1", "lang": "eng", "text": "again"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(DatasetError, match="duplicate"):
        load_generic(root)
    (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")

    (root / "qrels.tsv").write_text(qrels.replace("query-id", "qid"), encoding="utf-8")
    with pytest.raises(DatasetError, match="header"):
        load_generic(root)

    (root / "qrels.tsv").write_text(qrels + "q2\td1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"qrels\.tsv:7"):
        load_generic(root)

    (root / "qrels.tsv").write_text(qrels + "q9\td1\t1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="unknown query id"):
        load_generic(root)

    (root / "qrels.tsv").write_text(qrels + "q1\td1\tyes\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="not a number"):
        load_generic(root)

    (root / "queries.jsonl").unlink()
    with pytest.raises(DatasetError, match="queries.jsonl"):
        load_generic(root)
    with pytest.raises(DatasetError, match="not a folder"):
        load_generic(tmp_path / "missing")


# ------------------------------------------------------- outside data: codes, BEIR, same item


def test_generic_codes_are_normalised(tmp_path: Path) -> None:
    root = tmp_path / "coded"
    root.mkdir()
    _write_jsonl(root / "corpus.jsonl", [
        {"id": "d1", "lang": "ar", "text": "نص"},
        {"id": "d2", "lang": "zh", "text": "文本"},
        {"id": "d3", "lang": "zh-Hans", "text": "文本二"},
        {"id": "d4", "lang": "en-US", "text": "text"},
        {"id": "d5", "lang": "HIN_deva", "text": "पाठ"},
        {"id": "d6", "lang": "quc", "text": "a language outside the table"},
    ])
    _write_jsonl(root / "queries.jsonl", [
        {"id": "q1", "lang": "English", "text": "text"},
        {"id": "q2", "lang": "ara", "text": "نص"},
    ])
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n",
                                    encoding="utf-8")
    ds = load_generic(root)
    # zh and zh-Hans are one language column: the bare code joins its one scripted form
    assert ds.doc_lang == {"d1": "arb", "d2": "zho_Hans", "d3": "zho_Hans", "d4": "eng",
                           "d5": "hin_Deva", "d6": "quc"}
    assert ds.query_lang == {"q1": "eng", "q2": "arb"}
    assert ds.languages == ["arb", "eng", "hin_Deva", "quc", "zho_Hans"]

    _write_jsonl(root / "queries.jsonl", [{"id": "q1", "lang": "zh-*", "text": "t"}])
    with pytest.raises(DatasetError, match=r"queries\.jsonl:1: unknown language 'zh-\*'"):
        load_generic(root)


def make_beir(root: Path) -> Path:
    """BEIR's own layout, unchanged: _id, title, text, no language, qrels/<split>.tsv."""
    (root / "qrels").mkdir(parents=True)
    _write_jsonl(root / "corpus.jsonl", [
        {"_id": "doc0", "title": "الخبز", "text": "اعجن العجين واترك الخبز يختمر.",
         "metadata": {}},
        {"_id": "doc1", "title": "", "text": "ثار البركان وغطى القرية بالرماد."},
        {"_id": 2, "title": "كرة القدم", "text": "فاز الفريق بالمباراة النهائية."},
    ])
    _write_jsonl(root / "queries.jsonl", [
        {"_id": "q0", "text": "كيف أخبز الخبز", "metadata": {}},
        {"_id": "q1", "text": "ثوران بركاني"},
        {"_id": "q2", "text": "لا جواب"},
    ])
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq0\tdoc0\t2\nq0\tdoc1\t0\nq1\tdoc1\t1\n", encoding="utf-8")
    (root / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq2\t2\t1\n", encoding="utf-8")
    return root


def test_beir_layout_loads_as_is(tmp_path: Path) -> None:
    ds = load_generic(make_beir(tmp_path / "ar"))  # the folder names the language
    assert set(ds.corpus) == {"doc0", "doc1", "2"}
    assert ds.corpus["doc0"] == "الخبز اعجن العجين واترك الخبز يختمر."
    assert ds.corpus["doc1"] == "ثار البركان وغطى القرية بالرماد."  # empty title: no prefix
    assert set(ds.doc_lang.values()) == set(ds.query_lang.values()) == {"arb"}
    # graded scores: > 0 relevant; 0 judged but not relevant
    assert ds.qrels == {"q0": {"doc0"}, "q1": {"doc1"}}
    assert ds.judged["q0"] == {"doc0", "doc1"}
    assert load_generic(tmp_path / "ar", split="dev").qrels == {"q2": {"2"}}
    assert load_generic(tmp_path / "ar", split="all").qrels == {
        "q0": {"doc0"}, "q1": {"doc1"}, "q2": {"2"}}


def test_beir_layout_language_from_option_or_refused(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "scifact")
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:1: missing field 'lang'"):
        load_generic(root)
    ds = load_generic(root, default_lang="Arabic")
    assert set(ds.doc_lang.values()) == {"arb"}
    with pytest.raises(DatasetError, match="unknown language 'klingon'"):
        load_generic(root, default_lang="klingon")
    with pytest.raises(DatasetError, match=r"qrels/train\.tsv"):
        load_generic(root, split="train", default_lang="ar")
    with pytest.raises(DatasetError, match="split 'dev' needs BEIR's"):
        load_generic(make_generic(tmp_path / "toy"), split="dev")


def make_bitext(root: Path) -> Path:
    """Tatoeba-like: English queries, pool of English and French sentences; each query's own
    sentence sits in the pool under another id, marked by the same `item`."""
    root.mkdir(parents=True)
    pairs = [("The cat sleeps on the sofa.", "Le chat dort sur le canapé."),
             ("I missed the last train home.", "J'ai raté le dernier train pour rentrer."),
             ("She plays the piano every evening.", "Elle joue du piano tous les soirs."),
             ("The soup is too salty.", "La soupe est trop salée."),
             ("We planted apple trees in the garden.", "Nous avons planté des pommiers dans "
                                                       "le jardin.")]
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i, (en, fr) in enumerate(pairs):
        queries.append({"id": f"q{i}", "lang": "en", "text": en, "item": f"en{i}"})
        corpus.append({"id": f"en-{i}", "lang": "en", "text": en, "item": f"en{i}"})
        corpus.append({"id": f"fr-{i}", "lang": "fr", "text": fr, "item": f"fr{i}"})
        qrels.append(f"q{i}\tfr-{i}\t1")
    _write_jsonl(root / "corpus.jsonl", corpus)
    _write_jsonl(root / "queries.jsonl", queries)
    (root / "qrels.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return root


def test_same_item_marks(tmp_path: Path) -> None:
    root = make_bitext(tmp_path / "tatoeba")
    ds = load_generic(root)
    assert ds.same_item == {f"q{i}": {f"en-{i}"} for i in range(5)}
    assert ds.self_matches("q0") == {"en-0"}
    assert pair_subset(ds, "eng", "eng").same_item == {}  # no query has an English relevant
    assert pair_subset(ds, "eng", "fra").same_item == {}
    # "item" is the same text, not a translation: marking a relevant document is refused
    text = (root / "corpus.jsonl").read_text(encoding="utf-8").replace('"fr0"', '"en0"')
    (root / "corpus.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match="same item as document 'fr-0'"):
        load_generic(root)


def test_generic_languages_and_sample(tmp_path: Path) -> None:
    root = make_bitext(tmp_path / "tatoeba")
    only_fr = load_generic(root, languages=["fr"])
    assert set(only_fr.doc_lang.values()) == {"fra"} and only_fr.queries == {}
    both = load_generic(root, languages=["English", "fra_Latn"])
    assert len(both.corpus) == 10 and len(both.qrels) == 5
    with pytest.raises(DatasetError, match="'de' .* not in the dataset; it has: eng, fra"):
        load_generic(root, languages=["de"])
    with pytest.raises(UnknownLanguageError):
        load_generic(root, languages=["xx_Yyyy"])

    s = load_generic(root, sample=2, seed=3)
    assert len(s.queries) == 2 and set(s.qrels) == set(s.queries)
    # the pool: documents judged for the kept queries and their own sentences
    kept = sorted(q[1:] for q in s.queries)
    assert sorted(s.corpus) == sorted([f"en-{i}" for i in kept] + [f"fr-{i}" for i in kept])
    assert load_generic(root, sample=2, seed=3).corpus == s.corpus  # seeded
    assert s.name == "tatoeba-n2-s3"
    assert len(load_generic(root, sample=99).queries) == 5


def test_resolve_languages_against_sib_folders(tmp_path: Path) -> None:
    from xsearch.bench.datasets import resolve_languages, sib200_languages

    folders = sib200_languages(make_sib(tmp_path / "sib"))
    assert folders == LANGS
    assert resolve_languages(["en", "Chinese", "FRA_latn"], folders) == [
        "eng_Latn", "zho_Hans", "fra_Latn"]
    with pytest.raises(DatasetError, match="'hi' .* not in the dataset"):
        resolve_languages(["hi"], folders)


# ------------------------------------------------- end to end on the real model, via the CLI

TOPICS = [  # (English, Arabic, Chinese) document; then the same three as queries
    (("Knead the dough and let the bread rise overnight before baking it.",
      "اعجن العجين واترك الخبز يختمر طوال الليل قبل خبزه.",
      "揉好面团，让面包发酵一整夜，然后再烤。"),
     ("how to bake bread", "كيف أخبز الخبز", "怎么烤面包")),
    (("The volcano erupted and covered the whole village in grey ash.",
      "ثار البركان وغطى القرية كلها بالرماد الرمادي.",
      "火山爆发了，灰色的火山灰覆盖了整个村庄。"),
     ("volcanic eruption", "ثوران بركاني", "火山喷发")),
    (("The football team won the championship final with a late goal.",
      "فاز فريق كرة القدم بالمباراة النهائية للبطولة بهدف متأخر.",
      "足球队凭借一个迟到的进球赢得了冠军决赛。"),
     ("football championship", "بطولة كرة القدم", "足球冠军赛")),
    (("Doctors vaccinated thousands of children against measles this year.",
      "قام الأطباء هذا العام بتطعيم آلاف الأطفال ضد الحصبة.",
      "今年医生为数千名儿童接种了麻疹疫苗。"),
     ("measles vaccination for children", "تطعيم الأطفال ضد الحصبة", "儿童麻疹疫苗接种")),
]


def _bench(tmp_path: Path, data: Path, *extra: str) -> tuple[dict, str]:
    from click.testing import CliRunner

    from xsearch.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["bench", "--dataset", "generic", "--data", str(data),
                                      "--out", str(out), "--cache", str(tmp_path / "cache"),
                                      "--k", "1,5", *extra])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return res, (out / "report.md").read_text(encoding="utf-8")


def test_iso_639_1_coded_set_end_to_end(tmp_path: Path) -> None:
    """`ar`/`zh`/`en` labels: language id and every per-language column work."""
    root = tmp_path / "xling"
    root.mkdir()
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for t, (docs, qs) in enumerate(TOPICS):
        for code, doc, q in zip(("en", "ar", "zh"), docs, qs, strict=True):
            corpus.append({"id": f"d{t}-{code}", "lang": code, "text": doc})
            queries.append({"id": f"q{t}-{code}", "lang": code, "text": q})
        qrels += [f"q{t}-{qc}\td{t}-{dc}\t1" for qc in ("en", "ar", "zh")
                  for dc in ("en", "ar", "zh")]
    _write_jsonl(root / "corpus.jsonl", corpus)
    _write_jsonl(root / "queries.jsonl", queries)
    (root / "qrels.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")

    res, report = _bench(tmp_path, root)
    langs = ["arb", "eng", "zho"]
    assert res["languages"] == {"query": langs, "document": langs}
    for lang in langs:
        assert res["language_id"][lang]["accuracy"] > 0.5, res["language_id"]
    summ = res["retrieval"]["recall@5"]
    assert set(summ["per_query_lang_cross"]) == set(summ["per_doc_lang_cross"]) == set(langs)
    assert all(v is not None for v in summ["per_query_lang_cross"].values())
    assert set(res["mixed"]["per_query_language"]) == set(langs)
    # the per-language table: every retrieval, mixed-pool, tokenizer and language-id cell
    table = report.split("## Per language")[1].split("\n\n")[2].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert "zero-shot acc" not in header  # no topic labels in this set: no topic columns
    for lang in langs:
        row = next(r for r in table if r.startswith(f"| {lang} |"))
        cells = dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))
        for col in ("R@1 as query", "R@5 as query", "R@5 as docs", "R@1 as docs",
                    "R@5 same language", "mixed mAP@12", "own-lang bias of wrong hits@10",
                    "tokens/unit", "langid acc"):
            assert cells[col] not in ("–", ""), (lang, col, row)
    assert res["tokenization"]["arb"]["ratio_to_english"] is not None  # eng found as "eng"


def test_bitext_mixed_pool_skips_the_query_itself(tmp_path: Path) -> None:
    """Tatoeba-like set: without the `item` marks each English query would find its own
    sentence (another id, same text) first and recall@1 in the mixed pool would be 0."""
    res, report = _bench(tmp_path, make_bitext(tmp_path / "tatoeba"))
    assert res["sizes"]["queries_with_same_item_document"] == 5
    mixed = res["mixed"]["per_query_language"]["eng"]
    assert mixed["recall@1"] >= 0.8, mixed
    assert res["retrieval"]["pairs"]["eng"]["fra"]["recall@1"] >= 0.8
    assert res["retrieval"]["pairs"]["eng"]["eng"] is None  # no English document is relevant

    # Matrix cells print the digits they have: 0.995 is not shown as 1.00.
    from xsearch.bench.report import write_report

    res["retrieval"]["pairs"]["eng"]["fra"]["recall@5"] = 0.995
    write_report(res, tmp_path / "again")
    again = (tmp_path / "again" / "report.md").read_text(encoding="utf-8")
    matrix = again.split("## recall@5 matrix")[1]
    assert "| eng | – | 0.995 |" in matrix


def test_query_and_document_ids_are_separate_names(tmp_path: Path) -> None:
    """A BEIR-style set whose query "1" is answered by document "1": the document was
    dropped as the query's own self-hit, and recall@1 read 0.0 for a model that found all."""
    root = tmp_path / "shared-ids"
    root.mkdir()
    _write_jsonl(root / "corpus.jsonl", [
        {"id": "1", "lang": "en", "text": "The cat sleeps on the warm sofa."},
        {"id": "2", "lang": "fr", "text": "Le train pour Paris part à huit heures."}])
    _write_jsonl(root / "queries.jsonl", [
        {"id": "1", "lang": "fr", "text": "Le chat dort sur le canapé."},
        {"id": "2", "lang": "en", "text": "The train to Paris leaves at eight."}])
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n1\t1\t1\n2\t2\t1\n",
                                    encoding="utf-8")
    ds = load_generic(root)
    assert ds.self_matches("1") == set() and ds.self_map() == {}
    # The same id with the same text is the query itself (SIB-200's pools are built so).
    ds.queries["1"] = ds.corpus["1"]
    assert ds.self_matches("1") == {"1"}
