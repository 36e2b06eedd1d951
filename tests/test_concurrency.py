"""Readers see one committed state: a document being re-indexed by another process never
vanishes from a reader's results, and a merge that removes segments mid-query is retried."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

from conftest import CORPUS

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
