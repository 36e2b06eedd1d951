"""Topic classifiers trained from labelled examples, saved with an index (``xsearch label
--train``).

Methods (cost measured on SIB-200, see benchmarks/results/transfer.md):

- ``prototype``: mean vector per label; seconds (only the examples are embedded).
- ``logreg``: logistic regression on the frozen vectors; seconds, best frozen method.
- ``finetune``: the e5-small encoder fine-tuned end to end with a head (needs torch, the
  ``finetune`` extra); minutes of training for 500 examples on a CPU, and a forward pass over
  every passage of the index (the stored vectors no longer fit the changed encoder).

The classifier lives in ``<index>/classifier/``: its weights and ``classifier.json`` (method,
labels, file name, sha256). On schema 3 the lead moves the record into the ``meta`` table.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UnknownLanguageError, XsearchError, first_line
from .fileio import sha256_file, write_json_atomic
from .langcodes import canonical, matches

METHODS = ("prototype", "logreg", "finetune")
DEFAULT_METHOD = "logreg"
FOLDER = "classifier"
#: An example's text is cut here: ~20 passages of the index; one of 3 MB took 5 minutes.
EXAMPLE_CHARS = 20_000
CONFIG = "classifier.json"
FROZEN_FILE = "weights.npz"

Notify = Callable[[str], None]


@dataclass
class Example:
    text: str
    label: str
    language: str = ""


def read_examples(path: Path) -> list[Example]:
    """Labelled examples from ``.jsonl`` (objects with text, label, optional language) or
    ``.csv``/``.tsv`` (header with text and label columns, optional language)."""
    from .ingest.decode import bom_text

    path = Path(path)
    try:
        raw = bom_text(path.read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        raise XsearchError(f"cannot read examples file {path}: {exc}") from exc
    rows: list[dict] = []
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise XsearchError(f"{path}:{n}: not a JSON object: {exc}") from exc
            if not isinstance(obj, dict):
                raise XsearchError(f"{path}:{n}: expected a JSON object")
            rows.append(obj)
    else:
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        reader = csv.DictReader(raw.splitlines(), dialect=dialect)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise XsearchError(f"{path}: the header needs 'text' and 'label' columns")
        rows = list(reader)
    out = []
    spelled: dict[str, str] = {}  # casefolded label -> the spelling first seen
    for n, r in enumerate(rows, 1):
        try:
            text, label = (_field(r, "text"), _field(r, "label"))  # a label may be 0
            label = _label_name(label)
        except ValueError as exc:
            raise XsearchError(f"{path}: example {n}: {exc}") from None
        if not text or not label:
            raise XsearchError(f"{path}: example {n} needs a non-empty text and label")
        twin = spelled.setdefault(label.casefold(), label)
        if twin != label:  # --topic matches without case: Bread and bread would be one
            raise XsearchError(f"{path}: example {n}: labels {twin!r} and {label!r} differ "
                               "only in case; topics match without regard to case, so spell "
                               "them one way")
        lang = _field(r, "language")
        try:
            lang = canonical(lang) if lang else ""  # en, eng, English: one language
        except UnknownLanguageError as exc:
            raise XsearchError(f"{path}: example {n}: {first_line(exc)}") from None
        out.append(Example(text, label, lang))
    if len({e.label for e in out}) < 2:
        raise XsearchError(f"{path}: examples of at least two labels are needed")
    return out


def _field(row: dict, name: str) -> str:
    value = row.get(name)
    if isinstance(value, (list, dict)):  # (JSON) its repr would be trained on
        raise ValueError(f"{name!r} is a JSON {'array' if isinstance(value, list) else 'object'}"
                         ", not a string")
    return "" if value is None else str(value).strip()


_INVISIBLE = dict.fromkeys([0x200B, 0xFEFF, 0x2060, 0x00AD, 0x200E, 0x200F,
                            *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _label_name(label: str) -> str:
    """One spelling of a label: NFC (a café typed either way is one topic), without the
    invisible characters that only make a twin (zero-width space, byte order mark, soft
    hyphen, direction marks; joiners stay: Persian needs them); a line break or tab would
    break every listing of topics."""
    import unicodedata

    label = unicodedata.normalize("NFC", label.translate(_INVISIBLE)).strip()
    if any(unicodedata.category(c) == "Cc" for c in label):
        raise ValueError(f"the label {label!r} holds a line break or control character")
    return label


def fill_languages(examples: list[Example]) -> None:
    """Detect the language of examples that do not say it, and the script of those that say
    it without one (``hin`` -> ``hin_Deva``, as the index names its passages' languages)."""
    from .langid import detect

    for e in examples:
        if not e.language:
            e.language = detect(e.text).code
        elif "_" not in e.language and e.language != "und":
            code = detect(e.text).code
            if "_" in code:
                e.language = f"{e.language}_{code.split('_', 1)[1]}"


# ------------------------------------------------------------------ frozen classifiers


class FrozenClassifier:
    """Prototype or logistic-regression classifier on the index's own (frozen) vectors."""

    needs_text = False

    def __init__(self, method: str, labels: list[str], weight: np.ndarray, bias: np.ndarray,
                 meta: dict | None = None) -> None:
        self.method, self.labels = method, list(labels)
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.meta = dict(meta or {})

    @classmethod
    def fit(cls, method: str, vectors: np.ndarray, labels: Sequence[str]) -> FrozenClassifier:
        from .classifiers import LogisticClassifier, PrototypeClassifier

        if method == "prototype":
            p = PrototypeClassifier().fit(vectors, labels)
            return cls(method, p.labels_, p.prototypes_, np.zeros(len(p.labels_)))
        lr = LogisticClassifier().fit(vectors, labels).model_
        names = [str(c) for c in lr.classes_]
        coef, icpt = lr.coef_, lr.intercept_
        if len(names) == 2:  # sklearn keeps one row for two classes
            coef, icpt = np.vstack([-coef[0] / 2, coef[0] / 2]), np.r_[-icpt[0] / 2, icpt[0] / 2]
        return cls(method, names, coef, icpt)

    def predict_vectors(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(label, score) per vector: cosine to the prototype, or the logreg probability."""
        if not len(vectors):
            return [], np.zeros(0, dtype=np.float32)
        z = np.asarray(vectors, dtype=np.float32) @ self.weight.T + self.bias
        if self.method == "logreg":
            z = np.exp(z - z.max(1, keepdims=True))
            z /= z.sum(1, keepdims=True)
        best = z.argmax(1)
        return [self.labels[i] for i in best], z[np.arange(len(best)), best]

    def save(self, folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (FROZEN_FILE + ".tmp.npz")
        np.savez(tmp, weight=self.weight, bias=self.bias)
        os.replace(tmp, folder / FROZEN_FILE)
        record = {"method": self.method, "file": FROZEN_FILE,
                  "sha256": sha256_file(folder / FROZEN_FILE), "labels": self.labels,
                  "meta": self.meta}
        write_json_atomic(folder / CONFIG, record)
        return record

    @classmethod
    def load(cls, folder: Path, record: dict) -> FrozenClassifier:
        with np.load(folder / record["file"]) as z:
            return cls(record["method"], record["labels"], z["weight"], z["bias"],
                       record.get("meta"))


# ------------------------------------------------------------------ training


def index_profiles(index_path: Path, examples: Sequence[Example], example_vectors: np.ndarray,
                   sample: int = 300) -> tuple[dict[str, int], dict]:
    """Passage counts per index language, and ranker profiles of index and example languages
    (tokens of up to ``sample`` texts per language; centroids of the stored vectors)."""
    from . import sources as S
    from .index_dir import IndexDir

    index = IndexDir.open(Path(index_path))
    try:
        db = index.store.db
        counts = {r[0]: r[1] for r in db.execute(
            "SELECT language, COUNT(*) FROM passages WHERE language IS NOT NULL "
            "AND language != 'und' GROUP BY language")}
        texts: dict[str, list[str]] = {}
        ids: dict[str, list[int]] = {}
        for lang in counts:
            rows = db.execute("SELECT id, text FROM passages WHERE language = ? ORDER BY id "
                              "LIMIT ?", [lang, sample]).fetchall()
            ids[lang] = [r[0] for r in rows]
            texts[lang] = [r[1] for r in rows]
        vecs = {lang: index.vectors.vectors_of(ids[lang]) for lang in ids}
    finally:
        index.close()
    ex_langs = sorted({e.language for e in examples})
    for lang in ex_langs:
        pos = [i for i, e in enumerate(examples) if e.language == lang]
        texts.setdefault(lang, [examples[i].text for i in pos][:sample])
        vecs.setdefault(lang, example_vectors[pos])
    return counts, S.profiles(texts, vecs)


def pick_sources(index_path: Path, examples: Sequence[Example], example_vectors: np.ndarray,
                 source: str) -> tuple[list[str], dict]:
    """Languages whose examples to train on: ``all``, ``auto`` (the ranker's top source for
    each language of the index) or a comma-separated list. Returns (languages, why)."""
    from . import sources as S

    have = sorted({e.language for e in examples})
    if source == "all":
        return have, {}
    if source != "auto":
        wanted = [s.strip() for s in source.split(",") if s.strip()]
        # Any spelling: hin (every script), hi, Hindi, hin_Deva.
        picked = {w: [h for h in have if matches(w, h)] for w in wanted}
        missing = [w for w, hits in picked.items() if not hits]
        if missing:
            raise XsearchError(f"no examples in {', '.join(missing)}; the examples are in "
                               f"{', '.join(have)}")
        return list(dict.fromkeys(h for hits in picked.values() for h in hits)), {}
    counts, profs = index_profiles(index_path, examples, example_vectors)
    if not counts:
        return have, {}
    chosen = S.choose_sources(counts, have, profs)
    return sorted(set(chosen.values())), chosen


def train_classifier(index_path: Path, examples: list[Example], method: str = DEFAULT_METHOD,
                     source: str = "all", embedder=None, notify: Notify | None = None):
    """Fit a classifier of ``method`` on the examples of the chosen source languages.

    Returns (classifier, info) where info says which languages were used and why.
    """
    if method not in METHODS:
        raise XsearchError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    say = notify or (lambda _m: None)
    long = [e for e in examples if len(e.text) > EXAMPLE_CHARS]
    if long:
        say(f"{len(long)} example(s) longer than {EXAMPLE_CHARS:,} characters: their first "
            f"{EXAMPLE_CHARS:,} are used (the longest has {max(len(e.text) for e in long):,})")
        for e in long:
            e.text = e.text[:EXAMPLE_CHARS]
    by_text: dict[str, set[str]] = {}
    for e in examples:
        by_text.setdefault(e.text, set()).add(e.label)
    torn = {t: sorted(ls) for t, ls in by_text.items() if len(ls) > 1}
    if torn:
        text, labels = next(iter(torn.items()))
        say(f"warning: {len(torn)} example text(s) carry more than one label (e.g. "
            f"{text[:40]!r}: {', '.join(labels)}): the classifier cannot tell them apart")
    fill_languages(examples)
    if embedder is None:
        from .embedders import get_embedder
        from .index_dir import IndexDir

        index = IndexDir.open(Path(index_path))
        model = index.config.model
        index.close()
        if method == "finetune" and model != "e5-small":
            raise XsearchError(f"--method finetune fine-tunes e5-small; this index uses {model}")
        embedder = get_embedder(model)
    vecs = embedder.embed_documents([e.text for e in examples])
    langs, why = pick_sources(index_path, examples, vecs, source)
    keep = [i for i, e in enumerate(examples) if e.language in langs]
    used = [examples[i] for i in keep]
    if len({e.label for e in used}) < 2:
        raise XsearchError("the chosen source languages have examples of fewer than two labels")
    info = {"method": method, "sources": langs, "examples": len(used), "auto": why}
    if why:
        by: dict[str, list[str]] = {}
        for t, s in sorted(why.items()):
            by.setdefault(s, []).append(t)
        say("source languages (auto): " + "; ".join(f"{s} for {', '.join(ts)}"
                                                    for s, ts in sorted(by.items())))
    if method != "finetune":
        clf = FrozenClassifier.fit(method, vecs[keep], [e.label for e in used])
    else:
        try:
            from .finetune.train import finetune
        except ImportError as exc:
            raise XsearchError("--method finetune needs torch: pip install "
                               "'xsearch[finetune]'") from exc
        say(f"fine-tuning e5-small on {len(used)} examples (minutes on a CPU)")
        clf = finetune([e.text for e in used], [e.label for e in used], log=say)
    clf.meta.update({"sources": langs, "examples": len(used)})
    return clf, info


# ------------------------------------------------------------------ saved with an index


def classifier_dir(index_path: Path) -> Path:
    return Path(index_path) / FOLDER


def has_classifier(index_path: Path) -> bool:
    """Whether a trained classifier labels the index (not zero-shot labels)."""
    return (classifier_dir(index_path) / CONFIG).is_file()


def _record(folder: Path) -> dict | None:
    """A classifier folder's record (``classifier.json``), or None."""
    try:
        record = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def classifier_method(index_path: Path) -> str | None:
    """The method of the index's trained classifier ("logreg", "prototype", "finetune"), or
    None when there is none (zero-shot labels, or no topics)."""
    method = (_record(classifier_dir(index_path)) or {}).get("method")
    return method if isinstance(method, str) else None


def load_classifier(index_path: Path):
    """The classifier saved with the index, or None; a damaged one is a clear error."""
    folder = classifier_dir(index_path)
    cfg = folder / CONFIG
    if not cfg.is_file():
        return None
    try:
        record = json.loads(cfg.read_text(encoding="utf-8"))
        method, path = record["method"], folder / record["file"]
        if sha256_file(path) != record["sha256"]:
            raise XsearchError(f"the classifier saved with the index is damaged: {path}; "
                               "train it again with `xsearch label --train`")
    except (OSError, ValueError, KeyError) as exc:
        raise XsearchError(f"cannot read the classifier saved in {folder}: {exc}") from exc
    if method == "finetune":
        from .finetune.classifier import FinetunedClassifier

        return FinetunedClassifier.load(folder)
    return FrozenClassifier.load(folder, record)


def _refuse_foreign(folder: Path) -> None:
    """Refuse a classifier folder xsearch did not write (someone's own folder that happens to
    bear the name is never moved or deleted)."""
    from .index_dir import own_classifier_folder

    if (folder.exists() or folder.is_symlink()) and not own_classifier_folder(folder):
        raise XsearchError(f"{folder} is not a classifier xsearch saved (it holds other "
                           "files): move it out of the index folder")


def _remove_own(folder: Path) -> None:
    """Delete a classifier folder xsearch wrote; refuse one it did not."""
    _refuse_foreign(folder)
    if folder.exists():
        shutil.rmtree(folder)


def stage_classifier(index_path: Path, clf) -> dict:
    """Write ``clf`` beside the index's classifier (``classifier.new``); its record. The
    labels it gives are committed next, naming its sha256, then :func:`install_staged`."""
    _refuse_foreign(classifier_dir(index_path))  # before labels naming it are committed
    tmp = classifier_dir(index_path).with_name(FOLDER + ".new")
    _remove_own(tmp)
    return clf.save(tmp)


def install_staged(index_path: Path) -> None:
    """Swap the staged classifier in (after the labels naming it were committed)."""
    final = classifier_dir(index_path)
    old = final.with_name(FOLDER + ".old")
    _refuse_foreign(final)
    _remove_own(old)
    if final.exists():
        os.replace(final, old)
    os.replace(final.with_name(FOLDER + ".new"), final)
    _remove_own(old)


def remove_classifier(index_path: Path) -> None:
    _remove_own(classifier_dir(index_path))


def settle_classifier(index_path: Path, committed: str | None, drop: bool = True
                      ) -> str | None:
    """Bring the classifier folder in line with what the database committed (under the
    index's write lock): ``committed`` is the sha256 of the classifier whose labels it holds,
    "" for none (zero-shot labels, or dropped at a model change), None for an index older than
    that record (its folder is trusted). A run stopped between the commit and the swap is
    finished; a classifier the database no longer names is removed (``drop``). Returns a
    note when a classifier was dropped."""
    folder = classifier_dir(index_path)
    staged, old = folder.with_name(FOLDER + ".new"), folder.with_name(FOLDER + ".old")
    if committed is None:
        return None
    def sha(f: Path) -> object:
        return (_record(f) or {}).get("sha256")

    if committed and sha(folder) != committed and sha(staged) == committed:
        install_staged(index_path)  # stopped after the labels' commit, before the swap
    for leftover in (staged, old):
        _remove_own(leftover)
    if drop and committed == "" and has_classifier(index_path):
        remove_classifier(index_path)
        return ("the trained topic classifier was dropped: it was made for the vectors of the "
                "model the index had before; train it again with: xsearch label --train FILE")
    return None



