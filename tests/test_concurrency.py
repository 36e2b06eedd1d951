"""Readers see one committed state: a document being re-indexed by another process never
vanishes from a reader's results, and a merge that removes segments mid-query is retried."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

from click.testing import CliRunner
from conftest import CORPUS

from xsearch.cli import cli
from xsearch.search import Searcher

VERSIONS = (
    "Sourdough bread needs flour, water and salt, and a starter fed every day. Knead the dough "
    "and bake the loaf in a hot oven until the crust is brown.",
    "Bread at home: mix flour, water, salt and yeast, knead the dough for ten minutes, let it "
    "rise for an hour and bake the loaf in a hot oven.",
)


def test_document_never_vanishes_while_another_process_reindexes_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("volcano/eng_Latn_volcano.html", "coffee/eng_Latn_coffee.txt"):
        shutil.copy(CORPUS / name, docs)
    target = docs / "bread.txt"
    target.write_text(VERSIONS[0], encoding="utf-8")
    index = tmp_path / "index"
    subprocess.run([sys.executable, "-m", "xsearch", "index", str(docs), "--index", str(index),
                    "-q"], check=True)
    searcher = Searcher(index)
    qv = searcher.embedder.embed_queries(["how to bake bread"])
    script = (
        "import sys, subprocess, pathlib\n"
        "t = pathlib.Path(sys.argv[1]); versions = sys.argv[3:]\n"
        "for i in range(6):\n"
        "    t.write_text(versions[(i + 1) % 2], encoding='utf-8')\n"
        "    subprocess.run([sys.executable, '-m', 'xsearch', 'index', str(t.parent),\n"
        "                    '--index', sys.argv[2], '-q'], check=True)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(target), str(index),
                               *VERSIONS])
    queries = missing = 0
    generations = set()
    try:
        deadline = time.monotonic() + 600
        while writer.poll() is None and time.monotonic() < deadline:
            searcher.refresh()
            hits = searcher.search_vectors(qv, k=3)[0]
            generations.add(searcher.index.store.generation())
            queries += 1
            if not any(h.path == str(target) for h in hits):
                missing += 1
    finally:
        writer.wait(timeout=600)
        searcher.close()
    assert writer.returncode == 0
    assert queries > 50 and len(generations) > 3  # the reader really saw the writes happen
    assert missing == 0, f"the re-indexed document was missing from {missing}/{queries} results"


def test_one_writer_at_a_time_labelling_included(small_corpus, tmp_path):
    # `xsearch label` once wrote without the write lock: an index run ending meanwhile put
    # the old labels back over the new topics. Every writer takes the lock; a second one
    # fails at once, in one line, and changes nothing.
    index = tmp_path / "index"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(small_corpus), "--index", str(index),
                               "-q"]).exit_code == 0
    labels = tmp_path / "labels.txt"
    labels.write_text("bread: baking bread\nvolcano: lava and ash\n", encoding="utf-8")
    (small_corpus / "late.txt").write_text("Lava flowed down the side of the volcano.",
                                           encoding="utf-8")

    def state() -> tuple:
        con = sqlite3.connect(index / "xsearch.db")
        try:
            return (con.execute("SELECT COUNT(*), COUNT(topic) FROM passages").fetchone(),
                    con.execute("SELECT name FROM labels").fetchall())
        finally:
            con.close()

    before = state()
    holder = os.open(index / ".lock", os.O_RDWR)  # another writer, as far as flock can tell
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        for args in (["label", str(labels)], ["index", str(small_corpus)],
                     ["rm", str(small_corpus / sorted(os.listdir(small_corpus))[0])]):
            res = runner.invoke(cli, [*args, "--index", str(index)])
            assert res.exit_code == 1, (args, res.output)
            assert res.output.strip().splitlines() == [
                f"Error: index {index} is being written by another process"], args
        assert state() == before
    finally:
        os.close(holder)
    res = runner.invoke(cli, ["label", str(labels), "--index", str(index), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["passages"] == before[0][0]
    assert state() == ((before[0][0], before[0][0]), [("bread",), ("volcano",)])
