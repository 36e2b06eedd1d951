"""Cross-lingual search over an index: embed queries, search the segments, join SQLite rows.

Scores are language-neutral by default (``centering = "language"`` in the index config): a
passage of language L scores q'·(p - mu_L), with mu_L the mean passage vector of L and q' the
query minus its own language's passage mean and the index's query-minus-passage offset. This
takes away the pull of the query's own language and of "hub" passages (benchmarks/ranking).
Each hit also carries a calibrated ``relevance``: its score in standard deviations of the
query's scores over all passages of that language, which is comparable across queries.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import arguments, bm25, lexical
from .centering import PROBE_KEY, Centering, checked_embedder, decode_vector
from .embedders import Embedder, resolve_model_name
from .errors import EmptyIndexError, IndexMismatchError, UnknownTopicError, XsearchError
from .exact_first import exact_first
from .hits import Filters, Hit, QueryInfo, file_state
from .index_dir import DATABASE, IndexDir
from .langcodes import resolve_filters
from .path_filter import matching_paths
from .ranking import hybrid_scores
from .snippets import best_snippet, flatten, folded, snippet, syllable_pair
from .texts import without_surrogates
from .vector_store import SegmentGoneError

MODES = ("dense", "lexical", "hybrid")
#: Chosen by measurement (benchmarks/results/ranking_probe.md: entity-query recall@5 0.757
#: dense, 0.960 hybrid; cross-language recall@1 0.958 either way).
DEFAULT_MODE = "hybrid"
#: Lexical candidates taken whatever k: a passage with a middling dense score and a strong
#: lexical one may outrank the dense top k, and must do so at k=1 as at k=10.
LEXICAL_DEPTH = 50
CALIBRATED_PASSAGES = 500
#: Longest query text searched: 4,000 characters are over 512 tokens in any script.
QUERY_CHARS = 4000


def _max_share(n_docs: int) -> float:
    """Query words in more passages than this share are too common to count (1% measured on
    SIB-200), but a small index keeps words found in up to 20 passages."""
    return max(lexical.MAX_SHARE, 20 / max(1, n_docs))


def language_matches(wanted: str, code: str) -> bool:
    """``hin`` matches every script of Hindi (``hin_Deva``); a full code matches itself."""
    return code == wanted or code.split("_")[0] == wanted


def _file_id(path: Path) -> tuple[int, int] | None:
    """Which file a path names now (None: none)."""
    try:
        st = os.stat(path)
    except OSError:  # none there, or a file where the index folder should be
        return None
    return st.st_dev, st.st_ino


class Searcher:
    """An index opened read-only for queries, with its embedder loaded once."""

    def __init__(self, index_path: Path, model: str | None = None,
                 embedder: Embedder | None = None, engine: str | None = None,
                 purpose: str = "query") -> None:
        arguments.engine(engine)
        self._path = Path(index_path)
        self._wanted = resolve_model_name(model) if model else None
        self._embedder: Embedder | None = embedder
        self.last_info: list[QueryInfo] = []
        self._engine = engine
        self._purpose = purpose  # "serve" for a process that embeds many queries
        self._closed = False
        self._implausible: tuple[int, float] | None = None
        self._cut = False
        self._open()

    def _open(self) -> None:
        """Search the index as it is now, nothing cached from an earlier state; refuse one
        the loaded embedder cannot query (the state searched until then stays)."""
        file_id = _file_id(self._path / DATABASE)  # first: a swap after it reopens once more
        index = IndexDir.open(self._path, model=self._wanted)
        old = getattr(self, "index", None)
        if old is not None and self._embedder is not None and (
                index.config.model, index.config.dim) != (old.config.model, old.config.dim):
            index.close()
            raise IndexMismatchError(
                f"index {index.path} was rebuilt with model {index.config.model} while open "
                f"with {old.config.model}; open it again with that model")
        self.index, self._db_id = index, file_id
        self._centering: Centering | None = None
        self._generation = index.store.generation()
        #: document frequency of query tokens, for the committed state ``_df_generation``
        self._df: dict[str, int] = {}
        self._lang_df: dict[str, dict[str, int]] = {}  # per token and language, same state
        self._lang_sizes: dict[str, int] | None = None
        self._df_generation = self._generation
        self._corpus: bm25.Corpus | None | bool = False  # loaded on first use (False: not yet)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = checked_embedder(*self.model_check(), engine=self._engine,
                                              purpose=self._purpose)
        return self._embedder

    def model_check(self) -> tuple[Path, str, int, np.ndarray | None]:
        """What :func:`checked_embedder` needs to load this index's model elsewhere: path,
        model, dimension and stored fingerprint (read here: SQLite stays on this thread)."""
        config = self.index.config
        return (self.index.path, config.model, config.dim,
                decode_vector(self.index.store.meta(PROBE_KEY)))

    def use_embedder(self, embedder: Embedder) -> None:
        """Query with ``embedder``, loaded elsewhere by :func:`checked_embedder` from
        :meth:`model_check`; from now on a rebuild for another model is refused."""
        self._embedder = embedder

    def close(self) -> None:
        self.index.close()
        self._closed = True

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def centering(self) -> Centering:
        if self._centering is None or self._centering.generation != self._generation:
            from .priors import for_model

            table = for_model(self.index.config.model,
                              decode_vector(self.index.store.meta(PROBE_KEY)))
            self._centering = Centering.load(self.index.store, self.index.config.centering,
                                             self._generation, table)
        return self._centering

    def passage_vectors(self, passage_ids: list[int]) -> np.ndarray:
        """Stored vectors of these passages, in the order given (for "more like this")."""
        with self.index.store.snapshot():
            return self.index.vectors.vectors_of([int(i) for i in passage_ids])

    def refresh(self) -> bool:
        """Pick up what another process committed since; True when something changed. A
        database replaced by a rename (a new index, ``--full``) is opened anew and the old
        one's files let go; otherwise this costs one stat and one read of the generation."""
        if _file_id(self.index.store.path) != self._db_id:
            old = self.index
            self._open()
            old.close()
            return True
        gen = self.index.store.generation()
        if gen == self._generation:
            return False
        self._generation = gen
        return True

    def _allowed_ids(self, f: Filters) -> np.ndarray | None:
        if not (f.path_glob or f.topics):
            return None
        where, args = [], []
        if f.topics:
            topics = self._known_topics(f.topics)
            where.append("p.topic IN (" + ",".join("?" * len(topics)) + ")")
            args += topics
        db = self.index.store.db
        if f.path_glob:
            globs = (f.path_glob,) if isinstance(f.path_glob, str) else f.path_glob
            paths = sorted({p for g in globs for p in matching_paths(db.conn, g, os.getcwd())})
            if not paths:
                return np.zeros(0, dtype=np.int64)
            db.execute("CREATE TEMP TABLE IF NOT EXISTS _path_filter (path TEXT PRIMARY KEY)")
            db.execute("DELETE FROM _path_filter")
            db.conn.executemany("INSERT OR IGNORE INTO _path_filter VALUES (?)",
                                [(p,) for p in paths])
            where.append("d.path IN (SELECT path FROM _path_filter)")
        sql = "SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        ids = np.array([r[0] for r in db.execute(sql, args)], dtype=np.int64)
        return np.sort(ids)

    def _known_topics(self, wanted: tuple[str, ...]) -> list[str]:
        """Topic names as stored, matched case-insensitively; unknown ones are refused."""
        known = [r[0] for r in self.index.store.db.execute(
            "SELECT name FROM labels ORDER BY position")]
        by_fold = {k.casefold(): k for k in known}
        out = []
        for t in wanted:
            if t.casefold() not in by_fold:
                listed = ", ".join(known) if known else "none (label the index with xsearch label)"
                raise UnknownTopicError(f"unknown topic {t!r}; known topics: {listed}")
            out.append(by_fold[t.casefold()])
        return out

    def _segment_languages(self, f: Filters) -> set[str] | None:
        if not f.languages:
            return None
        held = self.index.vectors.languages()
        wanted = resolve_filters(f.languages, held)  # "hi", "Hindi" -> "hin"; unknown: error
        return {code for code in held if any(language_matches(w, code) for w in wanted)}

    def filter_languages(self, filters: Filters) -> list[str] | None:
        """The index's languages a filter's ``languages`` name ("fr", "French" and "fra"
        name fra_Latn); None without a language filter."""
        with self.index.store.snapshot():
            found = self._segment_languages(filters)
        return None if found is None else sorted(found)

    def search_many(self, queries: list[str], k: int = 5, filters: Filters | None = None,
                    per_document: int = 1, offset: int = 0, mode: str = DEFAULT_MODE
                    ) -> list[list[Hit]]:
        """Ranked hits for each query (best first).

        ``per_document`` caps the passages shown from one document (0 = no cap), so that one
        long document cannot fill the whole list; ``offset`` skips that many hits (paging);
        ``mode`` is dense, lexical or hybrid (both, fused).
        """
        if mode not in MODES:
            raise XsearchError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        arguments.search(queries, k, offset, per_document, (filters or Filters()).min_score)
        if self._closed:
            raise XsearchError(f"the Searcher of {self._path} is closed")
        with self.index.store.snapshot():
            if len(self.index.vectors) == 0:
                raise EmptyIndexError(
                    f"index {self.index.path} holds no passages; add files with: "
                    "xsearch index PATH")
        # A model reads its first few hundred tokens: a longer query is cut before it is
        # tokenised whole (10,000 words took 10 s), and the warning says so.
        whole = [without_surrogates(q) for q in queries]
        queries = [q[:QUERY_CHARS] for q in whole]
        if any(len(q) > QUERY_CHARS for q in whole):
            self._cut = True
        qv = self.embedder.embed_queries(queries)
        return self.search_vectors(qv, k, filters, per_document, texts=queries, offset=offset,
                                   mode=mode)

    def search_vectors(self, qv: np.ndarray, k: int = 5, filters: Filters | None = None,
                       per_document: int = 1, texts: list[str] | None = None,
                       offset: int = 0, mode: str = DEFAULT_MODE, snippets: bool = True
                       ) -> list[list[Hit]]:
        """Like :meth:`search_many`, for query vectors already embedded by this model
        (``texts``, when given, add the query's language and its lexical matches;
        ``snippets`` False skips choosing the matching window, for benchmarks).

        Everything is read in one SQLite read transaction, so a concurrent writer is seen
        either wholly or not at all.
        """
        f = filters or Filters()
        qv = np.atleast_2d(np.asarray(qv, dtype=np.float32))
        if texts is None:
            mode = "dense"
        for attempt in (0, 1):
            try:
                results = self._search_snapshot(qv, k + offset, f, per_document, texts,
                                                attempt == 1, mode, snippets)
                break
            except SegmentGoneError:
                # A merge committed after our snapshot began: take a fresh one.
                self.index.vectors._loaded_generation = None
        out = []
        for hits in results:
            page = hits[offset:offset + k]
            for n, h in enumerate(page):
                h.rank = offset + n + 1
            out.append(page)
        return out

    def _search_snapshot(self, qv: np.ndarray, want: int, f: Filters, per_document: int,
                         texts: list[str] | None, missing_ok: bool, mode: str,
                         snippets: bool = True) -> list[list[Hit]]:
        """One read transaction: segment list, tombstones, statistics and hit rows."""
        with self.index.store.snapshot():
            self._generation = self.index.store.generation()
            if self._df_generation != self._generation:
                self._df, self._df_generation = {}, self._generation
                self._lang_df, self._lang_sizes = {}, None
                self._corpus = False
            vectors = self.index.vectors
            vectors.load()
            langs = self._segment_languages(f)
            allowed = self._allowed_ids(f)
            if (langs is not None and not langs) or (allowed is not None and not len(allowed)):
                return [[] for _ in range(len(qv))]
            centering = self.centering()
            q_langs = centering.query_languages(texts) if texts else [None] * len(qv)
            qc = centering.transform(qv, q_langs)
            self.last_info = [QueryInfo(language=ql or "und", centering=centering.mode)
                              for ql in q_langs]
            total = len(vectors)
            # One hit per document needs more candidates than hits; too few, and the loop below
            # asks again for 4x as many (at 1M passages 8x cost 22 ms a query, 3x 12 ms).
            fetch = min(total, want * 3 if per_document else want) or 1
            n_docs = sum(st.n for st in centering.stats.values()) or total
            while True:
                ranked = []
                cosines: list[dict[int, float]] = []
                if mode != "lexical":
                    scores, zs, ids, cos = vectors.search(qc, fetch, langs, allowed, centering,
                                                          missing_ok, plain=qv)
                for qi in range(len(qv)):
                    dense = {} if mode == "lexical" else {
                        int(i): (float(sc), float(z)) for sc, z, i in zip(
                            scores[qi], zs[qi], ids[qi], strict=True) if i >= 0}
                    cosines.append({} if mode == "lexical" else {
                        int(i): float(c) for c, i in zip(cos[qi], ids[qi], strict=True)
                        if i >= 0})
                    lex = {} if mode == "dense" else self._lexical(
                        texts[qi], fetch, allowed, n_docs, dense if mode == "hybrid" else {})
                    ranked.append(self._fuse(qi, dense, lex, mode, langs, centering))
                    if mode == "hybrid" and lex:
                        ranked[-1] = exact_first(
                            self.index.store.db.conn, texts[qi], ranked[-1], lex,
                            _max_share(n_docs), n_docs, self._df, self._by_language())
                results = self._collect(qv, ranked, f, want, per_document,
                                        texts if snippets else None, n_docs, cosines)
                short = any(len(r) < want for r in results)
                if not short or fetch >= total or not per_document:
                    return results
                fetch = min(total, fetch * 4)

    def _lexical(self, text: str, fetch: int, allowed: np.ndarray | None, n_docs: int,
                 dense: dict) -> dict[int, float]:
        """Normalised BM25 of the lexical top ``fetch`` (at least LEXICAL_DEPTH), and of every
        dense candidate: a passage's fused score must not depend on whether k reached its
        lexical rank (the top hit of a query changed between k=3 and k=5). The passage
        lengths BM25 reads are loaded once per committed state."""
        conn = self.index.store.db.conn
        if self._corpus is False:
            self._corpus = bm25.Corpus.load(conn, lexical.TABLE)
        return dict(lexical.search(
            conn, text, max(fetch, LEXICAL_DEPTH),
            allowed_ids=None if allowed is None else allowed.tolist(), n_docs=n_docs,
            normalize=True, max_share=_max_share(n_docs), also=list(dense), df_cache=self._df,
            corpus=self._corpus, **self._by_language()))

    def _by_language(self) -> dict:
        """What the lexical search needs to ignore words common in one language's passages
        (passages per language, read once per committed state, and that state's counts)."""
        if self._lang_sizes is None:  # an index before migration m005 has no postings view
            self._lang_sizes = {lang: row[0] for lang, row in self.index.store.lang_stats(
            ).items()} if bm25.has_lengths(self.index.store.db.conn) else {}
        return {"language_sizes": self._lang_sizes, "language_cache": self._lang_df}

    def _fuse(self, qi: int, dense: dict[int, tuple[float, float]], lex: dict[int, float],
              mode: str, langs: set[str] | None, centering: Centering
              ) -> list[tuple[int, float, float]]:
        """(passage id, ranking score, relevance) best first: dense z, lexical BM25, or
        z + LEXICAL_WEIGHT * min(1, normalised BM25) (benchmarks/results/ranking_probe.md)."""
        only_lex = [pid for pid in lex if pid not in dense]
        if only_lex:  # their exact relevance, from their stored vectors
            rows = dict(self.index.store.db.execute(
                f"SELECT id, language FROM passages WHERE id IN "
                f"({','.join('?' * len(only_lex))})", only_lex).fetchall())
            only_lex = [pid for pid in only_lex if pid in rows
                        and (langs is None or rows[pid] in langs)]
            lex = {pid: v for pid, v in lex.items() if pid in dense or pid in only_lex}
            if only_lex:
                vecs = self.index.vectors.vectors_of(only_lex, skip_damaged=True)
                ok = ~np.isnan(vecs).any(axis=1)  # a damaged segment: see warnings()
                for pid in np.asarray(only_lex)[~ok]:
                    lex.pop(int(pid), None)
                pids, vecs = np.asarray(only_lex)[ok], vecs[ok]
                raw = vecs @ centering._qc[qi]
                langs_of = np.array([rows[int(p)] for p in pids])
                for lang in set(langs_of.tolist()):
                    sel = langs_of == lang
                    mu = centering.mean_for(lang)
                    pmu = None if mu is None else vecs[sel].astype(np.float64) @ mu
                    sc, z = centering.row_scores(qi, raw[sel], pmu, lang)
                    for pid, a, b in zip(pids[sel], sc, z, strict=True):
                        dense[int(pid)] = (float(a), float(b))
        if mode == "dense":
            order = sorted(dense.items(), key=lambda kv: -kv[1][0])
            return [(pid, s, z) for pid, (s, z) in order]
        if mode == "lexical":
            order = sorted(lex.items(), key=lambda kv: -kv[1])
            return [(pid, v, dense[pid][1]) for pid, v in order if pid in dense]
        fused = hybrid_scores({pid: z for pid, (_, z) in dense.items()}, lex)
        return [(pid, v, dense[pid][1]) for pid, v in fused if pid in dense]

    def calibrated(self, language: str) -> bool:
        """Whether a relevance in this language rests on enough passages to mean what it says
        (the SIB-200 calibration used 1,004 per language; a sample corpus of a few dozen
        passages per language does not carry it: benchmarks/results/ranking_probe.md)."""
        st = self.centering().stats.get(language)
        return st is not None and st.n >= CALIBRATED_PASSAGES

    def warnings(self) -> list[str]:
        """What the last searches could not use (damaged or missing segments), or found
        damaged (a vector no model makes)."""
        damaged = sorted(self.index.vectors.damaged.items())
        out = [f"segment {name} is unusable ({why}); its passages are left out of results: "
               f"run xsearch check --repair --index {self.index.path}"
               for name, why in damaged]
        if len(out) > 3:  # one line, not one a segment (every segment of a copied index)
            out = [f"{len(out)} segments are unusable ({damaged[0][1]}, ...); their passages "
                   f"are left out of results: run xsearch check --repair --index "
                   f"{self.index.path}"]
        if self._cut:
            out.append(f"a query was cut to its first {QUERY_CHARS:,} characters (the model "
                       "reads a few hundred tokens)")
        if self._implausible is not None:
            pid, cos = self._implausible
            out.append(f"passage {pid} scores a cosine of {cos:g}, which no unit vector can: "
                       f"the index is damaged; run xsearch check --repair --index "
                       f"{self.index.path}")
        return out

    def _snippet(self, text: str, query: str, qtoks: list[str], n_docs: int
                 ) -> tuple[str, list[list[int]]]:
        """The hit's snippet with the query's informative tokens marked. Document frequencies
        are read only for the query tokens the passage holds (each read walks the token's
        posting list: 0.35 ms a token at 1M passages), and for the query's Thai-like pairs,
        which decide whether a lone matched pair counts (``snippets._real_matches``)."""
        toks = lexical.tokens(text, fold_diacritics=True)
        held = {t for t, _, _ in toks}
        asked = [t for t in qtoks if folded(t) in held or syllable_pair(t)]
        terms = lexical.informative(self.index.store.db.conn, asked,
                                    n_docs=n_docs, max_share=_max_share(n_docs),
                                    df_cache=self._df, **self._by_language())
        return flatten(*best_snippet(text, query, terms=terms, tokens=toks))

    def _collect(self, qv: np.ndarray, ranked: list[list[tuple[int, float, float]]],
                 f: Filters, want: int, per_document: int, texts: list[str] | None,
                 n_docs: int, cosines: list[dict[int, float]]) -> list[list[Hit]]:
        # Rows are read as the walk down each ranking needs them: the first ``want`` of every
        # query at once, more only where filters or one-hit-per-document skipped some (the
        # candidates beyond ``want`` cost 0.2 ms a query at 1M passages, mostly unused).
        rows: dict[int, dict] = {}

        def read(pids) -> None:
            missing = sorted({pid for pid in pids if pid not in rows})
            rows.update(self.index.store.hits(missing))
            rows.update((pid, None) for pid in missing if pid not in rows)

        read(pid for row in ranked for pid, _, _ in row[:want])
        stats: dict[str, str | None] = {}
        out = []
        for qi, row in enumerate(ranked):
            qtoks = lexical.query_tokens(texts[qi]) if texts else []
            hits: list[Hit] = []
            per_doc: dict[int, int] = {}
            for n, (pid, score, rel) in enumerate(row):
                if len(hits) >= want:
                    break
                if pid not in rows:
                    read(p for p, _, _ in row[n:n + 2 * want])
                r = rows[pid]
                if r is None:
                    continue
                if f.min_score is not None and not rel >= f.min_score:
                    continue
                doc = r["document_id"]
                if per_document and per_doc.get(doc, 0) >= per_document:
                    continue
                per_doc[doc] = per_doc.get(doc, 0) + 1
                snip, marks = self._snippet(r["text"], texts[qi], qtoks, n_docs) \
                    if texts else (snippet(r["text"]), [])
                hits.append(Hit(
                    rank=len(hits) + 1, score=round(float(score), 4), relevance=round(rel, 3),
                    cosine=0.0, passage_id=pid, document_id=int(doc),
                    language=r["language"], path=r["path"], record_id=r["record_id"],
                    title=r["title"], ordinal=r["ordinal"], char_start=r["char_start"],
                    char_end=r["char_end"], snippet=snip, highlights=marks,
                    text=r["text"], topic=r["topic"], topic_score=r["topic_score"],
                    document_language=r["doc_language"],
                    file_state=file_state(r["path"], r["file_size"], r["file_mtime"], stats),
                ))
            out.append(hits)
        # Plain cosines: carried from the search; a hit only the lexical index found reads
        # its vector (one read for all of them).
        pids = sorted({h.passage_id for qi, hits in enumerate(out) for h in hits
                       if h.passage_id not in cosines[qi]})
        vecs = dict(zip(pids, self.index.vectors.vectors_of(pids, skip_damaged=True),
                        strict=True))
        for qi, hits in enumerate(out):
            for h in hits:
                c = cosines[qi].get(h.passage_id)
                h.cosine = round(float(vecs[h.passage_id] @ qv[qi] if c is None else c), 4)
                # Unit vectors meet at a cosine within [-1, 1]: beyond, the vector's bytes are
                # not what was written (damage the load's checks of a file's ends missed).
                if self.index.config.normalized and not abs(h.cosine) <= 1.01:
                    self._implausible = (h.passage_id, h.cosine)
        return out

    def search(self, query: str, k: int = 5, filters: Filters | None = None,
               per_document: int = 1) -> list[Hit]:
        return self.search_many([query], k, filters, per_document)[0]
