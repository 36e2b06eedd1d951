"""Synthetic corpora for the scale benchmark, derived from real e5-small vectors of SIB-200.

Each synthetic passage is ``normalise(v + ALPHA * z)``: ``v`` is the real passage-mode vector
of a SIB-200 sentence of language L (train + dev splits) and ``z`` is Gaussian noise drawn with
L's own covariance (its principal axes and variances), so the copies stay on the language's
manifold and keep its language; its text is that sentence. Queries are real query-mode vectors
of held-out sentences (test split) plus a little of the same noise. Everything is
deterministic: chunk ``c`` of any corpus is the same, so 10k is a prefix of 100k and of 1M.

Indexes are built through the product's own write path (:class:`xsearch.writer.IndexWriter`),
one ``write_many`` per 256 files as ``xsearch index`` commits, then ``merge`` and ``finish``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xsearch.bench.datasets import load_sib200_split

MODEL = "e5-small"
ALPHA = 0.8  # noise scale, in units of the language's own spread (cosine to source ~0.94)
QUERY_ALPHA = 0.15
PASSAGES_PER_FILE = 10
FILES_PER_CHUNK = 1000  # 10,000 passages per generated chunk
COMMIT_FILES = 256  # files per write transaction (xsearch index groups 1,024 passages)
PATH_BUCKETS = 100  # files spread over /corpus/dNN/: one bucket is 1% of the files


@dataclass
class Language:
    code: str
    texts: list[str]
    vectors: np.ndarray  # real passage-mode vectors (n, dim)
    axes: np.ndarray = field(default=None)  # (dim, dim) principal axes, columns
    scales: np.ndarray = field(default=None)  # (dim,) standard deviations along them

    def fit(self) -> None:
        centred = self.vectors - self.vectors.mean(axis=0)
        cov = centred.T @ centred / max(1, len(centred) - 1)
        w, v = np.linalg.eigh(cov.astype(np.float64))
        self.axes = v.astype(np.float32)
        self.scales = np.sqrt(np.clip(w, 0, None)).astype(np.float32)

    def noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        g = rng.standard_normal((n, len(self.scales)), dtype=np.float32) * self.scales
        return g @ self.axes.T


@dataclass
class Sources:
    languages: list[Language]
    queries: list[tuple[str, str, np.ndarray]]  # (language, text, real query vector)

    @property
    def dim(self) -> int:
        return self.languages[0].vectors.shape[1]


def _key(mode: str, text: str) -> str:
    return hashlib.sha256(f"{mode}\x00{text}".encode()).hexdigest()


def _lookup(con: sqlite3.Connection, mode: str, texts: list[str]) -> dict[str, np.ndarray]:
    keys = {_key(mode, t): t for t in texts}
    found: dict[str, np.ndarray] = {}
    ks = list(keys)
    for start in range(0, len(ks), 500):
        part = ks[start:start + 500]
        marks = ",".join("?" * len(part))
        for key, blob in con.execute(
                f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                [MODEL, *part]):
            found[keys[key]] = np.frombuffer(blob, dtype=np.float32)
    return found


def load_sources(cache: Path, root: Path, max_languages: int = 18,
                 min_share: float = 0.95) -> Sources:
    """Real vectors of the first ``max_languages`` SIB-200 languages (alphabetical) that the
    cache holds (both modes, >= min_share): pinned, so every size is the same corpus."""
    con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    langs, queries = [], []
    try:
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            code = folder.name
            ptexts = [r[2] for split in ("train", "dev")
                      for r in load_sib200_split(root, code, split)]
            qtexts = [r[2] for r in load_sib200_split(root, code, "test")]
            pv = _lookup(con, "passage", ptexts)
            qv = _lookup(con, "query", qtexts)
            if len(pv) < min_share * len(ptexts) or len(qv) < min_share * len(qtexts):
                continue
            if len(langs) == max_languages:
                break
            keep = [t for t in ptexts if t in pv]
            lang = Language(code, keep, np.vstack([pv[t] for t in keep]))
            lang.fit()
            langs.append(lang)
            queries += [(code, t, qv[t]) for t in qtexts if t in qv]
    finally:
        con.close()
    if not langs:
        raise SystemExit(f"no language of {root} is complete in {cache}")
    return Sources(langs, queries)


def _unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def chunk(sources: Sources, c: int, seed: int = 0):
    """Files ``c*1000 ..`` of the corpus: (file tuples for write_many, vectors, languages,
    mean cosine of each vector to its real source)."""
    from xsearch.store import DocumentRow, PassageRow

    rng = np.random.default_rng([seed, c])
    langs = sources.languages
    files, vecs, codes, cos = [], [], [], []
    for i in range(FILES_PER_CHUNK):
        d = c * FILES_PER_CHUNK + i
        lang = langs[d % len(langs)]
        rows = rng.integers(0, len(lang.texts), PASSAGES_PER_FILE)
        src = lang.vectors[rows]
        v = _unit(src + ALPHA * lang.noise(rng, PASSAGES_PER_FILE))
        cos.append(np.einsum("ij,ij->i", v, _unit(src)))
        passages, offset = [], 0
        for j, r in enumerate(rows):
            text = lang.texts[r][:300]
            passages.append(PassageRow(ordinal=j, char_start=offset,
                                       char_end=offset + len(text), text=text,
                                       language=lang.code, language_score=1.0,
                                       n_tokens=len(text) // 4 + 1))
            offset += len(text) + 1
        path = f"/corpus/d{d % PATH_BUCKETS:02d}/{lang.code}/f{d:07d}.txt"
        sha = hashlib.sha256(path.encode()).hexdigest()
        doc = DocumentRow(record_id="", title=f"f{d:07d}", content_hash=sha, n_chars=offset,
                          language=lang.code, passages=passages)
        files.append((path, (sha, offset, 1.7e9), "text", [], [doc]))
        vecs.append(v)
        codes += [lang.code] * PASSAGES_PER_FILE
    return files, np.vstack(vecs), np.array(codes), np.concatenate(cos)


def corpus_vectors(sources: Sources, n: int, cache_dir: Path, seed: int = 0):
    """(vectors, languages) of the first ``n`` passages, in passage-id order (ids 1..n)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    vecs, langs = [], []
    for c in range(_chunks(n)):
        f = cache_dir / f"chunk-{seed}-{c:05d}.npz"
        if not f.exists():
            _, v, codes, _ = chunk(sources, c, seed)
            np.savez(f, v=v, codes=codes)
        data = np.load(f)
        vecs.append(data["v"])
        langs.append(data["codes"])
    return np.vstack(vecs)[:n], np.concatenate(langs)[:n]


