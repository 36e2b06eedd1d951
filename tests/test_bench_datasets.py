"""Benchmark dataset loaders on tiny datasets written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xsearch.bench.datasets import (
    BenchDataset,
    load_generic,
    load_sib200,
    load_sib200_split,
    pair_subset,
)
from xsearch.errors import DatasetError

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
