"""Model-level per-language statistics, shipped with the package: priors for what an index lacks.

An index learns each language's passage mean and query offset from its own passages
(centering.py). A query in a language the index does not hold (or holds too little of to
measure) would otherwise be centred on the index-wide mean plus one global offset, which is
wrong for that language and made 113 single-language pairs of the SIB-200 bench lose recall
(issue #13). This table, measured once per model on SIB-200's train split
(``benchmarks/make_priors.py``; SIB-200 is CC BY-SA 4.0), gives every listed language its
mean passage vector and its query-minus-passage offset.

The table is used only when the index's model fingerprint (its passage vector of the first
probe sentence) matches the table's, so a fine-tuned or different model never gets another
model's statistics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

#: Where the package keeps its tables: ``<model>.npz``.
PRIORS_DIR = Path(__file__).with_name("model_priors")
#: Cosine a model's fingerprint vector must reach against the table's.
FINGERPRINT_MIN_COSINE = 0.999


@dataclass(frozen=True)
class ModelPriors:
    """Per-language passage means and query offsets of one model (rows follow ``langs``)."""

    model: str
    langs: tuple[str, ...]
    mean: np.ndarray  # (n_langs, dim) float64
    offset: np.ndarray  # (n_langs, dim) float64
    count: np.ndarray  # (n_langs,) passages each row was measured on
    fingerprint: np.ndarray  # (dim,) float32
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row", {lang: i for i, lang in enumerate(self.langs)})

    def __contains__(self, lang: object) -> bool:
        return lang in self._row  # type: ignore[attr-defined]

    def mean_of(self, lang: str) -> np.ndarray:
        return self.mean[self._row[lang]]  # type: ignore[attr-defined]

    def offset_of(self, lang: str) -> np.ndarray:
        return self.offset[self._row[lang]]  # type: ignore[attr-defined]

    @property
    def global_offset(self) -> np.ndarray:
        """The offset averaged over languages (each language weighted alike)."""
        return self.offset.mean(axis=0)

    def matches(self, fingerprint: np.ndarray | None) -> bool:
        """Was this table measured on the model that makes ``fingerprint``?"""
        if fingerprint is None or len(fingerprint) != len(self.fingerprint):
            return False
        a = np.asarray(fingerprint, dtype=np.float64)
        b = np.asarray(self.fingerprint, dtype=np.float64)
        cos = float(a @ b) / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0)
        return cos >= FINGERPRINT_MIN_COSINE

    def save(self, path: Path) -> None:
        """Write the table (written then renamed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            langs=np.array(self.langs),
            mean=self.mean.astype(np.float32),
            offset=self.offset.astype(np.float32),
            count=np.asarray(self.count, dtype=np.int64),
            fingerprint=np.asarray(self.fingerprint, dtype=np.float32),
            meta=np.array(json.dumps({"model": self.model, "source": self.source})),
        )
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> ModelPriors:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(
                model=meta["model"],
                langs=tuple(str(x) for x in z["langs"]),
                mean=z["mean"].astype(np.float64),
                offset=z["offset"].astype(np.float64),
                count=z["count"],
                fingerprint=z["fingerprint"],
                source=meta.get("source", ""),
            )


def build(model: str, passages: dict[str, np.ndarray], queries: dict[str, np.ndarray],
          fingerprint: np.ndarray, source: str = "") -> ModelPriors:
    """A table from each language's passage-mode and query-mode vectors of the same texts."""
    langs = tuple(sorted(passages))
    mean = np.stack([np.asarray(passages[la], np.float64).mean(axis=0) for la in langs])
    qmean = np.stack([np.asarray(queries[la], np.float64).mean(axis=0) for la in langs])
    count = np.array([len(passages[la]) for la in langs], dtype=np.int64)
    return ModelPriors(model, langs, mean, qmean - mean, count,
                       np.asarray(fingerprint, np.float32), source)


@lru_cache(maxsize=8)
def _table(model: str) -> ModelPriors | None:
    path = PRIORS_DIR / f"{model}.npz"
    if not path.is_file():
        return None
    try:
        return ModelPriors.read(path)
    except (OSError, ValueError, KeyError):  # a damaged table is no table
        return None


def for_model(model: str, fingerprint: np.ndarray | None) -> ModelPriors | None:
    """The shipped table of ``model`` if it was measured on the model making ``fingerprint``."""
    table = _table(model)
    if table is None or not table.matches(fingerprint):
        return None
    return table