def _chunks(n: int) -> int:
    per = FILES_PER_CHUNK * PASSAGES_PER_FILE
    if n % per:
        raise SystemExit(f"sizes must be multiples of {per}")
    return n // per


def queries(sources: Sources, n: int, seed: int = 1) -> tuple[np.ndarray, list[str], list[str]]:
    """``n`` query vectors (real held-out query vectors, cycled, with a little noise)."""
    rng = np.random.default_rng(seed)
    by_code = {lang.code: lang for lang in sources.languages}
    order = rng.permutation(len(sources.queries))
    picked = [sources.queries[order[i % len(order)]] for i in range(n)]
    base = np.vstack([p[2] for p in picked])
    noise = np.vstack([by_code[p[0]].noise(rng, 1) for p in picked])
    qv = base if n <= len(order) else _unit(base + QUERY_ALPHA * noise)
    return _unit(qv), [p[0] for p in picked], [p[1] for p in picked]


def build(path: Path, n: int, layout: str, sources: Sources, seed: int = 0) -> dict:
    """Build an index of ``n`` synthetic passages through IndexWriter; returns timings."""
    import faiss

    from xsearch.centering import OFFSET_KEY, PROBE_KEY, encode_vector, measure_model
    from xsearch.embedders import get_embedder
    from xsearch.indexer import _new_config
    from xsearch.writer import IndexWriter, prepare_folder, private_files, write_lock

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # a build is a batch: all cores
    embedder = get_embedder(MODEL)
    config = _new_config(MODEL, embedder, None, None, layout, "language")
    offset, probe = measure_model(embedder)
    started = time.perf_counter()
    cosines = []
    with private_files():
        prepare_folder(path)
        with write_lock(path):
            writer = IndexWriter.open(path, config)
            try:
                with writer.store.transaction():
                    writer.store.set_meta(OFFSET_KEY, encode_vector(offset))
                    writer.store.set_meta(PROBE_KEY, encode_vector(probe))
                for c in range(_chunks(n)):
                    files, vecs, _, cos = chunk(sources, c, seed)
                    cosines.append(cos)
                    per = COMMIT_FILES * PASSAGES_PER_FILE
                    for s in range(0, len(files), COMMIT_FILES):
                        writer.write_many(files[s:s + COMMIT_FILES],
                                          vecs[s * PASSAGES_PER_FILE:s * PASSAGES_PER_FILE + per])
                written = time.perf_counter()
                merged = writer.merge()
                merge_done = time.perf_counter()
                writer.finish()
            except BaseException:
                writer.abort()
                raise
    done = time.perf_counter()
    faiss.omp_set_num_threads(1)
    cos = np.concatenate(cosines)
    return {"build_s": done - started, "write_s": written - started,
            "merge_s": merge_done - written, "segments_merged": merged,
            "cos_to_source_mean": float(cos.mean()), "cos_to_source_p10": float(
                np.percentile(cos, 10))}
