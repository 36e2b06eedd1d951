"""What an index folder must survive: someone else's folder, edited or damaged files, a
read-only place, a swapped vector file, a model that is not the one named, Ctrl-C."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import without_dac

from xsearch.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory, request):
    """A small index built once; tests copy it before changing anything."""
    from conftest import CORPUS

    root = tmp_path_factory.mktemp("safety")
    docs = root / "docs"
    docs.mkdir()
    for name in ("bread/eng_Latn_bread.txt", "bread/hin_Deva_bread.txt",
                 "volcano/jpn_Jpan_volcano.txt", "coffee/eng_Latn_coffee.txt"):
        shutil.copy(CORPUS / name, docs / Path(name).name)
    index = root / "index"
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    return docs, index


@pytest.fixture
def copy(built, tmp_path):
    docs, index = built
    dest = tmp_path / "index"
    shutil.copytree(index, dest)
    return docs, dest


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("full", [False, True])
def test_foreign_folder_with_index_like_names_is_never_touched(built, tmp_path, full):
    docs, _ = built
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"theme": "dark"}', encoding="utf-8")
    (theirs / "xsearch.db").write_bytes(b"not ours")
    (theirs / "vectors.faiss").write_bytes(b"their file")
    before = _tree(theirs)
    args = ["index", str(docs), "--index", str(theirs), "-q"] + (["--full"] if full else [])
    assert "not an xsearch index" in one_line(run(*args))
    assert _tree(theirs) == before
    assert sorted(p.name for p in theirs.iterdir()) == ["config.json", "vectors.faiss",
                                                         "xsearch.db"]  # no .lock either


@pytest.mark.parametrize("edit", [{"dim": 768}, {"dim": "abc"}, {"chunk_tokens": 0},
                                  {"layout": "magic"}, {"model": ""}])
def test_bad_committed_config_is_one_line_error(copy, edit):
    _, index = copy
    con = sqlite3.connect(index / "xsearch.db")
    raw = json.loads(con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
    raw.update(edit)
    con.execute("UPDATE meta SET value = ? WHERE key = 'config'", [json.dumps(raw)])
    con.commit()
    con.close()
    for cmd in (["query", "bread"], ["stats"]):
        msg = one_line(run(*cmd, "--index", str(index)))
        assert "invalid" in msg or "index holds 768-d" in msg


def test_edited_config_json_is_ignored_and_reported(copy):
    """config.json mirrors the committed config; editing it changes nothing but is reported."""
    _, index = copy
    raw = json.loads((index / "config.json").read_text(encoding="utf-8"))
    raw["model"] = "all-minilm-l6-v2"  # another 384-d model
    (index / "config.json").write_text(json.dumps(raw), encoding="utf-8")
    hits = run("query", "bread", "--index", str(index), "--json")
    assert hits.exit_code == 0 and "bread" in hits.output
    report = run("check", "--index", str(index), "--no-model")
    assert report.exit_code == 1 and "config" in report.output
    repaired = run("check", "--repair", "--index", str(index))
    assert repaired.exit_code == 0 and "rewrote config.json from the database's copy" in \
        repaired.output  # (it did so without a word)
    assert json.loads((index / "config.json").read_text())["model"] == "e5-small"


def test_model_that_did_not_make_the_vectors_is_refused(copy):
    _, index = copy
    con = sqlite3.connect(index / "xsearch.db")
    probe = np.frombuffer(bytes.fromhex(con.execute(
        "SELECT value FROM meta WHERE key = 'model_probe'").fetchone()[0]), dtype=np.float32)
    other = np.roll(probe, 7)  # what another 384-d model would have stored
    con.execute("UPDATE meta SET value = ? WHERE key = 'model_probe'", [other.tobytes().hex()])
    con.commit()
    con.close()
    assert "not built by the model" in one_line(run("query", "bread", "--index", str(index)))


def test_swapped_segment_of_same_size_is_detected_and_rebuilt(copy):
    _, index = copy
    seg = max((index / "segments").glob("*eng_Latn.npy"), key=lambda p: p.stat().st_size)
    mat = np.load(seg)
    rng = np.random.default_rng(0)
    fake = rng.normal(size=mat.shape).astype(np.float32)
    fake /= np.linalg.norm(fake, axis=1, keepdims=True)
    with open(seg, "wb") as fh:
        np.save(fh, fake)
    assert seg.stat().st_size == mat.nbytes + 128
    hits = run("query", "how to bake bread", "--index", str(index), "--json")
    assert "segment" in hits.output and "check --repair" in hits.output  # the warning
    paths = [json.loads(line)["path"] for line in hits.output.splitlines()
             if line.startswith("{")]
    assert not any("eng_Latn" in p for p in paths)  # the swapped segment is not trusted
    assert run("check", "--index", str(index), "--no-model").exit_code == 1
    assert run("check", "--repair", "--index", str(index)).exit_code == 0
    hits = run("query", "how to bake bread", "--index", str(index), "--json")
    assert "eng_Latn_bread" in hits.output


def test_read_only_index_answers_and_refuses_writes(copy):
    docs, index = copy
    for p in [index, *index.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _tree(index)
    try:
        q = without_dac([sys.executable, "-m", "xsearch", "query", "bread", "--index",
                          str(index), "--json"])
        assert q.returncode == 0, q.stderr
        assert json.loads(q.stdout.splitlines()[0])["passage_id"] > 0
        w = without_dac([sys.executable, "-m", "xsearch", "index", str(docs), "--index",
                          str(index), "-q"])
        assert w.returncode == 1 and "read-only" in w.stderr
        assert "Traceback" not in w.stderr and len(w.stderr.strip().splitlines()) == 1
        assert _tree(index) == before
    finally:
        for p in [index, *index.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_index_folder_and_files_are_private(built):
    _, index = built
    assert stat.S_IMODE(index.stat().st_mode) == 0o700
    for p in index.rglob("*"):
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p


def test_index_path_that_is_a_file_and_missing_index(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("x", encoding="utf-8")
    assert "is a file" in one_line(run("query", "x", "--index", str(f)))
    msg = one_line(run("query", "x", "--index", str(tmp_path / "nowhere")))
    assert str((tmp_path / "nowhere").resolve()) in msg and "--index" in msg


def test_unknown_topic_is_refused_with_known_ones(copy, tmp_path):
    _, index = copy
    labels = tmp_path / "labels.txt"
    labels.write_text("food\nnature\n", encoding="utf-8")
    assert run("label", str(labels), "--index", str(index)).exit_code == 0
    assert "known topics: food, nature" in one_line(run("query", "x", "--topic", "sports",
                                                        "--index", str(index)))
    ok = run("query", "bread", "--topic", "FOOD", "--index", str(index), "--json")
    assert ok.exit_code == 0 and all(json.loads(x)["topic"] == "food"
                                     for x in ok.output.splitlines())


def test_ctrl_c_exits_130_and_keeps_the_index(copy, tmp_path):
    from conftest import CORPUS

    _, index = copy
    # Enough work that the run cannot end first (five copies of the sample corpus), and the
    # signal sent once the run has committed something, not after a guessed delay.
    docs = tmp_path / "many"
    for i in range(5):
        (docs / f"c{i}").mkdir(parents=True)
        for f in sorted(CORPUS.rglob("*.txt")):
            data = f.read_bytes()
            if not data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 stays as it is
                data += f"\n\nCopy {i}.\n".encode()
            (docs / f"c{i}" / f.name).write_bytes(data)
    before = _file_count(index)
    proc = subprocess.Popen([sys.executable, "-m", "xsearch", "index", str(docs), "--index",
                             str(index), "-q", "--commit-every", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _file_count(index) in (before, None) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert run("check", "--index", str(index), "--no-model").exit_code == 0


def test_the_index_process_closes_its_database_before_it_ends(tmp_path):
    """`xsearch index` as a process skips freeing its objects on the way out (main() freezes
    them), so it must close its database itself: a connection left to the interpreter would
    leave its write-ahead log behind. Its summary is printed whole, its JSON parses."""
    from conftest import CORPUS

    docs = tmp_path / "docs"
    docs.mkdir()
    for f in sorted((CORPUS / "bread").glob("*.txt"))[:2]:
        shutil.copy(f, docs / f.name)
    index = tmp_path / "idx"
    proc = subprocess.run([sys.executable, "-m", "xsearch", "index", str(docs), "--index",
                           str(index), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["new"] == 2 and summary["passages_embedded"] > 0
    assert sorted(p.name for p in index.iterdir() if p.name.startswith("xsearch.db")) == \
        ["xsearch.db"]


def test_the_process_ends_with_an_idle_thread_pool_still_open():
    """The end of `main` wakes idle concurrent.futures workers (not daemons) as the
    interpreter does, instead of waiting for them forever."""
    code = ("import sys\n"
            "from concurrent.futures import ThreadPoolExecutor\n"
            "ThreadPoolExecutor(1).submit(lambda: None).result()\n"
            "from xsearch import cli\n"
            "sys.argv = ['xsearch', '--version']\n"
            "cli.main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("xsearch, version"), done


def test_the_process_exits_with_the_documented_codes_and_its_whole_output(tmp_path):
    """main() ends the process itself (without the interpreter's object-by-object shutdown):
    the status is still sys.exit's, and what was printed to a pipe still arrives whole."""
    def xsearch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "xsearch", *args], capture_output=True,
                              text=True, timeout=120)

    missing = xsearch("index", str(tmp_path / "nowhere"), "--index", str(tmp_path / "idx"))
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [f"Error: path not found: {tmp_path}/nowhere"]
    assert xsearch("query", "bread", "--no-such-option").returncode == 2
    helped = xsearch("index", "--help")
    assert helped.returncode == 0
    expected = CliRunner().invoke(cli, ["index", "--help"], prog_name="xsearch").output
    # Piped, several kB, all of it (the terminal width may wrap it differently).
    assert helped.stdout.split() == expected.split() and len(expected) > 2000
    assert not (tmp_path / "idx").exists()


