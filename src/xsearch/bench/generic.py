"""Outside data for the bench: the generic layout (queries.jsonl, corpus.jsonl, qrels) and
BEIR's own layout, with language codes normalised and same-item marks (see benchmarks/README.md)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from xsearch.errors import DatasetError, UnknownLanguageError
from xsearch.langcodes import canonical, normalize

from .datasets import QRELS_HEADER, BenchDataset, select


def _language(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: 'lang' must be a non-empty string")
    try:
        return canonical(value)
    except UnknownLanguageError as exc:
        raise DatasetError(f"{where}: {exc}") from None


def _read_jsonl(path: Path, with_title: bool, default_lang: str | None
                ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Texts, languages and same-item marks by id, from our layout or BEIR's."""
    if not path.is_file():
        raise DatasetError(f"missing dataset file: {path}")
    texts: dict[str, str] = {}
    langs: dict[str, str] = {}
    items: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{where}: invalid JSON ({exc.msg})") from exc
                if not isinstance(obj, dict):
                    raise DatasetError(f"{where}: expected a JSON object")
                id_key = "id" if "id" in obj else "_id"  # BEIR says _id
                lang_key = "lang" if "lang" in obj else "language"
                for key in (id_key, "text"):
                    if key not in obj:
                        raise DatasetError(f"{where}: missing field {key!r}")
                if lang_key not in obj and default_lang is None:
                    raise DatasetError(f"{where}: missing field 'lang' (or name the dataset "
                                       "folder after its language, or pass --data-lang)")
                raw_id = obj[id_key]
                if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
                    raise DatasetError(f"{where}: {id_key!r} must be a string")
                if not isinstance(obj["text"], str):
                    raise DatasetError(f"{where}: 'text' must be a string")
                item_id = str(raw_id)
                if item_id in texts:
                    raise DatasetError(f"{where}: duplicate id {item_id!r}")
                text = obj["text"]
                title = obj.get("title") if with_title else None
                if title:
                    if not isinstance(title, str):
                        raise DatasetError(f"{where}: 'title' must be a string")
                    # BEIR convention: title and body joined by a space
                    text = f"{title} {text}"
                texts[item_id] = text
                langs[item_id] = (_language(obj[lang_key], where) if lang_key in obj
                                  else str(default_lang))
                item = obj.get("item")
                if item is not None:
                    if not isinstance(item, (str, int)) or isinstance(item, bool):
                        raise DatasetError(f"{where}: 'item' must be a string")
                    items[item_id] = str(item)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    return texts, langs, items


