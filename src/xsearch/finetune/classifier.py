"""A fine-tuned e5-small topic classifier: predict, save beside an index, load back."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import XsearchError
from ..fileio import sha256_file, write_json_atomic
from .model import Batcher, E5Encoder, default_device

WEIGHTS = "model.pt"
CONFIG = "classifier.json"


class CosineHead(nn.Module):
    """Logits = scale x cosine(pooled vector, label weight) + bias.

    Initialised from the label prototypes of the frozen vectors, so training starts at the
    prototype classifier and few examples cannot leave it worse off by a random start.
    """

    def __init__(self, hidden: int, n_labels: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_labels, hidden))
        self.bias = nn.Parameter(torch.zeros(n_labels))
        self.scale = scale

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = nn.functional.normalize(pooled, dim=-1)
        w = nn.functional.normalize(self.weight, dim=-1)
        return self.scale * x @ w.T + self.bias


class FinetunedClassifier:
    """Encoder + head + label names; ``predict_proba`` embeds the texts itself (passage mode)."""

    method = "finetune"
    needs_text = True  # the index's stored vectors came from the unchanged encoder

    def __init__(self, encoder: E5Encoder, head: CosineHead, labels: list[str],
                 max_len: int = 128, meta: dict | None = None) -> None:
        self.encoder, self.head, self.labels = encoder, head, list(labels)
        self.max_len = max_len
        self.meta = dict(meta or {})
        self.batcher = Batcher(max_len)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def to(self, device: torch.device | str) -> FinetunedClassifier:
        self.encoder.to(device)
        self.head.to(device)
        return self

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 32,
                      progress=None) -> np.ndarray:
        """(texts, labels) probabilities; ``progress(done, total)`` after each batch."""
        self.encoder.eval()
        self.head.eval()
        contents = self.batcher.ids(texts)
        out = np.zeros((len(contents), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(contents)), key=lambda i: len(contents[i]))
        started, tokens = time.perf_counter(), 0
        for a in range(0, len(order), batch_size):
            part = order[a : a + batch_size]
            words, mask = self.batcher.tensors([contents[i] for i in part], self.device)
            logits = self.head(self.encoder(words, mask))
            out[part] = torch.softmax(logits, -1).float().cpu().numpy()
            tokens += int(mask.sum())
            if progress:
                progress(min(a + batch_size, len(order)), len(order))
        if tokens:
            self.meta["measured_tokens_per_s"] = round(tokens / (time.perf_counter() - started), 1)
        return out

    def predict(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """(label, confidence) per text."""
        proba = self.predict_proba(texts)
        best = proba.argmax(1) if len(proba) else np.zeros(0, dtype=np.int64)
        return [self.labels[i] for i in best], proba[np.arange(len(best)), best]

    @torch.no_grad()
    def embed(self, texts: Sequence[str], is_query: bool = False) -> np.ndarray:
        """L2-normalised sentence vectors from the fine-tuned encoder (for retrieval checks)."""
        from .model import encode

        return encode(self.encoder, Batcher(self.max_len, is_query), texts)

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(c) + 2 for c in self.batcher.ids(texts))

    def estimate_seconds(self, texts: Sequence[str]) -> float | None:
        """Time a forward pass over ``texts`` will take, from the measured tokens/s."""
        rate = self.meta.get("measured_tokens_per_s")
        return self.count_tokens(texts) / rate if rate else None

    # ---------------------------------------------------------------- save / load

    def save(self, folder: Path) -> dict:
        """Write ``model.pt`` and ``classifier.json`` (with the weights' sha256) atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {"encoder": {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()},
                 "head": {k: v.detach().cpu() for k, v in self.head.state_dict().items()}}
        tmp = folder / (WEIGHTS + ".tmp")
        torch.save(state, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, folder / WEIGHTS)
        record = {"method": self.method, "file": WEIGHTS, "sha256": sha256_file(folder / WEIGHTS),
                  "labels": self.labels, "max_len": self.max_len,
                  "encoder": self.encoder.config, "scale": self.head.scale, "meta": self.meta}
        write_json_atomic(folder / CONFIG, record)
        return record

    @classmethod
    def load(cls, folder: Path, device: torch.device | str | None = None) -> FinetunedClassifier:
        folder = Path(folder)
        try:
            record = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
            path = folder / record["file"]
            if sha256_file(path) != record["sha256"]:
                raise XsearchError(f"the saved classifier is damaged (checksum differs): {path}")
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise XsearchError(f"cannot load the saved classifier in {folder}: {exc}") from exc
        encoder = E5Encoder(**record["encoder"])
        encoder.load_state_dict(state["encoder"])
        head = CosineHead(encoder.config["hidden"], len(record["labels"]), record["scale"])
        head.load_state_dict(state["head"])
        clf = cls(encoder, head, record["labels"], record["max_len"], record.get("meta"))
        return clf.to(device or default_device())



