"""Which labelled languages to train a topic classifier on, for the languages of an index.

A small LANGRANK-style ranker (Lin et al., ACL 2019: rank transfer sources by linguistic
similarity and data features with a model fitted on measured transfer results). Features of a
(source, target) pair, all cheap and local:

- ``script``: same writing system (the ISO 15924 part of a FLORES-style code, ``hin_Deva``);
- ``family``: overlap of the two languages' genealogical lineages (Glottolog/Ethnologue nodes
  as shipped by URIEL in ``lang2vec``; Jaccard of the node sets), when lang2vec is installed;
- ``syntax``: cosine of URIEL's kNN-completed WALS/SSWL syntax vectors (``syntax_knn``);
- ``tokens``: weighted overlap of the e5 tokenizer's pieces in the two languages' texts;
- ``embed``: cosine of the two languages' mean vectors in the model's own space;
- ``central``: the source's mean cosine to every other language (how well the model aligns it
  with the rest: English-like hubs score high).

Scores are a linear combination with :data:`WEIGHTS` fitted (ridge, standardised features) on
the measured SIB-200 frozen-embedding transfer matrix (``benchmarks/transfer.py``). lang2vec
data: CC BY-SA 4.0 (Littell et al., EACL 2017, URIEL). Without lang2vec, family and syntax
count as unknown (0 after standardisation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FEATURES = ("script", "family", "syntax", "tokens", "embed", "central")

#: Fitted on the 30 x 30 SIB-200 matrix (frozen e5-small + logistic regression, 500 examples
#: per source; ``python benchmarks/transfer.py``): (mean, std) to standardise each feature and
#: the ridge weights (accuracy points per standard deviation). Only the features that need no
#: lang2vec: with family and syntax added, leave-one-target-out results were worse (see
#: benchmarks/results/transfer.md). Same script gets a negative weight once token overlap and
#: the model's own similarity are accounted for: measured, not a typo.
STANDARD: dict[str, tuple[float, float]] = {
    "script": (0.1977, 0.39827), "tokens": (0.04759, 0.04624), "embed": (0.94283, 0.02076),
    "central": (0.94283, 0.01035)}
WEIGHTS: dict[str, float] = {"script": -0.01001, "tokens": 0.00675, "embed": 0.00342,
                             "central": -0.0052}

# ISO 639-3 codes lang2vec knows under another name (macrolanguages).
_URIEL_ALIASES = {"arb": "ara", "pes": "fas", "zho": "cmn", "swh": "swa", "npi": "nep"}


def script_of(lang: str) -> str:
    """``hin_Deva`` -> ``Deva``; a bare code has an unknown script (empty)."""
    return lang.split("_", 1)[1] if "_" in lang else ""


def iso3(lang: str) -> str:
    return lang.split("_", 1)[0].lower()


@lru_cache(maxsize=1)
def _uriel() -> dict | None:
    """lang2vec's URIEL arrays, read straight from its data files (its module needs
    pkg_resources, gone from recent setuptools); None when lang2vec is not installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("lang2vec")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    try:
        fam = np.load(data / "family_features.npz", allow_pickle=True)
        syn = np.load(data / "feature_predictions.npz", allow_pickle=True)
        syn_cols = [i for i, f in enumerate(syn["feats"]) if str(f).startswith("S_")]
        return {"fam_langs": {str(x): i for i, x in enumerate(fam["langs"])},
                "fam": fam["data"][:, :, 0], "syn_langs": {str(x): i for i, x in
                                                           enumerate(syn["langs"])},
                "syn": syn["data"][:, syn_cols, 0]}
    except (OSError, KeyError, ValueError):
        return None


def _uriel_row(kind: str, lang: str) -> np.ndarray | None:
    u = _uriel()
    if u is None:
        return None
    code = iso3(lang)
    idx = u[kind + "_langs"].get(code, u[kind + "_langs"].get(_URIEL_ALIASES.get(code, "")))
    return None if idx is None else np.asarray(u[kind][idx], dtype=np.float64)


def family_overlap(a: str, b: str) -> float | None:
    """Jaccard of the lineage nodes (family, branch, genus...) of two languages."""
    ra, rb = _uriel_row("fam", a), _uriel_row("fam", b)
    if ra is None or rb is None:
        return None
    inter, union = np.minimum(ra, rb).sum(), np.maximum(ra, rb).sum()
    return float(inter / union) if union else 0.0


