"""Slow: the harness on real SIB-200 data from ../shared (skipped when it is absent)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xsearch.bench.datasets import default_sib200_root
from xsearch.cli import cli

SIB = default_sib200_root()

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SIB.is_dir(), reason="SIB-200 not found (../shared)")]


def test_sib200_sample_three_languages(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "bench", "--data", str(SIB), "-l", "eng_Latn,fra_Latn,hin_Deva", "--sample", "60",
        "--split", "test", "--out", str(out), "--cache", str(tmp_path / "cache"),
        "--fewshot-k", "8"])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    # Translations among 60 sentences: a multilingual retrieval model finds nearly all.
    assert res["retrieval"]["recall@5"]["off_diagonal_mean"] > 0.9
    zs = res["topics"]["zero_shot"]["per_language"]
    assert all(zs[lang]["accuracy"] > 1 / 7 for lang in zs)  # better than chance (7 labels)
