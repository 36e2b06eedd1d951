"""Small file helpers every writer shares: checksums, atomic JSON, fsync of a folder."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cache_dir() -> Path:
    """``$XSEARCH_CACHE``, else ``$XDG_CACHE_HOME/xsearch``, else ``~/.cache/xsearch``."""
    if os.environ.get("XSEARCH_CACHE"):
        return Path(os.environ["XSEARCH_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "xsearch"
    return Path.home() / ".cache" / "xsearch"
