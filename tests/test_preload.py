"""The index command starts loading its model before the indexer's modules import."""

from __future__ import annotations

import json

from xsearch import embedders
from xsearch.preload import start_index_model


def _index(path, model: str):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model": model}), encoding="utf-8")
    (path / "xsearch.db").write_bytes(b"")
    return path


def _loaded(name: str) -> bool:
    return any(key[0] == name for key in embedders._cache)


def test_the_model_an_existing_index_was_built_with_is_loaded(tmp_path) -> None:
    embedders._cache.pop(("use-m3", None, "", ""), None)
    index = _index(tmp_path / "idx", "use-m3")
    start_index_model([tmp_path / "missing"], index, "not-a-model", False, None, None)
    assert not _loaded("use-m3")  # the run fails at once: nothing to load
    start_index_model([tmp_path], index, "not-a-model", False, None, None)
    assert _loaded("use-m3")
    assert embedders.get_embedder("use-m3") is embedders._cache[("use-m3", None, "", "")]


def test_a_full_rebuild_or_a_new_index_loads_the_model_asked_for(tmp_path) -> None:
    embedders._cache.pop(("use-m3", None, "", ""), None)
    index = _index(tmp_path / "idx", "not-a-model")
    start_index_model([tmp_path], index, "use-m3", True, None, None)
    assert _loaded("use-m3")
    embedders._cache.pop(("use-m3", None, "", ""), None)
    start_index_model([tmp_path], tmp_path / "new", "use-m3", False, None, None)
    assert _loaded("use-m3")


def test_an_unknown_model_is_left_for_the_run_to_report(tmp_path) -> None:
    start_index_model([tmp_path], tmp_path / "new", "no-such-model", False, None, None)
    assert not _loaded("no-such-model")
