"""Benchmark dataset loaders: SIB-200 (translation groups) and a generic BEIR-style layout."""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xsearch.errors import DatasetError
from xsearch.langcodes import matches, normalize

SIB_SPLITS = ("train", "dev", "test")
_SHARED_SIB = Path("shared") / "data" / "sib200"


def default_sib200_root() -> Path:
    """``$XSEARCH_SIB200``, else ``shared/data/sib200`` beside the working directory or the
    checkout (the first that exists; the first candidate when none does)."""
    env = os.environ.get("XSEARCH_SIB200")
    if env:
        return Path(env)
    candidates = [Path.cwd().parent / _SHARED_SIB,
                  Path(__file__).resolve().parents[4] / _SHARED_SIB]
    return next((c for c in candidates if c.is_dir()), candidates[0])
SIB_HEADER = ["index_id", "category", "text"]
QRELS_HEADER = ["query-id", "corpus-id", "score"]


@dataclass
class BenchDataset:
    """Queries, a multilingual document pool and relevance judgements (plus optional labels).

    For SIB-200, ``doc_label`` is the topic of each document and ``doc_group`` its translation
    group (the SIB ``index_id``); both are empty for datasets without them. ``same_item`` maps
    a query to the documents that are the same text under another id (never a hit for it);
    ``judged`` to every document judged for it, relevant or not. Languages are normalised
    codes (``arb_Arab``, or ``arb`` when the data gave no script).
    """

    name: str
    queries: dict[str, str]
    query_lang: dict[str, str]
    corpus: dict[str, str]
    doc_lang: dict[str, str]
    qrels: dict[str, set[str]]
    labels: list[str] | None = None
    doc_label: dict[str, str] = field(default_factory=dict)
    doc_group: dict[str, str] = field(default_factory=dict)
    same_item: dict[str, set[str]] = field(default_factory=dict)
    judged: dict[str, set[str]] = field(default_factory=dict)

    def self_matches(self, qid: str) -> set[str]:
        """Documents that are query ``qid`` itself: the same ``item``, or the same id with
        the same text (ids are otherwise separate names: query "1" and document "1" of a
        BEIR-style set are different texts, and the document may be the answer)."""
        own = self.same_item.get(qid, set())
        same_text = qid in self.corpus and self.corpus[qid] == self.queries.get(qid)
        return own | {qid} if same_text else set(own)

    def self_map(self, qids: Iterable[str] | None = None) -> dict[str, set[str]]:
        """:meth:`self_matches` of each query (of ``qids``), for ``drop_self_hits``."""
        return {q: m for q in (self.queries if qids is None else qids)
                if (m := self.self_matches(q))}

    @property
    def languages(self) -> list[str]:
        """Sorted languages present among queries or documents."""
        return sorted(set(self.query_lang.values()) | set(self.doc_lang.values()))


# ---------------------------------------------------------------------------- SIB-200


def _read_sib_file(path: Path) -> list[tuple[str, str, str]]:
    if not path.is_file():
        raise DatasetError(f"missing SIB-200 file: {path}")
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header != SIB_HEADER:
                raise DatasetError(f"{path}: header must be {'<TAB>'.join(SIB_HEADER)!r}")
            rows = []
            for row in reader:
                if not row:
                    continue
                if len(row) != 3:
                    raise DatasetError(
                        f"{path}:{reader.line_num}: expected 3 tab-separated fields, got {len(row)}"
                    )
                index_id, category, text = (cell.strip() for cell in row)
                if not index_id:
                    raise DatasetError(f"{path}:{reader.line_num}: empty index_id")
                rows.append((index_id, category, text))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    return rows


def _sib_splits(split: str) -> tuple[str, ...]:
    if split == "all":
        return SIB_SPLITS
    if split not in SIB_SPLITS:
        raise ValueError(f"split must be one of {', '.join(SIB_SPLITS)} or 'all', not {split!r}")
    return (split,)


def load_sib200_split(root: str | Path, lang: str, split: str) -> list[tuple[str, str, str]]:
    """Rows ``(index_id, category, text)`` of one language's split (``"all"`` = train+dev+test).

    Raises DatasetError for a missing folder/file, a bad header or a malformed row.
    """
    folder = Path(root) / lang
    if not folder.is_dir():
        raise DatasetError(f"missing SIB-200 language folder: {folder}")
    rows: list[tuple[str, str, str]] = []
    for name in _sib_splits(split):
        rows.extend(_read_sib_file(folder / f"{name}.tsv"))
    return rows