def _read_qrels(path: Path, queries: Iterable[str], corpus: Iterable[str]
                ) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Relevant (score > 0) and judged (any score) documents per query."""
    if not path.is_file():
        raise DatasetError(f"missing dataset file: {path}")
    qids = set(queries)
    dids = set(corpus)
    qrels: dict[str, set[str]] = {}
    judged: dict[str, set[str]] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    if not lines or lines[0].strip().split("\t") != QRELS_HEADER:
        raise DatasetError(f"{path}: header must be {'<TAB>'.join(QRELS_HEADER)!r}")
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) != 3:
            raise DatasetError(f"{where}: expected 3 tab-separated fields, got {len(parts)}")
        qid, did, raw_score = parts
        try:
            score = float(raw_score)
        except ValueError as exc:
            raise DatasetError(f"{where}: score {raw_score!r} is not a number") from exc
        if qid not in qids:
            raise DatasetError(f"{where}: unknown query id {qid!r}")
        if did not in dids:
            raise DatasetError(f"{where}: unknown corpus id {did!r}")
        judged.setdefault(qid, set()).add(did)
        if score > 0:
            qrels.setdefault(qid, set()).add(did)
    return qrels, judged


def _qrels_files(root: Path, split: str) -> list[Path]:
    """``qrels/<split>.tsv`` (BEIR; ``all`` = every file there), else ``qrels.tsv``."""
    folder = root / "qrels"
    if folder.is_dir():
        if split == "all":
            files = sorted(folder.glob("*.tsv"))
            if not files:
                raise DatasetError(f"no .tsv files in {folder}")
            return files
        return [folder / f"{split}.tsv"]
    if split != "test":  # not silently ignored
        raise DatasetError(f"split {split!r} needs BEIR's {folder}/{split}.tsv; {root} has "
                           "one qrels.tsv")
    return [root / "qrels.tsv"]


def _unify_scripts(*lang_maps: dict[str, str]) -> None:
    """A bare code (``zho``) joins its one scripted form in the set (``zho_Hans``), in place,
    so that a set mixing ``zh`` and ``zh-Hans`` has one column for it, not two."""
    codes = {c for m in lang_maps for c in m.values()}
    scripted: dict[str, set[str]] = defaultdict(set)
    for c in codes:
        if "_" in c:
            scripted[c.split("_")[0]].add(c)
    move = {c: next(iter(scripted[c])) for c in codes if len(scripted.get(c, ())) == 1}
    for m in lang_maps:
        for k, v in m.items():
            m[k] = move.get(v, v)


def _same_item_docs(query_item: dict[str, str], doc_item: dict[str, str]
                    ) -> dict[str, set[str]]:
    by_item: dict[str, set[str]] = defaultdict(set)
    for d, item in doc_item.items():
        by_item[item].add(d)
    return {q: by_item[item] for q, item in query_item.items() if by_item.get(item)}


def _folder_language(root: Path) -> str | None:
    try:
        return normalize(root.name)
    except UnknownLanguageError:
        return None


def load_generic(root: str | Path, split: str = "test", default_lang: str | None = None,
                 languages: Sequence[str] | None = None, sample: int | None = None,
                 seed: int = 0) -> BenchDataset:
    """Load a folder in our generic layout or BEIR's, with language codes normalised.

    ``corpus.jsonl`` (``id`` or ``_id``, ``text``, optional ``title``, ``lang``, ``item``),
    ``queries.jsonl`` (same fields but title) and ``qrels.tsv`` or BEIR's
    ``qrels/<split>.tsv`` (header ``query-id corpus-id score``, tab-separated; score > 0 =
    relevant). ``lang`` may be any code :func:`xsearch.langcodes.normalize` reads (``ar``,
    ``zh-Hant``, ``hin_Deva``); records without one get ``default_lang``, else the folder
    name's language (a BEIR folder named ``ar``). A query and a document with the same
    ``item`` are the same text (a bitext set whose sentences are both queries and documents):
    the document is never scored as a hit for that query. Queries without any relevant
    document stay in ``queries`` but get no ``qrels`` entry. ``languages`` and ``sample``
    work as in :func:`select`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root is not a folder: {root}")
    if default_lang is not None:
        try:
            default_lang = normalize(default_lang)
        except UnknownLanguageError as exc:
            raise DatasetError(f"default language: {exc}") from None
    else:
        default_lang = _folder_language(root)
    corpus, doc_lang, doc_item = _read_jsonl(root / "corpus.jsonl", True, default_lang)
    queries, query_lang, query_item = _read_jsonl(root / "queries.jsonl", False, default_lang)
    _unify_scripts(doc_lang, query_lang)
    qrels: dict[str, set[str]] = {}
    judged: dict[str, set[str]] = {}
    for path in _qrels_files(root, split):
        rel, jud = _read_qrels(path, queries, corpus)
        for src, dst in ((rel, qrels), (jud, judged)):
            for q, docs in src.items():
                dst.setdefault(q, set()).update(docs)
    same = _same_item_docs(query_item, doc_item)
    for q, docs in same.items():
        both = docs & qrels.get(q, set())
        if both:
            raise DatasetError(f"query {q!r} is the same item as document {sorted(both)[0]!r}"
                               " and judged relevant to it; 'item' marks the same text, not "
                               "a translation")
    ds = BenchDataset(
        name=root.name + ("" if split == "test" else f"-{split}"),
        queries=queries,
        query_lang=query_lang,
        corpus=corpus,
        doc_lang=doc_lang,
        qrels=qrels,
        same_item=same,
        judged=judged,
    )
    return select(ds, languages, sample, seed)
