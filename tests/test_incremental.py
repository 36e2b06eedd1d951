"""Re-indexing touches only what changed: unchanged, changed, deleted, renamed files, records."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np

from xsearch import lexical
from xsearch.check import check_index
from xsearch.index_dir import IndexDir
from xsearch.indexer import build_index
from xsearch.search import Searcher


def _ids_agree(index_path) -> tuple[int, int]:
    """Every SQLite passage has exactly one live vector in a segment and its tokens in the
    lexical index, which holds nothing else; the index checks clean."""
    report = check_index(index_path, model_check=False)
    assert report["ok"], report["problems"]
    _lexical_agrees(index_path)
    idx = IndexDir.open(index_path)
    try:
        sql_ids = idx.store.passage_ids()
        live = np.sort(np.concatenate([ids for ids, _ in idx.vectors.iter_live()]))
        assert np.array_equal(live, sql_ids)
        assert len(idx.vectors) == len(sql_ids)
        return len(sql_ids), idx.store.counts()["documents"]
    finally:
        idx.close()


def _passage_rows(index_path) -> list[tuple[int, str, str, str, np.ndarray]]:
    """(passage id, text, path, record id, vector) of every passage, by id."""
    idx = IndexDir.open(index_path)
    try:
        rows = idx.store.db.execute(
            "SELECT p.id, p.text, d.path, d.record_id FROM passages p "
            "JOIN documents d ON d.id = p.document_id ORDER BY p.id").fetchall()
        vecs = idx.vectors.vectors_of([r[0] for r in rows])
    finally:
        idx.close()
    return [(*row, vec) for row, vec in zip(rows, vecs, strict=True)]


def _lexical_agrees(index_path) -> None:
    """The FTS5 table's document frequencies are those of the live passages' tokens: what the
    reader thread put in matches what a later delete takes out (both ``fts_text``)."""
    con = sqlite3.connect(index_path / "xsearch.db")
    try:
        want: Counter = Counter()
        for (text,) in con.execute("SELECT text FROM passages"):
            want.update(set(lexical.fts_text(text).split()))
        have = dict(con.execute(f"SELECT term, doc FROM {lexical.TABLE}_vocab"))
    finally:
        con.close()
    assert want and have == dict(want)


def _passages_of(index_path, name: str) -> list[int]:
    con = sqlite3.connect(index_path / "xsearch.db")
    rows = con.execute(
        "SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id "
        "WHERE d.path LIKE ?", ["%/" + name]).fetchall()
    con.close()
    return [r[0] for r in rows]


def test_unchanged_changed_deleted_renamed(small_corpus, tmp_path):
    index = tmp_path / "index"
    files = sorted(small_corpus.iterdir())
    first = build_index([small_corpus], index)
    assert (first.new, first.failed) == (len(files), 0)
    n_passages, n_docs = _ids_agree(index)
    assert n_docs == len(files) and n_passages >= len(files)

    again = build_index([small_corpus], index)
    assert (again.unchanged, again.new, again.changed, again.passages_embedded) == \
        (len(files), 0, 0, 0)

    # Changed: new text is embedded; a passage whose text is still there stays as it was
    # (test_a_changed_file_keeps_the_passages_whose_text_it_still_holds); the rest leave
    # SQLite and FAISS.
    target = files[0]
    old_ids = _passages_of(index, target.name)
    target.write_text("A new opening paragraph about the importance of patience.\n\n"
                      + target.read_text(encoding="utf-8"), encoding="utf-8")
    changed = build_index([small_corpus], index)
    assert (changed.changed, changed.unchanged) == (1, len(files) - 1)
    assert changed.passages_embedded == len(_passages_of(index, target.name))
    assert changed.passages_kept == 0 and changed.passages_removed == len(old_ids)
    assert not set(old_ids) & set(_passages_of(index, target.name))
    _ids_agree(index)

    # Deleted: its passages are gone from both stores.
    gone = files[1]
    gone_ids = _passages_of(index, gone.name)
    gone.unlink()
    deleted = build_index([small_corpus], index)
    assert (deleted.removed, deleted.passages_embedded) == (1, 0)
    assert deleted.passages_removed == len(gone_ids)
    n_after, docs_after = _ids_agree(index)
    assert docs_after == len(files) - 1

    # Renamed: same content under a new name is moved, not re-embedded.
    moved = files[2]
    new_path = moved.with_name("renamed_" + moved.name)
    moved.rename(new_path)
    renamed = build_index([small_corpus], index)
    assert (renamed.renamed, renamed.passages_embedded, renamed.removed) == (1, 0, 0)
    assert _ids_agree(index) == (n_after, docs_after)
    searcher = Searcher(index)
    try:
        paths = {h.path for h in searcher.search(new_path.read_text(encoding="utf-8")[:200], k=3)}
    finally:
        searcher.close()
    assert str(new_path.resolve()) in paths


def test_jsonl_only_changed_records_are_reembedded(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    records = [
        {"id": "a", "text": "Coffee cherries are picked by hand on the slopes."},
        {"id": "b", "text": "Le volcan a projeté des cendres sur les villages voisins."},
        {"id": "c", "text": "Die Mannschaft gewann das Finale mit zwei Toren."},
    ]
    path = docs / "news.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    first = build_index([docs], index)
    assert first.documents_written == 3
    records[1]["text"] = "Le volcan est entré en éruption hier soir; la lave avance lentement."
    del records[2]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    second = build_index([docs], index)
    assert (second.changed, second.documents_written) == (1, 1)
    assert second.passages_embedded == 1 and second.passages_removed == 2
    _, n_docs = _ids_agree(index)
    assert n_docs == 2


def test_a_changed_file_keeps_the_passages_whose_text_it_still_holds(tmp_path):
    """A record added at the top of a .jsonl without ids renumbers every record, and a
    paragraph added to a long text changes only its last passages: each passage whose text
    the previous version held keeps its id, vector and lexical entry (and is labelled again
    with its document); only new text is embedded."""
    from xsearch.topics import Label, label_index

    docs = tmp_path / "docs"
    docs.mkdir()
    records = ["Coffee cherries are picked by hand on the slopes.",
               "Le volcan a projeté des cendres sur les villages voisins.",
               "Die Mannschaft gewann das Finale mit zwei Toren.",
               "सौर पैनल धूप से बिजली बनाते हैं।",
               "Mkate wa unga wa ngano huokwa asubuhi."]
    notes = docs / "notes.jsonl"
    notes.write_text("".join(json.dumps({"text": t}) + "\n" for t in records), encoding="utf-8")
    report = docs / "report.txt"
    report.write_text("\n".join(f"Section {i}. The council met to discuss the budget of the "
                                f"new school, its library and the road to village {i}."
                                for i in range(12)), encoding="utf-8")
    index = tmp_path / "index"
    build_index([docs], index, chunk_tokens=48, chunk_overlap=8)
    label_index(index, [Label("food", "coffee, bread and cooking"),
                        Label("news", "politics, disasters and sport")])

    def passages() -> dict[str, list[tuple[int, np.ndarray, str]]]:
        out: dict[str, list] = {}
        for pid, text, path, record_id, vec in _passage_rows(index):
            out.setdefault(text, []).append((pid, vec, f"{Path(path).name}#{record_id}"))
        return out

    before = passages()
    assert sum(len(v) for v in before.values()) > len(records) + 3  # the report: several
    records[3] = "सौर पैनल रात में काम नहीं करते।"
    notes.write_text("".join(json.dumps({"text": t}) + "\n" for t in
                             ["Earthquakes shook the coast overnight.", *records]),
                     encoding="utf-8")
    report.write_text(report.read_text(encoding="utf-8")
                      + "\nAppendix. The road will be paved next spring.", encoding="utf-8")
    second = build_index([docs], index)
    after = passages()
    kept = [text for text, rows in after.items() if text in before
            for _ in rows[:len(before[text])]]
    new = sum(len(rows) for rows in after.values()) - len(kept)
    assert (second.changed, second.passages_kept, second.passages_embedded) == (2, len(kept), new)
    assert new >= 3 and len(kept) >= len(records) + 2
    assert second.passages_removed == sum(len(v) for v in before.values()) - len(kept)
    for text in set(kept):
        n = min(len(after[text]), len(before[text]))
        for (pid, vec, _), (old_pid, old_vec, _) in zip(after[text][:n], before[text][:n],
                                                        strict=True):
            assert pid == old_pid and np.array_equal(vec, old_vec)
    # Every record moved down a line, and the kept passages say so.
    assert after[records[0]][0][2] == "notes.jsonl#2" and before[records[0]][0][2] == \
        "notes.jsonl#1"
    _ids_agree(index)
    searcher = Searcher(index)
    try:
        hit = searcher.search_many(["Mannschaft Finale"], k=1, mode="lexical")[0][0]
        assert (hit.record_id, hit.text) == ("4", records[2])
    finally:
        searcher.close()
    con = sqlite3.connect(index / "xsearch.db")
    try:
        assert con.execute("SELECT count(*) FROM passages WHERE topic IS NULL").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM documents WHERE topic IS NULL").fetchone() == (0,)
    finally:
        con.close()


def test_a_file_renamed_and_edited_keeps_its_passages(tmp_path):
    """A long text moved to another folder and edited in the same run, and a record of a
    deleted .jsonl added to one that stays: the passages whose text a gone file held
    keep their ids and vectors under their new path; only new text is embedded, and the
    gone files are removed after that."""
    docs = tmp_path / "docs"
    docs.mkdir()
    report = docs / "report.txt"
    report.write_text("\n".join(f"Section {i}. The council met to discuss the budget of the "
                                f"new school, its library and the road to village {i}."
                                for i in range(12)), encoding="utf-8")
    old_notes = docs / "old.jsonl"
    records = ["Le volcan a projeté des cendres sur les villages voisins.",
               "Die Mannschaft gewann das Finale mit zwei Toren."]
    old_notes.write_text("".join(json.dumps({"text": t}) + "\n" for t in records),
                         encoding="utf-8")
    keep = docs / "keep.jsonl"
    stays = "Mkate wa unga wa ngano huokwa asubuhi."
    keep.write_text(json.dumps({"text": stays}) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    build_index([docs], index, chunk_tokens=48, chunk_overlap=8)

    def passages() -> dict[str, tuple[int, np.ndarray, str]]:
        return {text: (pid, vec, path) for pid, text, path, _, vec in _passage_rows(index)}

    before = passages()
    n_report = sum(1 for _, _, path in before.values() if path == str(report))
    assert n_report > 3
    (docs / "archive").mkdir()
    moved = docs / "archive" / "report-2026.txt"
    moved.write_text(report.read_text(encoding="utf-8")
                     + "\nAppendix. The road will be paved next spring.", encoding="utf-8")
    report.unlink()
    old_notes.unlink()
    keep.write_text(keep.read_text(encoding="utf-8") + json.dumps({"text": records[1]}) + "\n",
                    encoding="utf-8")
    second = build_index([docs], index)
    after = passages()
    assert (second.new, second.changed, second.removed, second.renamed) == (1, 1, 2, 0)
    kept = [t for t in after if t in before and t != stays]  # stays: an unchanged record
    # the report's passages but its last (the appendix joins it), and the record
    assert second.passages_kept == len(kept) >= n_report
    assert second.passages_embedded == len(after) - len(kept) - 1 <= 2
    assert second.passages_removed == len(before) - len(kept) - 1
    for text in kept:
        pid, vec, path = after[text]
        assert pid == before[text][0] and np.array_equal(vec, before[text][1])
    assert after[records[1]][2] == str(keep) and before[records[1]][2] == str(old_notes)
    assert {path for _, _, path in after.values()} == {str(moved), str(keep)}
    _ids_agree(index)
    searcher = Searcher(index)
    try:
        hit = searcher.search_many(["Mannschaft Finale"], k=1, mode="lexical")[0][0]
        assert (hit.path, hit.record_id, hit.text) == (str(keep), "2", records[1])
    finally:
        searcher.close()


def test_a_file_that_becomes_empty_or_binary_leaves_the_index(small_corpus, tmp_path):
    """Its text is gone from the disk, so from the index too (it once stayed, found by
    queries and listed as indexed and as skipped). A file that fails to be read (a limit, a
    parse error) keeps its last indexed version, and the warning says so."""
    from xsearch.ingest.base import ReadOptions

    index = tmp_path / "index"
    build_index([small_corpus], index)
    n, _ = _ids_agree(index)
    emptied, binary, failing = sorted(small_corpus.iterdir())[:3]
    gone = len(_passages_of(index, emptied.name)) + len(_passages_of(index, binary.name))
    kept = _passages_of(index, failing.name)
    emptied.write_bytes(b"")
    binary.write_bytes(bytes(range(256)) * 8)
    failing.write_text(failing.read_text(encoding="utf-8") * 40, encoding="utf-8")
    limit = failing.stat().st_size - 1
    assert binary.stat().st_size < limit
    s = build_index([small_corpus], index, read_options=ReadOptions(max_bytes=limit))
    assert (s.skipped, s.failed, s.passages_removed, s.passages_embedded) == (2, 1, gone, 0)
    [error] = s.errors
    assert error["path"] == str(failing) and "last indexed version is kept" in error["error"]
    assert _passages_of(index, emptied.name) == _passages_of(index, binary.name) == []
    assert _passages_of(index, failing.name) == kept
    assert _ids_agree(index)[0] == n - gone
    idx = IndexDir.open(index)
    try:
        indexed, failed = idx.store.files(), idx.store.failed_files()
    finally:
        idx.close()
    assert str(emptied) not in indexed and str(binary) not in indexed
    assert {failed[str(p)]["kind"] for p in (emptied, binary)} == {"skipped"}
    assert str(failing) in indexed and failed[str(failing)]["kind"] == "failed"
    # Text again: indexed again.
    emptied.write_text("Lava flowed down the side of the volcano at night.", encoding="utf-8")
    again = build_index([small_corpus], index, read_options=ReadOptions(max_bytes=limit))
    assert again.new == 1 and again.passages_embedded == 1
    assert len(_passages_of(index, emptied.name)) == 1
    # The failing file back to the version indexed: no longer listed as failed (its record
    # stayed for ever, "1 failed or skipped", --retry-failed or not).
    failing.write_text(failing.read_text(encoding="utf-8")[:len(failing.read_text(
        encoding="utf-8")) // 40], encoding="utf-8")
    back = build_index([small_corpus], index, read_options=ReadOptions(max_bytes=limit))
    # (the binary file is still binary: skipped before, and not read again)
    assert (back.unchanged, back.failed_before, back.passages_embedded) == (5, 1, 0)
    idx = IndexDir.open(index)
    try:
        assert str(failing) not in idx.store.failed_files()
    finally:
        idx.close()


def test_a_copied_file_takes_the_vectors_of_its_original(small_corpus, tmp_path):
    """A new file with the content of an indexed one (a copy) is a file of its own, with its
    own rows, whose vectors are its original's: nothing is embedded again."""
    index = tmp_path / "index"
    build_index([small_corpus], index)
    original = max(sorted(small_corpus.iterdir()), key=lambda f: len(_passages_of(index,
                                                                                 f.name)))
    n = len(_passages_of(index, original.name))
    assert n >= 2
    (small_corpus / "sub").mkdir()
    copy = small_corpus / "sub" / ("copy-" + original.name)
    copy.write_bytes(original.read_bytes())
    s = build_index([small_corpus], index)
    assert (s.new, s.passages_embedded, s.passages_kept) == (1, 0, n)
    rows = _passage_rows(index)
    mine = [(t, v) for _, t, path, _, v in rows if path == str(original)]
    theirs = [(t, v) for _, t, path, _, v in rows if path == str(copy)]
    assert [t for t, _ in mine] == [t for t, _ in theirs]
    for (_, a), (_, b) in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    _ids_agree(index)
    hits = Searcher(index).search(mine[0][0][:200], k=10, per_document=0)
    assert {str(original), str(copy)} <= {h.path for h in hits}


