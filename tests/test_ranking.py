from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xsearch import ranking


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_lang_stats_incremental_equals_batch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(20, 8))
    stats = ranking.LangStats.of(a)
    stats.add(b)
    whole = np.vstack([a, b])
    np.testing.assert_allclose(stats.mean, whole.mean(axis=0))
    np.testing.assert_allclose(stats.cov, np.cov(whole.T, bias=True), atol=1e-12)
    stats.add(b, sign=-1)  # deletes undo inserts exactly
    assert stats.n == 50
    np.testing.assert_allclose(stats.cov, np.cov(a.T, bias=True), atol=1e-12)


def test_query_transform_uses_language_mean_offset_and_pooled_fallback():
    stats = {"eng_Latn": ranking.LangStats.of(np.array([[1.0, 0.0], [3.0, 0.0]])),
             "zho_Hans": ranking.LangStats.of(np.array([[0.0, 4.0]]))}
    offset = np.array([0.5, 0.5])
    q = np.array([1.0, 1.0])
    np.testing.assert_allclose(ranking.query_transform(q, "eng_Latn", stats, offset),
                               [1 - 2 - 0.5, 1 - 0 - 0.5])
    # a language the index does not hold: mean of all passages (3 of them)
    pooled = np.array([4.0, 4.0]) / 3
    np.testing.assert_allclose(ranking.query_transform(q, "kor_Hang", stats, offset),
                               q - pooled - offset, rtol=1e-6)
    batch = ranking.query_transform(np.vstack([q, q]), ["zho_Hans", None], stats)
    np.testing.assert_allclose(batch, [q - [0, 4], q - pooled], rtol=1e-6)
    with pytest.raises(ValueError):
        ranking.query_transform(np.vstack([q, q]), ["eng_Latn"], stats)


def test_centred_scores_are_a_per_language_bias_on_the_raw_product():
    rng = np.random.default_rng(1)
    passages = _unit(rng.normal(size=(30, 16)))
    lang = np.repeat([0, 1, 2], 10)
    means = np.vstack([passages[lang == i].mean(axis=0) for i in range(3)])
    q = rng.normal(size=16)
    direct = (passages - means[lang]) @ q
    np.testing.assert_allclose(ranking.centred_scores(q, passages, lang, means), direct,
                               rtol=1e-5, atol=1e-6)
    bias = ranking.language_bias(q, means)
    np.testing.assert_allclose(passages @ q + bias[lang], direct, rtol=1e-5, atol=1e-6)
    assert ranking.language_bias(np.vstack([q, q]), means).shape == (2, 3)


def test_centring_removes_a_language_hub():
    """Language B's passages share a strong component that the query also carries (like a
    language signature): raw cosine ranks every B passage first; centring ranks the match."""
    rng = np.random.default_rng(2)
    dim, n = 64, 40
    content = _unit(rng.normal(size=(n, dim)))
    sig_a, sig_b = _unit(rng.normal(size=dim)), _unit(rng.normal(size=dim))
    a = _unit(content + 0.3 * rng.normal(size=(n, dim)) / np.sqrt(dim) + 2.0 * sig_a)
    b = _unit(content[::-1] * 0.3 + 0.2 * rng.normal(size=(n, dim)) / np.sqrt(dim)
              + 2.0 * sig_b)
    passages = np.vstack([a, b])
    lang = np.repeat([0, 1], n)
    stats = {"a": ranking.LangStats.of(a), "b": ranking.LangStats.of(b)}
    means = np.vstack([stats["a"].mean, stats["b"].mean])
    q = _unit(content[0] + 1.5 * sig_b)  # a query whose language resembles B
    raw_top = np.argsort(-(passages @ q))[:5]
    assert (lang[raw_top] == 1).all()
    qp = ranking.query_transform(q, "b", stats)
    cen_top = np.argsort(-ranking.centred_scores(qp, passages, lang, means))
    assert cen_top[0] == 0


def test_zscore_is_scale_free_and_matches_the_within_language_spread():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(5000, 6)) @ np.diag([3, 1, 1, 0.5, 0.5, 0.1])
    stats = ranking.LangStats.of(p)
    q = rng.normal(size=6)
    centred = (p - stats.mean) @ q
    z = ranking.zscore(centred, q, stats.cov)
    assert abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9
    np.testing.assert_allclose(ranking.zscore(centred * 7, q * 7, stats.cov), z)
    # one scale per query for a batch
    zb = ranking.zscore(np.vstack([centred, 2 * centred]), np.vstack([q, 2 * q]), stats.cov)
    np.testing.assert_allclose(zb[1], z)
    assert ranking.probability(np.array([0.0]), 2.0, 0.0)[0] == pytest.approx(0.5)


