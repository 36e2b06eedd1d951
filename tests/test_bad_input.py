"""Bad input gets one line and a non-zero exit where the job cannot be done, and never loses
what was already indexed."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BAD, without_dac

from xsearch.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result) -> str:
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture
def built(small_corpus, tmp_path) -> tuple[Path, Path]:
    index = tmp_path / "index"
    result = run("index", str(small_corpus), "--index", str(index), "-q")
    assert result.exit_code == 0, result.output
    return small_corpus, index


def _settled_bytes(index: Path) -> bytearray:
    """The index database's bytes with its WAL folded in and gone: what damage is made on."""
    import sqlite3

    con = sqlite3.connect(index / "xsearch.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for extra in ("xsearch.db-wal", "xsearch.db-shm"):
        (index / extra).unlink(missing_ok=True)
    return bytearray((index / "xsearch.db").read_bytes())


def _digest(index: Path) -> str:
    """Fingerprint of what the index holds (documents and passages)."""
    out = run("stats", "--index", str(index), "--json")
    info = json.loads(out.output)
    return f"{info['documents']}/{info['passages']}/{info['vectors']}"


def test_missing_path_and_empty_folder(tmp_path):
    assert "path not found" in one_line_error(run("index", str(tmp_path / "nope"),
                                                  "--index", str(tmp_path / "i")))
    (tmp_path / "empty").mkdir()
    assert "no supported files" in one_line_error(run("index", str(tmp_path / "empty"),
                                                      "--index", str(tmp_path / "i")))


def test_bad_files_fail_alone_and_good_records_survive(built, tmp_path):
    docs, index = built
    before = _digest(index)
    result = run("index", str(docs), str(BAD), "--index", str(index))
    assert result.exit_code == 1
    assert "could not be indexed" in result.output
    out = result.output
    for name in ("fake.pdf", "fake.docx"):
        assert f"{name}:" in out or name in out
    assert "binary" in out and "empty" in out  # skipped with a warning
    stats = json.loads(run("stats", "--index", str(index), "--json").output)
    # The good records of broken.jsonl / broken.csv are indexed next to the old documents.
    assert stats["documents"] > int(before.split("/")[0])
    assert stats["vectors"] == stats["passages"]


def test_huge_single_line_file_is_refused_and_index_kept(built, tmp_path):
    docs, index = built
    before = _digest(index)
    huge = tmp_path / "huge" / "one_line.txt"
    huge.parent.mkdir()
    huge.write_text("lava " * 4_200_000, encoding="utf-8")  # ~20 MB, no newline
    assert huge.stat().st_size > 20_000_000
    result = run("index", str(huge.parent), "--index", str(index), "-q")
    line = one_line_error(result)
    # -q lists no file: the line names one (it said "listed above", above nothing).
    assert "could not be indexed, such as " in line and "one_line.txt" in line
    assert _digest(index) == before


def test_wrongly_encoded_file_is_decoded(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "latin1.txt").write_bytes("Le café coûte 3 € à Montréal, déjà très cher.".encode(
        "cp1252"))
    index = tmp_path / "index"
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    hits = run("query", "prix du café", "--index", str(index), "--json")
    assert "café coûte 3 €" in json.loads(hits.output.splitlines()[0])["snippet"]


def test_damaged_segment_is_detected_and_repaired(built):
    docs, index = built
    before = _digest(index)
    seg = sorted((index / "segments").glob("*.npy"))[0]
    seg.write_bytes(b"this is not a vector file" * 10)
    # A query still answers from the other segments and says what is wrong.
    result = run("query", "bread", "--index", str(index), "--json")
    assert result.exit_code in (0, 1)
    found = run("check", "--index", str(index), "--no-model")
    assert found.exit_code == 1 and "segment" in found.output
    fixed = run("check", "--repair", "--index", str(index))
    assert fixed.exit_code == 0, fixed.output
    assert "re-embedded" in fixed.output
    assert run("check", "--index", str(index)).exit_code == 0
    assert _digest(index) == before


def test_corrupt_sqlite_is_reported_and_left_alone(built):
    _, index = built
    db = index / "xsearch.db"
    for extra in ("xsearch.db-wal", "xsearch.db-shm"):
        (index / extra).unlink(missing_ok=True)
    db.write_bytes(b"garbage" * 1000)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (("query", "bread"), ("stats",)):
        msg = one_line_error(run(*args, "--index", str(index)))
        assert "unreadable" in msg or "corrupt" in msg
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("damage", ["page", "schema text"])
def test_a_damaged_database_is_one_line_everywhere_and_a_full_rebuild_mends_it(built, damage):
    """A damaged page once ended every command in a traceback (a damaged table of contents
    in a UnicodeDecodeError), `check` in one line per page, and `index --full`, the mend,
    refused the folder as not an index."""

    docs, index = built
    data = _settled_bytes(index)
    if damage == "page":
        assert len(data) > 80_000
        data[65536:65536 + 1024] = b"\xde\xad\xbe\xef" * 256
    else:
        for i in range(200, len(data), 997):
            data[i] ^= 0xFF
    (index / "xsearch.db").write_bytes(bytes(data))
    for args in (("query", "bread"), ("stats",), ("files",), ("check", "--no-model"),
                 ("check", "--repair", "--no-model"), ("rm", str(docs)), ("index", str(docs))):
        msg = one_line_error(run(*args, "--index", str(index)))
        assert "damaged" in msg and "--full" in msg and len(msg) < 300, (args, msg)
    done = run("index", str(docs), "--index", str(index), "--full", "-q")
    assert done.exit_code == 0, done.output
    assert run("check", "--index", str(index), "--no-model").exit_code == 0
    assert run("query", "bread", "--index", str(index)).exit_code == 0


def test_an_emptied_database_is_not_repaired_into_an_empty_index(built):
    """`check --repair` on a 0-byte xsearch.db made a new, empty database ("0 passages in 0
    segments; ok", exit 0) and swept every segment file; every other command refused it."""
    docs, index = built
    segments = sorted(p.name for p in (index / "segments").iterdir())
    for extra in ("xsearch.db-wal", "xsearch.db-shm"):
        (index / extra).unlink(missing_ok=True)
    (index / "xsearch.db").write_bytes(b"")
    for args in (("check", "--repair", "--no-model"), ("check", "--no-model"), ("stats",),
                 ("index", str(docs))):
        assert "is not an xsearch database" in one_line_error(run(*args, "--index",
                                                                   str(index))), args
    assert (index / "xsearch.db").stat().st_size == 0
    assert sorted(p.name for p in (index / "segments").iterdir()) == segments
    assert run("index", str(docs), "--index", str(index), "--full", "-q").exit_code == 0


def test_a_hit_from_a_file_named_with_a_line_break_stays_on_its_line(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lava\nflow\t1.txt").write_text("Lava flowed down the slope of the volcano.\n")
    (docs / "bread.txt").write_text("Knead the bread dough and let it rise overnight.\n")
    index = tmp_path / "index"
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    res = run("query", "volcano lava", "-k", "1", "--index", str(index))
    assert res.exit_code == 0, res.output
    head = res.stdout.splitlines()[0]
    assert head.startswith(" 1.") and "lava\\nflow\\t1.txt:" in head, res.stdout


def test_index_built_by_another_model_is_refused(built):
    docs, index = built
    before = _digest(index)
    msg = one_line_error(run("query", "bread", "--index", str(index), "--model", "use-m3"))
    assert "built with model 'e5-small'" in msg
    msg = one_line_error(run("index", str(docs), "--index", str(index), "--model", "use-m3"))
    assert "--full" in msg
    assert _digest(index) == before


def test_unknown_model_and_foreign_or_broken_index(tmp_path, small_corpus):
    msg = one_line_error(run("index", str(small_corpus), "--index", str(tmp_path / "i"),
                             "--model", "nonsense-model"))
    assert "unknown model" in msg
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious", encoding="utf-8")
    msg = one_line_error(run("index", str(small_corpus), "--index", str(foreign)))
    assert "not an xsearch index" in msg or "not empty" in msg
    assert (foreign / "thesis.tex").read_text(encoding="utf-8") == "precious"
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]  # nothing added
    assert "not an xsearch index" in one_line_error(run("query", "x", "--index", str(foreign)))
    broken = tmp_path / "broken"
    shutil.copytree(foreign, broken)
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    msg = one_line_error(run("stats", "--index", str(broken)))
    assert "unreadable" in msg or "no xsearch.db" in msg
    assert "no index" in one_line_error(run("query", "x", "--index", str(tmp_path / "none")))


def test_records_without_id_are_indexed_next_to_explicit_ids(tmp_path):
    docs = tmp_path / "c8"
    docs.mkdir()
    (docs / "a.jsonl").write_text(
        '{"id":"2","text":"Coffee grows on shaded hillsides."}\n'
        '{"text":"Quokkas live on Rottnest Island near Perth."}\n', encoding="utf-8")
    (docs / "b.csv").write_text(
        "id,text\n3,Coffee grows.\n,Quokkas live on Rottnest Island.\n", encoding="utf-8")
    (docs / "c.jsonl").write_text(  # no ids at all: line numbers, as before
        '{"text":"Tea is picked by hand."}\n{"text":"Cocoa pods grow on the trunk."}\n',
        encoding="utf-8")
    index = tmp_path / "index"
    result = run("index", str(docs), "--index", str(index))
    assert result.exit_code == 0, result.output
    assert "duplicate id" not in result.output
    files = json.loads(run("files", "--index", str(index), "--json").output)["files"]
    assert {Path(f["path"]).name: f["documents"] for f in files} == {
        "a.jsonl": 2, "b.csv": 2, "c.jsonl": 2}
    hits = run("query", "quokkas on Rottnest", "-k", "20", "--index", str(index), "--json")
    hit_list = [json.loads(line) for line in hits.output.splitlines()]
    ids = {(Path(h["path"]).name, h["record_id"]) for h in hit_list}
    assert ids == {("a.jsonl", "2"), ("a.jsonl", "line 2"), ("b.csv", "3"), ("b.csv", "line 3"),
                   ("c.jsonl", "1"), ("c.jsonl", "2")}
    again = run("index", str(docs), "--index", str(index))
    assert "0 changed, 3 unchanged" in again.output and "0 embedded" in again.output


def test_exit_codes_are_the_documented_ones(built, tmp_path):
    # README's table and `xsearch --help` name them; each row, through the real commands.
    docs, index = built
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Exit codes", 1)[1].split("###", 1)[0]
    assert [line.split("|")[1].strip() for line in table.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()] == \
        ["0", "1", "2", "130", "143"]
    assert "Exit codes: 0 done" in run("--help").output
    assert run("stats", "--index", str(index)).exit_code == 0
    assert run("check", "--index", str(index), "--no-model").exit_code == 0
    for args in (["query", "bread", "--index", str(tmp_path / "nothing")],  # no index
                 ["query", "bread", "--lang", "klingon", "--index", str(index)],  # refused value
                 ["query", "bread", "--index", str(index), "--min-score", "50"],  # no hits
                 ["rm", str(tmp_path / "never-indexed.txt"), "--index", str(index)],
                 ["index", str(docs), "--index", str(index), "--layout", "hnsw"]):  # needs --full
        assert one_line_error(run(*args)) and run(*args).exit_code == 1, args
    for args in (["query"], ["query", "x", "--top-k", "0"], ["index", "--nope"],
                 ["query", "x", "--mode", "sideways"]):
        res = run(*args)
        assert res.exit_code == 2 and "Traceback" not in res.output, (args, res.output)


def _files(index: Path) -> dict:
    return json.loads(run("files", "--index", str(index), "--json").output)


def test_an_empty_path_is_refused_not_read_as_the_working_directory(built, monkeypatch):
    # `xsearch rm "$unset"` removed every file indexed below the working directory.
    docs, index = built
    before = _digest(index)
    monkeypatch.chdir(docs)
    for args in (["rm", ""], ["rm", " "], ["rm", "--dry-run", ""], ["index", ""]):
        result = run(*args, "--index", str(index))
        assert result.exit_code == 2 and "an empty path names nothing" in result.output, args
    # An empty --index named the working directory; `~` is the home folder from anywhere.
    for args in (["stats"], ["query", "bread"], ["index", str(docs)], ["check"]):
        result = run(*args, "--index", "")
        assert result.exit_code == 2 and "an empty path names no index" in result.output, args
    monkeypatch.setenv("HOME", str(index.parent))
    for how in (["--index", "~/" + index.name], []):
        result = CliRunner().invoke(cli, ["stats", "--json", *how],
                                    env={"XSEARCH_INDEX": "~/" + index.name})
        assert result.exit_code == 0 and json.loads(result.stdout)["index"] == str(index)
    assert _digest(index) == before


def test_a_name_with_brackets_names_itself(built):
    docs, index = built
    odd = docs / "report[1].txt"
    odd.write_text("The volcano erupted again and ash covered the harbour town.\n")
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    hits = run("query", "volcano ash", "--index", str(index), "--path", str(odd), "--json")
    assert hits.exit_code == 0 and {json.loads(x)["path"] for x in hits.output.splitlines()} \
        == {str(odd)}
    out = run("rm", str(odd), "--index", str(index), "--json")
    assert out.exit_code == 0 and json.loads(out.output)["removed"] == [str(odd)]


def test_bytes_that_are_not_utf8_in_a_query_are_no_traceback(built, tmp_path):
    _, index = built
    py = [sys.executable, "-m", "xsearch"]
    q = subprocess.run([*py, "query", b"pain maison caf\xe9", "--index", str(index), "--json"],
                       capture_output=True, timeout=300)
    assert q.returncode == 0 and b"Traceback" not in q.stderr, q.stderr
    assert json.loads(q.stdout.splitlines()[0])["query"] == "pain maison caf\ufffd"
    p = subprocess.run([*py, "query", "bread", "--path", b"docs/caf\xe9", "--index",
                        str(index)], capture_output=True, timeout=300)
    assert p.returncode == 1 and b"no hits" in p.stderr and b"Traceback" not in p.stderr
    (tmp_path / "q.txt").write_bytes(b"pain maison caf\xe9\nvolcano\n")
    f = run("query", "-f", str(tmp_path / "q.txt"), "--index", str(index))
    assert f.exit_code == 0, f.output
    assert [json.loads(x)["query"] for x in f.output.splitlines()] == [
        "pain maison caf\ufffd", "volcano"]


def test_a_folder_whose_last_files_were_deleted_drops_them(tmp_path):
    folder = tmp_path / "notes" / "sub"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("The volcano erupted and lava reached the sea.\n")
    (folder / "b.txt").write_text("Knead the bread dough and let it rise overnight.\n")
    index = tmp_path / "index"
    assert run("index", str(tmp_path / "notes"), "--index", str(index), "-q").exit_code == 0
    for f in folder.iterdir():
        f.unlink()
    result = run("index", str(tmp_path / "notes"), "--index", str(index))
    assert result.exit_code == 0, result.output
    assert _files(index)["files"] == []
    # With nothing indexed there either, an empty folder is still an error.
    assert "no supported files" in one_line_error(run("index", str(tmp_path / "notes"),
                                                      "--index", str(index)))


def test_failures_of_files_that_are_gone_are_forgotten(built):
    docs, index = built
    (docs / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "empty.txt").write_bytes(b"")
    run("index", str(docs), "--index", str(index), "-q")
    assert {Path(f["path"]).name for f in _files(index)["failed"]} == {"bad.pdf", "empty.txt"}
    (docs / "bad.pdf").unlink()
    (docs / "empty.txt").unlink()
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    assert _files(index)["failed"] == []


def test_an_unreadable_folder_is_skipped_and_its_files_are_kept(built):
    docs, index = built
    locked = docs / "locked"
    locked.mkdir()
    (locked / "kept.txt").write_text("Solar panels power the village school at night.\n")
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    (docs / "new.txt").write_text("Coffee cherries are picked by hand in the highlands.\n")
    (docs / "secret.txt").write_text("This file cannot be read by anyone.\n")
    locked.chmod(0)
    (docs / "secret.txt").chmod(0)
    try:
        r = without_dac([sys.executable, "-m", "xsearch", "index", str(docs), "--index",
                          str(index)])
    finally:
        locked.chmod(0o755)
        (docs / "secret.txt").chmod(0o644)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr  # 1: secret.txt failed
    assert f"{locked}: cannot read: Permission denied; skipped" in r.stderr
    got = _files(index)
    names = {Path(f["path"]).name for f in got["files"]}
    assert {"kept.txt", "new.txt"} <= names  # the run went on; the folder's file is kept
    assert [Path(f["path"]).name for f in got["failed"]] == ["secret.txt"]
    assert "Permission denied" in got["failed"][0]["reason"]


def test_damage_in_the_middle_of_a_big_segment_is_not_merged_into_a_sound_one(tmp_path):
    """A load compares a segment's size and its first and last 64 KiB: 50 KB of garbage in
    the middle of a 220 KB segment went unseen, queries returned it (relevance 5e21) without
    a word, and the next run's merge wrote it into a new segment with a checksum of its own:
    check then said ok, and only a rebuild that embedded everything again mended it."""
    import random

    docs = tmp_path / "docs"
    docs.mkdir()
    words = "bread flour water salt yeast volcano ash coffee harvest football match".split()
    rng = random.Random(2)
    for i in range(160):
        (docs / f"eng_{i}.txt").write_text(
            f"Memo {i}. " + " ".join(rng.choice(words) for _ in range(40)) + ".",
            encoding="utf-8")
    index = tmp_path / "index"
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    [seg] = [p for p in (index / "segments").glob("*eng_Latn.npy") if ".ids" not in p.name]
    assert seg.stat().st_size > 66_000 + 50_000 + 65_536  # the damage misses both ends
    with open(seg, "r+b") as fh:
        fh.seek(66_000)
        fh.write(bytes(random.Random(0).getrandbits(8) for _ in range(50_000)))
    res = CliRunner().invoke(cli, ["query", "volcanic eruption", "--index", str(index)])
    assert "which no unit vector can: the index is damaged" in res.stderr
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "new.txt").write_text("The volcano erupted again this morning.",
                                               encoding="utf-8")
    res = run("index", str(tmp_path / "more"), "--index", str(index), "-q")
    assert "is damaged; run xsearch check --repair" in one_line_error(res)
    assert run("check", "--index", str(index), "--no-model").exit_code == 1
    assert run("check", "--repair", "--index", str(index)).exit_code == 0
    res = CliRunner().invoke(cli, ["query", "volcanic eruption", "--index", str(index)])
    assert res.exit_code == 0 and "damaged" not in res.stderr


