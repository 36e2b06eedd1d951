"""Benchmark metrics against values worked out by hand."""

from __future__ import annotations

import pytest

from xsearch.bench.metrics import (
    average_precision,
    classification_metrics,
    confusion_matrix,
    consistency,
    drop_self_hits,
    fertility,
    language_bias,
    mean_average_precision,
    pairwise_agreement,
    per_query_metrics,
    recall_at_k,
    recall_matrix_summary,
    reciprocal_rank,
    retrieval_metrics,
    uses_spaces,
)

approx = pytest.approx

# q1: the relevant d1 is at rank 1; q2: at rank 2; q3: not retrieved.
# q4 has no relevant document and must not count; "extra" is ranked but never judged.
RANKED = {
    "q1": ["d1", "d2", "d3"],
    "q2": ["d2", "d1", "d3"],
    "q3": ["d2", "d3", "d4"],
    "q4": ["d1"],
    "extra": ["d1"],
}
RELEVANT = {"q1": {"d1"}, "q2": {"d1"}, "q3": {"d1"}, "q4": set()}


def test_retrieval_metrics_toy() -> None:
    m = retrieval_metrics(RANKED, RELEVANT, ks=(1, 2, 10), mrr_k=10)
    # recall@1: only q1 has d1 first -> 1/3; recall@2: q1 and q2 -> 2/3; recall@10 likewise 2/3
    assert m["recall@1"] == approx(1 / 3)
    assert m["recall@2"] == approx(2 / 3)
    assert m["recall@10"] == approx(2 / 3)
    # MRR = (1 + 1/2 + 0) / 3 = 0.5
    assert m["mrr@10"] == approx(0.5)
    assert m["n_queries"] == 3
    assert set(m) == {"recall@1", "recall@2", "recall@10", "mrr@10", "n_queries"}


def test_retrieval_metrics_default_keys_and_empty() -> None:
    m = retrieval_metrics(RANKED, RELEVANT)
    assert set(m) == {"recall@1", "recall@5", "recall@10", "mrr@10", "n_queries"}
    empty = retrieval_metrics({}, {"q": set()})
    assert empty["n_queries"] == 0 and empty["recall@1"] == 0.0


def test_missing_ranking_scores_zero() -> None:
    # q1 perfect, q2 absent from the rankings -> recall@1 = (1 + 0) / 2
    m = retrieval_metrics({"q1": ["a"]}, {"q1": {"a"}, "q2": {"b"}}, ks=(1,))
    assert m["recall@1"] == approx(0.5)
    assert m["n_queries"] == 2


def test_mrr_cutoff() -> None:
    # first relevant at rank 3: RR = 1/3 without cutoff, 0 with k=2
    assert reciprocal_rank(["x", "y", "a"], {"a"}) == approx(1 / 3)
    assert reciprocal_rank(["x", "y", "a"], {"a"}, k=2) == 0.0
    m = retrieval_metrics({"q": ["x", "y", "a"]}, {"q": {"a"}}, ks=(1,), mrr_k=2)
    assert m["mrr@2"] == 0.0


def test_recall_with_several_relevant() -> None:
    # relevant {a, b}; ranking a, x, b: top1 holds 1 of 2, top3 holds 2 of 2
    assert recall_at_k(["a", "x", "b"], {"a", "b"}, 1) == approx(0.5)
    assert recall_at_k(["a", "x", "b"], {"a", "b"}, 3) == approx(1.0)
    # duplicates never push recall above 1
    assert recall_at_k(["a", "a"], {"a", "b"}, 2) == approx(0.5)
    assert recall_at_k(["a"], set(), 1) == 0.0


def test_average_precision() -> None:
    # 2 relevant at ranks 1 and 3: (1/1 + 2/3) / 2 = 5/6
    assert average_precision(["a", "x", "b"], {"a", "b"}) == approx(5 / 6)
    # cut at k=2: only the hit at rank 1 counts, still divided by |R| = 2 -> 1/2
    assert average_precision(["a", "x", "b"], {"a", "b"}, k=2) == approx(0.5)
    # a third relevant doc never retrieved: (1 + 2/3) / 3 = 5/9
    assert average_precision(["a", "x", "b"], {"a", "b", "z"}) == approx(5 / 9)
    # relevant at ranks 2 and 3: (1/2 + 2/3) / 2 = 7/12
    assert average_precision(["x", "a", "b"], {"a", "b"}) == approx(7 / 12)
    # a duplicated hit is credited once: (1/1) / 2
    assert average_precision(["a", "a"], {"a", "b"}) == approx(0.5)
    assert average_precision(["a"], set()) == 0.0