def test_rrf_orders_by_summed_reciprocal_ranks():
    fused = ranking.rrf([[1, 2, 3], [3, 4, 1, 1]], k=1)
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 2 + 1 / 4)  # duplicate 1 counted once, best rank
    assert scores[3] == pytest.approx(1 / 4 + 1 / 2)
    assert [pid for pid, _ in fused][:2] == [1, 3]  # tie: first seen first
    assert ranking.rrf([[1, 2], [2]], weights=[1, 0], k=1)[0][0] == 1
    assert ranking.rrf([[1, 2], [2]], weights=[1, 5], k=1, limit=1) == [(2, 1 / 3 + 5 / 2)]
    with pytest.raises(ValueError):
        ranking.rrf([[1]], weights=[1, 2])


def test_hybrid_scores_add_capped_lexical_evidence():
    fused = ranking.hybrid_scores({1: 3.0, 2: 2.5}, {2: 0.4, 3: 5.0}, weight=2.0)
    assert fused == [(2, 2.5 + 0.8), (1, 3.0), (3, 2.0)]  # 3: lexical capped at 1, z 0


def test_top_directions_are_removed():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 5)) @ np.diag([10, 1, 1, 1, 1])
    d = ranking.top_directions(np.cov(x.T), 1)
    assert abs(abs(d[0, 0]) - 1) < 0.01
    assert np.abs(ranking.remove_directions(x, d)[:, 0]).max() < 0.5


def test_language_offsets_override_the_global_offset_for_their_language():
    stats = {"a": ranking.LangStats.of(np.array([[1.0, 0.0]])),
             "b": ranking.LangStats.of(np.array([[0.0, 1.0]]))}
    q = np.array([2.0, 2.0])
    glob, per = np.array([0.1, 0.1]), {"a": np.array([0.5, 0.0])}
    np.testing.assert_allclose(ranking.query_transform(q, "a", stats, glob, per), [0.5, 2.0])
    np.testing.assert_allclose(ranking.query_transform(q, "b", stats, glob, per), [1.9, 0.9])
    # unknown language: pooled mean and the global offset, never a per-language one
    np.testing.assert_allclose(ranking.query_transform(q, "c", stats, glob, per), [1.4, 1.4])


def test_renormalized_scores_equal_cosine_with_the_centred_passages():
    rng = np.random.default_rng(5)
    p = _unit(rng.normal(size=(20, 12)))
    mu = p.mean(axis=0)
    q = rng.normal(size=12)
    expected = _unit(p - mu) @ q
    np.testing.assert_allclose(ranking.renormalized_scores(q, p, mu), expected, rtol=1e-5)
    batch = ranking.renormalized_scores(np.vstack([q, 2 * q]), p, mu)
    np.testing.assert_allclose(batch, [expected, 2 * expected], rtol=1e-5)
    # z of renormalised scores: unit-variance within the language (for norms close to equal)
    stats = ranking.LangStats.of(p)
    z = ranking.zscore(expected, q, stats.cov, renormalized=True)
    direct = ranking.zscore((p - mu) @ q, q, stats.cov)
    np.testing.assert_allclose(z, direct * np.sqrt(np.trace(stats.cov))
                               / np.linalg.norm(p - mu, axis=1), rtol=1e-5)


def test_shrunk_stats_pull_a_small_language_toward_the_prior():
    rng = np.random.default_rng(6)
    prior = ranking.LangStats.of(rng.normal(size=(1000, 4)))
    small = ranking.LangStats.of(rng.normal(size=(3, 4)) + 5)
    s = ranking.shrunk(small, prior, 20)
    # the mean is the count-weighted blend
    np.testing.assert_allclose(s.mean, (3 * small.mean + 20 * prior.mean) / 23)
    # full rank again (3 samples alone give a rank-2 covariance)
    assert np.linalg.matrix_rank(small.cov) < 4 <= np.linalg.matrix_rank(s.cov)
    assert ranking.shrunk(small, prior, 0) is small


