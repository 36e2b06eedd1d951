"""xsearch.ingest.walk on real folders: ignore files, excludes, hidden and build folders,
symlinks, special files, names that are not UTF-8; and the index command's options."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from xsearch.cli import cli
from xsearch.ingest import WalkOptions, iter_files, walk


def tree(root: Path, *rels: str) -> Path:
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"text of {rel}\n", encoding="utf-8")
    return root


def found(root: Path, options: WalkOptions | None = None) -> list[str]:
    return [p.relative_to(root).as_posix() for p in walk([root], options).files]


def test_gitignore_and_xsearchignore_with_nesting_and_negation(tmp_path: Path) -> None:
    root = tree(tmp_path / "docs", "a.md", "b.txt", "draft.txt", "keep/draft.txt",
                "out/x.txt", "sub/c.md", "sub/d.txt", "sub/deeper/e.md", "private/p.txt")
    (root / ".gitignore").write_text("draft.txt\nout/\n*.md\n!sub/c.md\n", encoding="utf-8")
    (root / "sub" / ".gitignore").write_text("*.txt\n!e.md\n", encoding="utf-8")
    (root / ".xsearchignore").write_text("private/\n", encoding="utf-8")
    result = walk([root])
    assert [p.relative_to(root).as_posix() for p in result.files] == [
        "b.txt", "sub/c.md", "sub/deeper/e.md",
    ]
    # draft.txt, keep/draft.txt, out/, a.md, private/, sub/d.txt
    assert result.ignored == 6
    everything = found(root, WalkOptions(use_ignore_files=False))
    assert len(everything) == 9


def test_exclude_and_include_patterns(tmp_path: Path) -> None:
    root = tree(tmp_path / "docs", "a.md", "b.txt", "logs/c.txt", "notes/d.md", ".notes/e.md")
    result = walk([root], WalkOptions(exclude=["logs/", "*.txt"]))
    assert [p.name for p in result.files] == ["a.md", "d.md"]
    assert result.excluded == 2 and result.hidden == 1
    assert found(root, WalkOptions(include=["*.md"])) == ["a.md", "notes/d.md"]
    tree(root, ".draft.md")
    assert found(root, WalkOptions(include=["*.md"])) == ["a.md", "notes/d.md"]  # not hidden
    # An include that names a hidden folder enters it.
    assert found(root, WalkOptions(include=[".notes/*.md"])) == [".notes/e.md"]


def test_hidden_virtualenv_and_build_folders_are_skipped_by_default(tmp_path: Path) -> None:
    root = tree(tmp_path / "proj", "README.md", ".git/x.txt", ".venv/y.txt", "venv/lib.txt",
                "node_modules/pkg/readme.md", "__pycache__/m.txt", "xsearch.egg-info/PKG.txt",
                "build/out.html", "dist/d.txt", "lib/site-packages/s.txt", "env1/notes.txt",
                ".hidden.txt", "docs/guide.md")
    (root / "env1" / "pyvenv.cfg").write_text("home = /usr\n", encoding="utf-8")
    result = walk([root])
    assert [p.relative_to(root).as_posix() for p in result.files] == ["README.md",
                                                                      "docs/guide.md"]
    assert result.hidden == 11
    assert len(found(root, WalkOptions(hidden=True))) == 13
    assert found(root, WalkOptions(include=["build/**"])) == ["build/out.html"]


def test_symlinks_out_of_the_roots_are_not_followed(tmp_path: Path) -> None:
    root = tree(tmp_path / "corpus", "a.txt", "sub/b.txt")
    outside = tree(tmp_path / "outside", "secret.txt", "more/s2.txt")
    (root / "link-out.txt").symlink_to(outside / "secret.txt")
    (root / "dir-out").symlink_to(outside, target_is_directory=True)
    (root / "link-in.txt").symlink_to(root / "sub" / "b.txt")
    (root / "broken.txt").symlink_to(root / "nowhere.txt")
    result = walk([root])
    assert [p.relative_to(root).as_posix() for p in result.files] == ["a.txt", "link-in.txt"]
    assert result.links_skipped == 3
    assert sum("symlink leads out" in w for w in result.warnings) == 2
    followed = found(root, WalkOptions(follow_symlinks=True))
    # link-out.txt is the same file as dir-out/secret.txt: listed once.
    assert followed == ["a.txt", "dir-out/more/s2.txt", "dir-out/secret.txt", "link-in.txt"]
    # Both folders given as roots: a link from one into the other is inside the roots.
    both = walk([root, outside])
    assert len(both.files) == 4 and both.links_skipped == 1  # 4 real files, 1 broken link


def test_symlink_loops_end(tmp_path: Path) -> None:
    root = tree(tmp_path / "corpus", "a/b/leaf.txt")
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    (root / "a" / "b" / "up").symlink_to(Path("..") / "..", target_is_directory=True)
    for follow in (False, True):
        assert found(root, WalkOptions(follow_symlinks=follow)) == ["a/b/leaf.txt"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_special_files_are_counted_not_opened(tmp_path: Path) -> None:
    root = tree(tmp_path / "corpus", "a.txt")
    os.mkfifo(root / "pipe.txt")
    result = walk([root])
    assert [p.name for p in result.files] == ["a.txt"]
    assert result.special == 1
    assert "pipe.txt: not a regular file" in result.warnings[0]
    named = walk([root / "pipe.txt", root / "a.txt"])  # named explicitly: skipped, not fatal
    assert [p.name for p in named.files] == ["a.txt"] and named.special == 1


def test_names_that_are_not_utf8_are_skipped_with_an_escaped_warning(tmp_path: Path) -> None:
    root = tree(tmp_path / "corpus", "a.txt")
    raw = os.path.join(os.fsencode(root), b"caf\xe9.txt")
    with open(raw, "wb") as fh:
        fh.write(b"x")
    result = walk([root])
    assert [p.name for p in result.files] == ["a.txt"]
    assert result.bad_names == 1
    assert result.warnings == [f"{root}/caf\\xe9.txt: name is not valid UTF-8, skipped "
                               "(rename it to index it)"]
    result.warnings[0].encode("utf-8")


def test_iter_files_is_the_default_walk(tmp_path: Path) -> None:
    root = tree(tmp_path / "docs", "b.txt", "a.md", "node_modules/x.md", "ignored.txt")
    (root / ".gitignore").write_text("ignored.txt\n", encoding="utf-8")
    assert list(iter_files([root])) == walk([root]).files == [root / "a.md", root / "b.txt"]


def test_index_command_options_and_summary(tmp_path: Path) -> None:
    root = tree(tmp_path / "docs", "bread.txt", "skip/volcano.txt", "ignored.md", ".hidden.txt",
                "build/out.txt")
    (root / "bread.txt").write_text("Sourdough bread needs a long, slow rise.\n", "utf-8")
    (root / ".gitignore").write_text("ignored.md\n", encoding="utf-8")
    index = tmp_path / "index"
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(root), "--index", str(index),
                                 "--exclude", "skip/"])
    assert result.exit_code == 0, result.output
    assert ("left out: 1 excluded, 1 ignored (.gitignore/.xsearchignore), "
            "2 hidden or build folders/files") in result.output
    with sqlite3.connect(index / "xsearch.db") as con:
        names = sorted(Path(r[0]).name for r in con.execute("SELECT path FROM files"))
    assert names == ["bread.txt"]
    result = runner.invoke(cli, ["index", str(root), "--index", str(index), "--no-ignore",
                                 "--hidden", "--json"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(index / "xsearch.db") as con:
        names = sorted(Path(r[0]).name for r in con.execute("SELECT path FROM files"))
    assert names == [".hidden.txt", "bread.txt", "ignored.md", "out.txt", "volcano.txt"]
    # Left out by this run but still on disk: kept (and said so); deleted: dropped.
    (root / "skip" / "volcano.txt").unlink()
    result = runner.invoke(cli, ["index", str(root), "--index", str(index),
                                 "--include", "*.txt", "--exclude", "skip/"])
    assert result.exit_code == 0, result.output
    assert "1 removed" in result.output
    assert "kept: 3 indexed file(s) this run left out are still on disk" in result.output
    with sqlite3.connect(index / "xsearch.db") as con:
        names = sorted(Path(r[0]).name for r in con.execute("SELECT path FROM files"))
    assert names == [".hidden.txt", "bread.txt", "ignored.md", "out.txt"]


def test_a_file_indexed_through_a_symlink_is_not_indexed_again_by_its_real_path(
        tmp_path: Path) -> None:
    """The index keeps the path a file was indexed by; the same file reached by another path
    later (the real folder behind a linked one, a hard link, or the other way round) is left
    as it is, and said so, instead of doubling every hit. A copy is another file."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "bread.txt").write_text("Sourdough bread needs a long, slow rise.\n", "utf-8")
    (real / "volcano.txt").write_text("Le volcan a projeté des cendres.\n", "utf-8")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    runner = CliRunner()

    def run(index: Path, *paths: Path) -> tuple[dict, str, list[str]]:
        result = runner.invoke(cli, ["index", *map(str, paths), "--index", str(index),
                                     "--json"])
        assert result.exit_code == 0, result.output
        with sqlite3.connect(index / "xsearch.db") as con:
            rows = sorted(r[0] for r in con.execute("SELECT path FROM files"))
        return json.loads(result.stdout.splitlines()[0]), result.stderr, rows

    first, _, rows = run(tmp_path / "a", link)
    assert first["new"] == 2 and rows == [str(link / "bread.txt"), str(link / "volcano.txt")]
    again, said, rows = run(tmp_path / "a", real)
    assert (again["new"], again["same_file"], again["passages_embedded"]) == (0, 2, 0)
    assert "2 file(s) already indexed under another path" in said
    assert f"{real / 'bread.txt'} is {link / 'bread.txt'}" in said
    assert rows == [str(link / "bread.txt"), str(link / "volcano.txt")]

    # The other way round, and a hard link: one entry per file; a copy is a file of its own.
    os.link(real / "bread.txt", tmp_path / "hard.txt")
    (tmp_path / "copy.txt").write_bytes((real / "bread.txt").read_bytes())
    first, _, _ = run(tmp_path / "b", real)
    later, _, rows = run(tmp_path / "b", link, tmp_path / "hard.txt", tmp_path / "copy.txt")
    assert (first["new"], later["new"], later["same_file"]) == (2, 1, 3)
    assert rows == [str(tmp_path / "copy.txt"), str(real / "bread.txt"),
                    str(real / "volcano.txt")]


