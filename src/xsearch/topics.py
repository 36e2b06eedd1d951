"""Zero-shot topic labels from label names alone, and labelling an index (zero-shot, or with a
trained classifier: :mod:`xsearch.classifiers`, :mod:`xsearch.trained_labels`).

Zero-shot: label descriptions are embedded in the model's *query* mode, passages are already
embedded in *passage* mode; each passage takes the label of highest cosine similarity. The
index keeps its vectors, so labelling an index never re-embeds a passage.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classifiers import normalise_rows
from .embedders import Embedder, get_embedder
from .errors import XsearchError
from .faults import point

DEFAULT_TEMPLATE = "This text is about {label}."


@dataclass(frozen=True)
class Label:
    name: str
    description: str


def check_template(template: str) -> None:
    """Refuse a --template that does not name ``{label}``, or names anything else."""
    import string

    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template)
                  if f is not None]
    except ValueError as exc:
        raise XsearchError(f"--template {template!r}: {exc} (write {{{{ and }}}} for a "
                           "brace)") from exc
    if not fields or any(f != "label" or spec or conv for f, spec, conv in fields):
        raise XsearchError(f"--template {template!r} must hold {{label}}, and no other "
                           "{field} (write {{ and }} for a brace)")


def parse_labels(lines: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[Label]:
    """One label per line: ``name`` or ``name: description``; blank lines and # comments skipped."""
    check_template(template)
    out: list[Label] = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, desc = line.partition(":")
        name, desc = name.strip(), desc.strip()
        if not name:
            raise XsearchError(f"line {n} of the labels: {line!r} has a description but no "
                               "label name before the ':'")
        if not desc:  # "name" or "name:": the template describes it
            desc = template.format(label=name)
        twin = next((lb.name for lb in out if lb.name.casefold() == name.casefold()), None)
        if twin is not None:  # --topic matches without case: Sports and sports are one
            raise XsearchError(f"label {name!r} is listed twice" + (
                f" ({twin!r}: topics match without regard to case)" if twin != name else ""))
        out.append(Label(name, desc))
    if len(out) < 2:
        raise XsearchError("a labels file needs at least two labels")
    return out


