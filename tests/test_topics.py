"""Topic labelling pieces: label files, zero-shot argmax, per-document means, few-shot."""

from __future__ import annotations

import numpy as np
import pytest

from xsearch.classifiers import LogisticClassifier, PrototypeClassifier
from xsearch.errors import XsearchError
from xsearch.topics import Label, document_topics, parse_labels, zero_shot


def test_parse_labels_names_descriptions_and_errors():
    labels = parse_labels(["# comment", "", "sports", "health: medicine, doctors and disease"],
                          template="About {label}.")
    assert labels == [Label("sports", "About sports."),
                      Label("health", "medicine, doctors and disease")]
    with pytest.raises(XsearchError, match="twice"):
        parse_labels(["a", "a"])
    with pytest.raises(XsearchError, match="at least two"):
        parse_labels(["only"])


def test_zero_shot_and_document_topics_match_brute_force():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    labels = rng.normal(size=(3, 8)).astype(np.float32)
    best, score = zero_shot(vecs, labels)
    assert np.array_equal(best, (vecs @ labels.T).argmax(axis=1))
    assert np.allclose(score, (vecs @ labels.T).max(axis=1))
    doc_ids = rng.integers(100, 110, size=50)
    docs, doc_best, _ = document_topics(doc_ids, vecs, labels)
    assert list(docs) == sorted(set(doc_ids.tolist()))
    for d, b in zip(docs, doc_best, strict=True):
        mean = vecs[doc_ids == d].mean(axis=0)
        assert b == (mean @ labels.T).argmax()


def test_few_shot_classifiers_learn_separable_labels():
    rng = np.random.default_rng(1)
    centers = np.eye(4, 16, dtype=np.float32) * 3
    x = np.vstack([c + rng.normal(scale=0.3, size=(10, 16)) for c in centers])
    y = [lb for lb in "abcd" for _ in range(10)]
    test = np.vstack([c + rng.normal(scale=0.3, size=(3, 16)) for c in centers])
    truth = [lb for lb in "abcd" for _ in range(3)]
    assert PrototypeClassifier().fit(x, y).predict(test) == truth
    assert LogisticClassifier().fit(x, y).predict(test) == truth
