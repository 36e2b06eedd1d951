"""Managing what is indexed, through the CLI: files, rm, index --prune, stats, paging with
--offset, defaults from xsearch.toml, shell completion (issue #12)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BAD, CORPUS

from xsearch.check import check_index
from xsearch.cli import cli
from xsearch.indexer import build_index
from xsearch.ingest.walk import WalkOptions

FILES = {"a": ["bread/eng_Latn_bread.txt", "bread/fra_Latn_bread.txt",
               "coffee/deu_Latn_coffee.txt"],
         "b": ["bread/hin_Deva_bread.txt", "volcano/jpn_Jpan_volcano.txt",
               "coffee/eng_Latn_coffee.txt"]}


def run(*args: str, env: dict | None = None, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), env={"XSEARCH_CONFIG": "", **(env or {})},
                                prog_name="xsearch")
    if ok:
        assert result.exit_code == 0, result.output
    return result


def run_json(*args: str, **kw) -> dict:
    return json.loads(run(*args, "--json", **kw).output)


@pytest.fixture(scope="module")
def embedder():
    from xsearch.embedders import get_embedder

    return get_embedder("e5-small")


@pytest.fixture
def collection(tmp_path, embedder) -> tuple[Path, Path]:
    """Two folders of sample files plus one broken PDF, indexed: (docs root, index)."""
    root = tmp_path / "docs"
    for folder, names in FILES.items():
        (root / folder).mkdir(parents=True)
        for name in names:
            shutil.copy(CORPUS / name, root / folder / Path(name).name)
    shutil.copy(BAD / "fake.pdf", root / "b" / "fake.pdf")
    index = tmp_path / "index"
    summary = build_index([root], index, embedder=embedder)
    assert (summary.new, summary.failed) == (6, 1)
    return root, index


def _paths(index: Path) -> set[str]:
    return {Path(f["path"]).name for f in run_json("files", "-i", str(index))["files"]}


def _sound(index: Path) -> None:
    report = check_index(index, model_check=False)
    assert report["ok"], report["problems"]


# -- xsearch files ---------------------------------------------------------------------------

def test_files_lists_indexed_and_failed_files(collection):
    root, index = collection
    info = run_json("files", "-i", str(index))
    by_name = {Path(f["path"]).name: f for f in info["files"]}
    assert set(by_name) == {Path(n).name for names in FILES.values() for n in names}
    fra = by_name["fra_Latn_bread.txt"]
    assert fra["format"] == "txt" and fra["documents"] == 1 and fra["exists"]
    assert fra["languages"] == {"fra_Latn": fra["passages"]} and fra["passages"] >= 1
    assert fra["size"] == (CORPUS / "bread/fra_Latn_bread.txt").stat().st_size
    assert fra["indexed_at"] > 0
    assert [(Path(f["path"]).name, f["kind"]) for f in info["failed"]] == [("fake.pdf", "failed")]
    assert "PDF" in info["failed"][0]["reason"]
    text = run("files", "-i", str(index)).output
    assert "fake.pdf" in text and "hin_Deva" in text and "6 files" in text


@pytest.mark.parametrize("spelling", ["hin_Deva", "hi", "hin", "Hindi"])
def test_files_lang_takes_any_spelling(collection, spelling):
    _, index = collection
    info = run_json("files", "-i", str(index), "--lang", spelling)
    assert [Path(f["path"]).name for f in info["files"]] == ["hin_Deva_bread.txt"]


def test_files_unknown_language_is_refused(collection):
    _, index = collection
    result = run("files", "-i", str(index), "--lang", "Klingon", ok=False)
    assert result.exit_code == 1 and "Klingon" in result.output


def test_names_with_line_breaks_are_listed_escaped_one_per_line(tmp_path, monkeypatch):
    # A raw newline or tab in a name broke the one-file-per-line listing.
    root = tmp_path / "docs"
    root.mkdir()
    texts = {"two\nlines.txt": "Sourdough bread needs flour, water and salt.",
             "tab\there.txt": "Coffee grows on the slopes of the mountains.",
             "रोटी.txt": "रोटी आटे, पानी और नमक से बनती है।"}
    for name, text in texts.items():
        (root / name).write_text(text, encoding="utf-8")
    shutil.copy(BAD / "fake.pdf", root / "bad\rname.pdf")
    index = tmp_path / "index"
    monkeypatch.chdir(tmp_path)
    result = run("index", "docs", "-i", str(index), "-q", ok=False)
    assert result.exit_code == 1 and "1 file(s) could not be indexed" in result.output

    lines = run("files", "-i", str(index)).output.splitlines()
    assert len(lines) == 6, lines  # header, three files, one failure, the total
    assert lines[1].endswith("  eng_Latn  docs/tab\\there.txt")
    assert lines[2].endswith("  eng_Latn  docs/two\\nlines.txt")
    assert lines[3].endswith("  hin_Deva  docs/रोटी.txt")
    assert lines[4].startswith("failed ") and "  docs/bad\\rname.pdf: " in lines[4]
    info = run_json("files", "-i", str(index))
    assert [f["path"] for f in info["files"]] == [str(root / n) for n in sorted(texts)]
    assert [f["path"] for f in info["failed"]] == [str(root / "bad\rname.pdf")]

    dry = run("rm", "docs", "-i", str(index), "--dry-run").output.splitlines()
    assert dry == ["would remove: docs/tab\\there.txt", "would remove: docs/two\\nlines.txt",
                   "would remove: docs/रोटी.txt",
                   "would remove failure record: docs/bad\\rname.pdf",
                   "3 file(s), 3 passages would be removed"]
    gone = run("rm", "docs/no\nsuch.txt", "-i", str(index), "--missing-ok", "--dry-run")
    assert gone.stderr == "not indexed: docs/no\\nsuch.txt\n"
    assert run_json("rm", "docs/two\nlines.txt", "-i", str(index))["removed"] == [
        str(root / "two\nlines.txt")]


# -- xsearch rm ------------------------------------------------------------------------------

def test_rm_file_folder_and_glob(collection, monkeypatch):
    root, index = collection
    monkeypatch.chdir(root)
    before = run_json("stats", "-i", str(index))
    out = run_json("rm", "a/eng_Latn_bread.txt", "-i", str(index))
    assert [Path(p).name for p in out["removed"]] == ["eng_Latn_bread.txt"]
    assert "eng_Latn_bread.txt" not in _paths(index)
    after = run_json("stats", "-i", str(index))
    assert after["passages"] == before["passages"] - out["passages"] and out["passages"] > 0
    # A glob over the whole path, quoted as a user would.
    out = run_json("rm", str(root / "*" / "deu_*.txt"), "-i", str(index))
    assert [Path(p).name for p in out["removed"]] == ["deu_Latn_coffee.txt"]
    # A folder: everything below it, including the record of the file that failed there.
    out = run_json("rm", "b", "-i", str(index))
    assert sorted(Path(p).name for p in out["removed"]) == [
        "eng_Latn_coffee.txt", "hin_Deva_bread.txt", "jpn_Jpan_volcano.txt"]
    assert [Path(p).name for p in out["failed_records"]] == ["fake.pdf"]
    assert _paths(index) == {"fra_Latn_bread.txt"}
    assert run_json("files", "-i", str(index))["failed"] == []
    assert (root / "b" / "hin_Deva_bread.txt").exists()  # the file itself is untouched
    _sound(index)
    hits = [json.loads(line) for line in run("query", "bread", "-i", str(index), "-k", "5",
                                             "--json").output.splitlines()]
    assert {Path(h["path"]).name for h in hits} == {"fra_Latn_bread.txt"}


def test_rm_names_a_file_by_the_path_it_was_not_indexed_under(tmp_path, embedder):
    """Files indexed through a symlinked folder, and through a hard link, are removed when
    named by their real path or folder; nothing else is, and an unrelated file on disk that
    is not indexed is still an error."""
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    for name in ("eng_Latn_bread.txt", "fra_Latn_bread.txt"):
        shutil.copy(CORPUS / "bread" / name, real / "sub" / name)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(CORPUS / "coffee" / "deu_Latn_coffee.txt", other / "original.txt")
    os.link(other / "original.txt", other / "second-name.txt")
    shutil.copy(CORPUS / "coffee" / "eng_Latn_coffee.txt", other / "plain.txt")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "linked").symlink_to(real / "sub", target_is_directory=True)
    (docs / "second-name.txt").symlink_to(other / "second-name.txt")
    (docs / "plain.txt").symlink_to(other / "plain.txt")
    index = tmp_path / "index"
    build_index([docs], index, embedder=embedder,
                walk_options=WalkOptions(follow_symlinks=True))
    assert _paths(index) == {"eng_Latn_bread.txt", "fra_Latn_bread.txt", "second-name.txt",
                             "plain.txt"}
    out = run_json("rm", str(real / "sub" / "fra_Latn_bread.txt"), "-i", str(index))
    assert out["removed"] == [str(docs / "linked" / "fra_Latn_bread.txt")]
    out = run_json("rm", str(other / "original.txt"), "-i", str(index))  # a hard link of it
    assert out["removed"] == [str(docs / "second-name.txt")]
    out = run_json("rm", str(real), "-i", str(index), "--dry-run")  # the folder above the link
    assert out["removed"] == [str(docs / "linked" / "eng_Latn_bread.txt")]
    assert _paths(index) == {"eng_Latn_bread.txt", "plain.txt"}
    not_indexed = other / "new.txt"
    not_indexed.write_text("Not indexed at all.", encoding="utf-8")
    result = run("rm", str(not_indexed), "-i", str(index), ok=False)
    assert result.exit_code == 1 and "not in the index" in result.output
    assert _paths(index) == {"eng_Latn_bread.txt", "plain.txt"}
    _sound(index)


def test_rm_unknown_path_is_an_error_and_removes_nothing(collection):
    root, index = collection
    before = _paths(index)
    result = run("rm", str(root / "a" / "fra_Latn_bread.txt"), str(root / "nope.txt"),
                 "-i", str(index), ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("Error: not in the index: ") and "nope.txt" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _paths(index) == before
    out = run_json("rm", str(root / "a" / "fra_Latn_bread.txt"), str(root / "nope.txt"),
                   "-i", str(index), "--missing-ok")
    assert out["unmatched"] == [str(root / "nope.txt")]
    assert _paths(index) == before - {"fra_Latn_bread.txt"}


def test_rm_of_a_relative_glob_that_matches_elsewhere_says_how_to_name_them(
        collection, tmp_path, monkeypatch):
    """`rm '*.txt'` reads the glob below the working directory (as a shell would), where
    `query --path '*.txt'` matches anywhere: from another folder the error said only "not
    in the index"; it now names a file the glob would reach and how to reach it."""
    root, index = collection
    before = _paths(index)
    monkeypatch.chdir(tmp_path / "index")  # a folder with no indexed file below it
    result = run("rm", "*.txt", "-i", str(index), ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "*.txt is read below" in result.output and str(root) in result.output
    assert "absolute path or glob" in result.output
    assert "would match" not in run("rm", "nothing*", "-i", str(index), ok=False).output
    assert _paths(index) == before
    monkeypatch.chdir(root)  # from where they are, the same glob names them
    out = run_json("rm", "*.txt", "-i", str(index), "--dry-run")
    assert out["removed"] and all(p.endswith(".txt") for p in out["removed"])


def test_rm_dry_run_changes_nothing(collection):
    root, index = collection
    before = run_json("stats", "-i", str(index))
    text = run("rm", str(root / "a"), "-i", str(index), "--dry-run").output
    assert text.count("would remove: ") == 3 and "would be removed" in text
    after = run_json("stats", "-i", str(index))
    assert (after["files"], after["passages"]) == (before["files"], before["passages"])


def test_rm_on_a_missing_index_says_where_it_looked(tmp_path):
    result = run("rm", "x.txt", "-i", str(tmp_path / "none"), ok=False)
    assert result.exit_code == 1 and str(tmp_path / "none") in result.output
    assert not (tmp_path / "none").exists()  # no lock file or folder was created


def test_rm_killed_mid_merge_leaves_a_sound_index(collection):
    """A kill after the removal committed, inside the merge that follows it (eng_Latn keeps
    passages of b/, so its segment is rewritten without the removed ones)."""
    root, index = collection
    env = {**os.environ, "XSEARCH_FAULT": "merge:written", "XSEARCH_CONFIG": ""}
    proc = subprocess.run([sys.executable, "-m", "xsearch", "rm", str(root / "a"), "-i",
                           str(index)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    b = {"hin_Deva_bread.txt", "jpn_Jpan_volcano.txt", "eng_Latn_coffee.txt"}
    assert _paths(index) == b
    _sound(index)
    run("rm", str(root / "b" / "jpn_Jpan_volcano.txt"), "-i", str(index))  # next writer sweeps
    _sound(index)
    assert _paths(index) == b - {"jpn_Jpan_volcano.txt"}
    hits = run("query", "coffee farmers", "-i", str(index), "--json").output.splitlines()
    assert json.loads(hits[0])["path"] == str(root / "b" / "eng_Latn_coffee.txt")


# -- prune and stats -------------------------------------------------------------------------

def test_prune_drops_deleted_files_indexed_from_elsewhere(collection):
    """Issue #12: a deleted file stayed the top hit after re-indexing only another folder."""
    root, index = collection
    gone = root / "a" / "fra_Latn_bread.txt"
    top = json.loads(run("query", "pain au levain et farine", "-i", str(index), "--json"
                         ).output.splitlines()[0])
    assert top["path"] == str(gone)
    gone.unlink()
    assert run_json("stats", "-i", str(index))["missing_files"] == 1
    assert "1 indexed file(s) no longer exist" in run("stats", "-i", str(index)).output
    missing = run_json("files", "-i", str(index), "--missing")["files"]
    assert [f["path"] for f in missing] == [str(gone)] and not missing[0]["exists"]

    # Re-indexing only the other folder keeps it ...
    run("index", str(root / "b"), "-i", str(index), "-q", ok=False)  # fake.pdf: exit 1
    assert "fra_Latn_bread.txt" in _paths(index)
    # ... unless --prune is given.
    result = run("index", str(root / "b"), "-i", str(index), "-q", "--prune", ok=False)
    assert "1 removed" in result.output
    assert "fra_Latn_bread.txt" not in _paths(index)
    assert run_json("stats", "-i", str(index))["missing_files"] == 0
    top = json.loads(run("query", "pain au levain et farine", "-i", str(index), "--json"
                         ).output.splitlines()[0])
    assert top["path"] != str(gone)
    _sound(index)


def test_a_file_behind_a_folder_that_cannot_be_read_is_not_missing(collection, monkeypatch):
    """`--prune` dropped a file whose folder could not be read (EACCES; a stale network
    mount, ESTALE, the same), and `files` called it missing: os.path.lexists says False for
    any error. Only "no such file" is gone. (Root reads every folder: the error is made.)"""
    import errno

    import xsearch.fileio as fileio

    root, index = collection
    hidden = root / "a"
    real_lstat = os.lstat

    def lstat(path, *args, **kw):
        if str(path).startswith(str(hidden) + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_lstat(path, *args, **kw)

    monkeypatch.setattr(fileio.os, "lstat", lstat)
    before = _paths(index)
    assert run_json("stats", "-i", str(index))["missing_files"] == 0
    assert run_json("files", "-i", str(index), "--missing")["files"] == []
    assert run_json("index", "--prune", "-i", str(index))["removed"] == []
    assert _paths(index) == before
    monkeypatch.undo()
    (hidden / "fra_Latn_bread.txt").unlink()  # really gone: it goes
    run("index", "--prune", "-i", str(index), "-q", ok=False)
    assert _paths(index) == before - {"fra_Latn_bread.txt"}


def test_prune_alone_needs_no_paths(collection):
    root, index = collection
    (root / "b" / "jpn_Jpan_volcano.txt").unlink()
    (root / "a" / "eng_Latn_bread.txt").unlink()
    out = run_json("index", "--prune", "-i", str(index))
    assert sorted(Path(p).name for p in out["removed"]) == ["eng_Latn_bread.txt",
                                                            "jpn_Jpan_volcano.txt"]
    assert run_json("stats", "-i", str(index))["missing_files"] == 0
    assert "removed" in run("index", "--prune", "-i", str(index)).output
    result = run("index", "-i", str(index), ok=False)
    assert result.exit_code == 2 and "--prune" in result.output
    _sound(index)


# -- paging ----------------------------------------------------------------------------------

def _ids(index: Path, *args: str) -> list[int]:
    out = run("query", "how is bread baked?", "-i", str(index), "--json", *args).output
    return [json.loads(line)["passage_id"] for line in out.splitlines()]


@pytest.mark.parametrize("per_doc", ["1", "0"])
def test_pages_concatenate_to_one_bigger_page(corpus_index, per_doc):
    one = _ids(corpus_index, "-k", "8", "--per-doc", per_doc)
    two = _ids(corpus_index, "-k", "8", "--offset", "8", "--per-doc", per_doc)
    big = _ids(corpus_index, "-k", "16", "--per-doc", per_doc)
    assert len(big) == 16 and one + two == big
    assert not set(one) & set(two)
    ranks = [json.loads(line)["rank"] for line in run(
        "query", "how is bread baked?", "-i", str(corpus_index), "--json", "-k", "8",
        "--offset", "8", "--per-doc", per_doc).output.splitlines()]
    assert ranks == list(range(9, 17))


def test_file_mode_carries_next_offset_to_the_end(corpus_index):
    seen: list[int] = []
    offset = 0
    while offset is not None:
        result = CliRunner().invoke(cli, ["query", "-f", "-", "-i", str(corpus_index), "-k",
                                          "25", "--offset", str(offset)],
                                    input="volcanic eruption\n", env={"XSEARCH_CONFIG": ""})
        assert result.exit_code == 0, result.output
        line = json.loads(result.output)
        seen += [h["passage_id"] for h in line["hits"]]
        assert len(line["hits"]) == 25 or line["next_offset"] is None
        offset = line["next_offset"]
    assert len(seen) == len(set(seen))
    # per-doc 1 (the default): one hit per document, every document once.
    assert len(seen) == run_json("stats", "-i", str(corpus_index))["documents"]
    # A page that ends at the last hit says there is no next one; one hit short, there is.
    for k, after in ((len(seen), None), (len(seen) - 1, len(seen) - 1)):
        result = CliRunner().invoke(cli, ["query", "-f", "-", "-i", str(corpus_index), "-k",
                                          str(k)], input="volcanic eruption\n",
                                    env={"XSEARCH_CONFIG": ""})
        line = json.loads(result.output)
        assert len(line["hits"]) == k and line["next_offset"] == after
    result = run("query", "volcanic eruption", "-i", str(corpus_index), "--offset",
                 str(len(seen)), ok=False)
    assert result.exit_code == 1 and f"no hits past the first {len(seen)}" in result.output


# -- configuration file ----------------------------------------------------------------------

def test_config_file_gives_defaults_below_env_and_flags(corpus_index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "xsearch.toml").write_text(
        f'index = "{corpus_index}"\n\n[command.query]\ntop-k = 3\n', encoding="utf-8")
    unset = {"XSEARCH_CONFIG": None, "XSEARCH_INDEX": None}
    hits = run("query", "coffee", "--json", env=unset).output.splitlines()
    assert len(hits) == 3  # index and -k from the file
    assert len(run("query", "coffee", "--json", "-k", "2", env=unset).output.splitlines()) == 2
    # The environment beats the file, a flag beats both.
    result = run("stats", env={**unset, "XSEARCH_INDEX": str(tmp_path / "elsewhere")}, ok=False)
    assert str(tmp_path / "elsewhere") in result.output
    assert run("stats", "--index", str(corpus_index),
               env={**unset, "XSEARCH_INDEX": str(tmp_path / "elsewhere")}).exit_code == 0
    assert "[default: (3, from xsearch.toml);" in run("query", "--help", env=unset).output
    # A bad value the file gave is said to come from it (the error named only the value).
    with open(tmp_path / "xsearch.toml", "a", encoding="utf-8") as fh:
        fh.write('lang = ["xx"]\n')
    bad = run("query", "coffee", env=unset, ok=False)
    assert "unknown language 'xx'" in bad.output and "(set in xsearch.toml)" in bad.output
    flag = run("query", "coffee", "--lang", "yy", env=unset, ok=False)
    assert "unknown language 'yy'" in flag.output and "set in" not in flag.output


def test_user_config_dir_and_relative_index(corpus_index, tmp_path, monkeypatch):
    home = tmp_path / "xdg"
    (home / "xsearch").mkdir(parents=True)
    shutil.copytree(corpus_index, home / "xsearch" / "idx")
    (home / "xsearch" / "xsearch.toml").write_text('index = "idx"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    env = {"XSEARCH_CONFIG": None, "XSEARCH_INDEX": None, "XDG_CONFIG_HOME": str(home)}
    info = json.loads(run("stats", "--json", env=env).output)
    assert info["index"] == str(home / "xsearch" / "idx")  # relative to the file
    # So is every option that takes a file or folder (here query --file), not only --index.
    (home / "xsearch" / "queries.txt").write_text("bread\ncoffee\n", encoding="utf-8")
    (home / "xsearch" / "xsearch.toml").write_text(
        'index = "idx"\n[command.query]\nfile = "queries.txt"\n', encoding="utf-8")
    lines = run("query", "-k", "1", env=env).output.splitlines()
    assert [json.loads(line)["query"] for line in lines] == ["bread", "coffee"]


@pytest.mark.parametrize("text,expect", [
    ('layout = "sideways"\n', "key 'layout': 'sideways' is not one of"),
    ("indx = 'x'\n", "unknown key 'indx'"),
    ("[command.query]\ntopk = 3\n", "unknown key 'command.query.topk'"),
    ("[command.query]\ntop-k = 0\n", "key 'command.query.top-k'"),
    ("[command.serch]\nk = 3\n", "unknown key 'command.serch'"),
    ("[query]\ntop-k = 3\n", "options of one command go in [command.query]"),
    ("index = [\n", "xsearch.toml"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, text, expect):
    path = tmp_path / "xsearch.toml"
    path.write_text(text, encoding="utf-8")
    result = run("stats", env={"XSEARCH_CONFIG": str(path)}, ok=False)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and expect in lines[0], result.output
    if "(known: " in lines[0]:  # hidden options are not offered (commit-every was)
        known = lines[0].split("(known: ", 1)[1]
        assert "commit-every" not in known and "top-k" in known


def test_readme_example_config_is_valid(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "xsearch.toml"
    path.write_text(example, encoding="utf-8")
    env = {"XSEARCH_CONFIG": str(path), "XSEARCH_INDEX": None}
    def shown(cmd: str) -> str:  # without spaces: help wraps long paths at any hyphen
        return "".join(run(cmd, "--help", env=env).output.split())

    assert f"[default:(10,from{path});" in shown("query")
    assert f"[default:(64,from{path});" in shown("index")
    assert f"default:({Path('~/xsearch-index').expanduser()},from{path})]" in shown("stats")


def test_missing_default_index_names_absolute_path_and_how_to_point_elsewhere(tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("query", "bread", env={"XSEARCH_INDEX": None}, ok=False)
    assert result.exit_code == 1
    assert str(tmp_path / "index") in result.output
    assert "--index" in result.output and "XSEARCH_INDEX" in result.output


# -- shell completion ------------------------------------------------------------------------

def test_shell_completion_script_and_completions():
    env = {**os.environ, "_XSEARCH_COMPLETE": "bash_source"}
    script = subprocess.run([sys.executable, "-m", "xsearch"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert script.returncode == 0, script.stderr
    assert "_xsearch_completion" in script.stdout and "complete " in script.stdout
    result = CliRunner().invoke(cli, [], prog_name="xsearch", env={
        "_XSEARCH_COMPLETE": "bash_complete", "COMP_WORDS": "xsearch r", "COMP_CWORD": "1"})
    assert result.exit_code == 0
    assert "plain,rm" in result.output.splitlines()
    result = CliRunner().invoke(cli, [], prog_name="xsearch", env={
        "_XSEARCH_COMPLETE": "bash_complete", "COMP_WORDS": "xsearch query --off",
        "COMP_CWORD": "2"})
    assert "plain,--offset" in result.output.splitlines()


def test_no_writing_command_leaves_anything_in_a_folder_that_is_not_an_index(tmp_path):
    # `check --repair` once left its lock file in a folder of the user's own files.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious", encoding="utf-8")
    labels = tmp_path / "labels.txt"
    labels.write_text("bread\nvolcano\n", encoding="utf-8")
    for args in (["check", "--repair"], ["check"], ["label", str(labels)],
                 ["rm", str(mine / "thesis.tex")], ["index", "--prune"], ["stats"], ["files"]):
        res = run(*args, "--index", str(mine), ok=False)
        assert res.exit_code == 1, (args, res.output)
        assert "not an xsearch index" in res.output, (args, res.output)
        assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"], args


def test_index_settings_from_the_file_or_environment_shape_new_indexes_only(small_corpus,
                                                                           tmp_path):
    # They once made every update of an existing index fail ("was built with --layout auto;
    # use --full"), although the user had passed no flag.
    index, fresh = tmp_path / "index", tmp_path / "fresh"
    run("index", str(small_corpus), "--index", str(index), "-q")
    toml = tmp_path / "xsearch.toml"
    toml.write_text('layout = "flat"\ncentering = "global"\n\n[command.index]\n'
                    "chunk-tokens = 64\noverlap = 8\n", encoding="utf-8")
    (small_corpus / "late.txt").write_text("Lava flowed down the side of the volcano.",
                                           encoding="utf-8")
    env = {"XSEARCH_CONFIG": str(toml), "XSEARCH_MODEL": "all-minilm-l6-v2"}
    before = json.loads((index / "config.json").read_text())
    done = run_json("index", str(small_corpus), "--index", str(index), env=env)
    assert (done["new"], done["passages_embedded"]) == (1, 1)
    assert json.loads((index / "config.json").read_text()) == before
    # A flag still asks, and is refused without --full.
    res = run("index", str(small_corpus), "--index", str(index), "--layout", "flat", env=env,
              ok=False)
    assert res.exit_code == 1 and "use --full" in res.output
    # A new index takes them (the model from the environment, the rest from the file).
    run("index", str(small_corpus), "--index", str(fresh), "-q", env=env)
    made = json.loads((fresh / "config.json").read_text())
    assert (made["model"], made["layout"], made["centering"], made["chunk_tokens"],
            made["chunk_overlap"]) == ("all-minilm-l6-v2", "flat", "global", 64, 8)


def test_a_full_rebuild_keeps_the_settings_it_is_not_given(small_corpus, tmp_path):
    # A plain --full once rebuilt any index with the default model and settings, silently:
    # an all-minilm-l6-v2 index became e5-small, re-embedded.
    index = tmp_path / "index"
    # (In a process of its own: -q leaves stderr empty, sentence-transformers' bars and its
    # "longer than the maximum sequence length" warning about whole texts too.)
    proc = subprocess.run([sys.executable, "-m", "xsearch", "index", str(small_corpus),
                           "--index", str(index), "--model", "all-minilm-l6-v2",
                           "--chunk-tokens", "600", "--layout", "flat", "--centering", "none",
                           "--json", "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    made = json.loads(proc.stdout)
    first = json.loads((index / "config.json").read_text())
    assert first["chunk_tokens"] < 600  # as long as the model's longest input allows
    # The value that made the index, asked again, is the one it has.
    again = run_json("index", str(small_corpus), "--index", str(index), "--chunk-tokens", "600")
    assert again["passages_embedded"] == 0
    res = run("index", str(small_corpus), "--index", str(index), "--full", "--layout", "hnsw")
    assert "rebuilding with --layout hnsw (was flat)" in res.output
    assert "--model" not in res.output and "--centering" not in res.output
    now = json.loads((index / "config.json").read_text())
    assert {k: v for k, v in now.items() if k not in ("layout", "created_at")} == \
        {k: v for k, v in first.items() if k not in ("layout", "created_at")}
    assert now["layout"] == "hnsw"
    rebuilt = run_json("index", str(small_corpus), "--index", str(index), "--full")
    assert rebuilt["passages_embedded"] == 0
    assert rebuilt["passages_kept"] == made["passages_embedded"]
    assert json.loads((index / "config.json").read_text())["layout"] == "hnsw"


# -- configuration values of the wrong type --------------------------------------------------

@pytest.mark.parametrize("text,expect", [
    ("index = 5\n", "key 'index': expected a string, got the integer 5"),
    ("index = true\n", "key 'index': expected a string, got the boolean true"),
    ("index = 1979-05-27\n", "key 'index': expected a string"),
    ('index = ""\n', "key 'index': expected a path"),
    ('index = "a\\u0000b"\n', "key 'index': the string holds a NUL character"),
    ("model = 5\n", "key 'model': expected a string"),
    ('exclude = ["drafts/", 3]\n', "key 'exclude': item 2: expected a string"),
    ("json = 1\n", "key 'json': expected true or false"),
    ("[command.query]\ntop-k = 1e400\n", "key 'command.query.top-k': expected an integer"),
    ("[command.query]\ntop-k = inf\n", "key 'command.query.top-k': expected an integer"),
    ("[command.query]\ntop-k = 2.5\n", "key 'command.query.top-k': expected an integer"),
    ('[command.query]\ntop-k = "3"\n', "key 'command.query.top-k': expected an integer"),
    ("[command.query]\nmin-score = nan\n",
     "key 'command.query.min-score': nan is not a finite number"),
    ("[command.query]\nmin-score = true\n", "key 'command.query.min-score': expected a number"),
    ("[command.index]\nmax-mb = inf\n", "key 'command.index.max-mb': inf is not a finite"),
    ('[command.bench]\nk = "1,x"\n', "key 'command.bench.k': a comma-separated list"),
    ("[command]\nquery = 3\n",
     "key 'command.query': expected a table of xsearch query's options"),
    ("[index]\nbatch-size = 3\n", "key 'index' is a table; options of one command go in "
     "[command.index]"),
])
def test_config_value_of_wrong_type_is_one_line_naming_file_and_key(tmp_path, text, expect):
    # Several once escaped as a traceback, or as click's "Invalid value" (exit 2) naming
    # neither the file nor the key, or were read as something else (2.5 as 2).
    path = tmp_path / "xsearch.toml"
    path.write_text(text, encoding="utf-8")
    result = run("stats", env={"XSEARCH_CONFIG": str(path)}, ok=False)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), result.output
    assert expect in lines[0], result.output


def test_config_value_of_wrong_type_in_working_directory_exits_without_traceback(tmp_path):
    (tmp_path / "xsearch.toml").write_text("index = 5\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("XSEARCH_CONFIG", "XSEARCH_INDEX")}
    done = subprocess.run([sys.executable, "-m", "xsearch", "stats"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines() == [
        "Error: xsearch.toml: key 'index': expected a string, got the integer 5"]


def test_config_values_of_the_right_type_are_accepted(tmp_path):
    path = tmp_path / "xsearch.toml"
    path.write_text('exclude = "drafts/"\n\n[command.query]\nmin-score = 1\ntop-k = 3\n'
                    "json = false\n", encoding="utf-8")
    # An integer is a number, and one string a list of one: run() asserts nothing is refused.
    shown = " ".join(run("query", "--help", env={"XSEARCH_CONFIG": str(path)}).output.split())
    assert "[default: (3, from " in shown and "xsearch.toml); 1<=x<=1000]" in shown


def test_two_keys_of_one_table_for_one_option_are_refused(tmp_path):
    # `json = true` and `no-json = true` together: the file's order decided, in silence.
    path = tmp_path / "xsearch.toml"
    for text, says in [("json = true\nno-json = true\n", "keys 'json' and 'no-json'"),
                       ("[command.query]\ntop-k = 3\ntop_k = 4\n", "query's --top-k")]:
        path.write_text(text, encoding="utf-8")
        res = run("stats", env={"XSEARCH_CONFIG": str(path)}, ok=False)
        assert res.exit_code == 1 and says in res.output and "keep one" in res.output
    # A table may still change what the top level says.
    path.write_text("json = true\n[command.stats]\nno-json = true\n", encoding="utf-8")
    shown = "".join(run("stats", "--help", env={"XSEARCH_CONFIG": str(path)}).output.split())
    assert "[default:(--no-json,from" in shown


def test_help_shows_every_default_the_file_sets_and_where_it_comes_from(tmp_path):
    """README: "`xsearch COMMAND --help` shows the defaults in effect". It did for options
    with a built-in default shown (top-k) and not for the others: --json, --model, --layout,
    --include set in the file were invisible."""
    path = tmp_path / "xsearch.toml"
    path.write_text('model = "all-minilm-l6-v2"\nlayout = "flat"\njson = true\n'
                    'include = ["*.md", "*.txt"]\n[command.query]\nmode = "lexical"\n',
                    encoding="utf-8")
    env = {"XSEARCH_CONFIG": str(path)}
    shown = " ".join(run("index", "--help", env=env).output.split())
    for text in ("--layout", "(flat, from", "(all-minilm-l6-v2, from", "(--json, from",
                 "(*.md, *.txt, from"):
        assert text in shown, text
    query = " ".join(run("query", "--help", env=env).output.split())
    assert "(lexical, from" in query and "(--json, from" in query
    # The environment beats the file: its model is the one in effect, not the file's.
    shown = " ".join(run("index", "--help", env={**env, "XSEARCH_MODEL": "minilm"}).output
                     .split())
    assert "all-minilm-l6-v2, from" not in shown and "(flat, from" in shown
    assert "(minilm, from $XSEARCH_MODEL)" in shown
    # A token from the environment is said to be set, not shown.
    serve = " ".join(run("serve", "--help", env={"XSEARCH_TOKEN": "zq81tok"}).output.split())
    assert "(set, from $XSEARCH_TOKEN)" in serve and "zq81tok" not in serve
    # Without a file, no option claims one.
    assert ", from " not in " ".join(run("index", "--help").output.split())


def test_a_configuration_file_saved_with_a_byte_order_mark_is_read(small_corpus, tmp_path):
    # Notepad's UTF-8 mark once stopped every command ("Invalid statement at line 1").
    index = tmp_path / "elsewhere"
    toml = tmp_path / "xsearch.toml"
    toml.write_bytes(f'\ufeffindex = "{index}"\n'.encode())
    run("index", str(small_corpus), "-q", env={"XSEARCH_CONFIG": str(toml)})
    assert (index / "xsearch.db").is_file()


def test_an_on_off_option_turned_on_in_the_file_is_turned_off_by_its_no_flag(small_corpus,
                                                                           tmp_path):
    # `dry-run = true` under [command.rm] once meant rm could never remove anything.
    index = tmp_path / "index"
    run("index", str(small_corpus), "--index", str(index), "-q")
    toml = tmp_path / "xsearch.toml"
    toml.write_text("json = true\n[command.rm]\ndry-run = true\n", encoding="utf-8")
    env = {"XSEARCH_CONFIG": str(toml)}
    victim = sorted(small_corpus.iterdir())[0]
    shown = run("stats", "--index", str(index), env=env)
    assert json.loads(shown.stdout)["files"] == 6
    assert run("stats", "--index", str(index), "--no-json", env=env).stdout.startswith("index:")
    run("rm", str(victim), "--index", str(index), env=env)
    assert json.loads(run("stats", "--index", str(index), env=env).stdout)["files"] == 6
    run("rm", str(victim), "--index", str(index), "--no-dry-run", env=env)
    assert json.loads(run("stats", "--index", str(index), env=env).stdout)["files"] == 5


def test_a_no_key_in_the_file_turns_its_option_off(small_corpus, tmp_path):
    """`no-dry-run = true` made rm a dry run and `no-json = true` printed JSON: the off
    side's name was taken for the option itself, its value not inverted."""
    index = tmp_path / "index"
    run("index", str(small_corpus), "--index", str(index), "-q")
    toml = tmp_path / "xsearch.toml"
    toml.write_text("no-json = true\n[command.rm]\nno-dry-run = true\n", encoding="utf-8")
    env = {"XSEARCH_CONFIG": str(toml)}
    assert run("stats", "--index", str(index), env=env).stdout.startswith("index:")
    assert json.loads(run("stats", "--index", str(index), "--json", env=env).stdout)
    victim = sorted(small_corpus.iterdir())[0]
    assert "removed" in run("rm", str(victim), "--index", str(index), env=env).output
    files = json.loads(run("stats", "--index", str(index), "--json", env=env).stdout)["files"]
    assert files == 5
    # A flag that is itself a no- form (--no-ignore) has an on side now, to undo the file's.
    (small_corpus / ".xsearchignore").write_text("*\n", encoding="utf-8")
    toml.write_text("[command.index]\nno-ignore = true\n", encoding="utf-8")
    ignored = run("index", str(small_corpus), "--index", str(tmp_path / "i2"), "--ignore",
                  "-q", env=env, ok=False)
    assert ignored.exit_code == 1 and "no supported files under" in ignored.output
    out = json.loads(run("index", str(small_corpus), "--index", str(tmp_path / "i3"),
                         "--json", "-q", env=env).stdout)
    assert out["new"] == 6