def read_labels(path: Path, template: str = DEFAULT_TEMPLATE) -> list[Label]:
    from .ingest.decode import bom_text

    try:
        text = bom_text(Path(path).read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        raise XsearchError(f"cannot read labels file {path}: {exc}") from exc
    return parse_labels(text.splitlines(), template)


def embed_labels(embedder: Embedder, labels: Sequence[Label]) -> np.ndarray:
    return embedder.embed_queries([lb.description for lb in labels])


def zero_shot(vectors: np.ndarray, label_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label index, cosine score) for each row of ``vectors``."""
    if not len(vectors):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(label_vectors, dtype=np.float32).T
    best = sims.argmax(axis=1)
    return best, sims[np.arange(len(best)), best]


def document_topics(doc_ids: np.ndarray, vectors: np.ndarray, label_vectors: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document ids, label index, score) from the mean passage vector of each document."""
    if not len(doc_ids):
        return doc_ids, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    order = np.argsort(doc_ids, kind="stable")
    sorted_ids = doc_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    sums = np.add.reduceat(np.asarray(vectors, dtype=np.float32)[order], starts, axis=0)
    best, score = zero_shot(normalise_rows(sums), label_vectors)
    return sorted_ids[starts], best, score


def label_index(index_path: Path, labels: Sequence[Label] | None = None,
                embedder: Embedder | None = None, only_unlabelled: bool = False,
                locked: bool = False) -> dict:
    """Give passages and documents of an index a zero-shot topic and score.

    With ``labels`` None, the labels stored in the index are applied again; with
    ``only_unlabelled`` only passages without a topic (new ones) and their documents are
    labelled, so an incremental run costs what it added. Returns a small summary.
    """
    from .writer import lock_existing

    if locked:  # (an index run, which holds the write lock)
        return _label_index(Path(index_path), labels, embedder, only_unlabelled)
    with lock_existing(Path(index_path)):
        if labels is not None:
            no_stopped_rebuild(Path(index_path))
        return _label_index(Path(index_path), labels, embedder, only_unlabelled)


def no_stopped_rebuild(index_path: Path) -> None:
    """Refuse new labels while a stopped --full rebuild waits: it holds the labels as they
    were when it began, and taken up it put them back (an unknown topic to every query)."""
    from .fresh_builds import unfinished_builds

    if any(not b["running"] for b in unfinished_builds(index_path)):  # (a running one
        # holds the lock: the label run is told the index is being written)
        raise XsearchError(f"a stopped --full rebuild of {index_path} is waiting, with the "
                           "labels it began with: finish it first (xsearch index PATHS --full "
                           f"--index {index_path}, or drop it with a plain xsearch index), "
                           "then label")


def _label_index(index_path: Path, labels: Sequence[Label] | None, embedder: Embedder | None,
                 only_unlabelled: bool) -> dict:
    from .fresh_builds import CLASSIFIER_KEY
    from .index_dir import IndexDir
    from .trained_labels import load_classifier, settle_classifier

    dropped = None
    if labels is None:
        index = IndexDir.open(index_path)
        try:
            committed = index.store.meta(CLASSIFIER_KEY)
        finally:
            index.close()
        dropped = settle_classifier(index_path, committed)
        clf = load_classifier(index_path)
        if clf is not None:  # a trained classifier labels the new passages
            return _label_with_classifier(index_path, clf, only_new=True)
    labels_given = labels is not None
    index = IndexDir.open(index_path, readonly=False)
    try:
        store = index.store
        if labels is None:
            rows = list(store.db.query("SELECT name, description FROM labels ORDER BY position"))
            if not rows:
                return {"dropped": dropped} if dropped else {}
            labels = [Label(r["name"], r["description"]) for r in rows]
        else:
            only_unlabelled = False
        embedder = embedder or get_embedder(index.config.model)
        label_vecs = embed_labels(embedder, labels)
        only = None
        if only_unlabelled:
            only = {r[0] for r in store.db.execute("SELECT id FROM passages WHERE topic IS NULL")}
            if not only:
                return {}
        parts = list(index.vectors.iter_live(only))
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        vecs = np.vstack([p[1] for p in parts]) if parts else np.zeros((0, index.config.dim))
        best, score = zero_shot(vecs, label_vecs)
        doc_of = dict(store.db.execute("SELECT id, document_id FROM passages").fetchall())
        doc_ids = np.array([doc_of[int(i)] for i in ids], dtype=np.int64)
        started = time.perf_counter()
        with store.transaction():
            store.db.execute("DELETE FROM labels")
            if labels_given:  # zero-shot labels replace a trained classifier
                store.set_meta(CLASSIFIER_KEY, "")
            for pos, lb in enumerate(labels):
                store.db.execute("INSERT INTO labels (name, description, position) "
                                 "VALUES (?, ?, ?)", [lb.name, lb.description, pos])
            store.db.conn.executemany(
                "UPDATE passages SET topic = ?, topic_score = ? WHERE id = ?",
                [(labels[b].name, float(s), int(i)) for i, b, s in zip(ids, best, score,
                                                                          strict=True)],
            )
            # A document's topic: its mean passage vector against the labels.
            docs, doc_topic, doc_score = document_topics(doc_ids, vecs, label_vecs)
            store.db.conn.executemany(
                "UPDATE documents SET topic = ?, topic_score = ? WHERE id = ?",
                [(labels[int(b)].name, float(sc), int(d))
                 for d, b, sc in zip(docs, doc_topic, doc_score, strict=True)],
            )
        if labels_given:
            settle_classifier(index_path, "")
        counts: dict[str, int] = {}
        for b in best:
            counts[labels[b].name] = counts.get(labels[b].name, 0) + 1
        return {"labels": [lb.name for lb in labels], "passages": int(len(ids)),
                "documents": int(len(np.unique(doc_ids))), "per_label": counts,
                "seconds": round(time.perf_counter() - started, 3)}
    finally:
        index.close()


def label_with_classifier(index_path: Path, clf, only_new: bool = False,
                          notify=None, save: bool = False) -> dict:
    """Label passages with a trained classifier (``xsearch.trained_labels``); store its
    confidence in ``topic_score``. A document takes the label with the largest summed passage
    confidence. ``only_new``: passages without a topic yet (after indexing new files).

    A classifier with ``needs_text`` (fine-tuned encoder) runs its own forward pass over the
    passages; ``notify`` hears the estimated time first. ``save`` also makes ``clf`` the
    index's classifier (staged, then installed: ``trained_labels``), under the same lock.
    """
    from .trained_labels import install_staged, stage_classifier
    from .writer import lock_existing

    with lock_existing(Path(index_path)):
        if save:
            no_stopped_rebuild(Path(index_path))
        # Saved first, beside the live one; the labels' commit names it, then it is swapped
        # in: a run stopped between the two is finished by the next (settle_classifier).
        record = stage_classifier(Path(index_path), clf) if save else None
        out = _label_with_classifier(Path(index_path), clf, only_new, notify,
                                     record["sha256"] if record else None)
        if record is not None:
            point("label:committed")
            install_staged(Path(index_path))
            out.update(saved=record["file"], sha256=record["sha256"])
        return out


def _label_with_classifier(index_path: Path, clf, only_new: bool = False,
                           notify=None, saving: str | None = None) -> dict:
    """``saving``: the sha256 of the staged classifier these labels come from, committed with
    them."""
    from .index_dir import IndexDir

    index = IndexDir.open(index_path, readonly=False)
    try:
        store = index.store
        where = " WHERE topic IS NULL" if only_new else ""
        if getattr(clf, "needs_text", False):
            rows = store.db.execute(f"SELECT id, text FROM passages{where} ORDER BY id").fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            texts = [r[1] for r in rows]
            est = clf.estimate_seconds(texts) if texts else None
            if notify and est is not None:
                notify(f"labelling {len(texts)} passages with the fine-tuned model: "
                       f"about {est:.0f} s ({clf.meta['measured_tokens_per_s']:.0f} tokens/s "
                       "measured)")
            names, score = clf.predict(texts) if texts else ([], np.zeros(0))
        else:
            only = ({r[0] for r in store.db.execute(f"SELECT id FROM passages{where}")}
                    if only_new else None)
            parts = list(index.vectors.iter_live(only))
            ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
            vecs = np.vstack([p[1] for p in parts]) if parts else np.zeros((0, index.config.dim))
            names, score = clf.predict_vectors(vecs)
        started = time.perf_counter()
        with store.transaction():
            store.db.execute("DELETE FROM labels")
            if saving is not None:
                from .fresh_builds import CLASSIFIER_KEY

                store.set_meta(CLASSIFIER_KEY, saving)
            for pos, name in enumerate(clf.labels):
                store.db.execute("INSERT INTO labels (name, description, position) "
                                 "VALUES (?, ?, ?)", [name, f"(trained: {clf.method})", pos])
            store.db.conn.executemany(
                "UPDATE passages SET topic = ?, topic_score = ? WHERE id = ?",
                [(n, float(s), int(i)) for i, n, s in zip(ids, names, score, strict=True)])
            store.db.execute(
                "UPDATE documents SET topic = (SELECT p.topic FROM passages p WHERE "
                "p.document_id = documents.id AND p.topic IS NOT NULL GROUP BY p.topic "
                "ORDER BY SUM(p.topic_score) DESC, p.topic LIMIT 1), topic_score = (SELECT "
                "MAX(t) FROM (SELECT SUM(p.topic_score) * 1.0 / (SELECT COUNT(*) FROM passages "
                "q WHERE q.document_id = documents.id) AS t FROM passages p WHERE "
                "p.document_id = documents.id GROUP BY p.topic))")
        counts: dict[str, int] = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        return {"labels": list(clf.labels), "method": clf.method, "passages": int(len(ids)),
                "documents": int(store.db.execute(
                    "SELECT COUNT(*) FROM documents WHERE topic IS NOT NULL").fetchone()[0]),
                "per_label": counts, "seconds": round(time.perf_counter() - started, 3)}
    finally:
        index.close()
