"""Centred layout: the mean lives in the FAISS file and follows the indexed vectors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from xsearch.cli import cli
from xsearch.errors import IndexMismatchError
from xsearch.index_dir import IndexDir
from xsearch.indexer import build_index
from xsearch.search import Searcher
from xsearch.vector_index import CENTERED_LAYOUT


def _mean_gap(index_path) -> float:
    idx = IndexDir.open(index_path)
    try:
        assert idx.config.faiss_layout == CENTERED_LAYOUT
        _, vecs = idx.store.vectors(dim=idx.config.dim)
        return float(np.abs(idx.vectors.mean() - vecs.mean(axis=0)).max())
    finally:
        idx.close()


def test_centred_index_tracks_its_mean_and_survives_a_lost_faiss_file(small_corpus, tmp_path):
    index = tmp_path / "index"
    build_index([small_corpus], index, center=True)
    assert _mean_gap(index) < 1e-5
    searcher = Searcher(index)
    try:
        hits = searcher.search("volcanic eruption, lava and ash", k=3)
    finally:
        searcher.close()
    assert len(hits) == 3 and hits[0].score > hits[-1].score

    (small_corpus / "extra.txt").write_text("Solar panels charge the clinic's batteries.",
                                            encoding="utf-8")
    before = IndexDir.open(index)
    old_mean = before.vectors.mean().copy()
    before.close()
    build_index([small_corpus], index)
    assert _mean_gap(index) < 1e-5  # recentred on the new set of vectors
    after = IndexDir.open(index)
    assert not np.allclose(after.vectors.mean(), old_mean)
    after.close()

    (index / "vectors.faiss").write_bytes(b"broken")
    idx = IndexDir.open(index)
    try:
        assert idx.repaired == len(idx.store.passage_ids())
        assert np.array_equal(np.sort(idx.vectors.ids()), idx.store.passage_ids())
    finally:
        idx.close()
    assert _mean_gap(index) < 1e-5

    with pytest.raises(IndexMismatchError, match="--center"):
        build_index([small_corpus], index, center=False)
    result = CliRunner().invoke(cli, ["query", "lava", "--index", str(index), "--lang", "eng",
                                      "--json"])
    assert result.exit_code == 0, result.output
