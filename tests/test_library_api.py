"""xsearch as a library: the names it exports, and arguments checked as the CLI checks them
(a typed InvalidArgument before anything is read or written, not a deep error or a wrong
answer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import xsearch
from xsearch import Filters, InvalidArgument, Searcher, XsearchError, build_index, remove_files
from xsearch.cli import cli


def test_the_package_exports_its_api_without_importing_it():
    # `import xsearch` stays light: the names load on first use.
    code = ("import sys, xsearch; print('xsearch.search' in sys.modules, "
            "'numpy' in sys.modules); xsearch.Searcher; print('xsearch.search' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "True"]
    assert "annotations" not in dir(xsearch) and "Searcher" in dir(xsearch)
    for name in xsearch.__all__:
        assert getattr(xsearch, name) is not None, name
    with pytest.raises(AttributeError):
        xsearch.nothing_of_that_name  # noqa: B018
    assert issubclass(InvalidArgument, XsearchError) and issubclass(InvalidArgument, ValueError)


@pytest.mark.parametrize("call, says", [
    (lambda s: s.search("bread", k=-1), "k must be"),
    (lambda s: s.search("bread", k=0), "k must be"),
    (lambda s: s.search("bread", per_document=-1), "per_document must be"),
    (lambda s: s.search_many(["bread"], k=2, offset=-1), "offset must be"),
    (lambda s: s.search("bread", filters=Filters(min_score=float("nan"))), "min_score"),
    (lambda s: s.search("  "), "a query must be words"),
    (lambda s: s.search_many("bread"), "queries must be a list"),
])
def test_a_wrong_search_argument_is_a_typed_error(corpus_index, call, says):
    # Before: an untyped ValueError (k=-1), [] (k=0, per_document=-1, nan), a hit ranked 0
    # (offset=-1), hits for an empty query, and five one-letter queries for "bread".
    with Searcher(corpus_index) as searcher, pytest.raises(InvalidArgument, match=says):
        call(searcher)


def test_a_searcher_is_a_context_manager_and_says_when_it_is_closed(corpus_index):
    with Searcher(corpus_index) as searcher:
        one = Filters(languages="fra")  # one name, not the languages f, r, a
        hits = searcher.search("bread", k=3, filters=one)
        assert hits and {h.language for h in hits} == {"fra_Latn"}
    with pytest.raises(XsearchError, match="is closed"):  # was sqlite3.ProgrammingError
        searcher.search("bread")


def test_remove_files_takes_one_path_as_a_string(small_corpus, tmp_path):
    """remove_files(index, "docs/a.txt", missing_ok=True) went through the string letter by
    letter, and "/" named every indexed file: the whole index was emptied."""
    index = tmp_path / "index"
    build_index([small_corpus], index)
    victim = sorted(small_corpus.iterdir())[0]
    out = remove_files(index, str(victim), missing_ok=True)
    assert out["removed"] == [str(victim)] and out["unmatched"] == []
    assert len(xsearch.list_files(index)["files"]) == 5


@pytest.mark.parametrize("kw, says", [
    ({"layout": "sideways"}, "layout 'sideways' is not one of"),
    ({"centering": "middle"}, "centering 'middle'"),
    ({"chunk_overlap": -5}, "chunk_overlap must be"),
    ({"chunk_tokens": 8}, "chunk_tokens must be"),
    ({"batch_size": 0}, "batch_size must be"),
    ({"engine": "bogus"}, "engine 'bogus' is not one of"),
    ({"engine": "ONNX"}, "engine 'ONNX'"),  # as the command line spells it, or not at all
    ({"engine": 3}, "engine 3"),  # (an AttributeError)
])
def test_build_index_refuses_a_bad_setting_before_writing(small_corpus, tmp_path, kw, says):
    """A bad layout embedded everything, then left a config.json that every command
    refused ("index config ... is invalid") until a --full rebuild."""
    index = tmp_path / "index"
    with pytest.raises(InvalidArgument, match=says):
        build_index([small_corpus], index, **kw)
    assert not index.exists()


def test_an_index_run_that_fails_before_writing_leaves_no_new_folder(small_corpus, tmp_path):
    # A wrong --model left a new folder holding a lock file alone.
    index = tmp_path / "new" / "index"
    res = CliRunner().invoke(cli, ["index", str(small_corpus), "--index", str(index),
                                   "--model", "no-such-model"])
    assert res.exit_code == 1 and "unknown model" in res.output
    assert not index.exists()
    with pytest.raises(XsearchError, match="engine 'bogus' is not one of"):
        build_index([small_corpus], index, engine="bogus")
    assert not index.exists()
    # A folder that was there before stays (only what the run made may go).
    index.mkdir()
    CliRunner().invoke(cli, ["index", str(small_corpus), "--index", str(index),
                             "--model", "no-such-model"])
    assert index.is_dir()


def test_build_index_takes_a_path_given_as_a_string(small_corpus, tmp_path):
    summary = build_index(str(small_corpus), str(tmp_path / "index"))  # not "d", "o", "c"...
    assert summary.new == 6
    assert Path(tmp_path / "index" / "xsearch.db").is_file()


def test_a_very_long_query_is_cut_before_it_is_tokenised_whole(corpus_index):
    """10,000 words as one query took 10 s: the whole text was tokenised, though the model
    reads its first few hundred tokens. It is cut at QUERY_CHARS, and the warning says so."""
    from xsearch.search import QUERY_CHARS

    with Searcher(corpus_index) as searcher:
        short = searcher.search(("bread " * 10_000)[:QUERY_CHARS - 1], k=1)
        assert not any("cut to" in w for w in searcher.warnings())
        hits = searcher.search("bread " * 10_000, k=1)
        assert hits[0].passage_id == short[0].passage_id
        assert "cut to its first 4,000 characters" in " ".join(searcher.warnings())