def test_full_rebuild_and_model_change_needs_full(small_corpus, tmp_path):
    index = tmp_path / "index"
    build_index([small_corpus], index)
    n_passages, _ = _ids_agree(index)
    rebuilt = build_index([small_corpus], index, full=True)
    assert rebuilt.new == len(list(small_corpus.iterdir()))
    assert _ids_agree(index)[0] == n_passages


def test_full_rebuild_keeps_the_topic_labels(small_corpus, tmp_path):
    # --full once dropped labels given with `xsearch label` (a trained classifier survived:
    # it lives beside the database); the rebuilt passages had no topic and --topic failed.
    from xsearch.topics import Label, label_index

    index = tmp_path / "index"
    build_index([small_corpus], index)
    labels = [Label("bread", "baking bread, flour and dough"),
              Label("volcano", "a volcanic eruption, lava and ash")]
    label_index(index, labels)

    def topics() -> tuple[list, dict]:
        con = sqlite3.connect(index / "xsearch.db")
        try:
            return (con.execute("SELECT name, description FROM labels ORDER BY position")
                    .fetchall(),
                    dict(con.execute("SELECT d.path || '#' || p.ordinal, p.topic FROM passages p "
                                     "JOIN documents d ON d.id = p.document_id")))
        finally:
            con.close()

    before = topics()
    assert before[0] == [(lb.name, lb.description) for lb in labels]
    assert set(before[1].values()) == {"bread", "volcano"}
    rebuilt = build_index([small_corpus], index, full=True)
    assert rebuilt.labels["passages"] == len(before[1])
    assert topics() == before


