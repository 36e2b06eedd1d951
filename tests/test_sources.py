"""The source-language ranker and its leave-one-target-out evaluation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from xsearch import sources as S
from xsearch.bench import transfer as T


def test_script_and_token_overlap():
    assert S.script_of("hin_Deva") == "Deva" and S.script_of("hin") == ""
    a, b = Counter({1: 3, 2: 1}), Counter({3: 5})
    assert S.token_overlap(a, a) == pytest.approx(1.0)
    assert S.token_overlap(a, b) == 0.0
    assert 0.0 < S.token_overlap(a, Counter({1: 1, 3: 1})) < 1.0


def test_real_tokenizer_profiles_put_related_languages_closer():
    hin = S.token_profile(["भारत एक विशाल देश है और यहाँ कई भाषाएँ बोली जाती हैं।"])
    mai = S.token_profile(["भारत एक विशाल देश अछि आ एतय कतेको भाषा बाजल जाइत अछि।"])
    eng = S.token_profile(["India is a vast country and many languages are spoken there."])
    assert S.token_overlap(hin, mai) > S.token_overlap(hin, eng)


def test_rank_sources_prefers_the_target_itself_and_follows_weights():
    rng = np.random.default_rng(0)
    base = rng.normal(size=8)
    known = {lg: S.LanguageProfile(lg, None, v / np.linalg.norm(v)) for lg, v in {
        "tgt_Latn": base, "near_Latn": base + 0.1 * rng.normal(size=8),
        "far_Latn": rng.normal(size=8)}.items()}
    w = {"embed": 1.0}
    ranked = [s for s, _ in S.rank_sources("tgt_Latn", ["far_Latn", "near_Latn"], known)]
    assert S.score(S.pair_features(known["near_Latn"], known["tgt_Latn"]), w) > \
        S.score(S.pair_features(known["far_Latn"], known["tgt_Latn"]), w)
    assert set(ranked) == {"far_Latn", "near_Latn"}
    assert S.rank_sources("tgt_Latn", ["far_Latn", "tgt_Latn"], known)[0][0] == "tgt_Latn"
    assert S.choose_sources({"tgt_Latn": 3}, ["tgt_Latn", "far_Latn"], known) == \
        {"tgt_Latn": "tgt_Latn"}


def test_ndcg_and_loo_ranker_find_a_planted_best_source():
    langs = [f"l{i}_Latn" for i in range(8)]
    rng = np.random.default_rng(1)
    # a planted feature decides transfer: accuracy = 0.5 + 0.3 * feature
    feat = {(s, t): rng.uniform() for s in langs for t in langs if s != t}
    matrix = {s: {t: (0.9 if s == t else 0.5 + 0.3 * feat[(s, t)]) for t in langs}
              for s in langs}
    feats = {(s, t): {"script": 1.0, "family": None, "syntax": None, "tokens": f,
                      "embed": float(rng.uniform()), "central": float(rng.uniform())}
             for (s, t), f in feat.items()}
    assert T.ndcg_at(["a", "b", "c"], {"a": 3, "b": 2, "c": 1}) == pytest.approx(1.0)
    assert T.ndcg_at(["c", "b", "a"], {"a": 3, "b": 2, "c": 1}) < 1.0
    res = T.evaluate_rankers(matrix, feats, related={})
    assert res["feature: tokens"]["top1_is_best"] == 1.0
    assert res["ranker (all features, LOO)"]["top1_is_best"] >= 0.75
    assert res["ranker (all features, LOO)"]["mean_accuracy_lost"] < \
        res["feature: embed"]["mean_accuracy_lost"]


def test_stratified_draw_covers_every_label_first():
    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 1
    pos = T.stratified(labels, 3, seed=0)
    assert sorted(labels[i] for i in pos) == ["a", "b", "c"]
    assert len(T.stratified(labels, 100, seed=0)) == len(labels)
