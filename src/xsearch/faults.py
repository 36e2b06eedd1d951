"""Named crash points for the crash tests: ``XSEARCH_FAULT=NAME[@N][:SIG]`` sends the process
SIGKILL (or ``SIG``, e.g. ``INT`` for a Ctrl-C) the N-th time (default 1st) it reaches
``point(NAME)``; several, comma-separated, each their own point. Unset, a point costs one
environment lookup."""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def point(name: str) -> None:
    spec_list = os.environ.get("XSEARCH_FAULT")
    if not spec_list:
        return
    for spec in spec_list.split(","):  # several: each its own point, count and signal
        head, _, sig = spec.rpartition(":")
        if head and sig.isupper():  # point names are lower case
            spec = head
        else:
            sig = ""
        want, _, nth = spec.partition("@")
        if want != name:
            continue
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] == int(nth or 1) or (not sig and _hits[name] > int(nth or 1)):
            os.kill(os.getpid(), getattr(signal, "SIG" + sig) if sig else signal.SIGKILL)