def load_sib200_labels(root: str | Path) -> list[str]:
    """Topic labels from ``labels.txt`` at the dataset root, in file order."""
    path = Path(root) / "labels.txt"
    if not path.is_file():
        raise DatasetError(f"missing SIB-200 file: {path}")
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    labels = [lab for lab in labels if lab]
    if not labels:
        raise DatasetError(f"{path}: no labels")
    return labels


def sib200_languages(root: str | Path) -> list[str]:
    """Language folders under a SIB-200 root (FLORES codes), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"SIB-200 root is not a folder: {root}")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _id_sort_key(index_id: str) -> tuple[int, int, str]:
    return (0, int(index_id), "") if index_id.isdigit() else (1, 0, index_id)


def load_sib200(
    root: str | Path,
    languages: Sequence[str] | None = None,
    split: str = "test",
    sample: int | None = None,
    seed: int = 0,
) -> BenchDataset:
    """Load SIB-200 as a mixed-language retrieval set.

    Every sentence is both a query and a document with id ``"{lang}:{index_id}"``; query
    ``L1:i`` is relevant to ``L2:i`` for every other chosen language L2 (never to itself).
    ``languages=None`` takes every language folder under ``root``. ``sample=N`` keeps the same
    N index_ids (seeded draw among ids present in all chosen languages) in every language.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"SIB-200 root is not a folder: {root}")
    labels = load_sib200_labels(root)
    if languages is None:
        languages = sib200_languages(root)
        if not languages:
            raise DatasetError(f"no language folders under {root}")
    elif isinstance(languages, str):
        languages = [languages]
    languages = list(dict.fromkeys(languages))
    if not languages:
        raise ValueError("languages must not be empty")

    label_set = set(labels)
    per_lang: dict[str, dict[str, tuple[str, str]]] = {}
    for lang in languages:
        rows: dict[str, tuple[str, str]] = {}
        for index_id, category, text in load_sib200_split(root, lang, split):
            if index_id in rows:
                raise DatasetError(f"{root / lang}: duplicate index_id {index_id} in {split}")
            if category not in label_set:
                raise DatasetError(f"{root / lang}: category {category!r} not in labels.txt")
            rows[index_id] = (category, text)
        per_lang[lang] = rows

    if sample is not None:
        if sample < 0:
            raise ValueError(f"sample must be >= 0, not {sample}")
        common = set.intersection(*(set(rows) for rows in per_lang.values()))
        # sort first so the draw depends on the seed only, not on set iteration order
        pool = sorted(common, key=_id_sort_key)
        keep = set(random.Random(seed).sample(pool, min(sample, len(pool))))
        per_lang = {
            lang: {i: r for i, r in rows.items() if i in keep} for lang, rows in per_lang.items()
        }

    queries: dict[str, str] = {}
    query_lang: dict[str, str] = {}
    doc_label: dict[str, str] = {}
    doc_group: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for lang, rows in per_lang.items():
        for index_id in sorted(rows, key=_id_sort_key):
            category, text = rows[index_id]
            sid = f"{lang}:{index_id}"
            queries[sid] = text
            query_lang[sid] = lang
            doc_label[sid] = category
            doc_group[sid] = index_id
            members.setdefault(index_id, []).append(sid)

    qrels: dict[str, set[str]] = {}
    for group in members.values():
        for sid in group:
            others = {o for o in group if o != sid}
            if others:
                qrels[sid] = others

    name = f"sib200-{split}" + (f"-n{sample}-s{seed}" if sample is not None else "")
    return BenchDataset(
        name=name,
        queries=queries,
        query_lang=query_lang,
        corpus=dict(queries),
        doc_lang=dict(query_lang),
        qrels=qrels,
        labels=labels,
        doc_label=doc_label,
        doc_group=doc_group,
    )


# ---------------------------------------------------------------------------- generic