def test_mean_average_precision() -> None:
    ranked = {"q1": ["a", "x", "b"], "q2": ["x", "c"], "q3": ["a"]}
    relevant = {"q1": {"a", "b"}, "q2": {"c"}, "q3": set()}
    # q1 AP = 5/6, q2 AP = (1/2)/1 = 1/2, q3 skipped -> (5/6 + 1/2) / 2 = 2/3
    assert mean_average_precision(ranked, relevant) == approx(2 / 3)
    assert mean_average_precision({}, {}) == 0.0


def test_per_query_metrics() -> None:
    rows = per_query_metrics(RANKED, RELEVANT, ks=(1,), mrr_k=10)
    assert set(rows) == {"q1", "q2", "q3"}
    assert rows["q2"] == approx({"recall@1": 0.0, "mrr@10": 0.5, "ap": 0.5})


def test_drop_self_hits() -> None:
    assert drop_self_hits({"e:1": ["e:1", "f:1", "d:1"]}) == {"e:1": ["f:1", "d:1"]}


DOC_LANG = {"e1": "eng", "e2": "eng", "f1": "fra", "f2": "fra", "f3": "fra"}
QUERY_LANG = {"qe": "eng", "qf": "fra"}


def test_language_bias_pool_share_from_doc_lang() -> None:
    ranked = {"qe": ["e1", "f1", "e2", "f2"], "qf": ["e1", "f1", "f2", "e2"]}
    m = language_bias(ranked, DOC_LANG, QUERY_LANG, k=3)
    # top3 qe: e1 f1 e2 -> 2/3 English; top3 qf: e1 f1 f2 -> 2/3 French; mean 2/3
    assert m["own_lang_share@3"] == approx(2 / 3)
    # pool: 2 of 5 English, 3 of 5 French -> expected (0.4 + 0.6) / 2 = 0.5
    assert m["expected_share"] == approx(0.5)
    assert m["bias"] == approx(2 / 3 - 0.5)
    assert m["n_queries"] == 2


def test_language_bias_given_pool_share() -> None:
    ranked = {"qe": ["e1", "e2", "f1"]}
    m = language_bias(ranked, DOC_LANG, QUERY_LANG, pool_share={"eng": 0.25}, k=2)
    # top2 both English -> 1.0; expected 0.25 -> bias 0.75
    assert m == approx(
        {"own_lang_share@2": 1.0, "expected_share": 0.25, "bias": 0.75, "n_queries": 1}
    )


def test_language_bias_among_wrong_hits() -> None:
    # A parallel pool: qe's right answers are its French translations f1, f2. Over all hits a
    # perfect ranking scores "no English at all"; among the wrong hits it scores what it does.
    ranked = {"qe": ["f1", "f2", "e1", "f3", "e2"]}
    rel = {"qe": {"f1", "f2"}}
    m = language_bias(ranked, DOC_LANG, QUERY_LANG, k=2, relevant=rel)
    assert m["own_lang_share@2"] == 0.0  # the translations fill the top 2
    assert m["bias"] == approx(-0.4)  # 2 of 5 documents are English
    # wrong hits e1, f3 -> 1/2 English; chance: 2 English of the 3 documents not relevant
    assert m["wrong_own_share@2"] == approx(0.5)
    assert m["wrong_expected_share"] == approx(2 / 3)
    assert m["wrong_bias"] == approx(0.5 - 2 / 3)
    assert "wrong_bias" not in language_bias(ranked, DOC_LANG, QUERY_LANG, k=2)


# labels A, B, C; items 0..5
Y_TRUE = ["A", "A", "A", "B", "B", "C"]
Y_PRED = ["A", "A", "B", "B", "C", "C"]


def test_classification_metrics_by_hand() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, ["A", "B", "C"])
    # correct: items 0, 1, 3, 5 -> 4/6
    assert m["accuracy"] == approx(2 / 3)
    # A: TP 2, FP 0, FN 1 -> F1 = 2*2 / (4 + 0 + 1) = 4/5
    # B: TP 1, FP 1 (item 2), FN 1 (item 4) -> 2 / (2 + 1 + 1) = 1/2
    # C: TP 1, FP 1 (item 4), FN 0 -> 2 / (2 + 1 + 0) = 2/3
    assert m["f1/A"] == approx(0.8)
    assert m["f1/B"] == approx(0.5)
    assert m["f1/C"] == approx(2 / 3)
    # macro = (4/5 + 1/2 + 2/3) / 3 = 59/90
    assert m["macro_f1"] == approx(59 / 90)
    assert m["n"] == 6


