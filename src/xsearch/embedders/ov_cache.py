"""OpenVINO's compilation of the e5-small graph, cached beside the graph.

Compiling took 0.27-0.35 s of every index run and server start, on the way to the first
batch; importing the compiled model takes 0.09 s, and it runs bit-identical vectors. The
blob is keyed by what it was compiled from and for: the graph's sha256, OpenVINO's version,
the settings and the CPU's features (as numpy reads CPUID), so a change in any of them
compiles again. It is written like the graph (temporary file, fsync, rename; size and
sha256 in a ``.json`` beside it). A blob that is missing, damaged or refused by OpenVINO is
never used: the graph is compiled again and the blob rewritten. Its name carries the thread
count and a short hash of the CPU's features, so machines that share one cache folder (an
NFS home) keep their own blobs; a new blob removes only older ones of its own CPU and thread
count.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

from ..fileio import cache_dir, write_checked
from .cpu_features import cpu_signature

PREFIX = "e5-small-openvino"


def load_compiled(core: Any, version: str, graph: Path, config: dict, threads: int
                  ) -> tuple[Any, str]:
    """(compiled model, "cache" or "compiled") for the graph at ``graph`` on the CPU, by
    OpenVINO ``core`` of this ``version``."""
    key = _key(graph, version, config)
    own = f"{PREFIX}-t{threads}-c{_cpu_tag()}"
    blob = cache_dir() / f"{own}-{key}.blob" if key else None
    data = _read_verified(blob) if blob else None
    if data is not None:
        try:
            return core.import_model(io.BytesIO(data), "CPU", config), "cache"
        except Exception:  # noqa: BLE001 - a blob OpenVINO refuses is compiled again
            pass
    compiled = core.compile_model(core.read_model(str(graph)), "CPU", config)
    if blob is not None:
        try:
            write_checked(blob, compiled.export_model().getvalue(), openvino=version)
        except (OSError, RuntimeError):  # a read-only cache, or nothing to export: no cache
            pass
        else:
            # Older keys of this CPU, thread count and OpenVINO (another install sharing the
            # cache keeps its own: each deleted the other's and compiled again every run), and
            # blobs named before names took the CPU (they cannot say whose they are, and are
            # compiled again if still wanted).
            older = re.compile(rf"^(?:{re.escape(own)}|{PREFIX}-t{threads})-[0-9a-f]{{16}}"
                               r"\.(?:blob|json)$")
            for stale in blob.parent.glob(f"{PREFIX}-t{threads}-*"):
                if older.match(stale.name) and not stale.name.startswith(blob.stem) and \
                        _made_by(stale) in (version, None):
                    stale.unlink(missing_ok=True)
    return compiled, "compiled"


def _made_by(path: Path) -> str | None:
    """The OpenVINO version a blob's record names (None: an older record, or none)."""
    try:
        return json.loads(path.with_suffix(".json").read_text(encoding="utf-8")).get("openvino")
    except (OSError, ValueError, AttributeError):
        return None


def _cpu_tag() -> str:
    return hashlib.sha256(json.dumps(cpu_signature(), sort_keys=True).encode()).hexdigest()[:8]


def _key(graph: Path, version: str, config: dict) -> str | None:
    try:
        graph_sha = json.loads(graph.with_suffix(".json").read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a graph without its checksum is compiled, not cached
    what = {"graph": graph_sha, "openvino": version,
            "config": {k: str(v) for k, v in sorted(config.items())},
            "cpu": cpu_signature()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _read_verified(blob: Path) -> bytes | None:
    try:
        meta = json.loads(blob.with_suffix(".json").read_text(encoding="utf-8"))
        data = blob.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("size") != len(data) or \
            meta.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    return data
