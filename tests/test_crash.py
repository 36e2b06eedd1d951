"""Kill a real `xsearch index` process part-way; the index must open, answer and be repaired."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import faiss
import numpy as np
import pytest
from conftest import CORPUS

from xsearch.index_dir import IndexDir


def _xsearch(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "xsearch", *args], capture_output=True,
                          text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _passages(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM passages").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("kill_after", [1, 40])
def test_killed_indexer_leaves_an_index_that_opens_and_is_repaired(tmp_path, kill_after,
                                                                   corpus_index):
    index = tmp_path / "index"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xsearch", "index", str(CORPUS), "--index", str(index),
         "--commit-every", "4", "--batch-size", "4", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while _passages(index / "xsearch.db") < kill_after:
        assert proc.poll() is None, "indexer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = _passages(index / "xsearch.db")
    assert committed >= kill_after

    # The half-built index opens and answers. FAISS on disk is the file saved at the start
    # (or by a periodic save); when it lags SQLite, it is brought in step in memory.
    on_disk = faiss.read_index(str(index / "vectors.faiss"))
    con = sqlite3.connect(index / "xsearch.db")
    sql_ids = {r[0] for r in con.execute("SELECT id FROM passages")}
    con.close()
    stale = set(faiss.vector_to_array(on_disk.id_map).tolist()) != sql_ids
    if kill_after == 1:
        assert stale  # killed long before the first periodic save
    out = _xsearch("query", "volcanic eruption and lava", "--index", str(index), "--json")
    assert ("repaired" in out.stderr) == stale
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert hits and all(h["passage_id"] > 0 for h in hits)

    # The next run finishes the job and saves a FAISS file that agrees with SQLite.
    _xsearch("index", str(CORPUS), "--index", str(index), "-q")
    idx = IndexDir.open(index)
    ref = IndexDir.open(corpus_index)
    try:
        assert idx.repaired == 0
        assert np.array_equal(np.sort(idx.vectors.ids()), idx.store.passage_ids())
        assert idx.store.counts() == ref.store.counts()
    finally:
        idx.close()
        ref.close()