@pytest.mark.parametrize("link_name", ["a.txt", "z.txt"])
def test_an_indexed_file_replaced_by_a_link_to_another_leaves_the_index(tmp_path: Path,
                                                                      link_name: str) -> None:
    """A file that becomes another name of an indexed file (a symlink, whichever name the walk
    meets first; a hard link) leaves the index: its old text is nowhere on disk, and the
    other file's text is indexed once. It once stayed, stale, or doubled every hit."""
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = {"a.txt": "Giraffes eat leaves from tall acacia trees in the savanna.\n",
             "z.txt": "Penguins swim in cold Antarctic waters hunting for fish.\n",
             "m.txt": "Volcanoes erupt when magma rises through the crust.\n"}
    for name, text in texts.items():
        (docs / name).write_text(text, "utf-8")
    index = tmp_path / "index"
    runner = CliRunner()

    def run() -> tuple[dict, dict[str, list[str]]]:
        result = runner.invoke(cli, ["index", str(docs), "--index", str(index), "--json"])
        assert result.exit_code == 0, result.output
        with sqlite3.connect(index / "xsearch.db") as con:
            held: dict[str, list[str]] = {}
            for path, text in con.execute("SELECT d.path, p.text FROM passages p JOIN "
                                          "documents d ON d.id = p.document_id"):
                held.setdefault(Path(path).name, []).append(text.strip())
        return json.loads(result.stdout.splitlines()[0]), held

    run()
    target = "z.txt" if link_name == "a.txt" else "a.txt"
    (docs / link_name).unlink()
    (docs / link_name).symlink_to(target)
    summary, held = run()
    assert held == {target: [texts[target].strip()], "m.txt": [texts["m.txt"].strip()]}
    assert (summary["passages_embedded"], summary["removed"]) == (0, 1)
    # A hard link in place of a file: the same.
    (docs / "m.txt").unlink()
    os.link(docs / target, docs / "m.txt")
    summary, held = run()
    assert held == {target: [texts[target].strip()]}
    # the hard link, and the symlink the walk meets before its target
    assert (summary["passages_embedded"], summary["same_file"]) == \
        (0, 2 if link_name == "a.txt" else 1)
    check = runner.invoke(cli, ["check", "--index", str(index), "--no-model"])
    assert check.exit_code == 0, check.output
    # A link to a file out of the folders (which the walk does not follow): the old text
    # goes too. It was "kept: still on disk", found by queries for ever.
    outside = tmp_path / "outside.txt"
    outside.write_text("Lighthouses guide ships along rocky coasts.\n", "utf-8")
    (docs / target).unlink()
    (docs / target).symlink_to(outside)
    summary, held = run()
    # (m.txt, its hard link, holds that text now, and is indexed under its own name)
    assert held == {"m.txt": [texts[target].strip()]}
    assert (summary["removed"], summary["kept"], summary["passages_embedded"]) == (1, 0, 0)