def test_text_that_is_no_longer_utf8_is_found_and_said_in_one_line(built):
    """Damage inside a page's content passes SQLite's quick check: `check` said ok while a
    query ended in "SQLite: Could not decode to UTF-8 column 'text' with text '...'" (the
    garbage quoted) and the server answered 500 with a traceback in its log."""

    from fastapi.testclient import TestClient

    from xsearch.server.app import create_app

    docs, index = built
    data = _settled_bytes(index)
    word = b"levain"
    at = data.find(word)
    assert at > 0
    while at > 0:  # in a title and in passages' text
        data[at:at + len(word)] = b"\xff\xfe\xfd\xfc\xfb\xfa"
        at = data.find(word, at)
    (index / "xsearch.db").write_bytes(bytes(data))
    msg = one_line_error(run("check", "--index", str(index), "--no-model"))
    report = json.loads(run("check", "--index", str(index), "--no-model", "--json").stdout)
    assert {"passages.text", "documents.title"} <= {
        p["detail"].split(" of ")[0] for p in report["problems"]}, (msg, report)
    assert all("is not UTF-8 text" in p["detail"] for p in report["problems"])
    msg = one_line_error(run("query", "levain", "--mode", "lexical", "--index", str(index)))
    assert "is not UTF-8)" in msg and "--full" in msg
    assert "\ufffd" not in msg
    with TestClient(create_app(index), base_url="http://127.0.0.1") as client:
        res = client.get("/api/search", params={"q": "levain", "mode": "lexical"})
    assert res.status_code == 503 and "is not UTF-8" in res.json()["error"]


