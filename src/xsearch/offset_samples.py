"""Query-offset samples: a few passages of each language embedded in query mode too, from
which the index measures that language's query-minus-passage offset (centering.py). The
pipeline samples each group's new languages as it embeds them; what a stopped run committed
without samples is sampled by the next run."""

from __future__ import annotations

import numpy as np

from .embedders import Embedder
from .writer import IndexWriter

#: Passages per language also embedded in query mode (their first characters only), from
#: which the index measures that language's query-minus-passage offset (centering.py).
OFFSET_SAMPLES = 16
OFFSET_CHARS = 160


def settle(writer: IndexWriter, embedder: Embedder) -> dict[str, int]:
    """Offset samples each language has, after sampling what is owed: languages with fewer
    samples than committed passages (up to OFFSET_SAMPLES) get them from their newest
    passages, in a transaction of their own. A stopped run commits the files it had embedded
    without sampling them (``group_writer.whole_files``). Call it while no other thread writes."""
    store = writer.store
    sampled = {lang: row[0] for lang, row in store.lang_offsets().items()}
    # The model's shipped priors give these languages' offsets, measured on 700 sentences
    # each of the length the samples are cut to: sampling again would only add embedding.
    for lang in prior_languages(writer, embedder):
        sampled.setdefault(lang, OFFSET_SAMPLES)
    owed: dict[str, list[str]] = {}
    for lang, (n, _) in store.lang_stats().items():
        need = min(OFFSET_SAMPLES, n) - sampled.get(lang, 0)
        if need > 0:
            rows = store.db.execute(
                "SELECT text FROM passages WHERE coalesce(language, 'und') = ? "
                "ORDER BY id DESC LIMIT ?", [lang, need]).fetchall()
            owed[lang] = [r[0][:OFFSET_CHARS] for r in rows]
    texts = [t for ts in owed.values() for t in ts]
    if not texts:
        return sampled
    q = embedder.embed_queries(texts)
    p = embedder.embed_documents(texts)
    row = 0
    with store.transaction():
        for lang, ts in owed.items():
            store.add_lang_offset(lang, q[row:row + len(ts)], p[row:row + len(ts)])
            sampled[lang] = sampled.get(lang, 0) + len(ts)
            row += len(ts)
    return sampled


def prior_languages(writer: IndexWriter, embedder: Embedder) -> tuple[str, ...]:
    """Languages whose offsets the model's shipped priors give (none for most models)."""
    from .centering import PROBE_KEY, decode_vector
    from .priors import for_model

    table = for_model(getattr(embedder, "name", ""), decode_vector(writer.store.meta(PROBE_KEY)))
    return table.langs if table is not None else ()


def group_samples(embedder: Embedder, group: list, sampled: dict[str, int]
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Query- and passage-mode vectors of a few new passages of each under-sampled language
    in a group of files (``_Pending`` items) about to be committed."""
    picks: dict[str, list[str]] = {}
    for item in group:
        for d in item.docs:
            for p in d.to_embed:
                lang = p.language or "und"
                if sampled.get(lang, 0) + len(picks.get(lang, ())) < OFFSET_SAMPLES:
                    picks.setdefault(lang, []).append(p.text[:OFFSET_CHARS])
    if not picks:
        return {}
    texts = [t for ts in picks.values() for t in ts]
    q = embedder.embed_queries(texts)
    p = embedder.embed_documents(texts)
    out, row = {}, 0
    for lang, ts in picks.items():
        out[lang] = (q[row:row + len(ts)], p[row:row + len(ts)])
        sampled[lang] = sampled.get(lang, 0) + len(ts)
        row += len(ts)
    return out
