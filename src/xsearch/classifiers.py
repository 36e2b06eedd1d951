"""Few-shot classifiers on embeddings: nearest label prototype, and logistic regression."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import XsearchError


def normalise_rows(mat: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return mat / norms


class PrototypeClassifier:
    """Few-shot: one mean vector per label; predict the nearest prototype."""

    def fit(self, vectors: np.ndarray, labels: Sequence[str]) -> PrototypeClassifier:
        self.labels_ = sorted(set(labels))
        y = np.array(labels)
        self.prototypes_ = normalise_rows(np.vstack([vectors[y == lb].mean(axis=0)
                                                 for lb in self.labels_]))
        return self

    def predict(self, vectors: np.ndarray) -> list[str]:
        best = (np.asarray(vectors) @ self.prototypes_.T).argmax(axis=1)
        return [self.labels_[i] for i in best]


class LogisticClassifier:
    """Few-shot: multinomial logistic regression on the embeddings (scikit-learn)."""

    def __init__(self, c: float = 10.0) -> None:
        self.c = c

    def fit(self, vectors: np.ndarray, labels: Sequence[str]) -> LogisticClassifier:
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError as exc:
            raise XsearchError("few-shot logistic regression needs scikit-learn: "
                               "pip install 'xsearch[bench]'") from exc
        self.model_ = LogisticRegression(C=self.c, max_iter=2000)
        self.model_.fit(vectors, list(labels))
        return self

    def predict(self, vectors: np.ndarray) -> list[str]:
        return [str(x) for x in self.model_.predict(vectors)]
