"""Progress is reported per committed group, in passages and tokens, from the first group on,
and the CLI shows a rate and an ETA."""

from __future__ import annotations

import re

from xsearch.cli import _Progress
from xsearch.indexer import build_index


def test_progress_events_add_up_to_the_summary(small_corpus, tmp_path):
    events: list[tuple[str, dict]] = []
    summary = build_index([small_corpus], tmp_path / "index", commit_every=1,
                          progress=lambda e, info: events.append((e, dict(info))))
    starts = [i for e, i in events if e == "start"]
    advances = [i for e, i in events if e == "advance"]
    assert len(starts) == 1 and starts[0]["files"] == summary.new
    assert len(advances) == summary.new  # one group per file at commit_every=1
    assert sum(a["n"] for a in advances) == summary.passages_embedded > 0
    assert sum(a["tokens"] for a in advances) == summary.tokens_embedded > 0
    assert sum(a["bytes"] for a in advances) == starts[0]["bytes"]


def test_progress_line_shows_rate_and_eta_after_the_first_group(capsys):
    meter = _Progress()
    meter.update("start", {"files": 4, "bytes": 4000})
    meter.update("advance", {"n": 10, "tokens": 2000, "bytes": 1000, "files": 1})
    line = capsys.readouterr().err
    assert re.search(r"1/4 files, 10 passages, 2,000 tokens .* passages/s .* tokens/s +ETA \d",
                     line), line