def _file_count(index: Path) -> int | None:
    """Files the index's committed state holds (None while SQLite is busy)."""
    try:
        con = sqlite3.connect(f"file:{index / 'xsearch.db'}?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return None


def _summary(result) -> dict:
    return json.loads(next(ln for ln in result.output.splitlines() if ln.startswith("{")))


def test_failed_file_is_not_parsed_again_until_it_changes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Bread needs flour, water, salt and yeast.", encoding="utf-8")
    bad = docs / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    index = tmp_path / "index"
    first = run("index", str(docs), "--index", str(index), "--json", "-q")
    assert first.exit_code == 1 and _summary(first)["failed"] == 1
    again = run("index", str(docs), "--index", str(index), "--json", "-q")
    assert again.exit_code == 0  # remembered by content hash, not read again
    assert _summary(again)["failed"] == 0 and _summary(again)["failed_before"] == 1
    retry = run("index", str(docs), "--index", str(index), "--json", "-q", "--retry-failed")
    assert _summary(retry)["failed"] == 1
    bad.write_text("now a plain text file about bread", encoding="utf-8")
    bad.rename(docs / "broken.txt")
    fixed = _summary(run("index", str(docs), "--index", str(index), "--json", "-q"))
    assert fixed["failed"] == 0 and fixed["new"] == 1


def test_control_characters_in_names_are_escaped_on_the_terminal(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil\x1b[31mred.txt").write_text("Bread needs flour, water and salt.",
                                                encoding="utf-8")
    index = tmp_path / "index"
    assert run("index", str(docs), "--index", str(index), "-q").exit_code == 0
    out = run("query", "bread flour", "--index", str(index)).output
    assert "\x1b" not in out and "evil\\x1b[31mred.txt" in out


def test_wrong_passage_lengths_are_found_by_check_and_rewritten_by_repair(copy):
    """The lengths BM25 reads (xsearch.bm25) are checked against FTS5's own sizes."""
    from xsearch import bm25, lexical

    _, index = copy
    db = sqlite3.connect(index / "xsearch.db")
    good = db.execute(f"SELECT lengths FROM {bm25.LENGTHS} WHERE chunk = 0").fetchone()[0]
    wrong = np.frombuffer(good, dtype="<u4").copy()
    wrong[wrong > 0] += 3
    with db:
        db.execute(f"UPDATE {bm25.LENGTHS} SET lengths = ? WHERE chunk = 0", [wrong.tobytes()])
    db.close()
    found = run("check", "--index", str(index), "--no-model", "--json")
    assert found.exit_code == 1
    assert "lexical lengths" in found.output
    fixed = run("check", "--repair", "--index", str(index), "--no-model")
    assert fixed.exit_code == 0, fixed.output
    db = sqlite3.connect(index / "xsearch.db")
    assert db.execute(f"SELECT lengths FROM {bm25.LENGTHS} WHERE chunk = 0").fetchone()[0] \
        == good
    assert bm25.mismatches(db, lexical.TABLE) == 0


def test_an_index_made_before_the_passage_lengths_is_queried_and_then_upgraded(copy):
    """Schema 4 (no lengths table): a query reads it as it is, with the same hits; `check`
    notes it; `check --repair` adds the lengths."""
    from xsearch import bm25, lexical

    _, index = copy
    before = run("query", "how to bake bread", "--index", str(index), "--json")
    db = sqlite3.connect(index / "xsearch.db")
    with db:
        db.execute(f"DROP TABLE {bm25.LENGTHS}")
        db.execute(f"DROP TABLE {lexical.TABLE}_instance")
        db.execute("DELETE FROM _migrations WHERE name = 'm005_lexical_lengths'")
    db.close()
    old = run("query", "how to bake bread", "--index", str(index), "--json")
    assert old.exit_code == 0, old.output
    assert old.output == before.output
    checked = json.loads(run("check", "--index", str(index), "--no-model", "--json").output)
    assert checked["ok"] and any("passage lengths" in n for n in checked["notes"])
    assert run("check", "--repair", "--index", str(index), "--no-model").exit_code == 0
    db = sqlite3.connect(index / "xsearch.db")
    assert bm25.has_lengths(db) and bm25.mismatches(db, lexical.TABLE) == 0


def _index_process(docs: Path, index: Path, *extra: str, limit: int | None = None
                   ) -> subprocess.CompletedProcess:
    """`xsearch index` in its own process; ``limit`` caps the size of any file it writes
    (RLIMIT_FSIZE: writes past it fail with EFBIG, as on a full disk; Python ignores
    SIGXFSZ), so a write fails midway without root or a small filesystem."""
    import resource

    def cap():
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "xsearch", "index", str(docs), "--index",
                           str(index), *extra], capture_output=True, text=True, timeout=600,
                          preexec_fn=cap)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_a_write_that_fails_midway_is_one_line_and_loses_nothing(copy, tmp_path):
    """Adding the whole sample corpus to an index when no file may grow past 64 KB: one
    line naming the index, exit 1; the index answers and checks as before, and once writes
    work again the same command adds everything."""
    from conftest import CORPUS

    _, index = copy
    before = _file_count(index)
    top = run("query", "bread", "--index", str(index), "--json").output.splitlines()[0]
    line = _error_line(_index_process(CORPUS, index, limit=64 * 1024))
    assert f"could not write index {index}" in line and "committed before is kept" in line
    assert _file_count(index) == before
    assert run("query", "bread", "--index", str(index), "--json").output.splitlines()[0] == top
    assert run("check", "--index", str(index), "--no-model").exit_code == 0
    done = _index_process(CORPUS, index, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new"] == 60 and _file_count(index) == before + 60


def test_a_full_disk_is_one_line_and_the_next_run_goes_on(tmp_path):
    """A real full filesystem (a 5 MB tmpfs; needs root to mount, else skipped) under a new
    index: one line saying the disk is full, what was committed kept; with room again, the
    next run takes the build up and finishes it."""
    from conftest import CORPUS

    with _small_filesystem(tmp_path, "5M") as mnt:
        index = mnt / "index"
        line = _error_line(_index_process(CORPUS, index, "--commit-every", "16"))
        assert "database or disk is full" in line or "No space left on device" in line, line
        assert "free some space and run it again" in line
        kept = index / "xsearch.db.new-"  # the build stopped, not thrown away
        assert any(str(p).startswith(str(kept)) for p in index.iterdir())
        subprocess.run(["mount", "-o", "remount,size=24M", str(mnt)], check=True)
        done = _index_process(CORPUS, index, "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["resumed"] > 0 and summary["resumed"] + summary["new"] == 60
        assert run("check", "--index", str(index), "--no-model").exit_code == 0


@contextmanager
def _small_filesystem(tmp_path: Path, size: str) -> Iterator[Path]:
    """A real full filesystem of ``size`` (a tmpfs; needs root to mount, else skipped)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_build_that_fills_the_disk_before_its_first_commit_leaves_the_room(tmp_path):
    """A new index on a 2 MB filesystem fails before it commits a file: the stopped build
    holds nothing to take up, so its database, journal and segment files go, leaving the
    room the next run needs (they once stayed and made it fail again), and the folder it
    made with them."""
    from conftest import CORPUS

    with _small_filesystem(tmp_path, "2M") as mnt:
        index = mnt / "index"
        line = _error_line(_index_process(CORPUS, index, "--commit-every", "16"))
        assert "database or disk is full" in line or "No space left on device" in line, line
        # The folder the run made goes with them (it held its lock and segments folder).
        assert not index.exists(), sorted(str(p) for p in index.rglob("*"))
        subprocess.run(["mount", "-o", "remount,size=24M", str(mnt)], check=True)
        done = _index_process(CORPUS, index, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["new"] == 60


def test_a_segments_folder_that_is_a_link_is_not_swept(small_corpus, tmp_path):
    """The sweep of uncommitted segment files followed a `segments` link and deleted
    segment-named files in its target, out of the index."""
    from xsearch.indexer import build_index

    index = tmp_path / "index"
    build_index([small_corpus], index)
    elsewhere = tmp_path / "elsewhere"
    (index / "segments").rename(elsewhere)
    (index / "segments").symlink_to(elsewhere, target_is_directory=True)
    stray = elsewhere / "s00000500-eng_Latn.npy"
    stray.write_bytes(b"not ours to delete")
    (small_corpus / "new.txt").write_text("Lighthouses guide ships at night.", encoding="utf-8")
    build_index([small_corpus], index)
    assert stray.read_bytes() == b"not ours to delete"


def test_a_short_write_of_a_segment_says_the_disk_is_full():
    """numpy's short write of a segment (4 KB free) has no errno: the line said "9984
    requested and 2016 written; what was committed before is kept", neither full nor what
    to do."""
    from xsearch.writer import write_failure

    line = write_failure(Path("idx"), OSError("9984 requested and 2016 written"))
    assert "the disk is full (9984 requested and 2016 written)" in line
    assert "free some space and run it again" in line
    assert "free some space" not in write_failure(Path("idx"), OSError(5, "Input/output error"))


def test_a_read_only_index_whose_wal_holds_commits_is_not_read_without_them(
        small_corpus, tmp_path):
    """On a read-only folder without xsearch.db-shm SQLite cannot open the WAL, and the
    database was read as it was before the WAL's commits (stats said 60 files of 316)."""
    from xsearch.indexer import build_index

    index = tmp_path / "index"
    build_index([small_corpus], index)
    db = index / "xsearch.db"
    # A commit left in the WAL, as a writer killed after committing leaves it.
    code = (f"import os, sqlite3; c = sqlite3.connect({str(db)!r}, isolation_level=None); "
            "c.execute('PRAGMA journal_mode=WAL'); "
            "c.execute(\"INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', 'x')\"); "
            "os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (index / "xsearch.db-wal").stat().st_size > 0
    (index / "xsearch.db-shm").unlink(missing_ok=True)
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(index), str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount read-only here (not root)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], capture_output=True)
        res = run("stats", "--index", str(mnt))
        assert res.exit_code == 1, res.output
        assert "has commits in xsearch.db-wal that a read-only folder cannot show" in res.output
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_repair_stopped_by_a_full_disk_leaves_the_statistics_as_they_were(tmp_path):
    """`check --repair` wrote the re-embedded segments and their statistics in one
    transaction and recomputed the statistics in another: a full disk between the two left
    the new vectors counted twice ("eng_Latn: 52 recorded, 26 passages") and every query's
    relevance skewed, without a word, until the next repair."""
    from conftest import CORPUS

    base = tmp_path / "base"
    assert run("index", str(CORPUS), "--index", str(base), "-q").exit_code == 0
    with _small_filesystem(tmp_path, "16M") as mnt:
        index = mnt / "idx"
        shutil.copytree(base, index)
        [seg] = [p for p in (index / "segments").glob("*-eng_Latn.npy")
                 if ".ids" not in p.name]
        with open(seg, "r+b") as fh:
            fh.write(bytes(min(40_064, seg.stat().st_size)))
        free = shutil.disk_usage(mnt).free
        (mnt / "filler").write_bytes(bytes(max(0, free - 2_000 * 1024)))
        repaired = run("check", "--repair", "--index", str(index))
        (mnt / "filler").unlink()
        report = json.loads(run("check", "--index", str(index), "--no-model", "--json").stdout)
        whats = {p["what"] for p in report["problems"]}
        if repaired.exit_code == 0:  # room enough after all: repaired whole
            assert report["ok"], report
        else:
            assert "language statistics" not in whats, report
        assert run("check", "--repair", "--index", str(index)).exit_code == 0
        assert json.loads(run("check", "--index", str(index), "--no-model", "--json")
                          .stdout)["ok"]


def test_a_segments_file_in_place_of_the_folder_is_named(small_corpus, tmp_path):
    """A file named `segments` in the index made writers say "File exists (idx/segments)"."""
    from xsearch.indexer import build_index

    index = tmp_path / "index"
    build_index([small_corpus], index)
    shutil.rmtree(index / "segments")
    (index / "segments").write_text("someone's notes", encoding="utf-8")
    for args in (("check", "--repair"), ("index", str(small_corpus), "--full")):
        res = run(*args, "--index", str(index))
        assert res.exit_code == 1
        assert "segments is a file, not the folder of its vectors" in res.output, res.output
    assert (index / "segments").read_text(encoding="utf-8") == "someone's notes"