def test_lang_stats_keep_half_the_matrix_and_read_whole_ones_written_before(tmp_path):
    from xsearch.store import Store

    rng = np.random.default_rng(3)
    v = rng.normal(size=(50, 16)).astype(np.float32)
    store = Store(tmp_path / "xsearch.db")
    with store.transaction():
        store.update_lang_stats("fra_Latn", v[:30])
        store.update_lang_stats("fra_Latn", v[30:])
    (blob,) = store.db.execute("SELECT outer FROM lang_stats").fetchone()
    assert len(blob) == 4 * 16 * 17 // 2
    n, total, outer = store.lang_stats(with_outer=True)["fra_Latn"]
    exact = v.astype(np.float64).T @ v.astype(np.float64)
    assert n == 50 and np.allclose(total, v.sum(axis=0), atol=1e-5)
    assert np.array_equal(outer, outer.T) and np.allclose(outer, exact, rtol=1e-6, atol=1e-5)
    # An index written before keeps the whole float32 matrix: it reads, and updates, the same.
    with store.transaction():
        store.db.execute("UPDATE lang_stats SET outer = ?",
                         [outer.astype(np.float32).tobytes()])
        store.db.execute("DELETE FROM _migrations WHERE name = 'm006_lang_stats_triangles'")
    assert np.array_equal(store.lang_stats(with_outer=True)["fra_Latn"][2], outer)
    with store.transaction():
        store.update_lang_stats("fra_Latn", v[:10], -1)
    later = store.lang_stats(with_outer=True)["fra_Latn"]
    assert later[0] == 40 and np.allclose(later[2], v[10:].astype(np.float64).T @ v[10:],
                                          rtol=1e-5, atol=1e-4)
    with store.transaction():  # back to a whole matrix, as an older xsearch left it
        store.db.execute("UPDATE lang_stats SET outer = ?",
                         [later[2].astype(np.float32).tobytes()])
    store.close()
    reader = Store(tmp_path / "xsearch.db", readonly=True)  # reads it as it is
    assert np.array_equal(reader.lang_stats(with_outer=True)["fra_Latn"][2], later[2])
    reader.close()
    writer = Store(tmp_path / "xsearch.db")  # a writer migrates it to the triangle
    (blob,) = writer.db.execute("SELECT outer FROM lang_stats").fetchone()
    assert len(blob) == 4 * 16 * 17 // 2
    assert np.array_equal(writer.lang_stats(with_outer=True)["fra_Latn"][2], later[2])
    writer.close()


def test_an_xsearch_that_reads_whole_matrices_refuses_an_index_with_triangles(tmp_path,
                                                                             monkeypatch):
    from xsearch import store as store_mod
    from xsearch.errors import CorruptIndexError
    from xsearch.schema import MIGRATIONS
    from xsearch.store import Store

    Store(tmp_path / "xsearch.db").close()
    older = [m for m in MIGRATIONS if m[0] != "m006_lang_stats_triangles"]
    monkeypatch.setattr(store_mod, "MIGRATIONS", older)
    with pytest.raises(CorruptIndexError, match="newer xsearch"):
        Store(tmp_path / "xsearch.db", readonly=True)


def test_a_rare_name_ranks_the_passages_naming_it_first(tmp_path):
    # The dense score of a bare name is noise, which in a small index reached 2.6σ: unrelated
    # documents ranked above the only ones naming the person. A question with common words
    # keeps the fused order.
    from click.testing import CliRunner

    from xsearch.cli import cli
    from xsearch.indexer import build_index
    from xsearch.search import Searcher

    docs = tmp_path / "docs"
    docs.mkdir()
    texts = {
        "eng_product.txt": "Support: write to Margaret Okonkwo about the XJ-4471b pump and "
                           "its warranty; replacement parts ship within 14 days.",
        "ara_farm.txt": "يزرع المزارعون القمح والشعير في الحقول بعد موسم الأمطار.",
        "rus_name.txt": "Анна Каренина — роман Льва Толстого о любви и обществе.",
        "swh_food.txt": "Wali na maharage ni chakula cha kawaida nyumbani kwetu.",
        "hin_bread.txt": "रोटी बनाने के लिए आटा गूंधें और तवे पर सेकें।",
        "fra_party.txt": "Pour la fête, nous avons acheté des ballons et un gâteau.",
        "eng_decoy.txt": "The XJ-1000 kit replaces part 4471b in older garden pumps.",
    }
    for name, text in texts.items():
        (docs / name).write_text(text, encoding="utf-8")
    build_index([docs], tmp_path / "index")
    with Searcher(tmp_path / "index") as s:
        # XJ-4471b is one word: its two tokens together, not XJ-1000 and 4471b apart.
        for name in ("Margaret", "Okonkwo", "Margaret Okonkwo", "XJ-4471b"):
            hits = s.search(name, k=3)
            assert Path(hits[0].path).name == "eng_product.txt", (name, hits)
    res = CliRunner().invoke(cli, ["query", "Margaret", "-k", "1", "--json", "--index",
                                   str(tmp_path / "index")])
    assert "eng_product.txt" in res.stdout
