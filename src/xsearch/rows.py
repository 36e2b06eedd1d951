"""The rows a write puts in the index: a document, its passages, and the key a passage's text
is found by again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass
class PassageRow:
    """A passage ready to be written (vector included)."""

    ordinal: int
    char_start: int
    char_end: int
    text: str
    language: str
    language_score: float
    n_tokens: int
    #: The id of a passage of the file's previous version with the same text: that row (its
    #: vector, language and lexical entry) moves into this document instead of a new one.
    keep: int | None = None
    #: A --full rebuild's vector for it, taken from the live index (``carry``): a new row,
    #: not embedded.
    carried: np.ndarray | None = None
    #: (topic, score) a kept or carried passage keeps: those of a trained classifier, which
    #: reads the text alone; None: labelled again (zero-shot labels its documents with it).
    topic: tuple | None = None


@dataclass
class DocumentRow:
    record_id: str
    title: str
    content_hash: str
    n_chars: int
    language: str
    passages: list[PassageRow]

    @property
    def to_embed(self) -> list[PassageRow]:
        """Its passages that need a vector (the others keep a passage of the previous version)."""
        return [p for p in self.passages if p.keep is None]


def text_key(text: str) -> bytes:
    """A short digest of a passage's text: how reusable passages are looked up (a pool of
    100,000 holds 16-byte keys, not their texts)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
