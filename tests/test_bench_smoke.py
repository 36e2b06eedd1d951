"""The whole benchmark harness on tiny datasets written here, in both layouts, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from xsearch.cli import cli

# Parallel sentences (index_id -> label, text per language) in the SIB-200 layout.
SENTENCES = {
    "1": ("sports", {"eng_Latn": "The team won the cup final with a late goal.",
                     "fra_Latn": "L'équipe a gagné la finale de la coupe grâce à un but tardif.",
                     "spa_Latn": "El equipo ganó la final de la copa con un gol tardío."}),
    "2": ("sports", {"eng_Latn": "She ran the marathon in under three hours.",
                     "fra_Latn": "Elle a couru le marathon en moins de trois heures.",
                     "spa_Latn": "Ella corrió el maratón en menos de tres horas."}),
    "3": ("health", {"eng_Latn": "Doctors vaccinated thousands of children against measles.",
                     "fra_Latn": "Les médecins ont vacciné des milliers d'enfants contre la "
                                 "rougeole.",
                     "spa_Latn": "Los médicos vacunaron a miles de niños contra el sarampión."}),
    "4": ("health", {"eng_Latn": "Drinking clean water prevents many diseases.",
                     "fra_Latn": "Boire de l'eau potable évite de nombreuses maladies.",
                     "spa_Latn": "Beber agua limpia previene muchas enfermedades."}),
    "5": ("travel", {"eng_Latn": "Book your train tickets early to get a cheaper fare.",
                     "fra_Latn": "Réservez vos billets de train tôt pour payer moins cher.",
                     "spa_Latn": "Reserva tus billetes de tren pronto para pagar menos."}),
    "6": ("travel", {"eng_Latn": "The hotel is a short walk from the old harbour.",
                     "fra_Latn": "L'hôtel est à quelques pas du vieux port.",
                     "spa_Latn": "El hotel está a poca distancia del puerto viejo."}),
}
SPLITS = {"train": ["1", "3", "5"], "dev": ["2"], "test": ["2", "4", "6", "1", "3", "5"]}


def _write_sib(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "labels.txt").write_text("sports\nhealth\ntravel\n", encoding="utf-8")
    for lang in ("eng_Latn", "fra_Latn", "spa_Latn"):
        (root / lang).mkdir(parents=True)
        for split, ids in SPLITS.items():
            rows = ["index_id\tcategory\ttext"] + [
                f"{i}\t{SENTENCES[i][0]}\t{SENTENCES[i][1][lang]}" for i in ids]
            (root / lang / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_sib_layout_full_harness(tmp_path):
    data = tmp_path / "sib"
    _write_sib(data)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "bench", "--data", str(data), "--split", "test", "--out", str(out),
        "--cache", str(tmp_path / "cache"), "--fewshot-k", "1,all", "--k", "1,5",
    ])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    langs = ["eng_Latn", "fra_Latn", "spa_Latn"]
    pairs = res["retrieval"]["pairs"]
    for q in langs:
        for d in langs:
            cell = pairs[q][d]
            if q == d:
                assert cell is None  # a sentence is not relevant to itself
            else:
                assert cell["n_queries"] == 6 and 0.0 <= cell["recall@1"] <= cell["recall@5"]
    # Six parallel sentences: a multilingual model finds the translation in the top 5.
    assert res["retrieval"]["recall@5"]["off_diagonal_mean"] >= 0.9
    topics = res["topics"]
    assert set(topics["zero_shot"]["per_language"]) == set(langs)
    # Train ids (1, 3, 5) are held out of topic scoring.
    assert topics["eval_groups"] == 3
    # One train example a label: k=1 is all of them, named so and measured once (a k past
    # the examples was named "k=500" and trained on all of them).
    eng = {k: v for k, v in topics["few_shot"].items() if k.startswith("eng_Latn|")}
    assert {k.split("|")[1] for k in eng} == {"k=all"} and len(eng) == 2
    assert all(v["n_train"] == 3 for v in eng.values())
    ranking = topics["source_ranking"]  # each target ranks the two other languages
    assert {t: sorted(s for s, _ in r) for t, r in ranking.items()} == \
        {t: sorted(x for x in langs if x != t) for t in langs}
    assert {"all_agree", "n_groups"} <= set(topics["zero_shot"]["consistency"])
    assert set(res["mixed"]["per_query_language"]) == set(langs)
    assert set(res["tokenization"]) == set(langs)
    assert res["tokenization"]["eng_Latn"]["ratio_to_english"] == 1.0
    assert res["throughput"]["query_ms_p50"] > 0
    for name in ("report.md", "recall_at_5.png", "recall_at_1.png", "consistency.png"):
        assert (out / name).stat().st_size > 100
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| fra_Latn |" in report and "Zero-shot confusion" in report
    assert "Few-shot source languages ranked" in report

    # A second run reads every vector from the cache: nothing is embedded again.
    again = CliRunner().invoke(cli, [
        "bench", "--data", str(data), "--split", "test", "--out", str(out),
        "--cache", str(tmp_path / "cache"), "--fewshot-k", "1,all", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["timings"]["embedding_total"]["computed"] == 0


def test_generic_layout_with_long_documents(tmp_path):
    data = tmp_path / "generic"
    data.mkdir()
    long_en = " ".join(["Solar panels on the clinic roof keep the vaccine fridge cold."] * 60)
    corpus = [
        {"id": "d1", "lang": "eng_Latn", "text": long_en},
        {"id": "d2", "lang": "fra_Latn", "text": "Le pain au levain lève toute la nuit."},
        {"id": "d3", "lang": "fra_Latn", "text": "Des panneaux solaires alimentent le "
                                                 "réfrigérateur des vaccins."},
        {"id": "d4", "lang": "eng_Latn", "text": "Knead the dough and let the bread rise."},
    ]
    queries = [
        {"id": "q1", "lang": "eng_Latn", "text": "solar power for vaccine storage"},
        {"id": "q2", "lang": "fra_Latn", "text": "comment faire lever le pain"},
    ]
    (data / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus) + "\n",
                                       encoding="utf-8")
    (data / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n",
                                        encoding="utf-8")
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t1\n"
                                    "q2\td2\t1\nq2\td4\t1\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["bench", "--dataset", "generic", "--data", str(data),
                                      "--out", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    pairs = res["retrieval"]["pairs"]
    # Every (query language, document language) cell has its one relevant document.
    for q in ("eng_Latn", "fra_Latn"):
        for d in ("eng_Latn", "fra_Latn"):
            assert pairs[q][d]["n_queries"] == 1
            assert pairs[q][d]["recall@5"] == 1.0  # pools of two documents
    assert res["mixed"]["map@4"] > 0.5
    assert "topics" not in res


def test_bench_refuses_what_it_cannot_measure_before_any_work(tmp_path):
    """Each of these once ran the whole benchmark, then crashed with a traceback (--k
    without 1 and 5, one language, a negative --fewshot-k) or reported a wrong number
    (recall@-1 and recall@0; a labels file with a byte order mark whose first label never
    matched; labels that are not the dataset's categories: accuracy 0.000)."""
    data = tmp_path / "sib"
    _write_sib(data)
    out = tmp_path / "out"

    def bench(*args: str):
        return CliRunner().invoke(cli, ["bench", "--data", str(data), "--out", str(out),
                                        "--cache", str(tmp_path / "cache"), *args])

    for args, says in [(("--k=-1,0",), "whole numbers from 1"),
                       (("--k", "all"), "whole numbers from 1"),
                       (("--fewshot-k=-3",), "whole numbers from 1 or 'all'"),
                       (("-l", "eng"), "two languages or more")]:
        res = bench(*args)
        assert res.exit_code == 2 and says in res.output, (args, res.output)
        assert "Traceback" not in res.output
    (tmp_path / "other.txt").write_text("sport\ntrip\nmedicine\n", encoding="utf-8")
    res = bench("--labels", str(tmp_path / "other.txt"))
    assert res.exit_code == 1 and "'sport' is not one of the dataset's categories" in res.output
    assert not out.exists()  # refused before anything was written
    # A byte order mark (Notepad), and UTF-16 with its mark, read as `xsearch label` reads.
    for data_bytes in ("\ufeffsports\nhealth\ntravel\n".encode(),
                       "sports\nhealth\ntravel\n".encode("utf-16")):
        (tmp_path / "l.txt").write_bytes(data_bytes)
        res = bench("--labels", str(tmp_path / "l.txt"), "--k", "1,3", "--fewshot-k", "1",
                    "--no-mixed", "--json")
        assert res.exit_code == 0, res.output
        got = json.loads(res.stdout)
        assert got["topics"]["labels"] == ["sports", "health", "travel"]
        assert {"recall@1", "recall@3", "recall@5"} <= set(got["retrieval"])
    assert (out / "report.md").is_file() and (out / "recall_at_5.png").is_file()