def syntax_similarity(a: str, b: str) -> float | None:
    """Cosine of URIEL syntax_knn vectors (centred at 0.5: present/absent are symmetric)."""
    ra, rb = _uriel_row("syn", a), _uriel_row("syn", b)
    if ra is None or rb is None:
        return None
    ra, rb = ra - 0.5, rb - 0.5
    return float(ra @ rb / (np.linalg.norm(ra) * np.linalg.norm(rb) + 1e-12))


def token_profile(texts: Iterable[str]) -> Counter:
    """Frequencies of e5 tokenizer pieces over ``texts`` (prefix excluded)."""
    from .embedders.e5_tokenizer import get_e5_tokenizer

    tok = get_e5_tokenizer()
    counts: Counter = Counter()
    for ids in tok.encode_batch(list(texts)):
        counts.update(ids[2:])  # the "passage:" prefix pieces are in every text
    return counts


def token_overlap(a: Counter, b: Counter) -> float:
    """Weighted Jaccard of two piece distributions (sum of minima / sum of maxima)."""
    na, nb = sum(a.values()) or 1, sum(b.values()) or 1
    keys = set(a) | set(b)
    lo = sum(min(a[k] / na, b[k] / nb) for k in keys)
    hi = sum(max(a[k] / na, b[k] / nb) for k in keys)
    return lo / hi if hi else 0.0


@dataclass
class LanguageProfile:
    """What the ranker knows of one language: its tokens and mean vector (either optional)."""

    lang: str
    tokens: Counter | None = None
    centroid: np.ndarray | None = None


def profiles(texts: Mapping[str, Sequence[str]], vectors: Mapping[str, np.ndarray] | None = None
             ) -> dict[str, LanguageProfile]:
    """Profiles from texts (and optionally vectors) grouped by language."""
    out = {}
    for lang, ts in texts.items():
        cen = None
        if vectors is not None and lang in vectors and len(vectors[lang]):
            m = np.asarray(vectors[lang], dtype=np.float64).mean(0)
            cen = m / (np.linalg.norm(m) or 1.0)
        out[lang] = LanguageProfile(lang, token_profile(ts) if ts else None, cen)
    return out


def pair_features(src: LanguageProfile, tgt: LanguageProfile,
                  others: Sequence[LanguageProfile] = ()) -> dict[str, float | None]:
    """Raw features of transferring from ``src`` to ``tgt`` (None: unknown)."""
    f: dict[str, float | None] = {
        "script": float(script_of(src.lang) == script_of(tgt.lang) != ""),
        "family": family_overlap(src.lang, tgt.lang),
        "syntax": syntax_similarity(src.lang, tgt.lang),
        "tokens": (token_overlap(src.tokens, tgt.tokens)
                   if src.tokens is not None and tgt.tokens is not None else None),
        "embed": (float(src.centroid @ tgt.centroid)
                  if src.centroid is not None and tgt.centroid is not None else None),
    }
    cents = [o.centroid for o in others if o.lang != src.lang and o.centroid is not None]
    f["central"] = (float(np.mean([src.centroid @ c for c in cents]))
                    if src.centroid is not None and cents else None)
    return f


def score(features: Mapping[str, float | None], weights: Mapping[str, float] = WEIGHTS,
          standard: Mapping[str, tuple[float, float]] = STANDARD) -> float:
    """Linear score of standardised features; an unknown feature counts as average (0)."""
    total = 0.0
    for name, w in weights.items():
        v = features.get(name)
        if v is not None:
            mean, std = standard.get(name, (0.0, 1.0))
            total += w * (v - mean) / (std or 1.0)
    return total


def rank_sources(target: str, candidates: Sequence[str],
                 known: Mapping[str, LanguageProfile]) -> list[tuple[str, float]]:
    """Candidate sources for ``target``, best first, with their scores."""
    tgt = known.get(target, LanguageProfile(target))
    pool = list(known.values())
    scored = [(c, score(pair_features(known.get(c, LanguageProfile(c)), tgt, pool)))
              for c in candidates if c != target]
    if target in candidates:  # labelled data in the target language itself beats any transfer
        scored.append((target, float("inf")))
    return sorted(scored, key=lambda cs: -cs[1])


def choose_sources(targets: Mapping[str, int], candidates: Sequence[str],
                   known: Mapping[str, LanguageProfile]) -> dict[str, str]:
    """For each target language (with its passage count), its top-ranked source."""
    return {t: rank_sources(t, candidates, known)[0][0] for t in targets if candidates}
