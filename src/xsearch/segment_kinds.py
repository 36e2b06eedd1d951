"""The kinds of vector segment, their FAISS factory strings, and how widely each is searched.

Every figure below was measured on this project's scale benchmark (``benchmarks/scale.py``:
1M passages, 18 languages x 55k, vectors derived from real e5-small embeddings)."""

from __future__ import annotations

FLAT = "flat"
HNSW = "hnsw"  # a graph over the raw vectors: written by earlier versions, still read
HNSW_C = "hnsw-c"
IVF_SQ8 = "ivf-sq8"  # written by earlier versions, still read
#: IVF-SQ8 with each vector's denominator against the segment mean (ivf_lists)
IVF_SQ8_N = "ivf-sq8-n"
GRAPHS = (HNSW, HNSW_C)
IVFS = (IVF_SQ8, IVF_SQ8_N)
#: FAISS factory strings of the approximate kinds (inner product on unit vectors).
#: HNSW24: 1.14x the vectors on disk (HNSW32: 1.18x); at efSearch 64 on a 55k segment of
#: e5-small-derived vectors it finds 0.708 of the 56 best (HNSW32: 0.720) in the same time
#: (scale.py --hnsw-m). IDMap, not IDMap2: the latter's reverse hash map held ~45 bytes a
#: vector in RAM; a row is found by bisecting the segment's sorted ids (graph_order.id_rows).
#: Segments written as IDMap2,HNSW32 by earlier versions read the same way.
#: IVF's coarse centroids are kept in float16: a query reads every centroid of every segment,
#: 25 MB at 1M in float32. Measured at 1M (scale_ab.py, same corpus built both ways): 12 MB
#: less query RSS, the same warm p50 (B/A 0.96-1.04), recall@10 0.964 against 0.965.
#: Segments with float32 centroids still read.
FACTORY = {HNSW: "IDMap,HNSW24,Flat", HNSW_C: "IDMap,HNSW24,SQfp16",
           IVF_SQ8: "IVF{nlist}(SQfp16),SQ8", IVF_SQ8_N: "IVF{nlist}(SQfp16),SQ8"}
#: The low half of a centred segment's vectors is stored scaled into float16's normal range
#: (u - hi is below 2^-11 |u|): read back, |p - p'| <= 2e-8 per component.
LO_SCALE = 2048.0
HNSW_EF_CONSTRUCTION = 80
#: Measured at 1M passages (18 languages x 55k, benchmarks/scale.py --tune): efSearch 48 / 64 /
#: 96 gave recall@10 0.947 / 0.960 / 0.976 at 5.0 / 5.7 / 7.3 ms CPU per query.
HNSW_EF_SEARCH = 64
#: A centred graph ranks candidates as the scores do (a raw one ranks by q'·p, which the
#: scores' division by ||p - mu_L||, spread ~5%, reorders): it needs a narrower search and
#: fewer candidates, k + CENTRED_EXTRA where a raw graph proposes 4k + 16 (see Segment.fetch).
#: Measured at 1M passages (18 languages x 55k, benchmarks/scale.py --tune): efSearch 32 / 36
#: / 40 / 48 gave recall@10 0.942 / 0.948 / 0.954 / 0.968; 2, 6 or 14 extra candidates the same
#: recall (raw float32 graphs at efSearch 64 with 4k + 16: 0.947, and the whole search took
#: 1.5-1.7x as long: benchmarks/scale_ab.py).
HNSW_C_EF_SEARCH = 40
CENTRED_EXTRA = 2
#: Candidates an IVF segment hands the rescorer for a caller's k best, a k + b: IVF ranks by
#: q'·p from its codes, which the scores reorder. Measured at 1M passages (100k), the benchmark's
#: 300 queries: 4k + 16 / 3k + 8 / 2k + 8 gave recall@10 0.9650 / 0.9650 / 0.9627 (0.9703 each)
#: at p50 5.3-5.7 / 4.9-5.0 / 4.7 ms (5.1 / 4.6 / 4.2 ms). Raw graphs of earlier versions keep
#: 4k + 16.
IVF_FETCH = (3, 8)
#: A query that searches only a few segments (a --lang filter) may search each more widely.
MAX_EFFORT = 4
#: IVF lists probed per query: at least the first number, and enough lists to scan about the
#: second number of codes. Measured (benchmarks/scale.py --tune): a fixed 24 gave
#: recall@10 0.98 on 55k-vector segments (940 lists) but 0.93 on 5.5k-vector ones (298 lists,
#: 19 codes per list); what recall follows is the number of codes scanned, not the share of
#: lists. A 6-bit codec (IVF,SQ6: 3/4 of SQ8's bytes, 309 MB of segments at 1M) was built and
#: dropped: however many lists it probed, its recall@10 at 1M stopped at 0.943 (SQ8: 0.965).
IVF_PROBES = (16, 1000)


def ivf_nprobe(nlist: int, n: int, effort: int = 1) -> int:
    """How many of a segment's ``nlist`` lists (holding ``n`` codes) a query probes."""
    least, scan = IVF_PROBES
    return min(nlist, effort * max(least, -(-scan * nlist // max(1, n))))
