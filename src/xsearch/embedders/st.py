"""Any sentence-transformers model (torch is imported only when one is asked for)."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ..errors import ModelNotFoundError
from .base import BatchFn, Embedder, length_sorted


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One bounded TCP connect, so a missing model fails in seconds, not after hub retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_cached(model_id: str) -> bool:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return False
    try:
        snapshot_download(model_id, local_files_only=True)
        return True
    except Exception:
        return False


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by hub id (cached) or local folder."""

    engine = "sentence-transformers"

    def __init__(self, model: str, batch_size: int = 32, device: str = "cpu") -> None:
        import importlib.util

        if importlib.util.find_spec("sentence_transformers") is None:
            raise ModelNotFoundError(
                f"model {model!r} needs sentence-transformers: pip install 'xsearch[st]'")
        path = Path(model).expanduser()
        is_local = path.is_dir()
        cached = not is_local and _hub_cached(model)
        if not is_local:
            if _looks_like_path(model):
                raise ModelNotFoundError(f"model folder not found: {model}")
            if not cached and not _hub_reachable():
                raise ModelNotFoundError(
                    f"model {model!r} is not in the Hugging Face cache and the hub is unreachable; "
                    f"on a machine with internet run `hf download {model}` "
                    "and copy the cache, or pass the model's local folder with --model PATH"
                )
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise ModelNotFoundError(
                "sentence-transformers models need the extra: pip install 'xsearch[st]'"
            ) from exc
        # Its bars and its warning that a text is longer than the model reads are not ours
        # to print: xsearch counts tokens of whole texts to chunk them, and shows progress.
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        offline = is_local or cached
        try:
            self._model = SentenceTransformer(
                str(path.resolve()) if is_local else model,
                device=device,
                local_files_only=offline,
            )
        except Exception as exc:
            raise ModelNotFoundError(f"cannot load model {model!r}: {exc}".splitlines()[0]) from exc
        self.name = f"st:{path.resolve()}" if is_local else model
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_tokens = int(self._model.get_max_seq_length() or 512)
        self.batch_size = batch_size
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prompt = prompts.get("query", "")
        self._doc_prompt = prompts.get("document", prompts.get("passage", ""))

    def _encode(self, texts: Sequence[str], prompt: str,
                on_batch: BatchFn | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Batches of similar token counts (sentence-transformers itself sorts by characters,
        # which mixes, say, 40-character Thai and 40-character English into one padded batch).
        lengths = dict(zip(texts, self._token_lengths(texts, prompt), strict=True))

        def run(batch: list[str]) -> np.ndarray:
            return self._model.encode(batch, prompt=prompt or None, batch_size=len(batch),
                                      normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)

        return length_sorted(texts, self.batch_size, self.dim, run, lengths.__getitem__,
                             on_batch)

    def _token_lengths(self, texts: list[str], prompt: str) -> list[int]:
        enc = self._model.tokenizer([prompt + t for t in texts], add_special_tokens=True,
                                    truncation=True, max_length=self.max_tokens)
        return [len(ids) for ids in enc["input_ids"]]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._doc_prompt)

    def embed_documents_with_progress(self, texts: Sequence[str],
                                      on_batch: BatchFn | None = None) -> np.ndarray:
        return self._encode(texts, self._doc_prompt, on_batch)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def count_tokens(self, text: str) -> int:
        ids = self._model.tokenizer(self._doc_prompt + text, add_special_tokens=True)["input_ids"]
        return len(ids)


def _looks_like_path(model: str) -> bool:
    # Hub ids are exactly "org/name"; anything else with a slash is meant as a folder.
    return model.startswith((".", "/", "~")) or model.count("/") > 1
def _looks_like_path(model: str) -> bool:
    # Hub ids are exactly "org/name"; anything else with a slash is meant as a folder.
    return model.startswith((".", "/", "~")) or model.count("/") > 1