def test_one_file_under_two_names_is_indexed_once_also_after_an_edit(tmp_path: Path) -> None:
    """Hard links met in one run were both indexed (every hit doubled), and a file indexed
    through a symlinked folder, edited, then indexed by its real path was indexed again
    while the old text stayed under the first name, found by queries."""
    runner = CliRunner()

    def index(root: Path, idx: Path) -> dict:
        res = runner.invoke(cli, ["index", str(root), "--index", str(idx), "--json", "-q"])
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    def held(idx: Path) -> dict[str, list[str]]:
        with sqlite3.connect(idx / "xsearch.db") as con:
            out: dict[str, list[str]] = {}
            for path, text in con.execute("SELECT d.path, p.text FROM passages p JOIN "
                                          "documents d ON d.id = p.document_id"):
                out.setdefault(path, []).append(text.strip())
        return out

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Owls hunt small mammals at night.\n", "utf-8")
    os.link(docs / "a.txt", docs / "b.txt")
    summary = index(docs, tmp_path / "i1")
    assert summary["new"] == 1 and summary["same_file"] == 1
    assert held(tmp_path / "i1") == {str(docs / "a.txt"): ["Owls hunt small mammals at night."]}
    (docs / "b.txt").write_text("Owls were edited through their second name.\n", "utf-8")
    summary = index(docs, tmp_path / "i1")
    assert held(tmp_path / "i1") == {
        str(docs / "a.txt"): ["Owls were edited through their second name."]}

    # A hard link with another name, in another folder, edited, then indexed there.
    x, y = tmp_path / "x", tmp_path / "y"
    x.mkdir()
    y.mkdir()
    (x / "one.txt").write_text("Lighthouses guide ships.\n", "utf-8")
    os.link(x / "one.txt", y / "two.txt")
    index(x, tmp_path / "i3")
    with open(y / "two.txt", "a", encoding="utf-8") as fh:
        fh.write("Fog horns sound at night.\n")
    summary = index(y, tmp_path / "i3")
    assert summary["renamed"] == 1 and summary["new"] == 0
    assert held(tmp_path / "i3") == {
        str(y / "two.txt"): ["Lighthouses guide ships.\nFog horns sound at night."]}

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    (real / "g.txt").write_text("Glaciers are melting in the Alps.\n", "utf-8")
    index(tmp_path / "alias", tmp_path / "i2")
    (real / "g.txt").write_text("Kangaroos hop across Australia.\n", "utf-8")
    summary = index(real, tmp_path / "i2")
    assert summary["renamed"] == 1
    assert held(tmp_path / "i2") == {str(real / "g.txt"): ["Kangaroos hop across Australia."]}


def test_an_entry_that_cannot_be_looked_at_is_said_not_hidden(tmp_path: Path) -> None:
    """A file 900 folders deep (a path past PATH_MAX: ENAMETOOLONG) was skipped in silence,
    and naming the folder said "no supported files under" a folder holding a .txt."""
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        for _ in range(900):
            os.mkdir("dddd")
            os.chdir("dddd")
        Path("deep.txt").write_text("Moths fly at night.", encoding="utf-8")
    finally:
        os.chdir(here)
    (tmp_path / "near.txt").write_text("Beetles.", encoding="utf-8")
    result = walk([tmp_path])
    assert [Path(f).name for f in result.files] == ["near.txt"]
    assert any("cannot be looked at (File name too long)" in w for w in result.warnings)
