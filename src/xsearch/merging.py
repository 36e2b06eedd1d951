"""Merging segments, per language (Lucene's merge policy, for an index's languages).

Each write adds one flat segment per language it holds. While a run writes, :func:`compact`
folds a language's small flat segments of one size tier together (tiered merging), so a long
run over many languages keeps a bounded number of them: without it a million passages in 30
languages left ~30,000 segments, each memory-mapped when searched or merged, past Linux's
65,530 mappings a process may hold. At the end of a run :func:`merge` folds the flat ones into
one segment of the layout's kind (a graph for a large language) and rewrites approximate
segments that hold too many tombstones. Segments are read and let go one at a time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from . import segment_kinds as K
from . import segments as S
from .errors import CorruptIndexError
from .faults import point

if TYPE_CHECKING:
    from .writer import IndexWriter

#: Per language: flat segments are merged into one at the end of each run; from this many
#: vectors on, a language's merged segment becomes approximate (layout "auto"). Measured
#: (benchmarks/scale.py --crossover, e5-small, one thread): a flat segment costs as much as an
#: HNSW one at ~5,000 vectors and 5x more at 20,000; a query searches every language's
#: segment, so the flat ones add up (18 languages just under 20,000: ~24 ms per query).
ANN_MIN_VECTORS = 5_000
#: A merged segment smaller than this stays flat, whatever the layout.
FLAT_BELOW = 1000
#: A segment whose tombstones pass this share is rewritten without them.
TOMBSTONE_SHARE = 0.2
#: Approximate segments of one language merged once there are this many.
MAX_ANN_SEGMENTS = 4
#: While a run writes: a language's flat segments of one size tier (vectors within a factor
#: of this) are folded into one once there are this many. Each vector is rewritten about
#: log(n)/log(TIER) times; a language keeps fewer than TIER segments a tier.
TIER = 10


def target_kind(layout: str, n: int) -> str:
    """The kind of segment ``n`` merged vectors of one language become under ``layout``."""
    if layout == "flat" or n < FLAT_BELOW:
        return K.FLAT
    if layout == "auto":
        return K.HNSW_C if n >= ANN_MIN_VECTORS else K.FLAT
    return K.HNSW_C if layout == "hnsw" else K.IVF_SQ8_N


def _by_language(writer: IndexWriter) -> tuple[dict[str, list[dict]], dict]:
    vectors = writer.index.vectors
    vectors.reload()
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for r in vectors.rows:
        by_lang[r["language"]].append(r)
    return by_lang, vectors.tombs


def merge(writer: IndexWriter, force: bool = False, upgrade: bool = False) -> int:
    """Apply the merge policy; returns how many segments were rewritten. ``upgrade`` also
    rewrites graphs of an earlier version (raw HNSW) as the centred ones written today."""
    by_lang, tombs = _by_language(writer)
    rewritten = 0
    for lang, segs in sorted(by_lang.items()):
        groups = []
        flats = [r for r in segs if r["kind"] == K.FLAT]
        anns = [r for r in segs if r["kind"] != K.FLAT]
        if len(flats) > 1 or (flats and tombs.get(flats[0]["id"]) is not None):
            groups.append(flats)
        stale = [r for r in anns if len(tombs.get(r["id"], ())) > TOMBSTONE_SHARE * r["n"]
                 or (upgrade and r["kind"] == K.HNSW)]
        if len(anns) >= MAX_ANN_SEGMENTS:
            groups.append(anns)
        elif stale:
            groups += [[r] for r in stale]
        if force and len(segs) > 1:
            groups = [segs]
        for group in groups:
            merge_group(writer, lang, group)
            rewritten += len(group)
    if rewritten or writer.compacted:  # the files they replaced: no commit names them
        writer.sweep()
    return rewritten


def compact(writer: IndexWriter) -> int:
    """Fold each language's flat segments of one size tier into one flat segment once there
    are :data:`TIER` of them; returns how many segments were rewritten."""
    # The segment rows alone, after every commit: not the tombstones a merge reads.
    tiers: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in writer.store.segments():
        if r["kind"] == K.FLAT:
            tiers[r["language"], int(math.log(max(r["n"], 1), TIER))].append(r)
    rewritten = 0
    for (lang, _), group in sorted(tiers.items()):
        if len(group) >= TIER:
            merge_group(writer, lang, group, K.FLAT)
            rewritten += len(group)
    return rewritten


def merge_group(writer: IndexWriter, lang: str, group: list[dict],
                kind: str | None = None) -> None:
    """Replace ``group`` (segments of ``lang``) by one segment of their live vectors, of
    ``kind`` (default: the layout's for their number), in one transaction."""
    vectors, store = writer.index.vectors, writer.store
    ids_parts, vec_parts = [], []
    for row in group:
        seg = vectors.segment(row)
        # The whole file, not only the ends a load compares: damage in the middle of a big
        # segment was merged into a new one with a checksum of its own, and check found
        # nothing after.
        if seg is None or not vectors.whole(row):
            raise CorruptIndexError(f"segment {row['name']} is damaged; run xsearch check "
                                    "--repair")
        live = store.live_ids_of_segment(row["id"])
        if len(live):
            ids_parts.append(live)
            vec_parts.append(np.array(seg.reconstruct(live), dtype=np.float32))
        vectors.release(row["name"])  # its mappings: a process may hold only so many
    with store.transaction():
        if not ids_parts:
            store.replace_segments([r["id"] for r in group], -1)
            return
        ids = np.concatenate(ids_parts)
        mat = np.vstack(vec_parts)
        name = S.segment_name(store.next_segment_seq(), lang)
        info = S.write_segment(writer.folder, name, ids, mat,
                               kind or writer._target_kind(len(ids)))
        point("merge:written")
        new_id = store.add_segment(lang, info)
        store.replace_segments([r["id"] for r in group], new_id)
    point("merge:committed")
