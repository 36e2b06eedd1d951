"""Pure metric functions for the benchmark harness.

Every function takes plain dicts/lists of string ids and returns plain (JSON-friendly) values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np

# Whitespace-separated tokens per 100 non-space characters below which a text is taken to be
# written without spaces between words. Calibrated on SIB-200 (FLORES) test sets: spaced
# languages pool at >= 12 (Tamil lowest), Chinese 5.2, Thai 3.7, Japanese 2.0.
_SPACED_WORDS_PER_100_CHARS = 8.0


# --------------------------------------------------------------------------- retrieval


def recall_at_k(ranked_ids: Sequence[str], relevant_ids: Iterable[str], k: int) -> float:
    """Share of the relevant documents found in the top ``k`` (0.0 if none are relevant)."""
    rel = set(relevant_ids)
    if not rel:
        return 0.0
    return len(rel.intersection(ranked_ids[:k])) / len(rel)


def reciprocal_rank(
    ranked_ids: Sequence[str], relevant_ids: Iterable[str], k: int | None = None
) -> float:
    """1 / rank of the first relevant document within the top ``k`` (all if None), else 0."""
    rel = set(relevant_ids)
    for rank, doc_id in enumerate(ranked_ids[:k], start=1):
        if doc_id in rel:
            return 1.0 / rank
    return 0.0


def average_precision(
    ranked_ids: Sequence[str], relevant_ids: Iterable[str], k: int | None = None
) -> float:
    """Average precision over ALL relevant documents (trec_eval convention).

    Sums precision@rank at each relevant hit within the top ``k`` (whole list if None) and
    divides by the total number of relevant documents, so relevant documents that are never
    retrieved count as zero. Returns 0.0 when nothing is relevant.
    """
    rel = set(relevant_ids)
    if not rel:
        return 0.0
    hits = 0
    total = 0.0
    seen: set[str] = set()
    for rank, doc_id in enumerate(ranked_ids[:k], start=1):
        # a duplicated id must not be credited twice
        if doc_id in rel and doc_id not in seen:
            hits += 1
            total += hits / rank
        seen.add(doc_id)
    return total / len(rel)


def _scored_queries(relevant: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    return {q: set(r) for q, r in relevant.items() if set(r)}


def per_query_metrics(
    ranked: Mapping[str, Sequence[str]],
    relevant: Mapping[str, Iterable[str]],
    ks: Sequence[int] = (1, 5, 10),
    mrr_k: int = 10,
) -> dict[str, dict[str, float]]:
    """Per-query ``recall@k``, ``mrr@mrr_k`` and ``ap`` for queries with a relevant document.

    A query missing from ``ranked`` is scored as an empty ranking (all zeros).
    """
    out: dict[str, dict[str, float]] = {}
    for qid, rel in _scored_queries(relevant).items():
        docs = list(ranked.get(qid, ()))
        row = {f"recall@{k}": recall_at_k(docs, rel, k) for k in ks}
        row[f"mrr@{mrr_k}"] = reciprocal_rank(docs, rel, mrr_k)
        row["ap"] = average_precision(docs, rel)
        out[qid] = row
    return out


def retrieval_metrics(
    ranked: Mapping[str, Sequence[str]],
    relevant: Mapping[str, Iterable[str]],
    ks: Sequence[int] = (1, 5, 10),
    mrr_k: int = 10,
) -> dict[str, float]:
    """Mean ``recall@k`` for each k and ``mrr@mrr_k`` over queries with a relevant document.

    Returns a flat dict, e.g. ``{"recall@1", "recall@5", "recall@10", "mrr@10", "n_queries"}``.
    Queries come from ``relevant``; those absent from ``ranked`` score 0. With no scorable
    query every metric is 0.0 and ``n_queries`` is 0.
    """
    rows = per_query_metrics(ranked, relevant, ks, mrr_k)
    keys = [f"recall@{k}" for k in ks] + [f"mrr@{mrr_k}"]
    out: dict[str, float] = {
        key: float(np.mean([r[key] for r in rows.values()])) if rows else 0.0 for key in keys
    }
    out["n_queries"] = len(rows)
    return out


def mean_average_precision(
    ranked: Mapping[str, Sequence[str]],
    relevant: Mapping[str, Iterable[str]],
    k: int | None = None,
) -> float:
    """mAP over queries with a relevant document (LAReQA "mixed pool": all relevant docs count)."""
    rel = _scored_queries(relevant)
    if not rel:
        return 0.0
    return float(
        np.mean([average_precision(list(ranked.get(q, ())), r, k) for q, r in rel.items()])
    )


def drop_self_hits(
    ranked: Mapping[str, Sequence[str]], same: Mapping[str, Iterable[str]] | None = None,
    own_id: bool = True,
) -> dict[str, list[str]]:
    """Remove each query's own id from its ranking (for pools where queries are also documents).

    ``same`` maps a query to further documents that are the same text under other ids; they
    are removed too. With ``own_id`` False only those are (``same`` says it all: ids of
    queries and documents are separate names, as in BEIR). Retrieve that many extra
    documents per query beforehand so that top-k stays k long.
    """
    same = same or {}
    out = {}
    for q, docs in ranked.items():
        drop = {*same.get(q, ()), *((q,) if own_id else ())}
        out[q] = [d for d in docs if d not in drop]
    return out


def language_bias(
    ranked: Mapping[str, Sequence[str]],
    doc_lang: Mapping[str, str],
    query_lang: Mapping[str, str],
    pool_share: Mapping[str, float] | None = None,
    k: int = 10,
    relevant: Mapping[str, Collection[str]] | None = None,
    excluded: Mapping[str, Collection[str]] | None = None,
) -> dict[str, float]:
    """Share of the top ``k`` in the query's own language versus the share expected by chance.

    Averaged over the queries in ``ranked`` that returned at least one document; the share is
    taken over the documents actually returned (at most ``k``). ``pool_share`` maps language ->
    fraction of the pool in that language; if None it is computed from ``doc_lang`` (which must
    then describe the whole pool). Group queries by language before calling to get per-language
    figures. Returns ``{"own_lang_share@k", "expected_share", "bias", "n_queries"}``.

    With ``relevant`` (query -> its relevant documents) also the same over the first ``k``
    *wrong* hits (``wrong_own_share@k``, ``wrong_expected_share``, ``wrong_bias``; chance is
    the own language's share of the pool without the relevant documents). On a parallel pool
    whose right answers are the query's translations, every right hit is in another language,
    so ``bias`` is about -1/L for a model that finds them all; ``wrong_bias`` says whether the
    wrong hits lean to the query's language. ``excluded`` (query -> documents that can never
    be its hits: itself, dropped from its ranking) leaves those out of chance's pool too.
    """
    if pool_share is None:
        counts = Counter(doc_lang.values())
        total = sum(counts.values())
        pool_share = {lang: n / total for lang, n in counts.items()}
    n_pool = len(doc_lang)
    own: list[float] = []
    expected: list[float] = []
    wrong_own: list[float] = []
    wrong_expected: list[float] = []
    for qid, docs in ranked.items():
        top = list(docs[:k])
        if not top:
            continue
        lang = query_lang[qid]
        own.append(sum(doc_lang[d] == lang for d in top) / len(top))
        gone = set((excluded or {}).get(qid, ()))
        own_gone = sum(doc_lang.get(d) == lang for d in gone)
        in_lang = pool_share.get(lang, 0.0) * n_pool
        expected.append((in_lang - own_gone) / (n_pool - len(gone)) if n_pool > len(gone)
                        else 0.0)
        if relevant is None:
            continue
        rel = set(relevant.get(qid, ())) - gone
        wrong = [d for d in docs if d not in rel][:k]
        if wrong and n_pool > len(rel) + len(gone):
            wrong_own.append(sum(doc_lang[d] == lang for d in wrong) / len(wrong))
            own_rel = sum(doc_lang.get(d) == lang for d in rel)
            wrong_expected.append((in_lang - own_rel - own_gone)
                                  / (n_pool - len(rel) - len(gone)))
    share = float(np.mean(own)) if own else 0.0
    exp = float(np.mean(expected)) if expected else 0.0
    out = {
        f"own_lang_share@{k}": share,
        "expected_share": exp,
        "bias": share - exp,
        "n_queries": len(own),
    }
    if relevant is not None:
        w_share = float(np.mean(wrong_own)) if wrong_own else 0.0
        w_exp = float(np.mean(wrong_expected)) if wrong_expected else 0.0
        out.update({f"wrong_own_share@{k}": w_share, "wrong_expected_share": w_exp,
                    "wrong_bias": w_share - w_exp})
    return out


def recall_matrix_summary(
    matrix: Mapping[str, Mapping[str, float]], n_worst: int = 10
) -> dict[str, object]:
    """Summarise a query-language x doc-language score matrix (``matrix[q_lang][d_lang]``).

    Returns ``per_query_lang`` and ``per_doc_lang`` (means over the other axis, all cells
    present, diagonal included), ``per_query_lang_cross`` and ``per_doc_lang_cross`` (the
    same without the diagonal: other languages only), ``diagonal_mean``,
    ``off_diagonal_mean``, ``mean`` and
    ``worst_pairs``: the ``n_worst`` lowest cells as ``{"query_lang", "doc_lang", "value"}``,
    lowest first (ties broken by language codes). Missing or None cells are skipped; a mean
    over no cells is None.
    """
    cells = [(q, d, float(v)) for q, row in matrix.items() for d, v in row.items() if v is not None]

    def mean(values: list[float]) -> float | None:
        return float(np.mean(values)) if values else None

    q_langs = sorted({q for q, _, _ in cells})
    d_langs = sorted({d for _, d, _ in cells})
    worst = sorted(cells, key=lambda c: (c[2], c[0], c[1]))[:n_worst]
    return {
        "per_query_lang": {ql: mean([v for q, _, v in cells if q == ql]) for ql in q_langs},
        "per_doc_lang": {dl: mean([v for _, d, v in cells if d == dl]) for dl in d_langs},
        "per_query_lang_cross": {ql: mean([v for q, d, v in cells if q == ql and d != q])
                                 for ql in q_langs},
        "per_doc_lang_cross": {dl: mean([v for q, d, v in cells if d == dl and d != q])
                               for dl in d_langs},
        "diagonal_mean": mean([v for q, d, v in cells if q == d]),
        "off_diagonal_mean": mean([v for q, d, v in cells if q != d]),
        "mean": mean([v for _, _, v in cells]),
        "worst_pairs": [{"query_lang": q, "doc_lang": d, "value": v} for q, d, v in worst],
    }


# ---------------------------------------------------------------------- classification


def confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> list[list[int]]:
    """Counts with rows = true label, columns = predicted label, in ``labels`` order.

    Pairs where either side is not in ``labels`` are ignored (sklearn convention).
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    index = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    return cm.tolist()


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, float]:
    """Accuracy, macro-F1 over ``labels`` and per-label F1 (``"f1/<label>"``), plus ``n``.

    Matches sklearn ``accuracy_score`` and ``f1_score(average="macro", labels=labels,
    zero_division=0)``: F1 = 2TP / (2TP + FP + FN), 0 when that is 0/0, and every given label
    counts in the macro mean, including labels with no support. Accuracy is over all items.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    t = np.asarray(y_true, dtype=object)
    p = np.asarray(y_pred, dtype=object)
    out: dict[str, float] = {"accuracy": float(np.mean(t == p)) if len(t) else 0.0}
    f1s = []
    for lab in labels:
        tp = int(np.sum((t == lab) & (p == lab)))
        fp = int(np.sum((t != lab) & (p == lab)))
        fn = int(np.sum((t == lab) & (p != lab)))
        denom = 2 * tp + fp + fn
        f1 = 2 * tp / denom if denom else 0.0
        f1s.append(f1)
        out[f"f1/{lab}"] = f1
    out["macro_f1"] = float(np.mean(f1s)) if f1s else 0.0
    out["n"] = len(t)
    return out


def consistency(preds: Mapping[str, Mapping[str, str]]) -> dict[str, float]:
    """Cross-lingual agreement of predictions on translation groups.

    ``preds`` maps language -> {group id: predicted label}. Only groups present in every
    language count. Returns ``{"all_agree": share of those groups labelled identically in
    all languages, "n_groups": their number, "n_languages"}``; ``all_agree`` is 0.0 with no group.
    """
    langs = list(preds)
    common = set.intersection(*(set(preds[lang]) for lang in langs)) if langs else set()
    agree = sum(len({preds[lang][g] for lang in langs}) == 1 for g in common)
    return {
        "all_agree": agree / len(common) if common else 0.0,
        "n_groups": len(common),
        "n_languages": len(langs),
    }


def pairwise_agreement(preds: Mapping[str, Mapping[str, str]]) -> dict[str, float]:
    """Per language pair, the share of their shared groups given the same label.

    Keys are ``"a|b"`` with ``a < b``; pairs sharing no group are left out.
    """
    out: dict[str, float] = {}
    for a, b in combinations(sorted(preds), 2):
        shared = set(preds[a]) & set(preds[b])
        if shared:
            out[f"{a}|{b}"] = sum(preds[a][g] == preds[b][g] for g in shared) / len(shared)
    return out


# ----------------------------------------------------------------------- tokenization


def count_units(text: str, unit: Literal["word", "char"]) -> int:
    """Whitespace-separated words, or non-whitespace characters, in ``text``."""
    if unit == "word":
        return len(text.split())
    if unit == "char":
        return sum(not ch.isspace() for ch in text)
    raise ValueError(f"unit must be 'word' or 'char', not {unit!r}")


def fertility(
    texts: Iterable[str], count_tokens: Callable[[str], int], unit: Literal["word", "char"]
) -> float:
    """Tokens per word (``unit="word"``) or per non-space character (``unit="char"``).

    Pooled as total tokens / total units over all texts. ``count_tokens`` must count the
    text's subword tokens WITHOUT special tokens (no [CLS]/<s>/</s>); it is the caller's job.
    Use ``unit="char"`` for scripts written without spaces (see ``uses_spaces``).
    """
    tokens = 0
    units = 0
    for text in texts:
        tokens += count_tokens(text)
        units += count_units(text, unit)
    if units == 0:
        raise ValueError(f"texts contain no {unit}s")
    return tokens / units


def uses_spaces(texts: Iterable[str]) -> bool:
    """Guess whether the texts' script separates words with spaces (False for zh/ja/th).

    Heuristic: pooled whitespace-separated tokens per 100 non-space characters >= 8. Give it a
    sample of sentences, not one short string: a single 12-character sentence reads as spaced.
    """
    words = 0
    chars = 0
    for text in texts:
        words += count_units(text, "word")
        chars += count_units(text, "char")
    if chars == 0:
        return True
    return 100 * words / chars >= _SPACED_WORDS_PER_100_CHARS
