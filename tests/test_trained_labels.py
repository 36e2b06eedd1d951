"""A trained topic classifier saved with an index: what it may delete, how a stopped run is
finished, and what a model change does to it (logreg: no torch needed)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from serve_util import child_env

from xsearch.cli import cli
from xsearch.trained_labels import read_examples

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
TEXTS = {"bread": ["Knead the dough and let it rise before baking the loaf.",
                   "Flour, water, yeast and salt make a simple bread.",
                   "Sourdough needs a starter culture of wild yeast."],
         "volcano": ["Lava flowed down the slopes after the eruption.",
                     "The volcano threw ash high into the sky.",
                     "Magma rises through the crust and erupts at the crater."]}


def _write_examples(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _examples(path: Path) -> Path:
    return _write_examples(path, [{"text": t, "label": label}
                                  for label, texts in TEXTS.items() for t in texts])


def _docs(tmp_path: Path, n: int = 2) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic in ("bread", "volcano"):
        for src in sorted((CORPUS / topic).glob("*.txt"))[:n]:
            shutil.copy(src, docs / src.name)
    return docs


def _meta(index: Path, key: str) -> str | None:
    conn = sqlite3.connect(index / "xsearch.db")
    row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    conn.close()
    return row[0] if row else None


def _invoke(*args: str):
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res


def test_a_folder_of_the_users_named_classifier_is_never_deleted(tmp_path):
    docs = _docs(tmp_path, 1)
    mine = tmp_path / "proj" / "classifier"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    res = CliRunner().invoke(cli, ["index", str(docs), "--index", str(tmp_path / "proj")])
    assert res.exit_code == 1 and "not an xsearch index" in res.output
    # In an index folder, put there later: zero-shot labels leave it alone; a trained
    # classifier, which would take its place, is refused before anything is written.
    index = tmp_path / "index"
    _invoke("index", str(docs), "--index", str(index), "-q")
    shutil.copytree(mine, index / "classifier")
    labels = tmp_path / "labels.txt"
    labels.write_text("bread\nvolcano\n", encoding="utf-8")
    _invoke("label", str(labels), "--index", str(index))
    res = CliRunner().invoke(cli, ["label", "--train", str(_examples(tmp_path / "e.jsonl")),
                                   "--index", str(index)])
    assert res.exit_code == 1 and "not a classifier xsearch saved" in res.output, res.output
    assert (index / "classifier" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(os.listdir(index / "classifier")) == ["notes.txt"]
    assert _meta(index, "classifier") == ""  # the zero-shot labels are what was committed


def test_a_label_run_stopped_between_its_commit_and_the_swap_is_finished(tmp_path):
    docs, index = _docs(tmp_path), tmp_path / "index"
    _invoke("index", str(docs), "--index", str(index), "-q")
    env = {**child_env(), "XSEARCH_FAULT": "label:committed"}
    killed = subprocess.run([sys.executable, "-m", "xsearch", "label", "--train",
                             str(_examples(tmp_path / "e.jsonl")), "--index", str(index)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert not (index / "classifier").exists() and (index / "classifier.new").is_dir()
    committed = _meta(index, "classifier")
    # The next writer (any index run) is not refused by the leftover, and finishes the swap:
    # the classifier in place is the one whose labels the database holds.
    _invoke("index", str(docs), "--index", str(index), "-q")
    assert not any(n.startswith("classifier.") for n in os.listdir(index))
    record = json.loads((index / "classifier" / "classifier.json").read_text(encoding="utf-8"))
    assert record["sha256"] == committed


def test_a_model_change_drops_a_classifier_fitted_on_the_old_vectors(tmp_path):
    pytest.importorskip("sentence_transformers")
    docs, index = _docs(tmp_path), tmp_path / "index"
    _invoke("index", str(docs), "--index", str(index), "-q")
    _invoke("label", "--train", str(_examples(tmp_path / "e.jsonl")), "--index", str(index))
    res = _invoke("index", str(docs), "--index", str(index), "--full", "--model",
                  "all-minilm-l6-v2")
    assert "trained topic classifier was dropped" in res.output
    assert not (index / "classifier").exists()
    stats = json.loads(_invoke("stats", "--index", str(index), "--json").stdout)
    assert stats["topics"] == [] and stats["topic_method"] is None
    # Later runs neither crash on it nor bring its labels back.
    extra = sorted((CORPUS / "coffee").glob("*.txt"))[0]
    shutil.copy(extra, docs / extra.name)
    res = _invoke("index", str(docs), "--index", str(index))
    assert "dropped" not in res.output
    res = CliRunner().invoke(cli, ["query", "bread", "--topic", "bread", "--index", str(index)])
    assert res.exit_code == 1 and "topic" in res.output


@pytest.mark.parametrize("rows, error", [
    ([{"text": "a", "label": "Bread"}, {"text": "b", "label": "bread"}], "differ only in case"),
    ([{"text": ["Bake", "bread"], "label": "x"}, {"text": "b", "label": "y"}], "JSON array"),
    ([{"text": "a", "label": "line\nbreak"}, {"text": "b", "label": "y"}], "line break"),
])
def test_examples_whose_labels_would_make_twins_or_garbage_are_refused(tmp_path, rows, error):
    from xsearch.errors import XsearchError

    with pytest.raises(XsearchError, match=error):
        read_examples(_write_examples(tmp_path / "e.jsonl", rows))


def test_a_label_typed_two_ways_is_one_label(tmp_path):
    rows = [{"text": "a", "label": "cafe\u0301"}, {"text": "b", "label": "café\u200b"},
            {"text": "c", "label": "tea"}]
    assert [e.label for e in read_examples(_write_examples(tmp_path / "e.jsonl", rows))] == [
        "café", "café", "tea"]


def test_a_huge_example_is_cut_and_said(tmp_path):
    # One 3 MB example took five minutes of a "seconds" method, without a word.
    from xsearch.trained_labels import EXAMPLE_CHARS

    docs, index = _docs(tmp_path), tmp_path / "index"
    _invoke("index", str(docs), "--index", str(index), "-q")
    rows = [{"text": t, "label": label} for label, texts in TEXTS.items() for t in texts]
    rows[0]["text"] = " ".join([TEXTS["bread"][0]] * (3 * EXAMPLE_CHARS // 50))
    res = _invoke("label", "--train", str(_write_examples(tmp_path / "e.jsonl", rows)),
                  "--index", str(index))
    assert f"1 example(s) longer than {EXAMPLE_CHARS:,} characters" in res.output


def test_an_example_text_given_two_labels_is_warned_of(tmp_path):
    docs, index = _docs(tmp_path), tmp_path / "index"
    _invoke("index", str(docs), "--index", str(index), "-q")
    rows = [{"text": t, "label": label} for label, texts in TEXTS.items() for t in texts]
    rows.append({"text": TEXTS["bread"][0], "label": "volcano"})
    res = _invoke("label", "--train", str(_write_examples(tmp_path / "e.jsonl", rows)),
                  "--index", str(index))
    assert "1 example text(s) carry more than one label" in res.output