def resolve_languages(values: Iterable[str], available: Iterable[str]) -> list[str]:
    """The ``available`` codes (e.g. SIB-200 folders) that user ``values`` name, in order.

    ``values`` may be spelled any way :func:`xsearch.langcodes.normalize` reads; ``hin``
    picks every script of Hindi. Raises UnknownLanguageError for a value that is no language
    and DatasetError for one the dataset lacks, listing what it has.
    """
    avail = sorted(set(available))
    out: list[str] = []
    for value in values:
        code = normalize(value)
        hits = [a for a in avail if matches(code, a)]
        if not hits:
            raise DatasetError(f"language {value!r} ({code}) is not in the dataset; it has: "
                               + ", ".join(avail))
        out += [h for h in hits if h not in out]
    return out


def select(ds: BenchDataset, languages: Sequence[str] | None = None, sample: int | None = None,
           seed: int = 0) -> BenchDataset:
    """Keep some languages and/or a sample of queries of a generic dataset.

    ``languages``: queries and documents in those languages (any spelling, see
    :func:`resolve_languages`). ``sample=N``: N queries drawn (seeded) among those with a
    relevant document, and as pool only the documents judged for them (relevant or not) or
    the same item as one: like SIB-200's ``--sample``, a smaller and easier pool.
    """
    if not languages and sample is None:
        return ds
    name = ds.name
    keep_q, keep_d = set(ds.queries), set(ds.corpus)
    if languages:
        langs = set(resolve_languages(languages, ds.languages))
        keep_q = {q for q in keep_q if ds.query_lang[q] in langs}
        keep_d = {d for d in keep_d if ds.doc_lang[d] in langs}
        name += "-" + "+".join(sorted(langs))
    if sample is not None:
        if sample < 0:
            raise ValueError(f"sample must be >= 0, not {sample}")
        pool = sorted((q for q in keep_q if ds.qrels.get(q, set()) & keep_d), key=_id_sort_key)
        keep_q = set(random.Random(seed).sample(pool, min(sample, len(pool))))
        wanted: set[str] = set()
        for q in keep_q:
            wanted |= ds.judged.get(q, ds.qrels.get(q, set())) | ds.same_item.get(q, set())
        keep_d &= wanted
        name += f"-n{sample}-s{seed}"
    qrels = {q: r & keep_d for q, r in ds.qrels.items() if q in keep_q and r & keep_d}
    return BenchDataset(
        name=name,
        queries={q: t for q, t in ds.queries.items() if q in keep_q},
        query_lang={q: lg for q, lg in ds.query_lang.items() if q in keep_q},
        corpus={d: t for d, t in ds.corpus.items() if d in keep_d},
        doc_lang={d: lg for d, lg in ds.doc_lang.items() if d in keep_d},
        qrels=qrels,
        labels=ds.labels,
        doc_label={d: v for d, v in ds.doc_label.items() if d in keep_d},
        doc_group={d: v for d, v in ds.doc_group.items() if d in keep_d},
        same_item={q: v & keep_d for q, v in ds.same_item.items() if q in keep_q and v & keep_d},
        judged={q: v & keep_d for q, v in ds.judged.items() if q in keep_q},
    )


def pair_subset(ds: BenchDataset, query_lang: str, doc_lang: str) -> BenchDataset:
    """Queries in ``query_lang`` against the pool of ``doc_lang`` documents only.

    Qrels are restricted to that pool; queries left with no relevant document are dropped.
    For SIB-200, ``query_lang == doc_lang`` gives an empty set (a sentence is not relevant to
    itself).
    """
    corpus = {d: t for d, t in ds.corpus.items() if ds.doc_lang[d] == doc_lang}
    qrels: dict[str, set[str]] = {}
    for qid, rel in ds.qrels.items():
        if ds.query_lang.get(qid) != query_lang:
            continue
        kept = {d for d in rel if d in corpus}
        if kept:
            qrels[qid] = kept
    return BenchDataset(
        name=f"{ds.name}[{query_lang}->{doc_lang}]",
        queries={q: ds.queries[q] for q in qrels},
        query_lang={q: query_lang for q in qrels},
        corpus=corpus,
        doc_lang={d: doc_lang for d in corpus},
        qrels=qrels,
        labels=ds.labels,
        doc_label={d: lab for d, lab in ds.doc_label.items() if d in corpus},
        doc_group={d: g for d, g in ds.doc_group.items() if d in corpus},
        same_item={q: v & corpus.keys() for q, v in ds.same_item.items()
                   if q in qrels and v & corpus.keys()},
    )
