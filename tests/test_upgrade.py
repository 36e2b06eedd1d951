"""An index made by xsearch 0.1 (schema 2: vectors in SQLite and one FAISS file) is refused
by a query with the command that upgrades it, and works after that command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from xsearch.cli import cli
from xsearch.store import SCHEMA_VERSION

FIXTURE = Path(__file__).parent / "data" / "schema2_index"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_schema2_index_is_upgraded_by_check_repair(tmp_path):
    index = tmp_path / "index"
    shutil.copytree(FIXTURE, index)
    before = (index / "xsearch.db").read_bytes()
    refused = run("query", "bread", "--index", str(index))
    assert refused.exit_code == 1
    assert "xsearch check --repair" in refused.output
    assert (index / "xsearch.db").read_bytes() == before  # a query never migrates

    upgraded = run("check", "--repair", "--index", str(index))
    assert upgraded.exit_code == 0, upgraded.output
    assert not (index / "vectors.faiss").exists()
    assert sorted(p.suffix for p in (index / "segments").iterdir())
    stats = json.loads(run("stats", "--index", str(index), "--json").output)
    assert stats["passages"] == stats["vectors"] == 4
    assert stats["schema_version"] == SCHEMA_VERSION and stats["centering"] == "none"
    hits = run("query", "how to bake bread", "--index", str(index), "--json")
    assert hits.exit_code == 0, hits.output
    assert "bread" in json.loads(hits.output.splitlines()[0])["path"]
