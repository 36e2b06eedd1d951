"""Topic labelling pieces: label files, zero-shot argmax, per-document means, few-shot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xsearch.classifiers import LogisticClassifier, PrototypeClassifier
from xsearch.errors import XsearchError
from xsearch.topics import Label, document_topics, parse_labels, zero_shot


def test_parse_labels_names_descriptions_and_errors():
    labels = parse_labels(["# comment", "", "sports", "health: medicine, doctors and disease"],
                          template="About {label}.")
    assert labels == [Label("sports", "About sports."),
                      Label("health", "medicine, doctors and disease")]
    with pytest.raises(XsearchError, match="twice"):
        parse_labels(["a", "a"])
    with pytest.raises(XsearchError, match="at least two"):
        parse_labels(["only"])


def test_labels_files_and_templates_that_once_went_wrong(tmp_path):
    from click.testing import CliRunner

    from xsearch.cli import cli
    from xsearch.topics import read_labels

    # A byte order mark (Notepad's UTF-8) once became part of the first label's name.
    f = tmp_path / "labels.txt"
    f.write_bytes("\ufefffood\ngeo: places and maps\n".encode())
    assert [lb.name for lb in read_labels(f)] == ["food", "geo"]
    # "name:" is the name, described by the template (its colon was kept in the name).
    assert parse_labels(["food:", "geo:"], "about {label}") == [
        Label("food", "about food"), Label("geo", "about geo")]
    with pytest.raises(XsearchError, match="no label name"):
        parse_labels([": a description", "geo"])
    # A template that names no {label}, or another field, or is not one: one line, exit 1
    # (a traceback, or every label described alike).
    for template in ("{label} {oops}", "{0}", "{", "{label", "{label!z}", "no placeholder",
                     "", "{label.upper}"):
        with pytest.raises(XsearchError, match="--template"):
            parse_labels(["food", "geo"], template)
        res = CliRunner().invoke(cli, ["label", str(f), "--template", template, "--index",
                                       str(tmp_path / "none")])
        assert res.exit_code == 1 and "--template" in res.output, (template, res.output)
        assert "Traceback" not in res.output
    assert parse_labels(["food", "geo"], "{{about}} {label}, {label}")[0].description == \
        "{about} food, food"
    # Options of the other way of labelling are refused, not ignored in silence.
    for args, said in ((["--method", "prototype"], "--method go with --train"),
                       (["--source", "auto"], "--source go with --train"),
                       (["--train", str(f), "--template", "{label}"],
                        "--template goes with LABELS_FILE")):
        lf = [] if "--train" in args else [str(f)]
        res = CliRunner().invoke(cli, ["label", *lf, *args, "--index", str(tmp_path / "none")])
        assert res.exit_code == 2 and said in res.output, (args, res.output)


def test_zero_shot_and_document_topics_match_brute_force():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    labels = rng.normal(size=(3, 8)).astype(np.float32)
    best, score = zero_shot(vecs, labels)
    assert np.array_equal(best, (vecs @ labels.T).argmax(axis=1))
    assert np.allclose(score, (vecs @ labels.T).max(axis=1))
    doc_ids = rng.integers(100, 110, size=50)
    docs, doc_best, _ = document_topics(doc_ids, vecs, labels)
    assert list(docs) == sorted(set(doc_ids.tolist()))
    for d, b in zip(docs, doc_best, strict=True):
        mean = vecs[doc_ids == d].mean(axis=0)
        assert b == (mean @ labels.T).argmax()


def test_few_shot_classifiers_learn_separable_labels():
    rng = np.random.default_rng(1)
    centers = np.eye(4, 16, dtype=np.float32) * 3
    x = np.vstack([c + rng.normal(scale=0.3, size=(10, 16)) for c in centers])
    y = [lb for lb in "abcd" for _ in range(10)]
    test = np.vstack([c + rng.normal(scale=0.3, size=(3, 16)) for c in centers])
    truth = [lb for lb in "abcd" for _ in range(3)]
    assert PrototypeClassifier().fit(x, y).predict(test) == truth
    assert LogisticClassifier().fit(x, y).predict(test) == truth


def test_examples_files_as_spreadsheets_and_people_write_them(tmp_path):
    """A label 0 was "needs a non-empty text and label"; Excel's CSV (a byte order mark) had
    no 'text' column; examples tagged hi or English trained another classifier than the same
    tagged hin_Deva or eng_Latn, and --source hin found no examples in hin_Deva."""
    from xsearch.trained_labels import fill_languages, pick_sources, read_examples

    jsonl = tmp_path / "num.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": n, "language": lang}) for t, n,
                               lang in [("Knead the dough well.", 0, "English"),
                                        ("रोटी तवे पर सेंकी जाती है।", 0, "hi"),
                                        ("Lava flowed from the crater.", 1, "eng_Latn")]),
                     encoding="utf-8")
    examples = read_examples(jsonl)
    assert [e.label for e in examples] == ["0", "0", "1"]
    fill_languages(examples)
    assert [e.language for e in examples] == ["eng_Latn", "hin_Deva", "eng_Latn"]
    assert pick_sources(tmp_path, examples, None, "hin") == (["hin_Deva"], {})
    assert pick_sources(tmp_path, examples, None, "en,Hindi")[0] == ["eng_Latn", "hin_Deva"]
    with pytest.raises(XsearchError, match="no examples in fra"):
        pick_sources(tmp_path, examples, None, "fra")
    csv = tmp_path / "excel.csv"
    csv.write_bytes("\ufefftext,label\nKnead the dough.,bread\nLava flows.,volcano\n"
                    .encode())
    assert [e.label for e in read_examples(csv)] == ["bread", "volcano"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "label": "a", "language": "Klingonese"}) + "\n",
                   encoding="utf-8")
    with pytest.raises(XsearchError, match="example 1"):
        read_examples(bad)


def test_labels_that_differ_only_in_case_are_one_label():
    # `--topic Sports` matches without case, so Sports and sports could never be told apart.
    with pytest.raises(XsearchError, match="without regard to case"):
        parse_labels(["Sports", "travel", "sports"])