def test_per_language_sums_that_are_not_their_vectors_are_found_and_mended(built):
    """Bytes flipped in the per-language statistics changed every query's relevance (a hit
    at 78,486σ) while `check` said ok: it compared their counts only."""
    import sqlite3

    import numpy as np

    docs, index = built
    con = sqlite3.connect(index / "xsearch.db")
    lang, blob = con.execute("SELECT language, sum FROM lang_stats ORDER BY n DESC").fetchone()
    total = np.frombuffer(blob, dtype=np.float64).copy()
    total[7] += 0.5
    con.execute("UPDATE lang_stats SET sum = ? WHERE language = ?", [total.tobytes(), lang])
    con.commit()
    con.close()
    report = json.loads(run("check", "--index", str(index), "--no-model", "--json").stdout)
    assert [p["detail"] for p in report["problems"]] == [
        f"{lang}: the stored sums are not those of its vectors (damaged)"]
    assert run("check", "--repair", "--index", str(index)).exit_code == 0
    assert json.loads(run("check", "--index", str(index), "--no-model", "--json").stdout)["ok"]


def test_every_segment_missing_is_one_warning_line(built):
    """An index copied without its segments printed one warning a segment (13 lines here)."""
    _, index = built
    for seg in (index / "segments").glob("*.npy"):
        seg.unlink()
    res = CliRunner().invoke(cli, ["query", "bread", "--index", str(index)])
    warnings = [x for x in res.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 1 and "segments are unusable (missing" in warnings[0]
    assert "xsearch check --repair" in warnings[0]