def test_macro_f1_counts_unseen_label_as_zero() -> None:
    # D has no support and is never predicted: F1 = 0 and it still counts -> (59/30) / 4
    m = classification_metrics(Y_TRUE, Y_PRED, ["A", "B", "C", "D"])
    assert m["macro_f1"] == approx(59 / 120)
    assert m["f1/D"] == 0.0


def test_classification_matches_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    y_true = ["A", "B", "C", "A", "B", "B", "C", "A", "X"]
    y_pred = ["A", "C", "C", "B", "B", "A", "D", "A", "A"]
    labels = ["A", "B", "C", "D"]
    m = classification_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == approx(sk.accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == approx(
        sk.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
    )
    assert (
        confusion_matrix(y_true, y_pred, labels)
        == sk.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    )


def test_confusion_matrix_by_hand() -> None:
    # rows = true, cols = predicted
    assert confusion_matrix(Y_TRUE, Y_PRED, ["A", "B", "C"]) == [
        [2, 1, 0],  # true A: 2 -> A, 1 -> B
        [0, 1, 1],  # true B: 1 -> B, 1 -> C
        [0, 0, 1],  # true C: 1 -> C
    ]
    # pairs with a label outside the list are ignored
    assert confusion_matrix(["A", "Z"], ["A", "A"], ["A"]) == [[1]]


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        classification_metrics(["A"], ["A", "B"], ["A", "B"])
    with pytest.raises(ValueError):
        confusion_matrix(["A"], [], ["A"])


# 3 languages x 3 shared groups; g4 exists only in German and must be ignored
PREDS = {
    "eng": {"g1": "A", "g2": "B", "g3": "C"},
    "fra": {"g1": "A", "g2": "B", "g3": "A"},
    "deu": {"g1": "A", "g2": "C", "g3": "A", "g4": "B"},
}


def test_consistency_by_hand() -> None:
    # g1: A A A agree; g2: B B C no; g3: C A A no -> 1/3
    assert consistency(PREDS) == approx({"all_agree": 1 / 3, "n_groups": 3, "n_languages": 3})
    assert consistency({}) == {"all_agree": 0.0, "n_groups": 0, "n_languages": 0}


def test_pairwise_agreement_by_hand() -> None:
    # deu|eng: g1 yes, g2 C/B no, g3 A/C no -> 1/3
    # deu|fra: g1 yes, g2 C/B no, g3 A/A yes -> 2/3
    # eng|fra: g1 yes, g2 yes, g3 C/A no -> 2/3
    assert pairwise_agreement(PREDS) == approx(
        {"deu|eng": 1 / 3, "deu|fra": 2 / 3, "eng|fra": 2 / 3}
    )


def test_fertility_word_and_char() -> None:
    tokens = {"Hello world": 3, "tokenization is taxing": 7}
    texts = list(tokens)
    # words: 2 + 3 = 5; tokens 3 + 7 = 10 -> 2.0
    assert fertility(texts, tokens.__getitem__, "word") == approx(2.0)
    # non-space chars: "Helloworld" 10 + "tokenizationistaxing" 20 = 30 -> 10/30
    assert fertility(texts, tokens.__getitem__, "char") == approx(1 / 3)
    # Chinese: 4 characters, one whitespace "word", 3 tokens
    assert fertility(["我爱北京"], lambda t: 3, "char") == approx(3 / 4)
    assert fertility(["我爱北京"], lambda t: 3, "word") == approx(3.0)


def test_fertility_errors() -> None:
    with pytest.raises(ValueError):
        fertility(["   "], lambda t: 0, "word")
    with pytest.raises(ValueError):
        fertility(["a b"], lambda t: 2, "byte")  # type: ignore[arg-type]


def test_uses_spaces() -> None:
    assert uses_spaces(["The quick brown fox jumps over the lazy dog."])
    assert uses_spaces(["Die Donaudampfschifffahrtsgesellschaft fährt heute nicht."])
    assert not uses_spaces(["我爱北京天安门。今天天气很好。"])
    assert not uses_spaces(["私は東京に住んでいます。毎日電車で会社に行きます。"])
    assert not uses_spaces(["ฉันรักภาษาไทยมาก เพราะว่าภาษาไทยสวยงาม"])
    assert uses_spaces([])


def test_recall_matrix_summary_by_hand() -> None:
    matrix = {
        "eng": {"eng": 1.0, "fra": 0.8, "zho": 0.4},
        "fra": {"eng": 0.6, "fra": 1.0},  # fra -> zho missing, skipped
        "zho": {"eng": 0.2, "fra": 0.5, "zho": 0.9},
    }
    s = recall_matrix_summary(matrix, n_worst=2)
    # rows: eng (1 + .8 + .4)/3, fra (.6 + 1)/2, zho (.2 + .5 + .9)/3
    assert s["per_query_lang"] == approx({"eng": 2.2 / 3, "fra": 0.8, "zho": 1.6 / 3})
    # columns: eng (1 + .6 + .2)/3, fra (.8 + 1 + .5)/3, zho (.4 + .9)/2
    assert s["per_doc_lang"] == approx({"eng": 0.6, "fra": 2.3 / 3, "zho": 0.65})
    # diagonal (1 + 1 + .9)/3; off-diagonal (.8 + .4 + .6 + .2 + .5)/5 = .5; all 8 cells 5.4/8
    assert s["diagonal_mean"] == approx(2.9 / 3)
    assert s["off_diagonal_mean"] == approx(0.5)
    assert s["mean"] == approx(5.4 / 8)
    assert s["worst_pairs"] == [
        {"query_lang": "zho", "doc_lang": "eng", "value": approx(0.2)},
        {"query_lang": "eng", "doc_lang": "zho", "value": approx(0.4)},
    ]
    assert len(recall_matrix_summary(matrix)["worst_pairs"]) == 8


def test_drop_self_hits_with_same_item() -> None:
    ranked = {"q1": ["en-1", "q1", "fr-1", "fr-2"], "q2": ["fr-2", "en-2"]}
    same = {"q1": {"en-1"}, "q3": {"x"}}
    assert drop_self_hits(ranked, same) == {"q1": ["fr-1", "fr-2"], "q2": ["fr-2", "en-2"]}


def test_recall_matrix_summary_cross_means_exclude_the_diagonal() -> None:
    matrix = {
        "eng": {"eng": 1.0, "fra": 0.8, "zho": 0.4},
        "fra": {"eng": 0.6, "fra": 1.0},
        "zho": {"eng": 0.2, "fra": 0.5, "zho": None},
    }
    s = recall_matrix_summary(matrix)
    # "mean over document languages (other than itself)": eng (.8 + .4)/2, fra .6, zho .35
    assert s["per_query_lang_cross"] == approx({"eng": 0.6, "fra": 0.6, "zho": 0.35})
    # columns without the diagonal: eng (.6 + .2)/2, fra (.8 + .5)/2, zho .4
    assert s["per_doc_lang_cross"] == approx({"eng": 0.4, "fra": 0.65, "zho": 0.4})
    # the diagonal-inclusive means differ wherever a diagonal cell exists
    assert s["per_query_lang"]["eng"] == approx(2.2 / 3)
    only_diagonal = recall_matrix_summary({"eng": {"eng": 1.0}})
    assert only_diagonal["per_query_lang_cross"] == {"eng": None}


def test_language_bias_leaves_the_query_itself_out_of_chance() -> None:
    """Two languages, two sentences each: a query's own sentence is dropped from its ranking,
    so its wrong hits can only be the other two sentences, one in each language: chance is
    1/2 and so is the share (bias 0). Chance counted the query itself and said 2/3."""
    doc_lang = {"e:1": "eng", "e:2": "eng", "f:1": "fra", "f:2": "fra"}
    query_lang = {"e:1": "eng"}
    ranked = {"e:1": ["f:1", "e:2", "f:2"]}  # e:1 itself already dropped
    m = language_bias(ranked, doc_lang, query_lang, k=10, relevant={"e:1": {"f:1"}},
                      excluded={"e:1": {"e:1"}})
    assert m["wrong_expected_share"] == pytest.approx(0.5)
    assert m["wrong_bias"] == pytest.approx(0.0)
    assert m["expected_share"] == pytest.approx(1 / 3)  # e:2 of f:1, e:2, f:2
    m = language_bias(ranked, doc_lang, query_lang, k=10, relevant={"e:1": {"f:1"}})
    assert m["wrong_expected_share"] == pytest.approx(2 / 3)  # without `excluded`, as before