def test_record_fields_are_remembered_per_file_and_a_new_one_rereads(tmp_path):
    # --text-field on a re-run once did nothing (the file was unchanged); a later plain run
    # read an edited file with the default field; a CSV that failed for want of a 'text'
    # column stayed "failed before" when re-run with the right --text-field.
    from click.testing import CliRunner

    from xsearch.cli import cli

    docs = tmp_path / "docs"
    docs.mkdir()
    rows = [{"id": 1, "uid": "a", "text": "short note", "body": "Sourdough bread rises slowly."},
            {"id": 2, "uid": "b", "text": "other note", "body": "Le volcan a projeté des cendres."}]
    jsonl = docs / "news.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    csv = docs / "table.csv"
    csv.write_text("uid,body\nx,Die Mannschaft gewann das Finale.\n", encoding="utf-8")
    index = tmp_path / "index"
    runner = CliRunner()

    def run(*args: str) -> dict:
        result = runner.invoke(cli, ["index", str(docs), "--index", str(index), "--json",
                                     "-q", *args])
        assert result.exit_code in (0, 1), result.output
        return json.loads(result.output.splitlines()[0])

    def stored() -> tuple[dict, dict]:
        con = sqlite3.connect(index / "xsearch.db")
        try:
            texts = dict(con.execute("SELECT d.path || '#' || d.record_id, p.text FROM passages p "
                                     "JOIN documents d ON d.id = p.document_id"))
            fields = dict(con.execute("SELECT path, record_fields FROM files"))
            return ({k.rsplit("/", 1)[1]: v for k, v in texts.items()},
                    {k.rsplit("/", 1)[1]: json.loads(v) if v else v for k, v in fields.items()})
        finally:
            con.close()

    first = run()
    assert first["failed"] == 1  # the CSV has no 'text' column
    assert stored()[0] == {"news.jsonl#1": "short note", "news.jsonl#2": "other note"}

    second = run("--text-field", "body", "--id-field", "uid")
    assert second["failed_before"] == 0 and second["failed"] == 0
    texts, fields = stored()
    assert texts == {"news.jsonl#a": "Sourdough bread rises slowly.",
                     "news.jsonl#b": "Le volcan a projeté des cendres.",
                     "table.csv#x": "Die Mannschaft gewann das Finale."}
    assert fields["table.csv"] == {"text_field": "body", "id_field": "uid"}
    assert fields["news.jsonl"] == {"text_field": "body", "id_field": "uid"}

    third = run()  # unchanged files, no flags: nothing is read again
    assert (third["unchanged"], third["changed"], third["passages_embedded"]) == (2, 0, 0)

    rows.append({"id": 3, "uid": "c", "text": "third", "body": "Coffee cherries are hand-picked."})
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    fourth = run()  # a changed file is read with the fields it was read with
    assert fourth["changed"] == 1 and fourth["passages_embedded"] == 1
    assert stored()[0]["news.jsonl#c"] == "Coffee cherries are hand-picked."

    fifth = run("--id-field", "id")  # only the id field differs: the text field stays
    assert (fifth["changed"], fifth["unchanged"]) == (2, 0)
    assert (fifth["passages_embedded"], fifth["passages_kept"]) == (0, 4)  # same texts
    texts, fields = stored()
    assert texts == {"news.jsonl#1": "Sourdough bread rises slowly.",
                     "news.jsonl#2": "Le volcan a projeté des cendres.",
                     "news.jsonl#3": "Coffee cherries are hand-picked.",
                     "table.csv#2": "Die Mannschaft gewann das Finale."}  # no 'id': its line
    assert fields["news.jsonl"] == {"text_field": "body", "id_field": "id"}
    assert fields["table.csv"] == {"text_field": "body", "id_field": "id"}

    listed = runner.invoke(cli, ["files", "--index", str(index), "--json"])
    assert {f["path"].rsplit("/", 1)[1]: f["record_fields"]
            for f in json.loads(listed.output)["files"]} == fields

    full = run("--full")  # a rebuild reads each file as it was read before
    assert full["failed"] == 0
    assert stored() == (texts, fields)

    jsonl.rename(docs / "moved.jsonl")  # a move is a rename, then read with the new field
    moved = run("--text-field", "text")
    assert (moved["renamed"], moved["passages_embedded"]) == (1, 3)
    texts, fields = stored()
    assert {k: v for k, v in texts.items() if k.startswith("moved")} == {
        "moved.jsonl#1": "short note", "moved.jsonl#2": "other note", "moved.jsonl#3": "third"}
    assert fields["moved.jsonl"] == {"text_field": "text", "id_field": "id"}
    # table.csv has no 'text' column: it fails, and keeps what it had indexed
    assert moved["failed"] == 1 and texts["table.csv#2"] == "Die Mannschaft gewann das Finale."
    assert fields["table.csv"] == {"text_field": "body", "id_field": "id"}
    _ids_agree(index)


def test_a_raised_limit_reads_again_what_it_refused_or_cut(tmp_path):
    """A file refused by --max-mb or --max-chars, and a .csv whose long record was skipped,
    are read again (unchanged) by the run that raises that limit, and only by that run."""
    from click.testing import CliRunner

    from xsearch.cli import cli

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Copper roofs turn green as they weather.", "utf-8")
    (corpus / "long.txt").write_text("Tidal mills ground grain by the sea. " * 120, "utf-8")
    # 3,600 characters (under --max-chars 4000) in 10,800 bytes (over --max-mb 0.01)
    (corpus / "big.txt").write_text("灯塔看守人记录了每一艘经过的船。" * 225, "utf-8")
    long_record = "Salt marshes shelter young fish from herons. " * 100
    (corpus / "rows.csv").write_text(
        f"id,text\n1,Bees dance to point at flowers.\n2,{long_record}\n", "utf-8")
    index = tmp_path / "index"

    def run(*options: str) -> dict:
        result = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(index),
                                          "--json", "-q", *options])
        assert result.exit_code in (0, 1), result.output
        return json.loads(result.stdout)

    def stored(table: str) -> dict[str, str | None]:
        with sqlite3.connect(index / "xsearch.db") as con:
            return {p.rsplit("/", 1)[-1]: c for p, c in con.execute(
                f"SELECT path, cut_by FROM {table}")}

    tight = ("--max-chars", "4000", "--max-mb", "0.01")
    first = run(*tight)
    assert first["failed"] == 2 and first["limits_raised"] == 0
    assert stored("failed_files") == {"long.txt": '{"max_chars": 4000}',
                                      "big.txt": '{"max_bytes": 10485}'}
    assert stored("files") == {"good.txt": None, "rows.csv": '{"max_chars": 4000}'}
    assert len(_passages_of(index, "rows.csv")) == 1
    listed = CliRunner().invoke(cli, ["files", "--index", str(index)])
    assert listed.exit_code == 0
    assert [line for line in listed.output.splitlines() if "rows.csv" in line][0].endswith(
        "rows.csv  (records over --max-chars 4,000 left out)")

    again = run(*tight)  # the same limits: nothing is read
    assert again["failed_before"] == 2 and again["limits_raised"] == 0
    assert again["passages_embedded"] == 0 and again["unchanged"] == 2

    only_size = run("--max-chars", "4000")  # --max-mb back to its default of 50
    assert only_size["limits_raised"] == 1 and only_size["failed_before"] == 1
    assert only_size["new"] == 1 and only_size["failed"] == 0
    assert stored("failed_files") == {"long.txt": '{"max_chars": 4000}'}
    assert stored("files")["big.txt"] is None

    csv_passage = _passages_of(index, "rows.csv")
    raised = run("--max-chars", "10000")
    assert raised["limits_raised"] == 2 and raised["failed"] == 0
    assert raised["new"] == 1 and raised["changed"] == 1
    assert stored("failed_files") == {}
    assert set(stored("files").values()) == {None}
    rows = _passages_of(index, "rows.csv")
    assert len(rows) > 1 and set(csv_passage) < set(rows)  # the short record kept its vector
    assert raised["passages_embedded"] == len(rows) - 1 + len(_passages_of(index, "long.txt"))
    _ids_agree(index)

    for options in ((), ("--max-chars", "4000")):  # nothing is cut now; lowering reads nothing
        quiet = run(*options)
        assert quiet["limits_raised"] == 0 and quiet["passages_embedded"] == 0
        assert quiet["unchanged"] == 4
    hits = CliRunner().invoke(cli, ["query", "tidal mills grinding grain", "--index",
                                    str(index), "--json", "-k", "1"])
    assert hits.exit_code == 0 and "long.txt" in hits.output
